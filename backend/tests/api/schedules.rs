//! Snapshot schedules: validation and roles against the fake Talos API, and scheduled runs with
//! retention against the Talos emulator. The emulator test uses 127.0.46.x; [`rehearse`] uses
//! 127.0.59.x.

mod rehearse;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use talos_dr_shared::schedules::ScheduleView;
use talos_dr_shared::snapshots::{SnapshotList, SnapshotTrigger};
use talos_dr_shared::{AuditEntry, ErrorBody, Role};
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, TestApp, emulated_clusters, spawn_app, spawn_app_with};

const PATIENCE: Duration = Duration::from_secs(120);

async fn put(app: &TestApp, cluster: &str, body: serde_json::Value) -> reqwest::Response {
    app.tester()
        .send(Method::PUT, &format!("/api/clusters/{cluster}/schedule"))
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn view(app: &TestApp, cluster: &str) -> ScheduleView {
    let response = app.get(&format!("/api/clusters/{cluster}/schedule")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("schedule view")
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    let response = app
        .get(&format!("/api/audit?action={action}&limit=500"))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("audit page");
    serde_json::from_value(body["entries"].clone()).expect("audit entries")
}

#[tokio::test]
async fn bad_schedules_are_refused_naming_the_field() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    let good =
        json!({"cron": "0 */6 * * *", "retention": {"keep_last": 3}, "freshness_seconds": 21600});
    for (body, field) in [
        (
            json!({"cron": "every six hours", "retention": {"keep_last": 3}, "freshness_seconds": 21600}),
            "cron",
        ),
        (
            json!({"cron": "0 */6 * * *", "retention": {}, "freshness_seconds": 21600}),
            "retention",
        ),
        (
            json!({"cron": "0 */6 * * *", "retention": {"keep_last": 0, "daily": 0}, "freshness_seconds": 21600}),
            "retention",
        ),
        (
            json!({"cron": "0 */6 * * *", "retention": {"keep_last": 3}, "freshness_seconds": 0}),
            "freshness_seconds",
        ),
        (
            json!({"retention": {"keep_last": 3}, "freshness_seconds": 60}),
            "cron",
        ),
    ] {
        let response = put(&app, "prod", body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: ErrorBody = response.json().await.expect("error body");
        assert!(
            error.error.message.contains(field),
            "{body}: {}",
            error.error.message
        );
    }
    let unset = view(&app, "prod").await;
    assert_eq!(unset.schedule, None, "refused schedules are not stored");
    assert!(!unset.freshness_met);

    let response = put(&app, "prod", good).await;
    assert_eq!(response.status(), 200);
    let set = view(&app, "prod").await;
    let schedule = set.schedule.expect("stored");
    assert_eq!(schedule.cron, "0 */6 * * *");
    assert_eq!(schedule.retention.keep_last, Some(3));
    let next = set.next_run_ms.expect("next run");
    let now = talos_dr::clock::now_ms();
    assert!(next > now && next <= now + 6 * 3_600_000, "next run {next}");
    assert_eq!(set.newest_verified_age_seconds, None);
    assert!(!set.freshness_met, "no verified snapshot yet");
    let changes: Vec<_> = audit(&app, "schedule_set")
        .await
        .into_iter()
        .filter(|e| e.outcome == "ok")
        .collect();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].parameters.get("keep_last").map(String::as_str),
        Some("3")
    );

    let (status, _) = app.get_error("/api/clusters/nowhere/schedule").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn only_admins_set_schedules_and_viewers_read_them() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("watcher", &[Role::Viewer]).await;
    let viewer = app.sign_in("watcher", TEST_PASSWORD).await;
    let response = viewer
        .send(Method::PUT, "/api/clusters/prod/schedule")
        .json(
            &json!({"cron": "0 * * * *", "retention": {"keep_last": 1}, "freshness_seconds": 3600}),
        )
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 403);
    let response = viewer.get("/api/clusters/prod/schedule").await;
    assert_eq!(response.status(), 200);
}

