//! The console against the Talos emulator: real mTLS, real etcd processes, real failures.
//! These tests use 127.0.20.x and up so they run beside the emulator's own tests.

use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use talos_api::{common, machine};
use talos_dr_shared::{ClusterHealth, MemberState, ServiceState, VerdictLevel};
use talos_emulator::{Emulator, EmulatorOptions, Role};
use tempfile::TempDir;

use crate::helpers::{TestApp, emulated_clusters, spawn_app_with};

const CLUSTER: &str = "emulated";
/// Recovery restarts etcd on three nodes; give it room on a busy two-core machine.
const RECOVERY_PATIENCE: Duration = Duration::from_secs(90);

struct EmulatedConsole {
    emulator: Emulator,
    app: TestApp,
    _dir: TempDir,
}

async fn start(base_ip: Ipv4Addr, seed_keys: usize) -> EmulatedConsole {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(3, base_ip, dir.path().join("cluster"));
    opts.seed_keys = seed_keys;
    let emulator = Emulator::start(opts)
        .await
        .expect("the emulated cluster starts");
    let state = emulated_clusters(CLUSTER, emulator.talosconfig_path(Role::Admin), |_| {});
    let app = spawn_app_with(state).await;
    EmulatedConsole {
        emulator,
        app,
        _dir: dir,
    }
}

impl EmulatedConsole {
    async fn health(&self) -> Option<ClusterHealth> {
        let response = self
            .app
            .get(&format!("/api/clusters/{CLUSTER}/health"))
            .await;
        if response.status() != 200 {
            return None;
        }
        let body: serde_json::Value = response.json().await.ok()?;
        serde_json::from_value(body["health"].clone()).ok()
    }

