//! What people do with an incident. Every action re-checks the shared guard rails against the
//! stored plan and the target's state in the latest health poll, then writes one transaction.

use std::sync::Arc;

use talos_dr_shared::ClusterHealth;
use talos_dr_shared::recovery::{
    Incident, IncidentStatus, PreCheckOverride, Refusal, StepKind, StepState, TimelineKind,
    describe, talosctl_for,
};

use super::store::{NewEvent, NewStep, StepChange, StoredStep, Val};
use super::{RecoveryError, executor, feeders, new_id, nodes};
use crate::auth::CurrentUser;
use crate::state::{AppState, WatchedCluster};

/// The longest note, reason or summary accepted.
pub const MAX_TEXT: usize = 4000;

pub fn required_text(field: &str, text: &str) -> Result<String, RecoveryError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RecoveryError::Refused(Refusal::ReasonMissing).with_field(field));
    }
    if text.len() > MAX_TEXT {
        return Err(RecoveryError::Invalid(format!(
            "{field}: at most {MAX_TEXT} characters"
        )));
    }
    Ok(text.to_string())
}

impl RecoveryError {
    fn with_field(self, field: &str) -> Self {
        match self {
            Self::Refused(Refusal::ReasonMissing) if field != "reason" => {
                Self::Invalid(format!("{field}: must not be empty"))
            }
            other => other,
        }
    }
}

pub fn latest_health(cluster: &WatchedCluster) -> Result<Arc<ClusterHealth>, RecoveryError> {
    cluster
        .health
        .latest()
        .ok_or_else(|| RecoveryError::NoHealth(cluster.name.clone()))
}

/// The incident, which must be open, and its cluster.
pub async fn open_incident<'a>(
    state: &'a AppState,
    id: &str,
) -> Result<(Incident, &'a WatchedCluster), RecoveryError> {
    let incident = state
        .recovery()
        .store
        .incident(id)
        .await?
        .ok_or_else(|| RecoveryError::NotFound(id.to_string()))?;
    if incident.status != IncidentStatus::Open {
        return Err(RecoveryError::NotOpen {
            id: incident.id,
            status: incident.status.as_str(),
        });
    }
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| RecoveryError::Invalid(e.to_string()))?;
    Ok((incident, cluster))
}

pub(super) fn find_step<'a>(
    steps: &'a [StoredStep],
    incident: &str,
    step_id: &str,
) -> Result<&'a StoredStep, RecoveryError> {
    steps
        .iter()
        .find(|s| s.step.id == step_id)
        .ok_or_else(|| RecoveryError::StepNotFound {
            incident: incident.to_string(),
            step: step_id.to_string(),
        })
}

pub(super) fn plain(steps: &[StoredStep]) -> Vec<talos_dr_shared::recovery::RecoveryStep> {
    steps.iter().map(|s| s.step.clone()).collect()
}

/// The target's state now, read from the node, as the approval fingerprint has it.
pub(super) async fn fingerprint_now(
    cluster: &WatchedCluster,
    step: &StoredStep,
) -> Result<String, RecoveryError> {
    let target = step
        .step
        .target
        .as_ref()
        .ok_or(RecoveryError::Refused(Refusal::NoTarget))?;
    let health = latest_health(cluster)?;
    Ok(
        nodes::fresh_target_state(cluster.talos.as_ref(), &health, &target.address)
            .await
            .fingerprint(),
    )
}

