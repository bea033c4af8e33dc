//! The end of a recovery: etcd healthy on the bootstrap node (its kernel log in the timeline),
//! then the post-checks, which resolve the incident with a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use talos_dr_shared::recovery::TimelineKind;
use talos_dr_shared::recovery::{Incident, IncidentStatus, RecoveryStep};
use talos_dr_shared::snapshots::{ResourceKeys, SnapshotTrigger};
use talos_dr_shared::{MemberState, Role, ServiceHealth, ServiceState};

use super::auto_steps::show;
use super::executor::{WATCH_EVERY, describe_plain, recovery_talos};
use super::kernel_log;
use super::store::NewEvent;
use crate::auth::CurrentUser;
use crate::state::AppState;

/// etcd Running and healthy on the bootstrap node; the restore's kernel-log lines go into the
/// timeline as they come.
pub(super) async fn wait_healthy(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
    deadline: i64,
) -> Result<String, String> {
    let service = state.recovery();
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| e.to_string())?;
    let talos = recovery_talos(cluster).map_err(|e| e.to_string())?;
    let target = step.target.as_ref().ok_or("the wait has no target node")?;
    let follower = kernel_log::follow(
        state.clone(),
        incident.id.clone(),
        step.id.clone(),
        talos.clone(),
        target.address.clone(),
    );
    let mut last = String::new();
    let result = loop {
        let seen =
            tokio::time::timeout(Duration::from_secs(5), talos.etcd_service(&target.address)).await;
        let words = match &seen {
            Ok(Ok(Some(s))) => {
                if s.state == ServiceState::Running && s.health == ServiceHealth::Healthy {
                    break Ok(format!(
                        "etcd is Running and healthy on {}",
                        target.hostname
                    ));
                }
                let last_event = s
                    .events
                    .last()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                format!(
                    "etcd is {} ({:?}) on {}: {last_event}",
                    s.state.as_str(),
                    s.health,
                    target.hostname
                )
            }
            Ok(Ok(None)) => format!("{} runs no etcd service", target.hostname),
            Ok(Err(e)) => format!("{} does not answer: {e}", target.hostname),
            Err(_) => format!("{} does not answer in time", target.hostname),
        };
        if super::auto_steps::incident_closed(state, incident).await {
            break Err(super::auto_steps::CLOSED_WHILE_WAITING.into());
        }
        if service.now_ms() >= deadline {
            break Err(format!(
                "etcd did not become healthy before the deadline; last seen: {words}. Check `{}` for the restore's errors",
                step.talosctl
            ));
        }
        show(state, incident, step, &mut last, words).await;
        tokio::time::sleep(WATCH_EVERY).await;
    };
    // A moment for the last kernel lines to arrive, then stop following.
    tokio::time::sleep(Duration::from_millis(500)).await;
    follower.abort();
    result
}

fn counts(resources: &[ResourceKeys]) -> BTreeMap<String, u64> {
    resources
        .iter()
        .map(|r| (r.resource.clone(), r.keys))
        .collect()
}

