use std::sync::Arc;

use talos_dr::health::{PollSettings, poll_cluster, poll_node};
use talos_dr::talos::TalosApi;
use talos_dr_shared::{MemberState, VerdictLevel};

use crate::fake::{FakeTalos, member, node_name};
use crate::helpers::{CALL_TIMEOUT, POLL_INTERVAL, spawn_app};

#[tokio::test]
async fn health_json_shows_what_talos_reports() {
    let fake = FakeTalos::healthy_cluster(3);
    let app = spawn_app(fake.clone()).await;

    let health = app.wait_for_health("prod", |_| true).await;

    assert_eq!(health.cluster, "prod");
    assert_eq!(
        health.verdict.level,
        VerdictLevel::Healthy,
        "{:?}",
        health.verdict
    );
    assert_eq!(health.nodes.len(), 3);
    for node in &health.nodes {
        assert!(node.reachable, "{node:?}");
        assert_eq!(node.talos_version.as_deref(), Some("v1.11.2"));
        assert!(node.failures.is_empty(), "{:?}", node.failures);
    }
    assert_eq!(health.members.len(), 3);
    let leader: Vec<_> = health.members.iter().filter(|m| m.is_leader).collect();
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0].member.id, member(1).id);
    assert_eq!(leader[0].node.as_deref(), Some("10.0.0.1"));
}

#[tokio::test]
async fn clusters_are_listed_with_their_nodes() {
    let app = spawn_app(FakeTalos::healthy_cluster(3)).await;

    let body: serde_json::Value = app.get("/api/clusters").await.json().await.expect("json");

    assert_eq!(
        body,
        serde_json::json!({"clusters": [{"name": "prod", "control_plane_nodes": ["10.0.0.1", "10.0.0.2", "10.0.0.3"]}]})
    );
}

#[tokio::test]
async fn sse_sends_the_current_health_then_every_change() {
    let fake = FakeTalos::healthy_cluster(3);
    let app = spawn_app(fake.clone()).await;
    app.wait_for_health("prod", |_| true).await;

    let mut stream = app.open_stream("/api/clusters/prod/health/stream").await;
    let first = stream.next_health().await;
    assert_eq!(first.verdict.level, VerdictLevel::Healthy);

    fake.stop_etcd(&node_name(2));
    let degraded = loop {
        let health = stream.next_health().await;
        if health.verdict.level != VerdictLevel::Healthy {
            break health;
        }
    };

    assert_eq!(
        degraded.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        degraded.verdict
    );
    let down = degraded
        .members
        .iter()
        .find(|m| m.member.id == member(2).id)
        .expect("member 2 listed");
    assert_eq!(down.state, MemberState::Unhealthy);
    let node = degraded
        .nodes
        .iter()
        .find(|n| n.node == node_name(2))
        .expect("node 2 polled");
    assert!(node.reachable);
    assert!(
        node.failures.iter().any(|f| f.call == "EtcdStatus" && f.message == "etcd not running (connection refused)"),
        "{:?}",
        node.failures
    );
}

#[tokio::test]
async fn an_unreachable_node_does_not_hide_the_others() {
    let fake = FakeTalos::healthy_cluster(3);
    fake.cut_off(&node_name(3));
    let app = spawn_app(fake.clone()).await;

    let health = app.wait_for_health("prod", |_| true).await;

    let reachable: Vec<bool> = health.nodes.iter().map(|n| n.reachable).collect();
    assert_eq!(reachable, vec![true, true, false]);
    assert_eq!(health.nodes[0].talos_version.as_deref(), Some("v1.11.2"));
    assert_eq!(
        health.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        health.verdict
    );
    assert_eq!(health.verdict.quorum.healthy, 2);
    let third = health
        .members
        .iter()
        .find(|m| m.member.id == member(3).id)
        .expect("member 3");
    assert_eq!(third.state, MemberState::Unknown);
}

#[tokio::test]
async fn a_stalled_node_times_out_per_call() {
    let fake = FakeTalos::healthy_cluster(3);
    fake.update(&node_name(2), |n| n.hang = true);
    let talos: Arc<dyn TalosApi> = fake.clone();

    let started = std::time::Instant::now();
    let node = poll_node(talos.as_ref(), &node_name(2), CALL_TIMEOUT).await;

    assert!(
        started.elapsed() < CALL_TIMEOUT * 3,
        "calls run at once, each bounded"
    );
    assert!(!node.reachable);
    assert_eq!(node.failures.len(), 6);
    assert!(
        node.failures
            .iter()
            .all(|f| f.message == "deadline exceeded"),
        "{:?}",
        node.failures
    );
}

#[tokio::test]
async fn the_last_member_list_survives_quorum_loss() {
    let fake = FakeTalos::healthy_cluster(3);
    let settings = PollSettings {
        cluster: "prod".into(),
        nodes: fake.node_names(),
        interval: POLL_INTERVAL,
        call_timeout: CALL_TIMEOUT,
    };
    let hub = talos_dr::health::spawn_poller(settings.clone(), fake.clone());
    hub.wait_for(|h| h.verdict.level == VerdictLevel::Healthy)
        .await
        .expect("poller runs");

    fake.stop_etcd(&node_name(2));
    fake.stop_etcd(&node_name(3));
    fake.update(&node_name(1), |n| {
        n.members = Err(talos_dr::talos::TalosError::Refused(
            "etcd has no leader".into(),
        ));
        if let Ok(Some(service)) = &mut n.service {
            service.health = talos_dr_shared::ServiceHealth::Unhealthy;
        }
    });
    let lost = hub
        .wait_for(|h| h.verdict.level == VerdictLevel::QuorumRestorable)
        .await
        .expect("poller runs");

    assert_eq!(
        lost.members.len(),
        3,
        "members come from the list seen while quorum held"
    );
    assert!(
        lost.members
            .iter()
            .all(|m| m.state == MemberState::Unhealthy),
        "{:?}",
        lost.members
    );
    // Without that memory, a fresh poll has no member list to judge.
    let fresh = poll_cluster(&settings, fake.as_ref(), &[]).await;
    assert!(fresh.members.is_empty());
}

#[tokio::test]
async fn the_stream_tells_who_else_is_watching() {
    use talos_dr_shared::{Role, Viewers};
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;
    app.add_user("alice", &[Role::Viewer]).await;
    app.add_user("bob", &[Role::Operator]).await;
    let alice = app.sign_in("alice", crate::helpers::TEST_PASSWORD).await;
    let bob = app.sign_in("bob", crate::helpers::TEST_PASSWORD).await;
    let viewers = |event: crate::helpers::SseEvent| -> Vec<String> {
        serde_json::from_str::<Viewers>(&event.data)
            .expect("Viewers")
            .viewers
    };

    let mut alice_stream = app
        .open_stream_as(&alice, "/api/clusters/prod/health/stream")
        .await;
    assert_eq!(
        viewers(alice_stream.next_named("viewers").await),
        vec!["alice"]
    );
    let bob_stream = app
        .open_stream_as(&bob, "/api/clusters/prod/health/stream")
        .await;
    assert_eq!(
        viewers(alice_stream.next_named("viewers").await),
        vec!["alice", "bob"]
    );
    drop(bob_stream);

    assert_eq!(
        viewers(alice_stream.next_named("viewers").await),
        vec!["alice"]
    );
}
