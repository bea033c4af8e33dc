//! `GET /metrics`: Prometheus text, for loopback scrapers or with the bearer token.

use talos_dr::AccessSettings;
use talos_dr::config::Secret;

use crate::fake::{FakeTalos, node_name};
use crate::helpers::{settings, spawn_app, spawn_app_with_access};

#[tokio::test]
async fn metrics_show_cluster_and_member_health_without_a_session() {
    let fake = FakeTalos::healthy_cluster(3);
    let app = spawn_app(fake.clone()).await;
    fake.stop_etcd(&node_name(2));
    app.wait_for_health("prod", |h| {
        h.verdict.level == talos_dr_shared::VerdictLevel::Degraded
    })
    .await;

    let response = app.anonymous().get("/metrics").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.expect("body");
    for line in [
        "talos_dr_cluster_polled{cluster=\"prod\"} 1",
        "talos_dr_cluster_verdict{cluster=\"prod\",verdict=\"degraded\"} 1",
        "talos_dr_cluster_verdict{cluster=\"prod\",verdict=\"healthy\"} 0",
        "talos_dr_etcd_quorum_holds{cluster=\"prod\"} 1",
        "talos_dr_etcd_voters{cluster=\"prod\"} 3",
        "talos_dr_etcd_healthy_voters{cluster=\"prod\"} 2",
        "talos_dr_node_reachable{cluster=\"prod\",node=\"10.0.0.2\"} 1",
        "# TYPE talos_dr_poll_errors_total counter",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("talos_dr_etcd_member_healthy{cluster=\"prod\"")
                && l.contains("node=\"10.0.0.2\"")
                && l.ends_with(" 0")
        ),
        "{text}"
    );
    let db_size: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("talos_dr_database_size_bytes "))
        .expect("database size")
        .parse()
        .expect("a number");
    assert!(db_size > 0);
}

#[tokio::test]
async fn with_a_token_scrapers_must_send_it() {
    let fake = FakeTalos::healthy_cluster(1);
    let access = AccessSettings {
        metrics_token: Some(Secret::new("scrape-me-please")),
        ..AccessSettings::default()
    };
    let app = spawn_app_with_access(
        vec![talos_dr::watch_cluster(
            settings("prod", fake.node_names()),
            fake,
        )],
        access,
    )
    .await;
    let client = app.anonymous();

    let without = client.get("/metrics").await;
    let wrong = client
        .http
        .get(client.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .expect("sent");
    let right = client
        .http
        .get(client.url("/metrics"))
        .bearer_auth("scrape-me-please")
        .send()
        .await
        .expect("sent");

    assert_eq!(without.status(), 401);
    assert!(without.headers().contains_key("www-authenticate"));
    assert_eq!(wrong.status(), 401);
    assert_eq!(right.status(), 200);
}