    /// Polls the console until `pred` holds, or fails naming `what` with the last health seen.
    async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        pred: impl Fn(&ClusterHealth) -> bool,
    ) -> ClusterHealth {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = None;
        loop {
            if let Some(h) = self.health().await {
                if pred(&h) {
                    return h;
                }
                last = Some(h);
            }
            if tokio::time::Instant::now() > deadline {
                let seen = last.map(|h| {
                    let nodes: Vec<String> = h
                        .nodes
                        .iter()
                        .map(|n| {
                            format!(
                                "{} etcd={:?} failures={:?}",
                                n.node,
                                n.etcd_service.as_ref().map(|s| s.state),
                                n.failures
                            )
                        })
                        .collect();
                    format!(
                        "{} | {:?} | {}",
                        h.verdict.summary,
                        h.verdict.reasons,
                        nodes.join("; ")
                    )
                });
                panic!("timed out after {within:?} waiting for {what}; last seen: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn node(&self, i: usize) -> Ipv4Addr {
        self.emulator.control_plane_ips()[i]
    }

    async fn admin(
        &self,
        endpoint: Ipv4Addr,
    ) -> machine::machine_service_client::MachineServiceClient<tonic::transport::Channel> {
        self.emulator
            .client(Role::Admin, endpoint)
            .await
            .expect("an admin client connects")
    }
}

fn etcdctl(endpoint: Ipv4Addr, args: &[&str]) -> String {
    let endpoints = format!("http://{endpoint}:2379");
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoints, "--command-timeout=5s"])
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

fn all_members(h: &ClusterHealth, state: MemberState) -> bool {
    h.members.len() == 3 && h.members.iter().all(|m| m.state == state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_and_an_unreachable_node_show_while_the_rest_keeps_working() {
    let console = start(Ipv4Addr::new(127, 0, 20, 2), 50).await;
    let healthy = console
        .wait_for("a healthy cluster", RECOVERY_PATIENCE, |h| {
            h.verdict.level == VerdictLevel::Healthy && all_members(h, MemberState::Healthy)
        })
        .await;
    assert_eq!(healthy.verdict.quorum.voters, 3);
    assert!(healthy.verdict.leader.is_some());
    assert!(
        healthy
            .nodes
            .iter()
            .all(|n| n.talos_version.is_some() && n.reachable)
    );

    let victim = console.node(1);
    console.emulator.kill_etcd(victim).await.expect("kill etcd");
    let degraded = console
        .wait_for(
            "the killed member to be unhealthy",
            Duration::from_secs(10),
            |h| {
                h.members.iter().any(|m| {
                    m.node.as_deref() == Some(&victim.to_string())
                        && m.state == MemberState::Unhealthy
                })
            },
        )
        .await;
    assert_eq!(
        degraded.verdict.level,
        VerdictLevel::Degraded,
        "{:?}",
        degraded.verdict
    );
    assert!(degraded.verdict.quorum.holds());

    let dark = console.node(2);
    console.emulator.stop_api(dark).await.expect("stop the API");
    let partial = console
        .wait_for(
            "the stopped API to show unreachable",
            Duration::from_secs(10),
            |h| {
                h.nodes
                    .iter()
                    .any(|n| n.node == dark.to_string() && !n.reachable)
            },
        )
        .await;
    let first = partial
        .nodes
        .iter()
        .find(|n| n.node == console.node(0).to_string())
        .expect("first node listed");
    assert!(
        first.reachable && first.etcd_status.is_some(),
        "the healthy node still reports: {first:?}"
    );
    // One healthy, one unhealthy, one unknown: the console cannot say quorum is lost.
    assert_eq!(
        partial.verdict.level,
        VerdictLevel::Unknown,
        "{:?}",
        partial.verdict
    );

    console.emulator.shutdown().await;
}

/// The Talos disaster-recovery guide, step by step, through the Talos API, with the console's
/// verdict checked at each stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_procedure_brings_back_the_snapshot_and_the_console_sees_it() {
    let console = start(Ipv4Addr::new(127, 0, 21, 2), 300).await;
    let (n1, n2, n3) = (console.node(0), console.node(1), console.node(2));
    console
        .wait_for("a healthy cluster", RECOVERY_PATIENCE, |h| {
            h.verdict.level == VerdictLevel::Healthy
        })
        .await;

    // Backup: a snapshot through the Talos API, from any healthy control-plane node.
    let before = "/registry/configmaps/default/before-snapshot";
    etcdctl(n1, &["put", before, "kept"]);
    let mut admin = console.admin(n2).await;
    let mut stream = admin
        .etcd_snapshot(machine::EtcdSnapshotRequest {})
        .await
        .expect("snapshot starts")
        .into_inner();
    let mut snapshot = Vec::new();
    while let Some(chunk) = stream.next().await {
        snapshot.extend_from_slice(&chunk.expect("snapshot chunk").bytes);
    }
    assert_eq!(
        snapshot.len() % 512,
        32,
        "a Snapshot API file carries the sha256 trailer"
    );

    // Keys written after the snapshot must be gone after recovery.
    let after = "/registry/configmaps/default/after-snapshot";
    etcdctl(n1, &["put", after, "lost"]);

    // Disaster: etcd dies on two of three nodes.
    console.emulator.kill_etcd(n2).await.expect("kill etcd");
    console.emulator.kill_etcd(n3).await.expect("kill etcd");
    let lost = console
        .wait_for("quorum restorable", Duration::from_secs(30), |h| {
            h.verdict.level == VerdictLevel::QuorumRestorable
        })
        .await;
    assert!(!lost.verdict.quorum.holds());
    assert_eq!(
        lost.members.len(),
        3,
        "the console still lists the members it last saw"
    );

    // Wipe EPHEMERAL on all three, as the guide says: reset --graceful=false --reboot.
    for node in [n1, n2, n3] {
        let mut admin = console.admin(node).await;
        admin
            .reset(machine::ResetRequest {
                graceful: false,
                reboot: true,
                system_partitions_to_wipe: vec![machine::ResetPartitionSpec {
                    label: "EPHEMERAL".into(),
                    wipe: true,
                }],
                user_disks_to_wipe: vec![],
                mode: 0,
            })
            .await
            .expect("reset accepted");
    }
    console
        .wait_for("etcd Preparing on every node", RECOVERY_PATIENCE, |h| {
            h.nodes.len() == 3
                && h.nodes.iter().all(|n| {
                    n.etcd_service
                        .as_ref()
                        .is_some_and(|s| s.state == ServiceState::Preparing)
                })
        })
        .await;

    // Recover from the snapshot on one node.
    let mut admin = console.admin(n1).await;
    let upload: Vec<common::Data> = snapshot
        .chunks(4096)
        .map(|c| common::Data {
            metadata: None,
            bytes: c.to_vec(),
        })
        .collect();
    admin
        .etcd_recover(futures::stream::iter(upload))
        .await
        .expect("snapshot uploaded");
    admin
        .bootstrap(machine::BootstrapRequest {
            recover_etcd: true,
            recover_skip_hash_check: false,
        })
        .await
        .expect("bootstrap accepted");

    let recovered = console
        .wait_for(
            "three healthy members after recovery",
            RECOVERY_PATIENCE,
            |h| {
                h.verdict.level == VerdictLevel::Healthy
                    && all_members(h, MemberState::Healthy)
                    && h.nodes
                        .iter()
                        .all(|n| n.members.as_ref().is_some_and(|m| m.len() == 3))
            },
        )
        .await;
    let lists: Vec<Vec<String>> = recovered
        .nodes
        .iter()
        .map(|n| {
            let mut ids: Vec<String> = n.members.iter().flatten().map(|m| m.id.clone()).collect();
            ids.sort();
            ids
        })
        .collect();
    assert!(
        lists.windows(2).all(|w| w[0] == w[1]),
        "member lists agree: {lists:?}"
    );

    assert_eq!(
        etcdctl(n1, &["get", "--print-value-only", before]).trim(),
        "kept"
    );
    assert_eq!(
        etcdctl(n1, &["get", "--print-value-only", after]).trim(),
        "",
        "a key written after the snapshot is gone"
    );
    console.emulator.shutdown().await;
}
