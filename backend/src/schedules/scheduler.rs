//! The scheduler: takes due snapshots through the same path as the button, records the result,
//! rehearses the snapshot when the schedule asks for it, then applies the cluster's retention.
//! Every run, rehearsal and deletion goes to the audit trail.

use std::collections::BTreeMap;
use std::time::Duration;

use talos_dr_shared::Role;
use talos_dr_shared::schedules::{ScheduleRequest, ScheduledRun};
use talos_dr_shared::snapshots::SnapshotTrigger;

use super::cron::{CronSchedule, next_run_ms};
use super::freshness::is_verified;
use super::retention::{RetentionCandidate, to_delete};
use super::store::{ScheduleStore, StoredSchedule};
use crate::audit::NewAuditEntry;
use crate::auth::CurrentUser;
use crate::snapshots::SnapshotKey;
use crate::snapshots::api::{rehearse_entry, take};
use crate::state::AppState;

/// The actor the audit trail shows for scheduled work.
pub const SCHEDULER_ACTOR: &str = "scheduler";

/// How long a claimed run keeps the schedule from firing again; a console that stops mid-run
/// leaves the run to be tried again after this.
const RUN_HOLD_MS: i64 = 60 * 60 * 1000;

/// How often the scheduler looks for due schedules.
pub const TICK: Duration = Duration::from_millis(500);

fn scheduler_user() -> CurrentUser {
    CurrentUser {
        username: SCHEDULER_ACTOR.to_string(),
        roles: vec![Role::Operator],
        csrf_token: String::new(),
        expires_at_ms: i64::MAX,
    }
}

fn entry(
    action: &str,
    cluster: &str,
    target: Option<String>,
    parameters: BTreeMap<String, String>,
    outcome: String,
) -> NewAuditEntry {
    NewAuditEntry {
        actor: SCHEDULER_ACTOR.to_string(),
        roles: vec![Role::Operator],
        action: action.to_string(),
        cluster: Some(cluster.to_string()),
        target,
        parameters,
        outcome,
        client: None,
    }
}

async fn audit(
    state: &AppState,
    action: &str,
    cluster: &str,
    target: Option<String>,
    parameters: BTreeMap<String, String>,
    outcome: String,
) {
    let entry = entry(action, cluster, target, parameters, outcome);
    state.storage().audit.record(entry).await;
}

/// Runs every schedule due at `now_ms`, one after the other.
pub async fn run_due(state: &AppState, now_ms: i64) {
    let store = ScheduleStore::new(state.storage().pool.clone());
    let due = match store.due(now_ms).await {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the snapshot schedules");
            return;
        }
    };
    for schedule in due {
        // Several console replicas see the same due schedule; the one that claims it runs it.
        let Some(seen) = schedule.next_run_ms else {
            continue;
        };
        match store
            .claim_run(&schedule.cluster, seen, now_ms.saturating_add(RUN_HOLD_MS))
            .await
        {
            Ok(true) => run_one(state, &store, &schedule, now_ms).await,
            Ok(false) => {
                tracing::debug!(cluster = %schedule.cluster, "scheduled run taken by another console")
            }
            Err(e) => {
                tracing::error!(cluster = %schedule.cluster, error = %e, "cannot claim the scheduled run")
            }
        }
    }
}

/// One scheduled run: the snapshot, its result, the next run time, then retention.
async fn run_one(state: &AppState, store: &ScheduleStore, schedule: &StoredSchedule, now_ms: i64) {
    let cluster = &schedule.cluster;
    let run = match state.cluster(cluster) {
        Err(e) => ScheduledRun {
            at_ms: now_ms,
            ok: false,
            snapshot_id: None,
            failure: Some(e.to_string()),
        },
        Ok(watched) => {
            match take(
                state,
                watched,
                &scheduler_user(),
                SnapshotTrigger::Schedule,
                None,
            )
            .await
            {
                Ok(entry) => ScheduledRun {
                    at_ms: now_ms,
                    ok: entry.failure.is_none(),
                    snapshot_id: Some(entry.id),
                    failure: entry.failure,
                },
                Err(e) => ScheduledRun {
                    at_ms: now_ms,
                    ok: false,
                    snapshot_id: None,
                    failure: Some(e.to_string()),
                },
            }
        }
    };
    let next = next_after_run(&schedule.request, now_ms);
    let mut parameters = BTreeMap::new();
    if let Some(failure) = &run.failure {
        parameters.insert("failure".to_string(), failure.clone());
    }
    let outcome = if run.ok {
        "ok".to_string()
    } else {
        format!("failed: {}", run.failure.as_deref().unwrap_or("unknown"))
    };
    tracing::info!(
        cluster,
        ok = run.ok,
        failure = run.failure,
        "scheduled snapshot"
    );
    let entry = entry(
        "snapshot_scheduled",
        cluster,
        run.snapshot_id.clone(),
        parameters,
        outcome,
    );
    if let Err(e) = store
        .record_run(
            cluster,
            &run,
            next,
            schedule.updated_at_ms,
            Some(entry.clone()),
        )
        .await
    {
        tracing::error!(cluster, error = %e, "cannot record the scheduled run");
        state.storage().audit.record(entry).await;
    }
    if schedule.request.rehearse
        && run.ok
        && let Some(id) = &run.snapshot_id
    {
        rehearse(state, cluster, id).await;
    }
    apply_retention(state, schedule, crate::clock::now_ms()).await;
}

