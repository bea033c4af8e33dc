//! The fleet overview: every watched cluster on one line, as JSON and as a live stream.

use std::sync::Arc;

use talos_dr::talos::TalosApi;
use talos_dr::watch_cluster;
use talos_dr_shared::{Fleet, Role, VerdictLevel};

use crate::fake::{FakeTalos, node_name};
use crate::helpers::{PATIENCE, POLL_INTERVAL, TEST_PASSWORD, TestApp, settings, spawn_app_with};

async fn two_clusters() -> (TestApp, Arc<FakeTalos>, Arc<FakeTalos>) {
    let prod = FakeTalos::healthy_cluster(3);
    let staging = FakeTalos::healthy_cluster(1);
    let app = spawn_app_with(vec![
        watch_cluster(
            settings("prod", prod.node_names()),
            prod.clone() as Arc<dyn TalosApi>,
        ),
        watch_cluster(
            settings("staging", staging.node_names()),
            staging.clone() as Arc<dyn TalosApi>,
        ),
    ])
    .await;
    (app, prod, staging)
}

async fn wait_for_fleet(app: &TestApp, pred: impl Fn(&Fleet) -> bool) -> Fleet {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = app.get("/api/fleet").await;
        assert_eq!(response.status(), 200);
        let fleet: Fleet = response.json().await.expect("a Fleet");
        if pred(&fleet) {
            return fleet;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fleet never reached the expected state: {fleet:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn the_fleet_lists_every_cluster_with_its_verdict() {
    let (app, prod, _staging) = two_clusters().await;

    let fleet = wait_for_fleet(&app, |f| f.clusters.iter().all(|c| c.level.is_some())).await;

    let names: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prod", "staging"], "configured order");
    let line = &fleet.clusters[0];
    assert_eq!(line.level, Some(VerdictLevel::Healthy));
    assert_eq!((line.healthy, line.voters), (3, 3));
    assert_eq!(line.leader.as_deref(), Some("10.0.0.1"));
    assert!(line.quorum_words.as_deref().is_some_and(|w| !w.is_empty()));
    assert!(line.observed_at_ms.is_some_and(|t| t > 0));
    assert!(line.viewers.is_empty(), "{line:?}");
    assert_eq!(
        (fleet.clusters[1].healthy, fleet.clusters[1].voters),
        (1, 1)
    );

    prod.stop_etcd(&node_name(3));
    let fleet = wait_for_fleet(&app, |f| {
        f.clusters[0].level == Some(VerdictLevel::Degraded)
    })
    .await;

    assert_eq!(
        (fleet.clusters[0].healthy, fleet.clusters[0].voters),
        (2, 3)
    );
    assert_eq!(
        fleet.clusters[1].level,
        Some(VerdictLevel::Healthy),
        "the other cluster is untouched"
    );
}

#[tokio::test]
async fn the_fleet_stream_shows_changes_and_viewers() {
    let (app, _prod, staging) = two_clusters().await;
    wait_for_fleet(&app, |f| f.clusters.iter().all(|c| c.level.is_some())).await;
    app.add_user("watcher", &[Role::Viewer]).await;
    let watcher = app.sign_in("watcher", TEST_PASSWORD).await;

    let mut fleet_stream = app.open_stream("/api/fleet/stream").await;
    let first: Fleet =
        serde_json::from_str(&fleet_stream.next_named("fleet").await.data).expect("a Fleet");
    assert_eq!(first.clusters.len(), 2);

    // Someone opens staging's live health: the fleet says who is looking.
    let _watching = app
        .open_stream_as(&watcher, "/api/clusters/staging/health/stream")
        .await;
    staging.stop_etcd(&node_name(1));

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut seen_viewer, mut seen_lost) = (false, false);
    while !(seen_viewer && seen_lost) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fleet stream never showed both changes"
        );
        let fleet: Fleet =
            serde_json::from_str(&fleet_stream.next_named("fleet").await.data).expect("a Fleet");
        let line = &fleet.clusters[1];
        seen_viewer |= line.viewers == ["watcher"];
        seen_lost |= line.level.is_some_and(|l| l != VerdictLevel::Healthy) && line.healthy == 0;
        assert!(
            fleet.clusters[0].viewers.is_empty(),
            "{:?}",
            fleet.clusters[0]
        );
    }
}
