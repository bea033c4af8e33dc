//! Watches each scheduled cluster's freshness target and tells the team once when it is missed
//! (and again only after a fresh snapshot met it in between).

use std::collections::BTreeSet;

use super::events;
use crate::clock::now_ms;
use crate::state::AppState;

pub(super) async fn watch(state: AppState) {
    // Clusters already reported stale; forgotten once the target is met again.
    let mut reported: BTreeSet<String> = BTreeSet::new();
    loop {
        check(&state, &mut reported).await;
        tokio::time::sleep(state.notifier().settings().stale_check_every).await;
    }
}

async fn check(state: &AppState, reported: &mut BTreeSet<String>) {
    let now = now_ms();
    // One console replica watches freshness at a time, so the team is told once.
    let every = state.notifier().settings().stale_check_every;
    let hold = every
        .saturating_mul(3)
        .max(crate::storage::replicas::REPLICA_TIMEOUT);
    match state
        .recovery()
        .replicas
        .lease("freshness-watch", hold, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            // Another replica tells; start from scratch if this one takes over later.
            reported.clear();
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot take the freshness watch");
            return;
        }
    }
    for cluster in state.clusters() {
        let view = match crate::schedules::api::view(state, &cluster.name, now).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(cluster = %cluster.name, error = %e, "freshness not checked");
                continue;
            }
        };
        let Some(schedule) = &view.schedule else {
            reported.remove(&cluster.name);
            continue;
        };
        if view.freshness_met {
            reported.remove(&cluster.name);
        } else if reported.insert(cluster.name.clone()) {
            state
                .notifier()
                .notify(events::snapshot_stale(
                    &cluster.name,
                    view.newest_verified_age_seconds,
                    schedule.freshness_seconds,
                    now,
                ))
                .await;
        }
    }
}
