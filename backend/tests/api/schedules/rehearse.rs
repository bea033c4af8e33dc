//! A schedule with the rehearse option: each snapshot it stores is restored into a throwaway
//! etcd and the entry marked with the result, by the scheduler, in the audit trail too.
//! Uses 127.0.59.x.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;
use talos_dr_shared::snapshots::{SnapshotList, SnapshotTrigger};
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};

use super::{PATIENCE, audit, put, view};
use crate::helpers::{emulated_clusters, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_snapshots_are_rehearsed_when_the_schedule_asks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts =
        EmulatorOptions::new(3, Ipv4Addr::new(127, 0, 59, 1), dir.path().join("cluster"));
    opts.seed_keys = 20;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    let clusters = emulated_clusters(
        "emulated",
        emulator.talosconfig_path(TalosRole::Admin),
        |_| {},
    );
    let app = spawn_app_with(clusters).await;
    app.wait_for_health("emulated", |h| {
        h.members.len() == 3
            && h.members
                .iter()
                .all(|m| m.state == talos_dr_shared::MemberState::Healthy)
    })
    .await;

    let every_second = json!({"cron": "* * * * * *", "retention": {"keep_last": 5},
        "freshness_seconds": 3600, "rehearse": true});
    let response = put(&app, "emulated", every_second).await;
    assert_eq!(response.status(), 200);
    assert!(view(&app, "emulated").await.schedule.expect("set").rehearse);

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let rehearsed = loop {
        let done = audit(&app, "snapshot_rehearse").await;
        if !done.is_empty() {
            break done;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled snapshot was rehearsed"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Stop the schedule (next run in a year) and let a run in flight finish.
    let yearly = json!({"cron": "0 0 1 1 *", "retention": {"keep_last": 5},
        "freshness_seconds": 3600, "rehearse": false});
    assert_eq!(put(&app, "emulated", yearly).await.status(), 200);
    assert!(!view(&app, "emulated").await.schedule.expect("set").rehearse);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let first = &rehearsed[0];
    assert_eq!(first.actor, "scheduler");
    assert_eq!(first.outcome, "ok", "{first:?}");
    assert_eq!(
        first.parameters.get("passed").map(String::as_str),
        Some("true")
    );
    let id = first.target.clone().expect("the rehearsed entry");
    let list: SnapshotList = app
        .get("/api/clusters/emulated/snapshots")
        .await
        .json()
        .await
        .expect("snapshot list");
    let entry = list
        .snapshots
        .iter()
        .find(|e| e.id == id)
        .expect("the rehearsed entry is listed");
    assert_eq!(entry.trigger, SnapshotTrigger::Schedule);
    let rehearsal = entry.rehearsal.as_ref().expect("its rehearsal is recorded");
    assert!(rehearsal.passed, "{:?}", rehearsal.problems);
    assert!(rehearsal.at_ms >= entry.taken_at_ms);
    drop(emulator);
}
