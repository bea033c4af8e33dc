//! A console stopped in the middle of a destructive step (a failpoint holds it there, as a kill
//! would leave it) and a new console on the same database: the step is judged from the node,
//! never sent again on its own.

use std::sync::Arc;

use serde_json::json;
use talos_dr::recovery::{FailPoints, ShiftedClock};
use talos_dr::{AccessSettings, AppState};
use talos_dr_shared::recovery::{ApprovalPolicy, IncidentView, StepKind, StepState, TimelineKind};
use tokio::task::JoinHandle;

use super::planning::{planned_incident, step_path};
use super::{PATIENCE, fake_cluster, fake_rig_with, post, quick_settings, step, wait_view};
use crate::fake::{FakeTalos, RecoveryCallKind, node_name};
use crate::helpers::{Client, TEST_PASSWORD, TestApp};

/// Another console process on the same database and the same cluster.
struct Console {
    address: String,
    server: JoinHandle<()>,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn another_console(app: &TestApp, fake: &Arc<FakeTalos>, failpoints: &str) -> Console {
    let failpoints = FailPoints::parse(failpoints, None).expect("failpoints parse");
    let settings = quick_settings(
        ApprovalPolicy::default(),
        Arc::new(ShiftedClock::default()),
        failpoints,
    );
    let state = AppState::new(
        vec![fake_cluster(fake)],
        app.storage.clone(),
        AccessSettings::default(),
    )
    .with_recovery(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        talos_dr::run(listener, state).await.expect("serves");
    });
    Console { address, server }
}

async fn sign_in(address: &str, name: &str) -> Client {
    let mut client = Client {
        address: address.to_string(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client"),
        csrf: None,
    };
    let response = client.login(name, TEST_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let body: talos_dr_shared::SessionResponse = response.json().await.expect("session");
    client.csrf = Some(body.session.csrf_token);
    client
}

async fn approve_and_run(operator: &Client, approver: &Client, view: &IncidentView, host: &str) {
    let r = post(
        operator,
        &step_path(view, StepKind::ResetNode, host, "request"),
        &json!({"reason": "wipe it"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = post(
        approver,
        &step_path(view, StepKind::ResetNode, host, "approvals"),
        &json!({"decision": "approve"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let run = post(
        operator,
        &step_path(view, StepKind::ResetNode, host, "run"),
        &json!({"confirm_hostname": host}),
    )
    .await;
    assert_eq!(run.status, 202, "{}", run.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_console_judges_claimed_steps_from_the_node_and_never_sends_them_again() {
    let failpoints = FailPoints::parse("reset_node:after_claim", None).expect("parses");
    let rig = fake_rig_with(3, ApprovalPolicy::default(), failpoints).await;
    let view = planned_incident(&rig).await;
    let id = view.incident.id.clone();

    // Stopped after the claim: Talos was never called.
    approve_and_run(&rig.team.operator, &rig.team.approver, &view, "cp-1").await;
    wait_view(&rig.team.operator, &id, "the claim", PATIENCE, |v| {
        step(v, StepKind::ResetNode, Some("cp-1")).state == StepState::Claimed
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rig.fake.count(&node_name(1), RecoveryCallKind::Reset), 0);

    // The next console stops after the call instead.
    let second = another_console(&rig.app, &rig.fake, "reset_node:after_call").await;
    let operator = sign_in(&second.address, "olivia").await;
    let approver = sign_in(&second.address, "alex").await;
    let judged = wait_view(&operator, &id, "cp-1 judged", PATIENCE, |v| {
        !step(v, StepKind::ResetNode, Some("cp-1")).state.in_flight()
    })
    .await;
    let cp1 = step(&judged, StepKind::ResetNode, Some("cp-1"));
    assert_eq!(cp1.state, StepState::Uncertain, "{:?}", cp1.detail);
    assert!(
        cp1.detail
            .as_deref()
            .is_some_and(|d| d.contains("boot id") && d.contains("never sends it again")),
        "{:?}",
        cp1.detail
    );
    assert!(
        judged
            .timeline
            .iter()
            .any(|e| e.kind == TimelineKind::StepFailed
                && e.loud
                && e.step_id.as_deref() == Some(cp1.id.as_str()))
    );
    assert_eq!(
        rig.fake.count(&node_name(1), RecoveryCallKind::Reset),
        0,
        "never sent on its own"
    );

    // A person checked the node: it never ran; back to planned.
    let retry = post(
        &operator,
        &step_path(&view, StepKind::ResetNode, "cp-1", "resolve"),
        &json!({"outcome": "retry", "reason": "boot id unchanged"}),
    )
    .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(
        step(&retry.view(), StepKind::ResetNode, Some("cp-1")).state,
        StepState::Planned
    );

    // Stopped after Talos answered: the node rebooted, `sent` was never written.
    approve_and_run(&operator, &approver, &view, "cp-2").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while rig.fake.count(&node_name(2), RecoveryCallKind::Reset) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reset of cp-2 is sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(second);
    let third = another_console(&rig.app, &rig.fake, "").await;
    let operator = sign_in(&third.address, "olivia").await;
    let approver = sign_in(&third.address, "alex").await;
    let judged = wait_view(&operator, &id, "cp-2 judged", PATIENCE, |v| {
        step(v, StepKind::ResetNode, Some("cp-2")).state == StepState::Done
    })
    .await;
    let cp2 = step(&judged, StepKind::ResetNode, Some("cp-2"));
    assert!(
        cp2.detail.as_deref().is_some_and(|d| d.contains("boot id")),
        "{:?}",
        cp2.detail
    );
    assert_eq!(
        rig.fake.count(&node_name(2), RecoveryCallKind::Reset),
        1,
        "sent exactly once"
    );

    // And the step sent back goes through once, on request.
    approve_and_run(&operator, &approver, &view, "cp-1").await;
    wait_view(&operator, &id, "cp-1 done", PATIENCE, |v| {
        step(v, StepKind::ResetNode, Some("cp-1")).state == StepState::Done
    })
    .await;
    assert_eq!(rig.fake.count(&node_name(1), RecoveryCallKind::Reset), 1);
}
