//! One recovery driven through the API by an operator and an approver: the cluster, the
//! disaster, the incident and its plan, up to the first destructive step.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use talos_dr_shared::recovery::{
    ChooseSnapshotRequest, OpenIncidentRequest, OverrideRequest, SnapshotCandidate, StepKind,
    StepState, precheck_needs_override,
};
use talos_dr_shared::snapshots::SnapshotResponse;
use talos_dr_shared::{ClusterHealth, VerdictLevel};
use tempfile::TempDir;

use super::cluster::{FaultCluster, KEPT_KEY, LOST_KEY, etcdctl};
use super::console::{CLUSTER, ConsoleProcess};
use super::people::Person;

/// Anything the console does by itself (checks, waits, restores) on a busy two-core machine.
pub const PATIENCE: Duration = Duration::from_secs(180);
/// How long a step must keep still after a restart to count as "not sent on its own".
pub const SETTLE: Duration = Duration::from_secs(4);
/// The run route answers once the claim is written.
pub const RUN_ANSWER: Duration = Duration::from_secs(15);

pub const OPERATOR: &str = "operator";
pub const APPROVER: &str = "approver";

pub struct Recovery {
    pub cluster: FaultCluster,
    pub console: ConsoleProcess,
    pub operator: Person,
    pub approver: Person,
    pub incident: String,
    pub snapshot_id: String,
    /// Where the console was seen to differ from the contract; the flow goes on as a person
    /// would, and the test fails at the end listing them all.
    pub findings: Vec<String>,
    /// Audit entries with outcome `ok` the trail must hold, by action, for what was done here.
    pub expected_audit: BTreeMap<&'static str, usize>,
    started: Instant,
    _dir: TempDir,
}

