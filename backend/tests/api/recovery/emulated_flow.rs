//! Whole recoveries against the emulator and real etcd, driven through the API by an operator
//! and an approver: data, a snapshot, more data, etcd broken, then every step of the plan until
//! the post-checks resolve the incident. These tests use 127.0.70.x to 127.0.79.x.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use talos_dr::config::{ClusterConfig, Config};
use talos_dr::machine_configs::ConfigBackupKey;
use talos_dr::recovery::RecoverySettings;
use talos_dr_shared::recovery::{
    IncidentStatus, IncidentView, StepKind, StepState, TimelineKind, precheck_needs_override,
};
use talos_dr_shared::snapshots::SnapshotResponse;
use talos_dr_shared::{ClusterHealth, MemberState};
use talos_emulator::{Emulator, EmulatorOptions, EtcdVolume, RecoveryCall, Role as TalosRole};

use super::{get_view, post, team, wait_view};
use crate::helpers::{TestApp, spawn_app_configured};

const CLUSTER: &str = "emulated";
const SLOW: Duration = Duration::from_secs(240);
const KEPT: &str = "/registry/configmaps/default/before-the-snapshot";
const LOST: &str = "/registry/configmaps/default/after-the-snapshot";

pub(super) struct Options {
    pub nodes: usize,
    pub init_node: bool,
    pub raw_copy: bool,
    /// Nodes (by hostname) whose etcd data is not a directory on EPHEMERAL.
    pub etcd_volume_on: BTreeMap<String, EtcdVolume>,
    /// The last node's machine dies with etcd and is re-created from its config backup.
    pub recreate: bool,
}

fn etcdctl(endpoint: Ipv4Addr, args: &[&str]) -> String {
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &format!("http://{endpoint}:2379"),
            "--command-timeout=10s",
        ])
        .args(args)
        .output()
        .expect("etcdctl runs");
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn health(app: &TestApp) -> Option<ClusterHealth> {
    let response = app.get(&format!("/api/clusters/{CLUSTER}/health")).await;
    if response.status() != 200 {
        return None;
    }
    let body: serde_json::Value = response.json().await.ok()?;
    serde_json::from_value(body["health"].clone()).ok()
}