/// `POST /api/clusters/{cluster}/incidents`
pub async fn open(
    state: &AppState,
    cluster: &WatchedCluster,
    user: &CurrentUser,
    reason: &str,
) -> Result<String, RecoveryError> {
    let reason = required_text("reason", reason)?;
    if cluster.recovery_talos.is_none() {
        return Err(RecoveryError::NoAdminTalosconfig(cluster.name.clone()));
    }
    let service = state.recovery();
    if let Some(id) = service.store.find_open(&cluster.name).await? {
        return Err(RecoveryError::AlreadyOpen {
            cluster: cluster.name.clone(),
            id,
        });
    }
    let now = service.now_ms();
    let incident = Incident {
        id: new_id(),
        cluster: cluster.name.clone(),
        status: IncidentStatus::Open,
        reason: reason.clone(),
        opened_by: user.username.clone(),
        opened_at_ms: now,
        closed_by: None,
        closed_at_ms: None,
        summary: None,
        precheck: None,
        precheck_override: None,
        snapshot: None,
        bootstrap_node: None,
        policy: service.policy(),
    };
    let addresses: Vec<&str> = cluster
        .control_plane_nodes
        .iter()
        .map(String::as_str)
        .collect();
    let first = [StepKind::PreCheck, StepKind::ChooseSnapshot]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| NewStep {
            id: new_id(),
            position: i as u32,
            kind,
            target: None,
            params: Default::default(),
            talosctl: talosctl_for(kind, &addresses, &Default::default()),
        })
        .collect::<Vec<_>>();
    let event = NewEvent::new(
        now,
        TimelineKind::IncidentOpened,
        format!(
            "{} opened the incident for cluster {}: {reason}",
            user.username, cluster.name
        ),
    )
    .by(&user.username);
    match service
        .store
        .insert_incident(&incident, &first, &event)
        .await
    {
        Ok(()) => {}
        Err(super::store::StoreError::AlreadyOpen { cluster: name }) => {
            let id = service.store.find_open(&name).await?.unwrap_or_default();
            return Err(RecoveryError::AlreadyOpen { cluster: name, id });
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(incident = %incident.id, cluster = %cluster.name, by = %user.username, "incident opened");
    feeders::start(state, &incident);
    executor::advance(state, &incident.id);
    Ok(incident.id)
}

/// `POST /api/incidents/{id}/precheck`: look again (the plan is not made yet).
pub async fn rerun_precheck(
    state: &AppState,
    id: &str,
    user: &CurrentUser,
) -> Result<(), RecoveryError> {
    let (incident, _) = open_incident(state, id).await?;
    if incident.snapshot.is_some() {
        return Err(RecoveryError::PrecheckOpen(
            "the snapshot is chosen and the plan made: the pre-checks are settled".into(),
        ));
    }
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = steps
        .iter()
        .find(|s| s.step.kind == StepKind::PreCheck)
        .ok_or_else(|| RecoveryError::StepNotFound {
            incident: id.into(),
            step: "pre_check".into(),
        })?;
    let event = NewEvent::new(
        service.now_ms(),
        TimelineKind::PreCheck,
        format!("{} runs the pre-checks again", user.username),
    )
    .by(&user.username)
    .step(&step.step.id);
    service
        .store
        .transition(
            id,
            &step.step.id,
            &[StepState::Done, StepState::Failed, StepState::Planned],
            StepState::Planned,
            StepChange::default()
                .text("detail", None::<String>)
                .int("finished_at_ms", None),
            &[event],
        )
        .await?;
    service.notify(id);
    executor::advance(state, id);
    Ok(())
}

/// `POST /api/incidents/{id}/precheck/override`
pub async fn override_precheck(
    state: &AppState,
    id: &str,
    user: &CurrentUser,
    reason: &str,
) -> Result<(), RecoveryError> {
    let reason = required_text("reason", reason)?;
    let (incident, _) = open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = steps
        .iter()
        .find(|s| s.step.kind == StepKind::PreCheck)
        .ok_or_else(|| RecoveryError::StepNotFound {
            incident: id.into(),
            step: "pre_check".into(),
        })?;
    let Some(report) = incident.precheck.as_ref() else {
        return Err(RecoveryError::PrecheckOpen(
            "the pre-checks have not run yet: wait for them before overriding".into(),
        ));
    };
    if step.step.state != StepState::Failed {
        return Err(RecoveryError::PrecheckOpen(format!(
            "the pre-check step is {}: only a pre-check that asks for an override can be overridden",
            step.step.state.as_str()
        )));
    }
    let now = service.now_ms();
    let overriding = PreCheckOverride {
        by: user.username.clone(),
        at_ms: now,
        reason: reason.clone(),
    };
    let json = serde_json::to_string(&overriding)
        .map_err(|e| RecoveryError::Invalid(format!("override: {e}")))?;
    let event = NewEvent::new(
        now,
        TimelineKind::Override,
        format!(
            "{} OVERRIDES the pre-checks (verdict: {}) and goes on with a full recovery: {reason}",
            user.username,
            report.verdict.as_str()
        ),
    )
    .by(&user.username)
    .step(&step.step.id)
    .loud();
    service
        .store
        .transition_with_incident(
            id,
            &[("override_json", Val::Text(Some(json)))],
            &step.step.id,
            &[StepState::Failed],
            StepState::Done,
            StepChange::default()
                .text("run_by", Some(user.username.clone()))
                .int("finished_at_ms", Some(now))
                .text(
                    "detail",
                    Some(format!("overridden by {}: {reason}", user.username)),
                ),
            &[event],
        )
        .await?;
    service.notify(id);
    executor::advance(state, id);
    Ok(())
}

/// `POST /api/incidents/{id}/notes`
pub async fn add_note(
    state: &AppState,
    id: &str,
    user: &CurrentUser,
    text: &str,
) -> Result<(), RecoveryError> {
    let text = required_text("text", text)?;
    let service = state.recovery();
    service
        .store
        .incident(id)
        .await?
        .ok_or_else(|| RecoveryError::NotFound(id.to_string()))?;
    let event = NewEvent::new(service.now_ms(), TimelineKind::Note, text).by(&user.username);
    service.store.append(id, &event).await?;
    service.notify(id);
    Ok(())
}

/// `POST /api/incidents/{id}/close`
pub async fn close(
    state: &AppState,
    id: &str,
    user: &CurrentUser,
    summary: &str,
    abandon: bool,
) -> Result<(), RecoveryError> {
    let summary = required_text("summary", summary)?;
    open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    // A destructive call in flight has an outcome on a node nobody knows yet: closing would
    // hide it. A wait, the upload or a check changes no node's data and may be stopped, or a
    // node that never comes back would hold the incident open until the wait's deadline.
    if let Some(busy) = steps
        .iter()
        .find(|s| s.step.state.in_flight() && s.step.kind.is_destructive())
    {
        return Err(RecoveryError::Conflict(format!(
            "{} is in flight: wait for it to finish before closing",
            describe(&busy.step)
        )));
    }
    let open_steps = steps
        .iter()
        .filter(|s| s.step.state != StepState::Done)
        .count();
    if open_steps > 0 && !abandon {
        return Err(RecoveryError::Invalid(format!(
            "abandon: {open_steps} step(s) are not done; close with abandon to stop the recovery here"
        )));
    }
    for running in steps.iter().filter(|s| s.step.state.in_flight()) {
        super::auto_steps::stop_for_abandon(state, id, &user.username, &running.step).await?;
    }
    let status = if abandon && open_steps > 0 {
        IncidentStatus::Abandoned
    } else {
        IncidentStatus::Resolved
    };
    finish(state, id, Some(&user.username), status, &summary).await
}

/// Closes the incident (by a person, or resolved by the post-checks) and stops its feeders.
pub async fn finish(
    state: &AppState,
    id: &str,
    by: Option<&str>,
    status: IncidentStatus,
    summary: &str,
) -> Result<(), RecoveryError> {
    let service = state.recovery();
    let now = service.now_ms();
    let who = by.unwrap_or("the console");
    let mut event = NewEvent::new(
        now,
        TimelineKind::IncidentClosed,
        format!("{who} closed the incident ({}): {summary}", status.as_str()),
    );
    if let Some(by) = by {
        event = event.by(by);
    }
    let changed = service
        .store
        .update_incident(
            id,
            &[
                ("status", Val::Text(Some(status.as_str().into()))),
                ("closed_by", Val::Text(Some(who.into()))),
                ("closed_at_ms", Val::Int(Some(now))),
                ("summary", Val::Text(Some(summary.into()))),
            ],
            &event,
        )
        .await?;
    if !changed {
        return Err(RecoveryError::Conflict(
            "the incident was closed meanwhile".into(),
        ));
    }
    service.stop_feeders(id);
    service.notify(id);
    Ok(())
}