impl Recovery {
    /// A healthy cluster with data, a verified snapshot taken through the console, more data,
    /// then etcd killed on two nodes; an incident opened, pre-checks passed (overridden when
    /// quorum could still come back), the snapshot chosen with the first node to bootstrap on.
    pub async fn set_up(octet: u8) -> Recovery {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster =
            FaultCluster::start(Ipv4Addr::new(127, 0, octet, 2), &dir.path().join("cluster")).await;
        let listen = SocketAddr::from((Ipv4Addr::new(127, 0, octet, 200), 18080));
        // Kept after the test (the next run starts it afresh): the console's log and database
        // are what explains a failure.
        let console_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("recovery_faults-{octet}"));
        let _ = std::fs::remove_dir_all(&console_dir);
        std::fs::create_dir_all(&console_dir).expect("the console's directory");
        let mut console = ConsoleProcess::prepare(
            &console_dir,
            listen,
            &cluster.talosconfig(),
            &[(OPERATOR, "operator"), (APPROVER, "approver")],
        )
        .await;
        console.start(&[]).await;
        let operator = Person::sign_in(&console.address, OPERATOR).await;
        let approver = Person::sign_in(&console.address, APPROVER).await;
        let mut recovery = Recovery {
            cluster,
            console,
            operator,
            approver,
            incident: String::new(),
            snapshot_id: String::new(),
            findings: Vec::new(),
            expected_audit: BTreeMap::new(),
            started,
            _dir: dir,
        };
        recovery.log("cluster and console up");
        recovery.prepare_disaster().await;
        recovery.open_incident().await;
        recovery
    }

    pub fn log(&self, what: &str) {
        eprintln!(
            "[recovery_faults {:>6.1}s] {what}",
            self.started.elapsed().as_secs_f64()
        );
    }

    pub fn audited(&mut self, action: &'static str) {
        *self.expected_audit.entry(action).or_default() += 1;
    }

    pub fn finding(&mut self, text: String) {
        self.log(&format!("FINDING: {text}"));
        self.findings.push(text);
    }

    async fn health(&self) -> Option<ClusterHealth> {
        let answer = self
            .operator
            .get(&format!("/api/clusters/{CLUSTER}/health"))
            .await;
        if !answer.ok() {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(&answer.body).ok()?;
        serde_json::from_value(body["health"].clone()).ok()
    }

    async fn wait_health(&self, what: &str, pred: impl Fn(&ClusterHealth) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = None;
        loop {
            if let Some(h) = self.health().await {
                if pred(&h) {
                    return;
                }
                last = Some(format!("{:?}: {}", h.verdict.level, h.verdict.summary));
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the console never showed {what}; last: {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn prepare_disaster(&mut self) {
        self.wait_health("a healthy cluster", |h| {
            h.verdict.level == VerdictLevel::Healthy
        })
        .await;
        let n1 = self.cluster.ip(0);
        etcdctl(n1, &["put", KEPT_KEY, "kept"]).await;
        let taken = self
            .operator
            .post_ok(
                &format!("/api/clusters/{CLUSTER}/snapshots"),
                &serde_json::json!({}),
            )
            .await;
        let taken: SnapshotResponse = taken.json();
        assert!(
            !taken.snapshot.failed(),
            "the snapshot was stored: {:?}",
            taken.snapshot.failure
        );
        self.snapshot_id = taken.snapshot.id.clone();
        etcdctl(n1, &["put", LOST_KEY, "lost"]).await;
        self.cluster.break_etcd().await;
        self.wait_health("quorum lost", |h| {
            matches!(
                h.verdict.level,
                VerdictLevel::QuorumRestorable | VerdictLevel::FullRecoveryNeeded
            )
        })
        .await;
        self.log("snapshot taken, etcd broken on two nodes");
    }

    async fn open_incident(&mut self) {
        let opened = self
            .operator
            .post_ok(
                &format!("/api/clusters/{CLUSTER}/incidents"),
                &OpenIncidentRequest {
                    reason: "etcd lost quorum on two of three nodes".into(),
                },
            )
            .await;
        self.audited("incident_open");
        let body: serde_json::Value = opened.json();
        self.incident = body["incident"]["id"]
            .as_str()
            .or(body["id"].as_str())
            .unwrap_or_else(|| panic!("the opened incident's id: {}", opened.body))
            .to_string();

        let view = self
            .wait_view("the pre-check report", |v| v.incident.precheck.is_some())
            .await;
        let verdict = view.incident.precheck.as_ref().map(|p| p.verdict);
        if verdict.is_some_and(precheck_needs_override) {
            self.operator
                .post_ok(
                    &self.path("/precheck/override"),
                    &OverrideRequest {
                        reason: "two members are gone; restoring the snapshot is faster".into(),
                    },
                )
                .await;
            self.audited("incident_precheck_override");
        }
        self.wait_step(StepKind::PreCheck, None, "done", |s| {
            s.state == StepState::Done
        })
        .await;

        let candidates: serde_json::Value = self
            .operator
            .get_json(&self.path("/snapshot-candidates"))
            .await;
        let list = candidates
            .get("candidates")
            .cloned()
            .unwrap_or(candidates.clone());
        let candidates: Vec<SnapshotCandidate> = serde_json::from_value(list)
            .unwrap_or_else(|e| panic!("snapshot candidates ({e}): {candidates}"));
        let ours = candidates
            .iter()
            .find(|c| c.snapshot_id == self.snapshot_id)
            .unwrap_or_else(|| panic!("our snapshot among the candidates: {candidates:?}"));
        assert!(ours.offered, "our verified snapshot is offered: {ours:?}");
        self.operator
            .post_ok(
                &self.path("/snapshot"),
                &ChooseSnapshotRequest {
                    snapshot_id: self.snapshot_id.clone(),
                    bootstrap_node: Some(self.cluster.ip(0).to_string()),
                },
            )
            .await;
        self.audited("incident_snapshot_choose");
        let view = self
            .wait_view("the plan", |v| {
                v.steps
                    .iter()
                    .filter(|s| s.kind == StepKind::ResetNode)
                    .count()
                    == 3
                    && v.steps.iter().any(|s| s.kind == StepKind::Bootstrap)
            })
            .await;
        let resets = view
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::ResetNode)
            .filter_map(|s| s.target.as_ref().map(|t| t.hostname.clone()))
            .collect::<Vec<_>>();
        self.log(&format!(
            "incident {} planned: {} steps, resets on {resets:?}",
            self.incident,
            view.steps.len()
        ));
    }
}
