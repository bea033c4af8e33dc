//! Choosing the snapshot: the stored ones as candidates (the newest verified proposed, the ones
//! that will not restore shown with the inspector's reason), and fixing one with the bootstrap
//! node, which writes the plan.

use talos_dr_shared::MachineType;
use talos_dr_shared::recovery::{
    ChosenSnapshot, EtcdDataVolume, PlanNode, SnapshotCandidate, StepKind, StepState, TimelineKind,
    build_plan, phase_open,
};
use talos_dr_shared::snapshots::{SnapshotEntry, SnapshotEntryKind};

use super::actions::{latest_health, open_incident};
use super::store::{NewEvent, NewStep, Val};
use super::{RecoveryError, executor, new_id, nodes};
use crate::auth::CurrentUser;
use crate::snapshots::api::stored_row;
use crate::state::AppState;

fn is_raw(entry: &SnapshotEntry) -> bool {
    entry.kind == SnapshotEntryKind::RawCopy
        || entry.stored_as == Some(SnapshotEntryKind::RawCopy)
        || entry
            .verdict
            .as_ref()
            .is_some_and(|v| v.restorability == "restores_only_with_skip_hash_check")
}

/// Why a stored entry cannot be the one etcd is restored from, if it cannot.
fn why_not(entry: &SnapshotEntry) -> Option<String> {
    if let Some(failure) = &entry.failure {
        return Some(format!("failed attempt: {failure}"));
    }
    if entry.sha256.is_none() {
        return Some("no stored file".into());
    }
    match &entry.verdict {
        None => Some("not inspected: the inspector has no verdict for it".into()),
        Some(v) if v.restorability == "will_not_restore" => Some(
            v.reason
                .clone()
                .unwrap_or_else(|| "the inspector says it will not restore".into()),
        ),
        Some(_) => None,
    }
}

pub fn candidate(entry: &SnapshotEntry) -> SnapshotCandidate {
    let why = why_not(entry);
    SnapshotCandidate {
        snapshot_id: entry.id.clone(),
        kind: entry.stored_as.unwrap_or(entry.kind),
        taken_at_ms: entry.taken_at_ms,
        node: entry.node.clone(),
        figures: entry.figures.clone(),
        size_bytes: entry.size.unwrap_or(0),
        sha256: entry.sha256.clone().unwrap_or_default(),
        offered: why.is_none(),
        why_not: why,
        skip_hash_check: is_raw(entry),
        proposed: false,
    }
}

/// Stored entries, newest first; the newest offered one that restores without skipping the hash
/// check is proposed (a raw copy only when there is nothing else).
pub async fn list(state: &AppState, id: &str) -> Result<Vec<SnapshotCandidate>, RecoveryError> {
    let incident = state
        .recovery()
        .store
        .incident(id)
        .await?
        .ok_or_else(|| RecoveryError::NotFound(id.to_string()))?;
    let rows = state
        .snapshots()
        .history
        .list(&incident.cluster)
        .await
        .map_err(|e| RecoveryError::Snapshot(e.to_string()))?;
    let mut candidates: Vec<SnapshotCandidate> = rows
        .iter()
        .filter(|r| r.entry.failure.is_none())
        .map(|r| candidate(&r.entry))
        .collect();
    let proposed = candidates
        .iter()
        .position(|c| c.offered && !c.skip_hash_check)
        .or_else(|| candidates.iter().position(|c| c.offered));
    if let Some(i) = proposed {
        candidates[i].proposed = true;
    }
    Ok(candidates)
}