/// The other nodes joined, member lists agree, and a check snapshot holds at least the chosen
/// snapshot's revision and key counts.
pub(super) async fn post_check(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
    deadline: i64,
) -> Result<String, String> {
    let service = state.recovery();
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| e.to_string())?;
    let expected = cluster.control_plane_nodes.len();
    let mut last = String::new();
    let mut rx = cluster.health.subscribe();
    let members = loop {
        let latest = rx.borrow_and_update().clone();
        if let Some(h) = latest {
            let healthy = h
                .members
                .iter()
                .filter(|m| m.state == MemberState::Healthy)
                .count();
            let lists: BTreeSet<Vec<String>> = h
                .nodes
                .iter()
                .filter_map(|n| n.members.as_ref())
                .map(|ms| {
                    let mut ids: Vec<String> = ms.iter().map(|m| m.id.clone()).collect();
                    ids.sort();
                    ids
                })
                .collect();
            let answered = h.nodes.iter().filter(|n| n.members.is_some()).count();
            if healthy == expected
                && h.members.len() == expected
                && lists.len() == 1
                && answered == expected
            {
                break h
                    .members
                    .iter()
                    .map(|m| m.member.hostname.clone())
                    .collect::<Vec<_>>();
            }
            let words = format!(
                "waiting for the members to join: {healthy} of {expected} healthy, {} member(s) listed, {} different member list(s)",
                h.members.len(),
                lists.len()
            );
            show(state, incident, step, &mut last, words).await;
        }
        if super::auto_steps::incident_closed(state, incident).await {
            return Err(super::auto_steps::CLOSED_WHILE_WAITING.into());
        }
        if service.now_ms() >= deadline {
            return Err(format!(
                "the cluster did not come back complete before the deadline ({last}); check `talosctl -n <IP> etcd members` on each node"
            ));
        }
        let _ = tokio::time::timeout(WATCH_EVERY, rx.changed()).await;
    };
    show(
        state,
        incident,
        step,
        &mut last,
        "taking a check snapshot (etcd-backup credentials) to compare with the chosen one".into(),
    )
    .await;
    let chosen = incident
        .snapshot
        .as_ref()
        .ok_or("the incident has no chosen snapshot")?;
    let checker = CurrentUser {
        username: format!("recovery post-check ({})", incident.id),
        roles: vec![Role::Operator],
        csrf_token: String::new(),
        expires_at_ms: i64::MAX,
    };
    let entry =
        crate::snapshots::api::take(state, cluster, &checker, SnapshotTrigger::Manual, None)
            .await
            .map_err(|e| format!("the check snapshot failed: {e}"))?;
    if let Some(failure) = &entry.failure {
        return Err(format!("the check snapshot {} failed: {failure}", entry.id));
    }
    service
        .log_event(
            &incident.id,
            NewEvent::new(
                service.now_ms(),
                TimelineKind::Snapshot,
                format!("check snapshot {} taken for the post-checks", entry.id),
            )
            .step(&step.id),
        )
        .await;
    let history = &state.snapshots().history;
    let check_row = history
        .find(&incident.cluster, &entry.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the check snapshot is not in the history")?;
    let chosen_row = history
        .find(&incident.cluster, &chosen.snapshot_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the chosen snapshot is no longer in the history")?;
    let got = counts(&check_row.resources);
    let want = counts(&chosen_row.resources);
    let missing: Vec<String> = want
        .iter()
        .filter(|(r, n)| got.get(*r).copied().unwrap_or(0) < **n)
        .map(|(r, n)| format!("{r}: {} of {n}", got.get(r).copied().unwrap_or(0)))
        .collect();
    let grown: Vec<String> = got
        .iter()
        .filter(|(r, n)| want.get(*r).copied().unwrap_or(0) < **n)
        .map(|(r, n)| format!("{r}: {n} (was {})", want.get(r).copied().unwrap_or(0)))
        .collect();
    let revision = entry.figures.as_ref().map(|f| f.revision).unwrap_or(0);
    let wanted_revision = chosen.figures.as_ref().map(|f| f.revision).unwrap_or(0);
    if revision < wanted_revision {
        return Err(format!(
            "the cluster's revision is {revision}, below the snapshot's {wanted_revision}: the restore did not take the snapshot's data"
        ));
    }
    if !missing.is_empty() {
        return Err(format!(
            "keys are missing compared with the snapshot: {}",
            missing.join("; ")
        ));
    }
    let mut detail = format!(
        "{} members healthy ({}), member lists agree; check snapshot {} (talos-dr-snapshot inspector): revision {revision} >= {wanted_revision}, key counts per resource match the snapshot's {} resource(s)",
        members.len(),
        members.join(", "),
        entry.id,
        want.len()
    );
    if !grown.is_empty() {
        detail.push_str(&format!(
            "; written since the restore: {}",
            grown.join("; ")
        ));
    }
    Ok(detail)
}

/// The post-checks passed: the incident closes itself with a summary of what was done.
pub async fn resolve_incident(state: &AppState, incident_id: &str, post_check: &str) {
    let service = state.recovery();
    let Ok(Some(incident)) = service.store.incident(incident_id).await else {
        return;
    };
    if incident.status != IncidentStatus::Open {
        return;
    }
    let steps = service.stored_steps(incident_id).await.unwrap_or_default();
    let destructive: Vec<String> = steps
        .iter()
        .filter(|s| s.step.kind.is_destructive())
        .map(|s| {
            format!(
                "{} (requested by {}, run by {})",
                describe_plain(&s.step),
                s.step
                    .request
                    .as_ref()
                    .map(|r| r.by.as_str())
                    .unwrap_or("-"),
                s.step.run_by.as_deref().unwrap_or("-")
            )
        })
        .collect();
    let snapshot = incident
        .snapshot
        .as_ref()
        .map(|s| {
            format!(
                "snapshot {}{} chosen by {}",
                s.snapshot_id,
                s.figures
                    .as_ref()
                    .map(|f| format!(" (revision {}, {} keys)", f.revision, f.total_keys))
                    .unwrap_or_default(),
                s.chosen_by
            )
        })
        .unwrap_or_else(|| "no snapshot".into());
    let summary = format!(
        "Cluster {} recovered from {snapshot}, bootstrapped on {}. Steps: {}. Post-checks: {post_check}",
        incident.cluster,
        incident.bootstrap_node.as_deref().unwrap_or("?"),
        destructive.join("; ")
    );
    if let Err(e) =
        super::actions::finish(state, incident_id, None, IncidentStatus::Resolved, &summary).await
    {
        tracing::error!(incident = incident_id, error = %e, "cannot resolve the incident");
    }
}
