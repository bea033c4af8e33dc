//! Running steps. An automatic step starts as soon as every earlier phase is done; a destructive
//! step runs when a person runs it after approval. Either way: claim (written before any Talos
//! call, with this process's id and, for resets and reboots, the node's boot id) → call → `sent`
//! → watch for the effect → `done`, or `failed` with what to check. Nothing destructive is ever
//! retried here: a failed or uncertain step waits for a person.

use std::sync::Arc;
use std::time::Duration;

use talos_dr_shared::recovery::{
    Incident, IncidentStatus, RecoveryStep, StepKind, StepState, TimelineKind, phase_open,
};

use super::auto_steps;
use super::store::{NewEvent, StepChange, StoredStep};
use super::{FailPoint, RecoveryError, RecoveryService};
use crate::state::{AppState, WatchedCluster};
use crate::talos::TalosRecoveryApi;

/// How long one state-changing call may take to be answered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often waits look at the nodes.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

pub fn recovery_talos(
    cluster: &WatchedCluster,
) -> Result<Arc<dyn TalosRecoveryApi>, RecoveryError> {
    cluster
        .recovery_talos
        .clone()
        .ok_or_else(|| RecoveryError::NoAdminTalosconfig(cluster.name.clone()))
}

pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Starts, in the background, every automatic step whose earlier phases are done.
pub fn advance(state: &AppState, incident_id: &str) {
    let state = state.clone();
    let id = incident_id.to_string();
    tokio::spawn(async move {
        if let Err(e) = advance_now(&state, &id).await {
            tracing::error!(incident = %id, error = %e, "cannot start the next steps");
        }
    });
}

async fn advance_now(state: &AppState, incident_id: &str) -> Result<(), RecoveryError> {
    let service = state.recovery();
    let Some(incident) = service.store.incident(incident_id).await? else {
        return Ok(());
    };
    if incident.status != IncidentStatus::Open {
        return Ok(());
    }
    let steps = service.stored_steps(incident_id).await?;
    let plain: Vec<RecoveryStep> = steps.iter().map(|s| s.step.clone()).collect();
    for step in &steps {
        let s = &step.step;
        if !s.kind.runs_automatically() || s.state != StepState::Planned {
            continue;
        }
        if phase_open(&plain, s).is_err() {
            continue;
        }
        if !service.take_step(&s.id) {
            continue;
        }
        let state = state.clone();
        let incident = incident.clone();
        let step = step.clone();
        tokio::spawn(async move {
            let id = step.step.id.clone();
            run_automatic(&state, &incident, step).await;
            state.recovery().release_step(&id);
            advance(&state, &incident.id);
        });
    }
    Ok(())
}

/// Moves a step on with its timeline line and tells the streams; a step someone else moved
/// meanwhile is logged, not forced.
pub async fn settle(
    service: &RecoveryService,
    incident_id: &str,
    step: &RecoveryStep,
    from: &[StepState],
    to: StepState,
    change: StepChange,
    event: NewEvent,
) -> bool {
    match service
        .store
        .transition(incident_id, &step.id, from, to, change, &[event])
        .await
    {
        Ok(()) => {
            service.notify(incident_id);
            true
        }
        Err(e) => {
            tracing::warn!(incident = incident_id, step = %step.id, error = %e, "step not moved");
            false
        }
    }
}

/// Moves a destructive step to its outcome together with the console's own audit entry for it
/// (the person's request, approval and run have their own entries from the routes), in one
/// transaction; like [`settle`] otherwise.
#[expect(clippy::too_many_arguments)]
pub async fn settle_outcome(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
    from: &[StepState],
    to: StepState,
    change: StepChange,
    event: NewEvent,
    detail: &str,
) -> bool {
    let service = state.recovery();
    let mut parameters = std::collections::BTreeMap::new();
    parameters.insert("step".to_string(), step.kind.as_str().to_string());
    if let Some(t) = &step.target {
        parameters.insert("hostname".to_string(), t.hostname.clone());
        parameters.insert("node".to_string(), t.address.clone());
    }
    parameters.insert("detail".to_string(), detail.to_string());
    let entry = crate::audit::NewAuditEntry {
        actor: "(console)".into(),
        roles: Vec::new(),
        action: "step_outcome".into(),
        cluster: Some(incident.cluster.clone()),
        target: Some(format!("{}/{}", incident.id, step.id)),
        parameters,
        outcome: to.as_str().to_string(),
        client: None,
    };
    match service
        .store
        .transition_audited(&incident.id, &step.id, from, to, change, &[event], entry)
        .await
    {
        Ok(()) => {
            service.notify(&incident.id);
            true
        }
        Err(e) => {
            tracing::warn!(incident = %incident.id, step = %step.id, error = %e, "step not moved");
            false
        }
    }
}

