//! The steps the console runs on its own: the pre-checks, the waits, the snapshot upload and the
//! post-checks. None of them changes a node's data, so a restart simply runs them again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use talos_dr_shared::ServiceState;
use talos_dr_shared::recovery::{
    Incident, RecoveryStep, StepKind, StepProgress, StepState, TimelineKind,
};

use super::executor::{WATCH_EVERY, failed_event, finished_event, recovery_talos};
use super::store::{NewEvent, StepChange, Val};
use super::{FailPoint, precheck};
use crate::snapshots::SnapshotKey;
use crate::state::AppState;
use crate::talos::TalosError;

pub enum Outcome {
    Done(String),
    Failed(String),
    Settled,
}

pub async fn run(state: &AppState, incident: &Incident, step: &RecoveryStep) -> Outcome {
    let deadline = step.deadline_at_ms.unwrap_or(i64::MAX);
    let result = match step.kind {
        StepKind::PreCheck => return run_precheck(state, incident, step).await,
        StepKind::WaitPreparing => wait_preparing(state, incident, step, deadline).await,
        StepKind::UploadSnapshot => upload(state, incident, step).await,
        StepKind::WaitHealthy => super::checks::wait_healthy(state, incident, step, deadline).await,
        StepKind::PostCheck => super::checks::post_check(state, incident, step, deadline).await,
        other => Err(format!("{} is not run automatically", other.as_str())),
    };
    match result {
        Ok(detail) => Outcome::Done(detail),
        Err(detail) => Outcome::Failed(detail),
    }
}

/// Whether the incident is still open: a wait stops looking at the nodes once it was closed
/// (abandoned while the wait ran). A store error counts as open: the wait goes on to its deadline.
pub(super) async fn incident_closed(state: &AppState, incident: &Incident) -> bool {
    matches!(
        state.recovery().store.incident(&incident.id).await,
        Ok(Some(i)) if i.status != talos_dr_shared::recovery::IncidentStatus::Open
    )
}

pub(super) const CLOSED_WHILE_WAITING: &str = "the incident was closed while this step ran";

/// An automatic step still running when its incident is abandoned: marked failed with who
/// stopped it, so the report does not show it running for ever. Its task sees the incident
/// closed and stops looking at the nodes.
pub(super) async fn stop_for_abandon(
    state: &AppState,
    id: &str,
    by: &str,
    step: &RecoveryStep,
) -> Result<(), super::RecoveryError> {
    let service = state.recovery();
    let now = service.now_ms();
    let detail = format!("stopped by {by}: the recovery was abandoned while this step ran");
    let event = NewEvent::new(
        now,
        TimelineKind::StepFailed,
        format!("{}: {detail}", talos_dr_shared::recovery::describe(step)),
    )
    .by(by)
    .step(&step.id)
    .loud();
    service
        .store
        .transition(
            id,
            &step.id,
            &[step.state],
            StepState::Failed,
            StepChange::default()
                .int("finished_at_ms", Some(now))
                .text("detail", Some(detail)),
            &[event],
        )
        .await?;
    Ok(())
}

/// Writes "what is happening now" on a running step, when it changed.
pub(super) async fn show(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
    last: &mut String,
    detail: String,
) {
    if *last == detail {
        return;
    }
    *last = detail.clone();
    let service = state.recovery();
    let written = service
        .store
        .touch(
            &step.id,
            StepState::Claimed,
            StepChange::default().text("detail", Some(detail)),
        )
        .await;
    if matches!(written, Ok(true)) {
        service.notify(&incident.id);
    }
}

async fn run_precheck(state: &AppState, incident: &Incident, step: &RecoveryStep) -> Outcome {
    let service = state.recovery();
    let Ok(cluster) = state.cluster(&incident.cluster) else {
        return Outcome::Failed(format!(
            "cluster {} is no longer configured",
            incident.cluster
        ));
    };
    let wait = tokio::time::timeout(
        service.settings().wait_deadline,
        cluster.health.wait_for(|_| true),
    )
    .await;
    let Ok(Some(health)) = wait else {
        return Outcome::Failed("no health poll finished: the nodes could not be asked".into());
    };
    let now = service.now_ms();
    let report = precheck::report(&health, now);
    let Ok(json) = serde_json::to_string(&report) else {
        return Outcome::Failed("cannot encode the pre-check report".into());
    };
    let overridden = service
        .store
        .incident(&incident.id)
        .await
        .ok()
        .flatten()
        .and_then(|i| i.precheck_override);
    let (to, detail, event) = match precheck::outcome(&report) {
        Ok(words) => (
            StepState::Done,
            words.clone(),
            finished_event(service, step, &words),
        ),
        Err(words) if overridden.is_some() => {
            let words = format!("{words} (already overridden)");
            (
                StepState::Done,
                words.clone(),
                finished_event(service, step, &words),
            )
        }
        Err(words) => (
            StepState::Failed,
            words.clone(),
            failed_event(service, step, &words),
        ),
    };
    let moved = service
        .store
        .transition_with_incident(
            &incident.id,
            &[("precheck_json", Val::Text(Some(json)))],
            &step.id,
            &[StepState::Claimed],
            to,
            StepChange::default()
                .int("finished_at_ms", Some(now))
                .text("detail", Some(detail)),
            &[event],
        )
        .await;
    if let Err(e) = moved {
        tracing::warn!(step = %step.id, error = %e, "pre-check result not recorded");
    }
    service.notify(&incident.id);
    Outcome::Settled
}

