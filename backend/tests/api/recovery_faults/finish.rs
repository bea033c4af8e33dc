//! How every flow ends: the plan finished by the console itself, a healthy cluster with the
//! snapshot's data, exactly one executed reset per node and one bootstrap, an intact audit trail.

use std::collections::BTreeMap;

use talos_dr_shared::recovery::{IncidentStatus, StepKind, StepState, TimelineKind};

use super::cluster::{KEPT_KEY, LOST_KEY, etcdctl, value_of};
use super::flow::{PATIENCE, Recovery};

impl Recovery {
    /// The end of every flow: the console finishes the plan by itself, the cluster is healthy
    /// with three members and the snapshot's data, and every reset and the bootstrap reached
    /// the nodes exactly once.
    pub async fn finish(mut self) {
        self.wait_step(StepKind::PostCheck, None, "done", |s| {
            s.state == StepState::Done
        })
        .await;
        let view = self.view().await;
        if view.incident.status != IncidentStatus::Resolved {
            self.finding(format!(
                "after the post-checks passed the incident is {:?}, expected resolved",
                view.incident.status
            ));
        }
        for step in &view.steps {
            if step.state != StepState::Done {
                self.finding(format!(
                    "step {:?} on {:?} ended {:?}, expected done",
                    step.kind,
                    step.target.as_ref().map(|t| &t.hostname),
                    step.state
                ));
            }
        }
        self.cluster.wait_all_etcd_healthy(PATIENCE).await;
        let n1 = self.cluster.ip(0);
        let members = etcdctl(n1, &["member", "list"]).await;
        assert_eq!(
            members.lines().filter(|l| l.contains("started")).count(),
            3,
            "three started members: {members}"
        );
        for ip in self.cluster.ips() {
            etcdctl(ip, &["endpoint", "health"]).await;
        }
        assert_eq!(
            value_of(n1, KEPT_KEY).await,
            "kept",
            "the snapshot's data is back"
        );
        assert_eq!(
            value_of(n1, LOST_KEY).await,
            "",
            "a key written after the snapshot is gone"
        );

        let bootstrap_node = n1;
        for ip in self.cluster.ips() {
            let counts = self.cluster.executed(ip);
            assert_eq!(
                counts.reset,
                1,
                "exactly one executed reset on {ip}; counters:\n{}",
                self.cluster.counters()
            );
            let expected = u64::from(ip == bootstrap_node);
            assert_eq!(
                counts.bootstrap,
                expected,
                "bootstraps on {ip}; counters:\n{}",
                self.cluster.counters()
            );
        }
        self.check_audit_trail(&view).await;
        self.log(&format!(
            "finished after {} console starts; counters:\n{}",
            self.console.starts(),
            self.cluster.counters()
        ));
        let findings = std::mem::take(&mut self.findings);
        self.cluster.emulator.shutdown().await;
        assert!(
            findings.is_empty(),
            "the console differed from the contract:\n- {}\nconsole log: {}",
            findings.join("\n- "),
            self.console.log_path().display()
        );
    }

    /// After every kill the trail's hash chain is intact and holds one `ok` entry per action
    /// the people took (an entry lost to a kill or a busy database is a gap in the trail).
    /// Each outcome the console wrote on a destructive step's timeline has its `step_outcome`
    /// entry, written in the same transaction: a kill between them loses neither.
    async fn check_audit_trail(&mut self, view: &talos_dr_shared::recovery::IncidentView) {
        let (intact, words) = self.console.audit_verify().await;
        if !intact {
            self.finding(format!("talos-dr audit verify after the kills: {words}"));
        }
        let export = self.approver.get("/api/audit/export").await;
        assert!(export.ok(), "audit export: {export:?}");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for line in export.body.lines().filter(|l| !l.trim().is_empty()) {
            let entry: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("audit export line ({e}): {line}"));
            if entry["outcome"] == "ok"
                && let Some(action) = entry["action"].as_str()
            {
                *seen.entry(action.to_string()).or_default() += 1;
            }
        }
        let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
        for line in export.body.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line)
                && entry["action"] == "step_outcome"
                && let Some(target) = entry["target"].as_str()
            {
                *outcomes.entry(target.to_string()).or_default() += 1;
            }
        }
        for step in view.steps.iter().filter(|s| s.kind.is_destructive()) {
            let on_timeline = view
                .timeline
                .iter()
                .filter(|e| {
                    e.step_id.as_deref() == Some(step.id.as_str())
                        && e.actor.is_none()
                        && matches!(
                            e.kind,
                            TimelineKind::StepFinished | TimelineKind::StepFailed
                        )
                })
                .count();
            let target = format!("{}/{}", view.incident.id, step.id);
            let audited = outcomes.get(&target).copied().unwrap_or(0);
            if audited != on_timeline || on_timeline == 0 {
                self.finding(format!(
                    "{} on {:?}: {on_timeline} outcomes on the timeline, {audited} `step_outcome` audit entries",
                    step.kind.as_str(),
                    step.target.as_ref().map(|t| &t.hostname)
                ));
            }
        }
        let expected = self.expected_audit.clone();
        for (action, want) in expected {
            let got = seen.get(action).copied().unwrap_or(0);
            if got != want {
                self.finding(format!(
                    "the audit trail holds {got} ok `{action}` entries, expected {want}"
                ));
            }
        }
    }
}
