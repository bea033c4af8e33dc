//! Two console replicas on one PostgreSQL database (a real server; scripts/test.sh starts it and
//! names it in TALOS_DR_TEST_DATABASE_URL): sessions, users and the audit trail are shared, an
//! incident is live on both, an approval given on one lets the step run on the other, the same
//! step run on both at once runs once, and a scheduled snapshot fires once. The emulator test
//! uses 127.0.113.x.

mod machine_configs;
mod presence;
mod transfers;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use talos_dr::audit::{ChainReport, NewAuditEntry};
use talos_dr::machine_configs::ConfigBackupKey;
use talos_dr::recovery::{FailPoints, ShiftedClock};
use talos_dr::{AccessSettings, Storage};
use talos_dr_shared::recovery::{ApprovalPolicy, IncidentView, StepKind, StepState};
use talos_dr_shared::snapshots::{SnapshotList, SnapshotTrigger};
use talos_dr_shared::{AuditEntry, Role};
use talos_emulator::{Emulator, EmulatorOptions, Role as TalosRole};
use tempfile::TempDir;

use crate::fake::{FakeTalos, RecoveryCallKind, node_name};
use crate::helpers::{
    Client, TEST_PASSWORD, TestApp, emulated_clusters, fresh_postgres_url, spawn_app_on,
};
use crate::recovery::planning::{approve, planned_incident, request, run};
use crate::recovery::{FakeRig, PATIENCE, fake_cluster, quick_settings, step, team, wait_view};

/// Two data directories (for the files that are not rows) and one database.
pub(super) async fn two_storages() -> ((Storage, TempDir), (Storage, TempDir)) {
    let url = fresh_postgres_url().await;
    let mut opened = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().expect("data dir");
        let storage = Storage::connect(dir.path(), Some(&url))
            .await
            .expect("the replica opens the shared database");
        opened.push((storage, dir));
    }
    let b = opened.pop().expect("two");
    let a = opened.pop().expect("two");
    (a, b)
}

/// The same client (the same browser's cookies) talking to another replica.
fn on(replica: &TestApp, client: &Client) -> Client {
    Client {
        address: replica.address.clone(),
        http: client.http.clone(),
        csrf: client.csrf.clone(),
    }
}