/// Every control-plane node's etcd in Preparing: reset nodes came back empty, waiting to join.
async fn wait_preparing(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
    deadline: i64,
) -> Result<String, String> {
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| e.to_string())?;
    let talos = recovery_talos(cluster).map_err(|e| e.to_string())?;
    let nodes = cluster.control_plane_nodes.clone();
    let service = state.recovery();
    let mut last = String::new();
    loop {
        let mut states = Vec::new();
        for node in &nodes {
            let seen = match tokio::time::timeout(Duration::from_secs(5), talos.etcd_service(node))
                .await
            {
                Ok(Ok(Some(s))) => Some(s.state),
                _ => None,
            };
            states.push((node.clone(), seen));
        }
        let words: Vec<String> = states
            .iter()
            .map(|(n, s)| format!("{n}: {}", s.map(|s| s.as_str()).unwrap_or("no answer")))
            .collect();
        let words = words.join(", ");
        if states
            .iter()
            .all(|(_, s)| *s == Some(ServiceState::Preparing))
        {
            return Ok(format!("etcd is Preparing on every node ({words})"));
        }
        if incident_closed(state, incident).await {
            return Err(CLOSED_WHILE_WAITING.into());
        }
        if service.now_ms() >= deadline {
            return Err(format!(
                "etcd did not reach Preparing everywhere before the deadline ({words}); check `talosctl -n <IP> service etcd` on the others and whether their reset finished"
            ));
        }
        show(
            state,
            incident,
            step,
            &mut last,
            format!("waiting for Preparing: {words}"),
        )
        .await;
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Streams the chosen snapshot from the store to the bootstrap node with `EtcdRecover`.
async fn upload(
    state: &AppState,
    incident: &Incident,
    step: &RecoveryStep,
) -> Result<String, String> {
    let service = state.recovery();
    let cluster = state
        .cluster(&incident.cluster)
        .map_err(|e| e.to_string())?;
    let talos = recovery_talos(cluster).map_err(|e| e.to_string())?;
    let target = step
        .target
        .as_ref()
        .ok_or("the upload has no target node")?;
    let snapshot_id = step
        .params
        .snapshot_id
        .as_deref()
        .ok_or("the step names no snapshot")?;
    let row = state
        .snapshots()
        .history
        .find(&incident.cluster, snapshot_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("snapshot {snapshot_id} is no longer in the history"))?;
    let key = row
        .object_key
        .as_deref()
        .ok_or_else(|| format!("snapshot {snapshot_id} has no stored file"))
        .and_then(|k| SnapshotKey::parse(k).map_err(|e| e.to_string()))?;
    let store = state.snapshots().store().await.map_err(|e| e.to_string())?;
    let total = store.size(&key).await.map_err(|e| e.to_string())?;
    let chunks = store.read(&key).await.map_err(|e| e.to_string())?;
    let hasher = Arc::new(std::sync::Mutex::new(Sha256::new()));
    let hashing = hasher.clone();
    let stream = chunks
        .map(move |chunk| {
            let chunk = chunk.map_err(|e| TalosError::Refused(format!("snapshot store: {e}")))?;
            hashing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .update(&chunk);
            Ok(chunk)
        })
        .boxed();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let progress = Box::new(move |n: u64| counter.store(n, Ordering::Relaxed));
    // Progress goes to the database at most twice a second: enough for a bar, light on writes.
    let reporter = {
        let state = state.clone();
        let incident_id = incident.id.clone();
        let step_id = step.id.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let done = sent.load(Ordering::Relaxed);
                if done == last {
                    continue;
                }
                last = done;
                let change = progress_change(StepProgress {
                    done,
                    total: Some(total),
                });
                let service = state.recovery();
                if let Ok(true) = service
                    .store
                    .touch(&step_id, StepState::Claimed, change)
                    .await
                {
                    service.notify(&incident_id);
                }
            }
        })
    };
    let result = talos.etcd_recover(&target.address, stream, progress).await;
    reporter.abort();
    result.map_err(|e| {
        format!(
            "EtcdRecover to {} failed: {e}; the bootstrap cannot start until the upload succeeds",
            target.hostname
        )
    })?;
    service
        .settings()
        .failpoints
        .reach(step.kind, FailPoint::AfterCall)
        .await;
    let sha = hex::encode(
        hasher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .finalize(),
    );
    let moved = service
        .store
        .transition(
            &incident.id,
            &step.id,
            &[StepState::Claimed],
            StepState::Sent,
            progress_change(StepProgress {
                done: total,
                total: Some(total),
            }),
            &[],
        )
        .await;
    if let Err(e) = moved {
        return Err(format!("cannot record the upload: {e}"));
    }
    service.notify(&incident.id);
    service
        .settings()
        .failpoints
        .reach(step.kind, FailPoint::AfterSent)
        .await;
    if step
        .params
        .snapshot_sha256
        .as_deref()
        .is_some_and(|expected| expected != sha)
    {
        return Err(format!(
            "the stored file's sha256 is {sha}, not the chosen snapshot's {}: the file changed since it was chosen; choose the snapshot again",
            step.params.snapshot_sha256.as_deref().unwrap_or("")
        ));
    }
    Ok(format!(
        "uploaded {total} bytes of snapshot {snapshot_id} to {} (sha256 {sha})",
        target.hostname
    ))
}

fn progress_change(p: StepProgress) -> StepChange {
    StepChange::default()
        .int("progress_done", i64::try_from(p.done).ok())
        .int(
            "progress_total",
            p.total.and_then(|t| i64::try_from(t).ok()),
        )
}
