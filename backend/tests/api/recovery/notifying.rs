//! The team is told through the cluster's webhook when a destructive step waits for approval
//! and when it is answered.

use std::time::Duration;

use serde_json::json;
use talos_dr_shared::recovery::ApprovalPolicy;
use talos_dr_shared::recovery::StepKind;

use super::planning::{planned_incident, step_path};
use super::{fake_rig, post};
use crate::notify::receiver;

#[tokio::test]
async fn requests_and_answers_reach_the_webhook() {
    let rig = fake_rig(3, ApprovalPolicy::default()).await;
    let rx = receiver(0).await;
    let response = rig
        .app
        .tester()
        .send(reqwest::Method::PUT, "/api/clusters/prod/webhook")
        .json(&json!({"url": rx.url, "format": "generic"}))
        .send()
        .await
        .expect("webhook set");
    assert_eq!(response.status(), 200);
    let view = planned_incident(&rig).await;
    let team = &rig.team;
    let asked = post(
        &team.operator,
        &step_path(&view, StepKind::ResetNode, "cp-1", "request"),
        &json!({"reason": "etcd data dir corrupt on cp-1"}),
    )
    .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let denied = post(
        &team.approver,
        &step_path(&view, StepKind::ResetNode, "cp-1", "approvals"),
        &json!({"decision": "deny", "reason": "take a fresh snapshot first"}),
    )
    .await;
    assert_eq!(denied.status, 200, "{}", denied.body);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rx.bodies.lock().await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "notifications missing: {:?}",
            rx.bodies.lock().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = rx.bodies.lock().await.clone();
    assert_eq!(bodies[0]["event"], "approval_requested", "{bodies:?}");
    assert!(
        bodies[0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("cp-1")),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("etcd data dir corrupt on cp-1")),
        "{}",
        bodies[0]
    );
    assert_eq!(bodies[0]["incident_id"], view.incident.id.as_str());
    assert_eq!(bodies[1]["event"], "denied");
    assert!(
        bodies[1]["text"]
            .as_str()
            .is_some_and(|t| t.contains("take a fresh snapshot first")),
        "{}",
        bodies[1]
    );
}