fn entry(actor: &str, n: usize) -> NewAuditEntry {
    NewAuditEntry {
        actor: actor.to_string(),
        roles: vec![Role::Operator],
        action: "replica_test".into(),
        cluster: None,
        target: Some(format!("{n}")),
        parameters: BTreeMap::new(),
        outcome: "ok".into(),
        client: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_users_and_one_audit_chain_are_shared_by_the_replicas() {
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    assert_eq!(storage_a.kind(), talos_dr::storage::DatabaseKind::Postgres);
    let a = spawn_app_on(storage_a, dir_a, vec![], AccessSettings::default(), |s| s).await;
    let b = spawn_app_on(storage_b, dir_b, vec![], AccessSettings::default(), |s| s).await;

    // A user added through one replica signs in on the other; the session works on both.
    a.add_user("nora", &[Role::Viewer, Role::Admin]).await;
    let on_b = b.sign_in("nora", TEST_PASSWORD).await;
    let on_a = on(&a, &on_b);
    let session = on_a.get("/api/session").await;
    assert_eq!(session.status(), 200, "the session made on B is known on A");
    // A state-changing call on A with the CSRF token B handed out.
    let created = on_a
        .send(Method::POST, "/api/users")
        .json(&json!({"username": "kim", "roles": ["viewer"], "password": TEST_PASSWORD}))
        .send()
        .await
        .expect("request sent");
    assert!(created.status().is_success(), "{}", created.status());
    let kim = b.sign_in("kim", TEST_PASSWORD).await;
    assert_eq!(kim.get("/api/session").await.status(), 200);
    // Signing out on A ends the session on B.
    let out = on_a
        .send(Method::DELETE, "/api/session")
        .send()
        .await
        .expect("request sent");
    assert!(out.status().is_success(), "{}", out.status());
    assert_eq!(on_b.get("/api/session").await.status(), 401);

    // Both replicas append to the audit trail at once: one chain, no gap, no fork.
    let before = match a.storage.audit.verify().await.expect("verify") {
        ChainReport::Intact { entries } => entries,
        broken => panic!("{broken:?}"),
    };
    let mut writes = Vec::new();
    for n in 0..20 {
        for (who, storage) in [("a", a.storage.clone()), ("b", b.storage.clone())] {
            writes.push(tokio::spawn(async move {
                storage.audit.append(entry(who, n)).await.expect("appended")
            }));
        }
    }
    for write in writes {
        write.await.expect("task");
    }
    match b.storage.audit.verify().await.expect("verify") {
        ChainReport::Intact { entries } => assert_eq!(entries, before + 40),
        broken => panic!("the chain broke under two writers: {broken:?}"),
    }
    // The trail is append-only in PostgreSQL too.
    let changed = sqlx::query("UPDATE audit_log SET outcome = 'forged' WHERE seq = 1")
        .execute(&a.storage.pool)
        .await;
    let message = changed.expect_err("the update is refused").to_string();
    assert!(message.contains("append-only"), "{message}");
}

/// A console on the fake cluster `prod`, as a replica on `storage`.
pub(super) async fn fake_replica(
    storage: Storage,
    dir: TempDir,
    fake: &Arc<FakeTalos>,
    clock: &Arc<ShiftedClock>,
) -> TestApp {
    let recovery = quick_settings(
        ApprovalPolicy::default(),
        clock.clone(),
        FailPoints::default(),
    );
    spawn_app_on(
        storage,
        dir,
        vec![fake_cluster(fake)],
        AccessSettings::default(),
        move |state| {
            state
                .with_recovery(recovery)
                .with_config_backup_key(ConfigBackupKey::from_bytes([0x5a; 32]))
        },
    )
    .await
}

/// A viewer signed in on the rig's replica.
async fn a_viewer(rig: &FakeRig) -> Client {
    rig.app.add_user("kai", &[Role::Viewer]).await;
    rig.app.sign_in("kai", TEST_PASSWORD).await
}

fn reset_state(view: &IncidentView, host: &str) -> StepState {
    step(view, StepKind::ResetNode, Some(host)).state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_is_live_on_both_replicas_and_each_step_runs_once() {
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    let fake = FakeTalos::healthy_cluster(3);
    let clock = Arc::new(ShiftedClock::default());
    let a = fake_replica(storage_a, dir_a, &fake, &clock).await;
    let b = fake_replica(storage_b, dir_b, &fake, &clock).await;
    let team_a = team(&a).await;
    let rig = FakeRig {
        app: a,
        fake: fake.clone(),
        clock,
        team: team_a,
    };
    // One webhook for the cluster: both replicas notice every change, the team is told once.
    let rx = crate::notify::receiver(0).await;
    let hook = rig
        .app
        .tester()
        .send(Method::PUT, "/api/clusters/prod/webhook")
        .json(&json!({"url": rx.url, "format": "generic"}))
        .send()
        .await
        .expect("webhook set");
    assert_eq!(hook.status(), 200);
    let view = planned_incident(&rig).await;
    let id = view.incident.id.clone();
    let operator_b = b.sign_in("olivia", TEST_PASSWORD).await;
    let approver_b = b.sign_in("alex", TEST_PASSWORD).await;
    let viewer_b = b.sign_in("vic", TEST_PASSWORD).await;

    // A browser on B watches; the request is made on A.
    let mut stream = b
        .open_stream_as(&viewer_b, &format!("/api/incidents/{id}/stream"))
        .await;
    let first: IncidentView =
        serde_json::from_str(&stream.next_named("incident").await.data).expect("a view");
    assert_eq!(reset_state(&first, "cp-3"), StepState::Planned);
    assert_eq!(request(&rig.team.operator, &view, "cp-3").await.status, 200);
    let seen_on_b = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = stream.next_named("incident").await;
            let view: IncidentView = serde_json::from_str(&event.data).expect("a view");
            if reset_state(&view, "cp-3") == StepState::Requested {
                return view;
            }
        }
    })
    .await
    .expect("B's stream shows the request made on A");
    assert!(
        seen_on_b
            .timeline
            .iter()
            .any(|e| e.actor.as_deref() == Some("olivia")),
        "the timeline on B names the requester"
    );
    // Who watches is one list too: a viewer on A shows on B's stream.
    let viewer_a = a_viewer(&rig).await;
    let _watching_on_a = rig
        .app
        .open_stream_as(&viewer_a, &format!("/api/incidents/{id}/stream"))
        .await;
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = stream.next_named("incident").await;
            let view: IncidentView = serde_json::from_str(&event.data).expect("a view");
            if view.watchers.iter().any(|w| w == "kai") && view.watchers.iter().any(|w| w == "vic")
            {
                return;
            }
        }
    })
    .await
    .expect("B lists the viewer watching through A");

    // Approved on B; run on A.
    let approved = approve(&approver_b, &view, "cp-3").await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(reset_state(&approved.view(), "cp-3"), StepState::Approved);
    let ran = run(&rig.team.operator, &view, "cp-3", "cp-3").await;
    assert_eq!(ran.status, 202, "{}", ran.body);
    wait_view(&operator_b, &id, "the reset of cp-3", PATIENCE, |v| {
        reset_state(v, "cp-3") == StepState::Done
    })
    .await;
    assert_eq!(fake.count(&node_name(3), RecoveryCallKind::Reset), 1);

    // The next reset run on both replicas at once: one claims it, the other is told.
    assert_eq!(request(&operator_b, &view, "cp-2").await.status, 200);
    assert_eq!(approve(&rig.team.approver, &view, "cp-2").await.status, 200);
    let (on_a, on_b) = tokio::join!(
        run(&rig.team.operator, &view, "cp-2", "cp-2"),
        run(&operator_b, &view, "cp-2", "cp-2")
    );
    let mut statuses = [on_a.status, on_b.status];
    statuses.sort();
    assert_eq!(statuses, [202, 409], "{} / {}", on_a.body, on_b.body);
    wait_view(&viewer_b, &id, "the reset of cp-2", PATIENCE, |v| {
        reset_state(v, "cp-2") == StepState::Done
    })
    .await;
    // Both replicas kept watching the whole time; neither sent a reset twice or judged the
    // other's running step as abandoned.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fake.count(&node_name(2), RecoveryCallKind::Reset), 1);
    assert_eq!(fake.count(&node_name(3), RecoveryCallKind::Reset), 1);
    let last = crate::recovery::get_view(&rig.team.operator, &id).await;
    assert!(
        !last.steps.iter().any(|s| s.state == StepState::Uncertain),
        "no step became uncertain: {:?}",
        last.steps
    );
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditEntry> {
    let response = app
        .get(&format!("/api/audit?action={action}&limit=500"))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("audit page");
    serde_json::from_value(body["entries"].clone()).expect("audit entries")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_snapshot_fires_once_across_replicas() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts =
        EmulatorOptions::new(1, Ipv4Addr::new(127, 0, 113, 1), dir.path().join("cluster"));
    opts.seed_keys = 20;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    let mut replicas = Vec::new();
    let mut states = Vec::new();
    for (storage, data_dir) in [(storage_a, dir_a), (storage_b, dir_b)] {
        let clusters = emulated_clusters(
            "emulated",
            emulator.talosconfig_path(TalosRole::Admin),
            |_| {},
        );
        // One snapshot store for both, as a team shares one bucket.
        let shared_store = dir.path().join("snapshots");
        let state = Arc::new(std::sync::Mutex::new(None));
        let keep = state.clone();
        let app = spawn_app_on(
            storage,
            data_dir,
            clusters,
            AccessSettings::default(),
            move |s| {
                let s = s.with_snapshots(talos_dr::snapshots::SnapshotSettings {
                    root: shared_store,
                    ..talos_dr::snapshots::SnapshotSettings::in_data_dir(std::path::Path::new("."))
                });
                *keep.lock().expect("lock") = Some(s.clone());
                s
            },
        )
        .await;
        app.wait_for_health("emulated", |h| h.members.len() == 1)
            .await;
        replicas.push(app);
        states.push(state.lock().expect("lock").take().expect("the state"));
    }
    let a = &replicas[0];
    let b = &replicas[1];
    // A schedule that would next fire in a year; the test makes it due instead and both
    // replicas' schedulers look at the same moment (their own ticks run as well).
    let put = a
        .tester()
        .send(Method::PUT, "/api/clusters/emulated/schedule")
        .json(&json!({"cron": "0 0 1 1 *", "retention": {"keep_last": 10}, "freshness_seconds": 3600}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(put.status(), 200);
    for round in 1..=3usize {
        let due = talos_dr::clock::now_ms();
        sqlx::query("UPDATE snapshot_schedules SET next_run_ms = $1 WHERE cluster = 'emulated'")
            .bind(due)
            .execute(&a.storage.pool)
            .await
            .expect("made due");
        tokio::join!(
            talos_dr::schedules::scheduler::run_due(&states[0], due),
            talos_dr::schedules::scheduler::run_due(&states[1], due)
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while audit(b, "snapshot_scheduled").await.len() < round {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round} never ran"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Long enough for a second run to show if both replicas fired.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let runs = audit(a, "snapshot_scheduled").await;
        assert_eq!(runs.len(), round, "one run per due time: {runs:?}");
    }
    let list: SnapshotList = b
        .get("/api/clusters/emulated/snapshots")
        .await
        .json()
        .await
        .expect("snapshot list");
    let scheduled = list
        .snapshots
        .iter()
        .filter(|e| e.trigger == SnapshotTrigger::Schedule && e.failure.is_none())
        .count();
    assert_eq!(scheduled, 3, "{:?}", list.snapshots);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_replica_leaves_anothers_step_alone_and_takes_it_over_when_that_one_stops() {
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    let fake = FakeTalos::healthy_cluster(3);
    let clock = Arc::new(ShiftedClock::default());
    // Replica A stops right after claiming a reset, before calling Talos, and stays there.
    let held = FailPoints::parse("reset_node:after_claim", None).expect("failpoints parse");
    let recovery = quick_settings(ApprovalPolicy::default(), clock.clone(), held);
    let a = spawn_app_on(
        storage_a,
        dir_a,
        vec![fake_cluster(&fake)],
        AccessSettings::default(),
        move |state| state.with_recovery(recovery),
    )
    .await;
    let b = fake_replica(storage_b, dir_b, &fake, &clock).await;
    let team_a = team(&a).await;
    let rig = FakeRig {
        app: a,
        fake: fake.clone(),
        clock,
        team: team_a,
    };
    let view = planned_incident(&rig).await;
    let id = view.incident.id.clone();
    assert_eq!(request(&rig.team.operator, &view, "cp-1").await.status, 200);
    assert_eq!(approve(&rig.team.approver, &view, "cp-1").await.status, 200);
    assert_eq!(
        run(&rig.team.operator, &view, "cp-1", "cp-1").await.status,
        202
    );
    let viewer_b = b.sign_in("vic", TEST_PASSWORD).await;
    wait_view(&viewer_b, &id, "the claim", PATIENCE, |v| {
        reset_state(v, "cp-1") == StepState::Claimed
    })
    .await;

    // A is alive (its heartbeat goes on): B leaves the claimed step to it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let still = crate::recovery::get_view(&viewer_b, &id).await;
    assert_eq!(reset_state(&still, "cp-1"), StepState::Claimed);
    assert_eq!(fake.count(&node_name(1), RecoveryCallKind::Reset), 0);

    // A stops (its heartbeat with it): B takes the step over and judges it from the node. The
    // call was never sent, so it is left for a person to decide, never sent on its own.
    let FakeRig { app: a, .. } = rig;
    drop(a);
    let judged = wait_view(
        &viewer_b,
        &id,
        "cp-1 taken over",
        Duration::from_secs(40),
        |v| !step(v, StepKind::ResetNode, Some("cp-1")).state.in_flight(),
    )
    .await;
    let cp1 = step(&judged, StepKind::ResetNode, Some("cp-1"));
    assert_eq!(cp1.state, StepState::Uncertain, "{:?}", cp1.detail);
    assert!(
        judged
            .timeline
            .iter()
            .any(|e| e.text.contains("the console running it stopped")
                || e.step_id.as_deref() == Some(cp1.id.as_str())),
        "the timeline tells about it"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        fake.count(&node_name(1), RecoveryCallKind::Reset),
        0,
        "never sent by the replica that took over"
    );
}
