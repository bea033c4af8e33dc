//! The people's side of a step: finding it, waiting for it, asking, approving, running, and
//! the console's restarts between them.

use std::net::Ipv4Addr;
use std::time::Duration;

use talos_dr_shared::recovery::{
    ApprovalBody, Decision, IncidentView, RecoveryStep, RunStepBody, StepKind, StepRequestBody,
    StepState,
};

use super::flow::{APPROVER, OPERATOR, PATIENCE, RUN_ANSWER, Recovery};
use super::people::{Answer, Person};

impl Recovery {
    pub fn path(&self, rest: &str) -> String {
        format!("/api/incidents/{}{rest}", self.incident)
    }

    pub fn step_path(&self, step: &RecoveryStep, action: &str) -> String {
        self.path(&format!("/steps/{}/{action}", step.id))
    }

    pub async fn view(&self) -> IncidentView {
        self.operator.get_json(&self.path("")).await
    }

    /// The step of `kind` on `node` (or the untargeted one).
    pub fn find(
        view: &IncidentView,
        kind: StepKind,
        node: Option<Ipv4Addr>,
    ) -> Option<&RecoveryStep> {
        view.steps.iter().find(|s| {
            s.kind == kind
                && match (node, &s.target) {
                    (Some(ip), Some(t)) => host_of(&t.address) == ip.to_string(),
                    (None, _) => true,
                    (Some(_), None) => false,
                }
        })
    }

    pub async fn step(&self, kind: StepKind, node: Option<Ipv4Addr>) -> RecoveryStep {
        let view = self.view().await;
        Self::find(&view, kind, node)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind:?} step on {node:?}: {}", steps_summary(&view)))
    }

    pub async fn wait_view(
        &self,
        what: &str,
        pred: impl Fn(&IncidentView) -> bool,
    ) -> IncidentView {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let view = self.view().await;
            if pred(&view) {
                return view;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "waited {PATIENCE:?} for {what}; incident: {}\ncounters:\n{}\netcd: {}\nconsole log:\n{}",
                    steps_summary(&view),
                    self.cluster.counters(),
                    self.cluster.etcd_states(),
                    self.console.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn wait_step(
        &self,
        kind: StepKind,
        node: Option<Ipv4Addr>,
        what: &str,
        pred: impl Fn(&RecoveryStep) -> bool,
    ) -> RecoveryStep {
        let view = self
            .wait_view(&format!("{kind:?} on {node:?} {what}"), |v| {
                Self::find(v, kind, node).is_some_and(&pred)
            })
            .await;
        Self::find(&view, kind, node).cloned().expect("found above")
    }

    /// The operator asks with a reason, the approver approves.
    pub async fn authorize(&mut self, kind: StepKind, node: Ipv4Addr) -> RecoveryStep {
        let step = self.step(kind, Some(node)).await;
        self.operator
            .post_ok(
                &self.step_path(&step, "request"),
                &StepRequestBody {
                    reason: format!("{} as the recovery plan says", kind.title()),
                },
            )
            .await;
        self.audited("step_request");
        self.wait_step(kind, Some(node), "requested", |s| {
            s.state == StepState::Requested
        })
        .await;
        self.approver
            .post_ok(
                &self.step_path(&step, "approvals"),
                &ApprovalBody {
                    decision: Decision::Approve,
                    reason: Some("checked the target and the plan".into()),
                    break_glass: false,
                },
            )
            .await;
        self.audited("step_answer");
        self.wait_step(kind, Some(node), "approved", |s| {
            s.state == StepState::Approved
        })
        .await
    }

    /// The operator runs the step, typing its hostname. The console answers once the claim is
    /// written; a console stopped (failpoint) before it answers is no error: the kill follows.
    pub async fn run(&mut self, kind: StepKind, node: Ipv4Addr) {
        let step = self.step(kind, Some(node)).await;
        let hostname = step
            .target
            .as_ref()
            .map(|t| t.hostname.clone())
            .expect("a destructive step names its target");
        let request = self
            .operator
            .post_request(
                &self.step_path(&step, "run"),
                &RunStepBody {
                    confirm_hostname: hostname,
                },
            )
            .timeout(PATIENCE);
        let mut task = tokio::spawn(async move {
            let response = request.send().await.ok()?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            Some(Answer { status, body })
        });
        match tokio::time::timeout(RUN_ANSWER, &mut task).await {
            Ok(joined) => {
                let answer = joined
                    .expect("the run task")
                    .unwrap_or_else(|| panic!("run {kind:?} on {node}: no answer"));
                assert!(answer.ok(), "run {kind:?} on {node}: {answer:?}");
                self.audited("step_run");
            }
            Err(_) => self.log(&format!(
                "run {kind:?} on {node} not answered within {RUN_ANSWER:?}"
            )),
        }
    }

    /// Runs the step and waits until it is done.
    pub async fn run_to_done(&mut self, kind: StepKind, node: Ipv4Addr) {
        self.run(kind, node).await;
        self.wait_step(kind, Some(node), "done", |s| s.state == StepState::Done)
            .await;
    }

    /// The console is killed and started again; people sign in again (new connections).
    pub async fn restart(&mut self, failpoints: &[&str]) {
        self.console.restart(failpoints).await;
        self.operator = Person::sign_in(&self.console.address, OPERATOR).await;
        self.approver = Person::sign_in(&self.console.address, APPROVER).await;
    }

    pub async fn start_again(&mut self) {
        self.console.start(&[]).await;
        self.operator = Person::sign_in(&self.console.address, OPERATOR).await;
        self.approver = Person::sign_in(&self.console.address, APPROVER).await;
    }
}

/// `10.0.0.2` from `10.0.0.2` or `10.0.0.2:50000`.
pub fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => address,
    }
}

pub fn steps_summary(view: &IncidentView) -> String {
    let steps: Vec<String> = view
        .steps
        .iter()
        .map(|s| {
            format!(
                "{}:{}@{} {}{}",
                s.position,
                s.kind.as_str(),
                s.target
                    .as_ref()
                    .map(|t| t.hostname.as_str())
                    .unwrap_or("-"),
                s.state.as_str(),
                s.detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} [{}]\n  {}",
        view.incident.id,
        view.incident.status.as_str(),
        steps.join("\n  ")
    )
}