async fn wait_health(app: &TestApp, what: &str, pred: impl Fn(&ClusterHealth) -> bool) {
    let deadline = tokio::time::Instant::now() + SLOW;
    loop {
        if health(app).await.is_some_and(|h| pred(&h)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(super) async fn recover(base: Ipv4Addr, options: Options) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut emulator_options =
        EmulatorOptions::new(options.nodes, base, dir.path().join("cluster"));
    emulator_options.seed_keys = 20;
    emulator_options.init_node = options.init_node;
    emulator_options.etcd_volume_on = options.etcd_volume_on.clone();
    let emulator = Emulator::start(emulator_options)
        .await
        .expect("the emulated cluster starts");
    let ips = emulator.control_plane_ips().to_vec();
    let mut config = Config::with_clusters(vec![ClusterConfig {
        name: CLUSTER.into(),
        talosconfig: emulator.talosconfig_path(TalosRole::Admin),
        context: None,
        nodes: None,
        talosconfigs: Default::default(),
    }]);
    config.poll_interval = Duration::from_millis(250);
    config.call_timeout = Duration::from_secs(2);
    let clusters = talos_dr::watch_clusters(&config).expect("the emulator's talosconfig loads");
    assert!(
        clusters[0].recovery_talos.is_some(),
        "the admin talosconfig gives a recovery client"
    );
    let settings = RecoverySettings {
        wait_deadline: Duration::from_secs(120),
        resume_grace: Duration::from_secs(10),
        ..Default::default()
    };
    let app = spawn_app_configured(clusters, Default::default(), move |s| {
        s.with_recovery(settings)
            .with_config_backup_key(ConfigBackupKey::from_bytes([0x5a; 32]))
    })
    .await;
    let team = team(&app).await;
    let n = options.nodes;
    wait_health(&app, "a healthy cluster", |h| {
        h.members.len() == n && h.members.iter().all(|m| m.state == MemberState::Healthy)
    })
    .await;

    // Data, a snapshot, more data, then etcd broken beyond quorum.
    etcdctl(ips[0], &["put", KEPT, "kept"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (path, body) = if options.raw_copy {
        (
            format!("/api/clusters/{CLUSTER}/snapshots/raw-copy"),
            json!({"node": ips[0].to_string()}),
        )
    } else {
        (format!("/api/clusters/{CLUSTER}/snapshots"), json!({}))
    };
    let taken = team
        .operator
        .send(Method::POST, &path)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(taken.status(), 201);
    let snapshot = taken
        .json::<SnapshotResponse>()
        .await
        .expect("snapshot")
        .snapshot;
    if options.recreate {
        super::recreate::back_up_configs(&team).await;
    }
    etcdctl(ips[0], &["put", LOST, "lost"]);
    let broken: Vec<Ipv4Addr> = if n == 1 {
        vec![ips[0]]
    } else {
        ips[1..].to_vec()
    };
    for ip in &broken {
        emulator.kill_etcd(*ip).await.expect("kill etcd");
    }
    wait_health(&app, "quorum lost", |h| !h.verdict.quorum.holds()).await;
    let replaced = options.recreate.then(|| ips[n - 1]);
    if let Some(ip) = replaced {
        emulator.stop_api(ip).await.expect("the machine is gone");
        let address = ip.to_string();
        wait_health(&app, "the dead machine unreachable", |h| {
            h.nodes
                .iter()
                .any(|node| node.node == address && !node.reachable)
        })
        .await;
    }

    // The incident: pre-checks, the snapshot, the plan.
    let opened = post(
        &team.operator,
        &format!("/api/clusters/{CLUSTER}/incidents"),
        &json!({"reason": "etcd lost quorum"}),
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let id = opened.view().incident.id;
    let view = wait_view(&team.operator, &id, "the pre-checks", SLOW, |v| {
        v.steps[0].state == StepState::Done || v.steps[0].state == StepState::Failed
    })
    .await;
    let report = view
        .incident
        .precheck
        .clone()
        .unwrap_or_else(|| panic!("a pre-check report: {:?}", view.steps[0]));
    assert_eq!(report.nodes.len(), n);
    if precheck_needs_override(report.verdict) {
        let o = post(
            &team.operator,
            &format!("/api/incidents/{id}/precheck/override"),
            &json!({"reason": "the members are gone"}),
        )
        .await;
        assert_eq!(o.status, 200, "{}", o.body);
    }
    let bootstrap = if options.init_node && n > 1 {
        ips[1]
    } else {
        ips[0]
    };
    let chosen = post(
        &team.operator,
        &format!("/api/incidents/{id}/snapshot"),
        &json!({"snapshot_id": snapshot.id, "bootstrap_node": bootstrap.to_string()}),
    )
    .await;
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    let plan = chosen.view();
    let boot_step = plan
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Bootstrap)
        .expect("a bootstrap step");
    assert_eq!(boot_step.params.skip_hash_check, options.raw_copy);
    super::etcd_volumes::assert_resets_wipe_etcd_data(&plan, &options.etcd_volume_on);
    let recreated: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::RecreateNode)
        .filter_map(|s| s.target.as_ref().map(|t| t.address.clone()))
        .collect();
    assert_eq!(
        recreated,
        replaced.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>(),
        "the dead machine is re-created, the others reset"
    );
    assert_eq!(
        plan.steps
            .iter()
            .filter(|s| s.kind == StepKind::StageControlplaneConfig)
            .count(),
        usize::from(options.init_node)
    );

    // Every step in order: destructive ones requested, approved and run by two people.
    loop {
        let view = get_view(&team.operator, &id).await;
        if view.incident.status != IncidentStatus::Open {
            break;
        }
        let Some(next) = view
            .steps
            .iter()
            .find(|s| s.state != StepState::Done)
            .cloned()
        else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        assert!(
            !matches!(next.state, StepState::Failed | StepState::Uncertain),
            "{} is {}: {:?}",
            next.kind.as_str(),
            next.state.as_str(),
            next.detail
        );
        if next.kind == StepKind::RecreateNode && next.state == StepState::Planned {
            super::recreate::recreate(&emulator, &team, &id, &next).await;
            continue;
        }
        if !next.kind.is_destructive() || next.state != StepState::Planned {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let target = next
            .target
            .clone()
            .expect("a destructive step names its node");
        let base = format!("/api/incidents/{id}/steps/{}", next.id);
        let r = post(
            &team.operator,
            &format!("{base}/request"),
            &json!({"reason": format!("{} as planned", next.kind.title())}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let a = post(
            &team.approver,
            &format!("{base}/approvals"),
            &json!({"decision": "approve"}),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let run = post(
            &team.operator,
            &format!("{base}/run"),
            &json!({"confirm_hostname": target.hostname}),
        )
        .await;
        assert_eq!(run.status, 202, "{}", run.body);
        let step_id = next.id.clone();
        wait_view(&team.operator, &id, "the step to finish", SLOW, |v| {
            v.steps.iter().any(|s| {
                s.id == step_id
                    && matches!(
                        s.state,
                        StepState::Done | StepState::Failed | StepState::Uncertain
                    )
            })
        })
        .await;
    }
    let view: IncidentView = get_view(&team.viewer, &id).await;
    assert_eq!(
        view.incident.status,
        IncidentStatus::Resolved,
        "{:?}",
        view.incident.summary
    );
    assert!(view.steps.iter().all(|s| s.state == StepState::Done));
    assert!(
        view.incident
            .summary
            .as_deref()
            .is_some_and(|s| s.contains(&snapshot.id))
    );
    assert!(
        view.timeline
            .iter()
            .any(|e| e.kind == TimelineKind::KernelLog
                && e.text.contains("recovering etcd from snapshot")),
        "the restore's kernel-log lines are in the timeline"
    );
    let upload = view
        .steps
        .iter()
        .find(|s| s.kind == StepKind::UploadSnapshot)
        .expect("upload");
    assert!(
        upload
            .progress
            .is_some_and(|p| p.total.is_some_and(|t| p.done == t && t > 0))
    );

    // The snapshot's data, nothing written after it, every member back.
    wait_health(&app, "every member healthy", |h| {
        h.members.len() == n && h.members.iter().all(|m| m.state == MemberState::Healthy)
    })
    .await;
    let kept = etcdctl(bootstrap, &["get", KEPT, "--print-value-only"]);
    assert_eq!(kept.trim(), "kept");
    let lost = etcdctl(bootstrap, &["get", LOST, "--print-value-only"]);
    assert_eq!(
        lost.trim(),
        "",
        "the key written after the snapshot is gone"
    );
    for ip in &ips {
        let calls = emulator.calls(*ip).expect("counters");
        let resets = if Some(*ip) == replaced { 0 } else { 1 };
        assert_eq!(calls.get(RecoveryCall::Reset), resets, "resets on {ip}");
        let bootstraps = if *ip == bootstrap { 1 } else { 0 };
        assert_eq!(
            calls.get(RecoveryCall::Bootstrap),
            bootstraps,
            "bootstraps on {ip}"
        );
        if options.init_node && *ip == ips[0] {
            assert_eq!(calls.get(RecoveryCall::ApplyConfiguration), 1);
            assert_eq!(calls.get(RecoveryCall::Reboot), 1);
        }
    }
    let report = team
        .viewer
        .get(&format!("/api/incidents/{id}/report.md"))
        .await
        .text()
        .await
        .expect("report");
    assert!(
        report.contains("approved by alex") && report.contains("| olivia |"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_recover_from_a_snapshot_with_an_operator_and_an_approver() {
    recover(
        Ipv4Addr::new(127, 0, 70, 2),
        Options {
            nodes: 3,
            init_node: false,
            raw_copy: false,
            etcd_volume_on: BTreeMap::new(),
            recreate: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_raw_copy_restores_with_skip_hash_check_after_an_init_node_is_converted() {
    recover(
        Ipv4Addr::new(127, 0, 71, 2),
        Options {
            nodes: 3,
            init_node: true,
            raw_copy: true,
            etcd_volume_on: BTreeMap::new(),
            recreate: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_cluster_recovers_the_same_way() {
    recover(
        Ipv4Addr::new(127, 0, 72, 2),
        Options {
            nodes: 1,
            init_node: false,
            raw_copy: false,
            etcd_volume_on: BTreeMap::new(),
            recreate: false,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replaced_machine_is_recreated_from_its_config_backup() {
    recover(
        Ipv4Addr::new(127, 0, 73, 2),
        Options {
            nodes: 3,
            init_node: false,
            raw_copy: false,
            etcd_volume_on: BTreeMap::new(),
            recreate: true,
        },
    )
    .await;
}