/// A node that refuses the snapshot: the run is recorded as failed with the reason, in the
/// schedule, the history, the audit trail and the metrics, and retention deletes nothing.
#[tokio::test]
async fn a_failed_scheduled_run_is_recorded_with_its_reason() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.wait_for_health("prod", |h| {
        h.members
            .iter()
            .any(|m| m.state == talos_dr_shared::MemberState::Healthy)
    })
    .await;
    let response = put(
        &app,
        "prod",
        json!({"cron": "* * * * * *", "retention": {"keep_last": 1}, "freshness_seconds": 60}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let last = loop {
        if let Some(last) = view(&app, "prod").await.last_run {
            break last;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule never ran"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!last.ok);
    let reason = last.failure.clone().expect("a reason");
    assert!(reason.contains("EtcdSnapshot"), "{reason}");

    let list: SnapshotList = app
        .get("/api/clusters/prod/snapshots")
        .await
        .json()
        .await
        .expect("snapshot list");
    let failed = list
        .snapshots
        .iter()
        .find(|e| Some(&e.id) == last.snapshot_id.as_ref())
        .expect("the failed attempt is in the history");
    assert_eq!(failed.trigger, SnapshotTrigger::Schedule);
    assert_eq!(failed.taken_by, "scheduler");
    assert!(failed.failure.is_some());

    let runs = audit(&app, "snapshot_scheduled").await;
    assert!(runs.iter().any(|r| r.outcome.starts_with("failed: ")
        && r.target == last.snapshot_id
        && r.actor == "scheduler"));
    assert!(audit(&app, "snapshot_retention_delete").await.is_empty());
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        "talos_dr_snapshot_schedule_last_run_ok{cluster=\"prod\"} 0",
        "talos_dr_snapshot_freshness_met{cluster=\"prod\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
}

/// Every second, keep the last two: scheduled snapshots appear, and retention removes exactly
/// the older ones, files included.
#[tokio::test]
async fn scheduled_snapshots_appear_and_retention_removes_the_oldest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts =
        EmulatorOptions::new(3, Ipv4Addr::new(127, 0, 46, 1), dir.path().join("cluster"));
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

    let response = put(
        &app,
        "emulated",
        json!({"cron": "* * * * * *", "retention": {"keep_last": 2}, "freshness_seconds": 3600}),
    )
    .await;
    assert_eq!(response.status(), 200);

    // Wait for at least two deletions (four runs or more).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while audit(&app, "snapshot_retention_delete").await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never deleted two snapshots"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Stop the schedule (next run in a year) and let a run in flight finish.
    let response = put(
        &app,
        "emulated",
        json!({"cron": "0 0 1 1 *", "retention": {"keep_last": 2}, "freshness_seconds": 3600}),
    )
    .await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let list: SnapshotList = app
        .get("/api/clusters/emulated/snapshots")
        .await
        .json()
        .await
        .expect("snapshot list");
    let scheduled: Vec<_> = list
        .snapshots
        .iter()
        .filter(|e| e.trigger == SnapshotTrigger::Schedule && e.failure.is_none())
        .collect();
    assert_eq!(scheduled.len(), 2, "keep_last 2 keeps two: {scheduled:?}");
    assert!(scheduled.iter().all(|e| e.taken_by == "scheduler"));

    let runs = audit(&app, "snapshot_scheduled").await;
    assert!(runs.len() >= 4, "{} runs", runs.len());
    assert!(runs.iter().all(|r| r.actor == "scheduler"));
    let ok_runs: BTreeSet<String> = runs
        .iter()
        .filter(|r| r.outcome == "ok")
        .filter_map(|r| r.target.clone())
        .collect();
    let kept: BTreeSet<String> = scheduled.iter().map(|e| e.id.clone()).collect();
    let deletions = audit(&app, "snapshot_retention_delete").await;
    let deleted: BTreeSet<String> = deletions.iter().filter_map(|d| d.target.clone()).collect();
    assert!(
        deletions
            .iter()
            .all(|d| d.outcome == "ok" && d.actor == "scheduler")
    );
    // Every successful run is either kept or deleted, never both; the kept ones are the newest.
    assert_eq!(
        kept.union(&deleted).cloned().collect::<BTreeSet<_>>(),
        ok_runs
    );
    assert!(kept.is_disjoint(&deleted));
    let newest_deleted = deletions
        .iter()
        .filter_map(|d| d.parameters.get("taken_at_ms")?.parse::<i64>().ok())
        .max()
        .expect("deletion times");
    assert!(scheduled.iter().all(|e| e.taken_at_ms >= newest_deleted));

    // The deleted files are gone from the store; the kept ones are there.
    let root = app.data_dir.path().join("snapshots");
    for d in &deletions {
        let key = d.parameters.get("object_key").expect("object key");
        assert!(!root.join(key).exists(), "{key} is still stored");
        let (status, _) = app
            .get_error(&format!(
                "/api/clusters/emulated/snapshots/{}",
                d.target.as_deref().unwrap_or_default()
            ))
            .await;
        assert_eq!(status, 404);
    }
    let stored_files = count_files(&root);
    assert_eq!(stored_files, 2, "exactly the two kept snapshots are stored");

    let after = view(&app, "emulated").await;
    let last = after.last_run.expect("a last run");
    assert!(last.ok, "{last:?}");
    assert!(after.freshness_met);
    assert!(
        after
            .newest_verified_age_seconds
            .is_some_and(|age| age < 60)
    );

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in [
        "talos_dr_snapshot_freshness_met{cluster=\"emulated\"} 1",
        "talos_dr_snapshot_schedule_last_run_ok{cluster=\"emulated\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(
        metrics.lines().any(|l| l
            .starts_with("talos_dr_snapshot_newest_verified_age_seconds{cluster=\"emulated\"} ")),
        "{metrics}"
    );
    drop(emulator);
}

fn count_files(root: &std::path::Path) -> usize {
    let mut count = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == ".incoming") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                count += 1;
            }
        }
    }
    count
}
