//! Webhook notifications against a local receiver: the body each format sends, retries with
//! backoff when the receiver fails, the failure visible on the cluster's webhook view and every
//! attempt in the audit trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::Method;
use serde_json::json;
use talos_dr::notify::{Notification, NotifySettings};
use talos_dr_shared::notifications::{DeliveryState, NotificationKind, WebhookView};
use talos_dr_shared::{AuditEntry, ErrorBody, Role};
use tokio::sync::Mutex;

use crate::fake::FakeTalos;
use crate::helpers::{TEST_PASSWORD, TestApp, settings, spawn_app_configured};

/// A webhook receiver on loopback that fails its first `failures` requests with HTTP 503.
pub(crate) struct Receiver {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    pub requests: Arc<AtomicU32>,
}

pub(crate) async fn receiver(failures: u32) -> Receiver {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(AtomicU32::new(0));
    let (b, r) = (bodies.clone(), requests.clone());
    let app = Router::new().route(
        "/hook/secret-token",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let (b, r) = (b.clone(), r.clone());
            async move {
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= failures {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                b.lock().await.push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let url = format!(
        "http://{}/hook/secret-token",
        listener.local_addr().expect("receiver address")
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url,
        bodies,
        requests,
    }
}

async fn console(max_attempts: u32) -> TestApp {
    let fake = FakeTalos::healthy_cluster(1);
    let clusters = vec![talos_dr::watch_cluster(
        settings("prod", fake.node_names()),
        fake,
    )];
    spawn_app_configured(clusters, Default::default(), move |state| {
        state.with_notify_settings(NotifySettings {
            max_attempts,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
            stale_check_every: Duration::from_millis(200),
        })
    })
    .await
}

async fn put_webhook(app: &TestApp, body: serde_json::Value) -> reqwest::Response {
    app.tester()
        .send(Method::PUT, "/api/clusters/prod/webhook")
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn webhook_view(app: &TestApp) -> WebhookView {
    let response = app.get("/api/clusters/prod/webhook").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("webhook view")
}

/// Waits until the newest delivery is no longer pending.
async fn settled(app: &TestApp) -> WebhookView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = webhook_view(app).await;
        if view
            .recent
            .first()
            .is_some_and(|d| d.state != DeliveryState::Pending)
        {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery never settled: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deliveries_in_audit(app: &TestApp) -> Vec<AuditEntry> {
    let response = app
        .get("/api/audit?action=webhook_delivery&limit=100")
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("audit page");
    serde_json::from_value(body["entries"].clone()).expect("audit entries")
}

fn sample(kind: NotificationKind) -> Notification {
    Notification {
        cluster: "prod".into(),
        kind,
        title: "Approval requested: reset cp-2 (10.5.0.3)".into(),
        text: "an operator asks: etcd data corrupt".into(),
        link: Some("/incidents/abc".into()),
        incident_id: Some("abc".into()),
        at_ms: 1,
        once_key: None,
    }
}

#[tokio::test]
async fn a_receiver_that_fails_three_times_is_retried_and_the_failures_show() {
    let app = console(6).await;
    let rx = receiver(3).await;
    let response = put_webhook(&app, json!({"url": rx.url, "format": "generic"})).await;
    assert_eq!(response.status(), 200);
    let view: WebhookView = response.json().await.expect("view");
    // The secret path is never shown back.
    assert_eq!(
        view.receiver.as_deref().map(|r| r.contains("secret")),
        Some(false)
    );

    let response = app
        .tester()
        .send(Method::POST, "/api/clusters/prod/webhook/test")
        .send()
        .await
        .expect("test sent");
    assert_eq!(response.status(), 202);
    let view = settled(&app).await;
    let delivery = &view.recent[0];
    assert_eq!(delivery.state, DeliveryState::Delivered, "{delivery:?}");
    assert_eq!(delivery.attempts, 4);
    assert_eq!(
        delivery.last_error.as_deref(),
        Some("the receiver answered HTTP 503")
    );
    assert_eq!(rx.requests.load(Ordering::SeqCst), 4);
    let bodies = rx.bodies.lock().await.clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["event"], "test");
    assert_eq!(bodies[0]["cluster"], "prod");

    let trail = deliveries_in_audit(&app).await;
    assert_eq!(trail.len(), 4, "one audit entry per attempt: {trail:?}");
    assert_eq!(
        trail
            .iter()
            .filter(|e| e
                .outcome
                .starts_with("failed, will retry: the receiver answered HTTP 503"))
            .count(),
        3
    );
    assert!(trail.iter().any(|e| e.outcome == "delivered"));
    assert!(
        trail
            .iter()
            .all(|e| !format!("{e:?}").contains("secret-token"))
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_well_is_given_up_on_and_shown_failed() {
    let app = console(3).await;
    let rx = receiver(u32::MAX).await;
    put_webhook(&app, json!({"url": rx.url, "format": "slack"})).await;
    queue(&app, sample(NotificationKind::StepFailed)).await;
    let view = settled(&app).await;
    let delivery = &view.recent[0];
    assert_eq!(delivery.state, DeliveryState::Failed, "{delivery:?}");
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.kind, NotificationKind::StepFailed);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 3);
    let trail = deliveries_in_audit(&app).await;
    assert_eq!(trail.len(), 3);
    assert!(
        trail
            .iter()
            .any(|e| e.outcome == "failed, gave up: the receiver answered HTTP 503"),
        "{trail:?}"
    );
}

/// Queues a notification in the console's outbox, as the recovery and the scheduler do.
async fn queue(app: &TestApp, n: Notification) {
    talos_dr::notify::Notifier::new(app.storage.pool.clone(), NotifySettings::default())
        .notify(n)
        .await;
}

#[tokio::test]
async fn each_event_reaches_the_receiver_in_both_formats() {
    for format in ["generic", "slack"] {
        let app = console(6).await;
        let rx = receiver(0).await;
        put_webhook(&app, json!({"url": rx.url, "format": format})).await;
        let kinds = [
            NotificationKind::ApprovalRequested,
            NotificationKind::Approved,
            NotificationKind::Denied,
            NotificationKind::StepFailed,
            NotificationKind::RecoveryFinished,
            NotificationKind::SnapshotStale,
            NotificationKind::SnapshotFailed,
        ];
        for kind in kinds {
            queue(&app, sample(kind)).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while rx.bodies.lock().await.len() < kinds.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "not every event arrived"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let bodies = rx.bodies.lock().await.clone();
        for (kind, body) in kinds.iter().zip(&bodies) {
            if format == "generic" {
                assert_eq!(body["event"], kind.as_str());
            } else {
                assert!(
                    body["text"].as_str().is_some_and(|t| t.contains("(prod)")),
                    "{body}"
                );
                assert_eq!(body["blocks"][0]["type"], "section");
            }
        }
    }
}

#[tokio::test]
async fn only_http_receivers_are_accepted_and_only_admins_set_them() {
    let app = console(6).await;
    for url in ["ftp://example.com/hook", "file:///etc/passwd", "not a url"] {
        let response = put_webhook(&app, json!({"url": url, "format": "generic"})).await;
        assert_eq!(response.status(), 400, "{url}");
        let error: ErrorBody = response.json().await.expect("error body");
        assert!(
            error.error.message.starts_with("url:"),
            "{}",
            error.error.message
        );
    }
    assert!(webhook_view(&app).await.receiver.is_none());
    app.add_user("an-operator", &[Role::Operator]).await;
    let operator = app.sign_in("an-operator", TEST_PASSWORD).await;
    let response = operator
        .send(Method::PUT, "/api/clusters/prod/webhook")
        .json(&json!({"url": "https://example.com/hook", "format": "generic"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_missed_freshness_target_is_told_once() {
    let app = console(6).await;
    let rx = receiver(0).await;
    put_webhook(&app, json!({"url": rx.url, "format": "generic"})).await;
    let response = app
        .tester()
        .send(Method::PUT, "/api/clusters/prod/schedule")
        .json(
            &json!({"cron": "0 0 1 1 *", "retention": {"keep_last": 3}, "freshness_seconds": 3600}),
        )
        .send()
        .await
        .expect("schedule set");
    assert_eq!(response.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rx.bodies.lock().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stale notification"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more checks pass; the cluster is still stale but is not reported again.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let bodies = rx.bodies.lock().await.clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "snapshot_stale");
    assert!(
        bodies[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("there is no verified snapshot at all")),
        "{}",
        bodies[0]
    );
}

#[tokio::test]
async fn a_failed_snapshot_is_told_but_a_refused_upload_is_not() {
    let app = console(6).await;
    let rx = receiver(0).await;
    put_webhook(&app, json!({"url": rx.url, "format": "generic"})).await;
    app.wait_for_health("prod", |h| !h.nodes.is_empty()).await;
    let response = app
        .tester()
        .send(Method::POST, "/api/clusters/prod/snapshots")
        .json(&json!({}))
        .send()
        .await
        .expect("snapshot asked");
    assert!(
        !response.status().is_success(),
        "the fake takes no snapshots"
    );
    let response = app
        .tester()
        .send(Method::POST, "/api/clusters/prod/snapshots/upload")
        .header("Content-Type", "application/octet-stream")
        .body("not a snapshot at all")
        .send()
        .await
        .expect("upload sent");
    assert!(!response.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rx.bodies.lock().await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot_failed notification"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bodies = rx.bodies.lock().await.clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "snapshot_failed");
    assert!(
        bodies[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("A snapshot from ") && t.contains("failed: ")),
        "{}",
        bodies[0]
    );
}