pub fn finished_event(service: &RecoveryService, step: &RecoveryStep, detail: &str) -> NewEvent {
    NewEvent::new(
        service.now_ms(),
        TimelineKind::StepFinished,
        format!("{} done: {detail}", describe_plain(step)),
    )
    .step(&step.id)
}

pub fn failed_event(service: &RecoveryService, step: &RecoveryStep, detail: &str) -> NewEvent {
    NewEvent::new(
        service.now_ms(),
        TimelineKind::StepFailed,
        format!("{} failed: {detail}", describe_plain(step)),
    )
    .step(&step.id)
    .loud()
}

/// The step named without its state ("Reset: wipe etcd's data on cp-2").
pub fn describe_plain(step: &RecoveryStep) -> String {
    match &step.target {
        Some(t) => format!("{} on {}", step.kind.title(), t.hostname),
        None => step.kind.title().to_string(),
    }
}

async fn run_automatic(state: &AppState, incident: &Incident, stored: StoredStep) {
    let service = state.recovery();
    let step = stored.step;
    let now = service.now_ms();
    let waits = !matches!(step.kind, StepKind::PreCheck);
    let deadline = waits.then(|| now.saturating_add(ms(service.settings().wait_deadline)));
    let claimed = service
        .store
        .transition(
            &incident.id,
            &step.id,
            &[StepState::Planned],
            StepState::Claimed,
            StepChange::default()
                .text("claimed_by", Some(service.instance().to_string()))
                .int("claimed_at_ms", Some(now))
                .int("started_at_ms", Some(now))
                .int("finished_at_ms", None)
                .int("deadline_at_ms", deadline)
                .text("detail", Some("started")),
            &[NewEvent::new(
                now,
                TimelineKind::StepStarted,
                format!("{} started", describe_plain(&step)),
            )
            .step(&step.id)],
        )
        .await;
    if let Err(e) = claimed {
        tracing::debug!(step = %step.id, error = %e, "automatic step taken elsewhere");
        return;
    }
    service.notify(&incident.id);
    service
        .settings()
        .failpoints
        .reach(step.kind, FailPoint::AfterClaim)
        .await;
    let mut running = step.clone();
    running.deadline_at_ms = deadline;
    let outcome = auto_steps::run(state, incident, &running).await;
    let from = [StepState::Claimed, StepState::Sent];
    match outcome {
        auto_steps::Outcome::Done(detail) => {
            let change = StepChange::default()
                .int("finished_at_ms", Some(service.now_ms()))
                .text("detail", Some(detail.clone()));
            let event = finished_event(service, &step, &detail);
            settle(
                service,
                &incident.id,
                &step,
                &from,
                StepState::Done,
                change,
                event,
            )
            .await;
            if step.kind == StepKind::PostCheck {
                super::checks::resolve_incident(state, &incident.id, &detail).await;
            }
        }
        auto_steps::Outcome::Failed(detail) => {
            let change = StepChange::default()
                .int("finished_at_ms", Some(service.now_ms()))
                .text("detail", Some(detail.clone()));
            let event = failed_event(service, &step, &detail);
            settle(
                service,
                &incident.id,
                &step,
                &from,
                StepState::Failed,
                change,
                event,
            )
            .await;
        }
        // Already settled by the step itself (the pre-check writes its report with its state).
        auto_steps::Outcome::Settled => {}
    }
}
