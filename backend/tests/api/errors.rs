use std::sync::Arc;
use std::time::Duration;

use talos_dr::health::PollSettings;
use talos_dr::talos::TalosApi;
use talos_dr::watch_cluster;

use crate::fake::{FakeTalos, node_name};
use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn unknown_cluster_is_a_404_in_the_error_shape() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;

    for path in [
        "/api/clusters/staging/health",
        "/api/clusters/staging/health/stream",
    ] {
        let (status, body) = app.get_error(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body.error.code, "cluster_not_found");
        assert!(
            body.error.message.contains("\"staging\""),
            "{}",
            body.error.message
        );
    }
}

#[tokio::test]
async fn unknown_api_paths_are_json_404s() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;

    for path in ["/api", "/api/nope", "/api/clusters/prod/nope/deeper"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json")
        );
        let body: talos_dr_shared::ErrorBody = response.json().await.expect("error shape");
        assert_eq!(body.error.code, "not_found");
    }
    let response = app
        .http
        .post(format!("{}/api/clusters", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 405);
    let body: talos_dr_shared::ErrorBody = response.json().await.expect("error shape");
    assert_eq!(body.error.code, "method_not_allowed");
}

#[tokio::test]
async fn health_is_503_until_the_first_poll_finishes() {
    let fake = FakeTalos::healthy_cluster(1);
    fake.update(&node_name(1), |n| n.hang = true);
    let settings = PollSettings {
        cluster: "prod".into(),
        nodes: fake.node_names(),
        interval: Duration::from_secs(60),
        call_timeout: Duration::from_secs(60),
    };
    let app = spawn_app_with(vec![watch_cluster(settings, fake as Arc<dyn TalosApi>)]).await;

    let (status, body) = app.get_error("/api/clusters/prod/health").await;

    assert_eq!(status, 503);
    assert_eq!(body.error.code, "health_not_ready");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app(FakeTalos::healthy_cluster(1)).await;

    for path in ["/api/clusters", "/api/nope", "/"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
}
