//! What the console sees on its own goes into an open incident's timeline: every change of the
//! cluster's health verdict, and every snapshot attempt that ends while the incident is open.

use std::collections::HashSet;

use talos_dr_shared::VerdictLevel;
use talos_dr_shared::recovery::{Incident, TimelineKind};

use super::store::NewEvent;
use crate::state::AppState;

/// Starts the feeders of an open incident (once per process).
pub fn start(state: &AppState, incident: &Incident) {
    let service = state.recovery();
    if service.has_feeders(&incident.id) {
        return;
    }
    let Ok(cluster) = state.cluster(&incident.cluster) else {
        return;
    };
    let health = {
        let state = state.clone();
        let id = incident.id.clone();
        let mut rx = cluster.health.subscribe();
        tokio::spawn(async move {
            let mut last: Option<VerdictLevel> = None;
            loop {
                let latest = rx.borrow_and_update().clone();
                if let Some(h) = latest {
                    let level = h.verdict.level;
                    if last != Some(level) {
                        let text = format!(
                            "cluster health: {} — {} ({})",
                            level.as_str(),
                            h.verdict.summary,
                            h.verdict.quorum_words
                        );
                        let mut event =
                            NewEvent::new(state.recovery().now_ms(), TimelineKind::Health, text);
                        if last.is_some() && level != VerdictLevel::Healthy {
                            event = event.loud();
                        }
                        state.recovery().log_event(&id, event).await;
                        last = Some(level);
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    let snapshots = {
        let state = state.clone();
        let id = incident.id.clone();
        let cluster = incident.cluster.clone();
        let opened = incident.opened_at_ms;
        let mut finished = state.snapshots().transfers.subscribe();
        tokio::spawn(async move {
            let mut seen: HashSet<String> = HashSet::new();
            let mut first = true;
            loop {
                if let Ok(rows) = state.snapshots().history.list(&cluster).await {
                    for row in rows.iter().filter(|r| r.entry.taken_at_ms >= opened) {
                        if !seen.insert(row.entry.id.clone()) || first {
                            continue;
                        }
                        let e = &row.entry;
                        let text = match &e.failure {
                            Some(failure) => format!(
                                "snapshot attempt {} by {} failed: {failure}",
                                e.id, e.taken_by
                            ),
                            None => format!(
                                "snapshot {} taken by {}{}{}",
                                e.id,
                                e.taken_by,
                                e.node
                                    .as_deref()
                                    .map(|n| format!(" from {n}"))
                                    .unwrap_or_default(),
                                e.figures
                                    .as_ref()
                                    .map(|f| format!(
                                        ": revision {}, {} keys",
                                        f.revision, f.total_keys
                                    ))
                                    .unwrap_or_default()
                            ),
                        };
                        let event =
                            NewEvent::new(state.recovery().now_ms(), TimelineKind::Snapshot, text);
                        state.recovery().log_event(&id, event).await;
                    }
                }
                first = false;
                if finished.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    service.add_feeder(&incident.id, health.abort_handle());
    service.add_feeder(&incident.id, snapshots.abort_handle());
}
