//! Staged recoveries through the API: the guard rails against the fake Talos cluster (the clock
//! passed in, so approvals can expire), and whole recoveries against the emulator with real etcd
//! (127.0.70.x to 127.0.79.x; the ETCD volume layouts 127.0.111.x to 127.0.112.x).

mod emulated_flow;
mod etcd_volumes;
mod guard_rails;
mod notifying;
pub mod planning;
mod recreate;
mod restart;
mod watching;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use talos_dr::health::PollSettings;
use talos_dr::recovery::{FailPoints, RecoverySettings, ShiftedClock};
use talos_dr::talos::{TalosApi, TalosRecoveryApi};
use talos_dr::watch_cluster;
use talos_dr_shared::recovery::{ApprovalPolicy, IncidentView, RecoveryStep, StepKind};
use talos_dr_shared::{ErrorBody, Role};

use crate::fake::FakeTalos;
use crate::helpers::{Client, TEST_PASSWORD, TestApp, spawn_app_configured};

pub const PATIENCE: Duration = Duration::from_secs(20);

/// The people of a recovery, each signed in with their own session.
pub struct Team {
    pub operator: Client,
    pub approver: Client,
    pub second_approver: Client,
    /// Operator and approver at once: may request, may never approve their own request.
    pub both: Client,
    /// Admin and operator: may break the glass on their own request.
    pub admin: Client,
    pub viewer: Client,
}

pub async fn team(app: &TestApp) -> Team {
    for (name, roles) in [
        ("olivia", vec![Role::Operator]),
        ("alex", vec![Role::Approver]),
        ("amir", vec![Role::Approver]),
        ("sam", vec![Role::Operator, Role::Approver]),
        ("ada", vec![Role::Admin, Role::Operator]),
        ("vic", vec![Role::Viewer]),
    ] {
        app.add_user(name, &roles).await;
    }
    Team {
        operator: app.sign_in("olivia", TEST_PASSWORD).await,
        approver: app.sign_in("alex", TEST_PASSWORD).await,
        second_approver: app.sign_in("amir", TEST_PASSWORD).await,
        both: app.sign_in("sam", TEST_PASSWORD).await,
        admin: app.sign_in("ada", TEST_PASSWORD).await,
        viewer: app.sign_in("vic", TEST_PASSWORD).await,
    }
}

/// An answer: status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn view(&self) -> IncidentView {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("an IncidentView ({e}): {}", self.body))
    }

    pub fn error(&self) -> ErrorBody {
        serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("the error shape ({e}): {}", self.body))
    }
}

pub async fn post(client: &Client, path: &str, body: &impl Serialize) -> Answer {
    let response = client
        .send(Method::POST, path)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    }
}

pub async fn get_view(client: &Client, id: &str) -> IncidentView {
    let response = client.get(&format!("/api/incidents/{id}")).await;
    assert_eq!(response.status(), 200, "GET incident {id}");
    response.json().await.expect("IncidentView")
}

pub fn step<'v>(view: &'v IncidentView, kind: StepKind, host: Option<&str>) -> &'v RecoveryStep {
    view.steps
        .iter()
        .find(|s| {
            s.kind == kind
                && host.is_none_or(|h| s.target.as_ref().is_some_and(|t| t.hostname == h))
        })
        .unwrap_or_else(|| panic!("a {kind:?} step on {host:?} in {:?}", view.steps))
}

/// Polls the incident until `pred` holds.
pub async fn wait_view(
    client: &Client,
    id: &str,
    what: &str,
    within: Duration,
    pred: impl Fn(&IncidentView) -> bool,
) -> IncidentView {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let view = get_view(client, id).await;
        if pred(&view) {
            return view;
        }
        if tokio::time::Instant::now() > deadline {
            let steps: Vec<String> = view
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{} {:?} {} {:?}",
                        s.kind.as_str(),
                        s.target.as_ref().map(|t| &t.hostname),
                        s.state.as_str(),
                        s.detail
                    )
                })
                .collect();
            panic!("timed out waiting for {what}; steps:\n{}", steps.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The console on the fake cluster `prod` (3 nodes), with its admin client and the clock tests
/// move.
pub struct FakeRig {
    pub app: TestApp,
    pub fake: Arc<FakeTalos>,
    pub clock: Arc<ShiftedClock>,
    pub team: Team,
}

/// The fake cluster as a watched cluster with its admin client.
pub fn fake_cluster(fake: &Arc<FakeTalos>) -> talos_dr::WatchedCluster {
    let settings = PollSettings {
        cluster: "prod".into(),
        nodes: fake.node_names(),
        interval: Duration::from_millis(50),
        call_timeout: Duration::from_millis(300),
    };
    let mut watched = watch_cluster(settings, fake.clone() as Arc<dyn TalosApi>);
    watched.recovery_talos = Some(fake.clone() as Arc<dyn TalosRecoveryApi>);
    watched
}

/// Short waits, so a test sees deadlines and restart judgements in seconds.
pub fn quick_settings(
    policy: ApprovalPolicy,
    clock: Arc<ShiftedClock>,
    failpoints: FailPoints,
) -> RecoverySettings {
    RecoverySettings {
        policy,
        wait_deadline: Duration::from_secs(5),
        resume_grace: Duration::from_secs(2),
        clock,
        failpoints,
    }
}

pub async fn fake_rig(size: u8, policy: ApprovalPolicy) -> FakeRig {
    fake_rig_with(size, policy, FailPoints::default()).await
}

pub async fn fake_rig_with(size: u8, policy: ApprovalPolicy, failpoints: FailPoints) -> FakeRig {
    let fake = FakeTalos::healthy_cluster(size);
    let clock = Arc::new(ShiftedClock::default());
    let watched = fake_cluster(&fake);
    let recovery = quick_settings(policy, clock.clone(), failpoints);
    let app = spawn_app_configured(vec![watched], Default::default(), move |state| {
        state.with_recovery(recovery)
    })
    .await;
    let team = team(&app).await;
    FakeRig {
        app,
        fake,
        clock,
        team,
    }
}