/// The schedule's rehearse option: the snapshot just stored, restored into a throwaway etcd.
/// The result lands on the entry (a failure keeps it from counting as verified) and in the
/// audit trail.
async fn rehearse(state: &AppState, cluster: &str, id: &str) {
    let (passed, outcome) = match rehearse_entry(state, cluster, id).await {
        Ok(entry) => match entry.rehearsal {
            Some(r) if r.passed => (true, "ok".to_string()),
            Some(r) => (false, format!("failed: {}", r.problems.join("; "))),
            None => (false, "failed: no result recorded".to_string()),
        },
        Err(e) => (false, format!("failed: {e}")),
    };
    tracing::info!(cluster, id, passed, "scheduled rehearsal");
    let mut parameters = BTreeMap::new();
    parameters.insert("passed".to_string(), passed.to_string());
    audit(
        state,
        "snapshot_rehearse",
        cluster,
        Some(id.to_string()),
        parameters,
        outcome,
    )
    .await;
}

/// The next run after this one; a schedule whose expression no longer parses stops (None).
fn next_after_run(request: &ScheduleRequest, now_ms: i64) -> Option<i64> {
    match CronSchedule::parse(&request.cron)
        .and_then(|c| next_run_ms(&c, now_ms, request.jitter_seconds))
    {
        Ok(next) => Some(next),
        Err(e) => {
            tracing::error!(error = %e, "the schedule stops");
            None
        }
    }
}

/// Deletes the stored scheduled snapshots the policy no longer keeps: the object first, then the
/// row, so a row never points at nothing. Failed attempts and manual or uploaded snapshots are
/// not retention's to delete.
pub async fn apply_retention(state: &AppState, schedule: &StoredSchedule, now_ms: i64) {
    let cluster = &schedule.cluster;
    let service = state.snapshots();
    let rows = match service.history.list(cluster).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(cluster, error = %e, "retention cannot read the history");
            return;
        }
    };
    let scheduled: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.trigger == SnapshotTrigger::Schedule)
        .filter(|r| r.entry.failure.is_none() && r.object_key.is_some())
        .collect();
    let candidates: Vec<RetentionCandidate> = scheduled
        .iter()
        .map(|r| RetentionCandidate {
            id: r.entry.id.clone(),
            taken_at_ms: r.entry.taken_at_ms,
            verified: is_verified(&r.entry),
        })
        .collect();
    let gone = to_delete(&candidates, &schedule.request.retention, now_ms);
    if gone.is_empty() {
        return;
    }
    let store = match service.store().await {
        Ok(store) => store,
        Err(e) => {
            tracing::error!(cluster, error = %e, "retention cannot open the snapshot store");
            return;
        }
    };
    for candidate in gone {
        let Some(row) = scheduled.iter().find(|r| r.entry.id == candidate.id) else {
            continue;
        };
        let key = row.object_key.as_deref().unwrap_or_default();
        let deleted = match SnapshotKey::parse(key) {
            Ok(key) => store.delete(&key).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let deleted = match deleted {
            Ok(()) => service
                .history
                .delete(cluster, &candidate.id)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        let mut parameters = BTreeMap::new();
        parameters.insert("object_key".to_string(), key.to_string());
        parameters.insert("taken_at_ms".to_string(), candidate.taken_at_ms.to_string());
        let outcome = match &deleted {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!(cluster, id = candidate.id, error = %e, "retention could not delete a snapshot");
                format!("failed: {e}")
            }
        };
        audit(
            state,
            "snapshot_retention_delete",
            cluster,
            Some(candidate.id.clone()),
            parameters,
            outcome,
        )
        .await;
    }
}

/// Runs the scheduler until the process stops.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_due(&state, crate::clock::now_ms()).await;
        }
    })
}