/// `POST /api/incidents/{id}/snapshot`: fixes the snapshot and the bootstrap node, and writes
/// the plan. Allowed once the pre-checks passed (or were overridden), and again as long as
/// nobody has acted on a later step.
pub async fn choose(
    state: &AppState,
    id: &str,
    user: &CurrentUser,
    snapshot_id: &str,
    bootstrap_node: Option<&str>,
) -> Result<ChosenSnapshot, RecoveryError> {
    let (incident, cluster) = open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let plain: Vec<_> = steps.iter().map(|s| s.step.clone()).collect();
    let choose_step = steps
        .iter()
        .find(|s| s.step.kind == StepKind::ChooseSnapshot)
        .ok_or_else(|| RecoveryError::StepNotFound {
            incident: id.into(),
            step: "choose_snapshot".into(),
        })?;
    if phase_open(&plain, &choose_step.step).is_err() {
        return Err(RecoveryError::PrecheckOpen(
            "the pre-checks have not passed: wait for them, or override them with a reason".into(),
        ));
    }
    let (row, _key) = stored_row(state, &incident.cluster, snapshot_id, "restore from")
        .await
        .map_err(|e| match e {
            crate::snapshots::api::SnapshotApiError::BadId(_) => {
                RecoveryError::Invalid(format!("snapshot_id: {e}"))
            }
            other => RecoveryError::Snapshot(other.to_string()),
        })?;
    let offered = candidate(&row.entry);
    if let Some(why) = offered.why_not {
        return Err(RecoveryError::Snapshot(format!(
            "snapshot {snapshot_id} will not restore: {why}"
        )));
    }
    let health = latest_health(cluster)?;
    let addresses = &cluster.control_plane_nodes;
    let etcd_volumes = nodes::etcd_volumes(cluster.talos.as_ref(), &health, addresses).await;
    let plan_nodes = nodes::plan_nodes(
        &health,
        incident.precheck.as_ref(),
        addresses,
        &etcd_volumes,
    );
    let bootstrap = match bootstrap_node {
        Some(asked) => {
            let node = plan_nodes
                .iter()
                .find(|n| n.address == asked)
                .ok_or_else(|| {
                    RecoveryError::Invalid(format!(
                        "bootstrap_node: {asked:?} is not a control-plane node of cluster {}",
                        cluster.name
                    ))
                })?;
            if !node.reachable {
                return Err(RecoveryError::Invalid(format!(
                    "bootstrap_node: {asked} does not answer; bootstrap on a node whose Talos API answers"
                )));
            }
            node.address.clone()
        }
        None => plan_nodes
            .iter()
            .filter(|n| n.reachable)
            .min_by_key(|n| n.machine_type == MachineType::Init)
            .map(|n| n.address.clone())
            .ok_or_else(|| {
                RecoveryError::Invalid(
                    "bootstrap_node: no control-plane node answers; re-create one first".into(),
                )
            })?,
    };
    let now = service.now_ms();
    let chosen = ChosenSnapshot {
        snapshot_id: row.entry.id.clone(),
        sha256: row.entry.sha256.clone().unwrap_or_default(),
        kind: offered.kind,
        figures: row.entry.figures.clone(),
        size_bytes: row.entry.size.unwrap_or(0),
        taken_at_ms: row.entry.taken_at_ms,
        skip_hash_check: offered.skip_hash_check,
        chosen_by: user.username.clone(),
        chosen_at_ms: now,
    };
    let plan = build_plan(&plan_nodes, &chosen, &bootstrap);
    let new_steps: Vec<NewStep> = plan
        .into_iter()
        .filter(|p| !matches!(p.kind, StepKind::PreCheck | StepKind::ChooseSnapshot))
        .enumerate()
        .map(|(i, p)| NewStep {
            id: new_id(),
            position: (i + 2) as u32,
            kind: p.kind,
            target: p.target,
            params: p.params,
            talosctl: p.talosctl,
        })
        .collect();
    let host = plan_nodes
        .iter()
        .find(|n| n.address == bootstrap)
        .map(|n| n.hostname.clone())
        .unwrap_or_else(|| bootstrap.clone());
    let figures = chosen
        .figures
        .as_ref()
        .map(|f| format!("revision {}, {} keys", f.revision, f.total_keys))
        .unwrap_or_else(|| "no figures".into());
    let (volume_words, guessed) = volume_notes(&plan_nodes);
    let mut event = NewEvent::new(
        now,
        TimelineKind::Snapshot,
        format!(
            "{} chose snapshot {} ({figures}, sha256 {}){}; bootstrap on {host} ({bootstrap}); the plan has {} steps{volume_words}",
            user.username,
            chosen.snapshot_id,
            &chosen.sha256[..chosen.sha256.len().min(12)],
            if chosen.skip_hash_check {
                ", a raw copy: bootstrap skips the hash check"
            } else {
                ""
            },
            new_steps.len() + 2
        ),
    )
    .by(&user.username)
    .step(&choose_step.step.id);
    if guessed {
        event = event.loud();
    }
    let json = serde_json::to_string(&chosen)
        .map_err(|e| RecoveryError::Invalid(format!("snapshot: {e}")))?;
    service
        .store
        .write_plan(
            id,
            &[
                ("snapshot_json", Val::Text(Some(json))),
                ("bootstrap_node", Val::Text(Some(bootstrap))),
            ],
            &choose_step.step.id,
            &user.username,
            now,
            &new_steps,
            &event,
        )
        .await
        .map_err(|e| match e {
            super::store::StoreError::Moved {
                now: StepState::Requested,
            } => RecoveryError::Conflict(
                "a later step has been requested or run: the snapshot can no longer change".into(),
            ),
            other => other.into(),
        })?;
    service.notify(id);
    executor::advance(state, id);
    Ok(chosen)
}

/// What the timeline says about resets that do not wipe plain EPHEMERAL as the guide does, and
/// whether any label had to be chosen without knowing where etcd's data is.
fn volume_notes(plan_nodes: &[PlanNode]) -> (String, bool) {
    let mut words = String::new();
    let mut guessed = false;
    for node in plan_nodes.iter().filter(|n| n.reachable) {
        let volume = &node.etcd_volume;
        if matches!(volume, EtcdDataVolume::Directory) {
            continue;
        }
        guessed |= volume.is_guess();
        words.push_str(&format!(
            "; {} ({}): the reset wipes {}: {}",
            node.hostname,
            node.address,
            volume.wipe_label(),
            volume.wipe_reason(&node.address)
        ));
    }
    (words, guessed)
}
