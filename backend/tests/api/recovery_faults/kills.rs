//! The kill points. Each scenario starts from a step that may be requested (planned or failed)
//! and first kills the console while the step is approved but not run, so every scenario also
//! checks that an approval survives a restart without the step running on its own.

use std::net::Ipv4Addr;
use std::time::Duration;

use talos_dr_shared::recovery::{ResolveOutcome, ResolveStepBody, StepKind, StepState};
use talos_emulator::node::RecoveryCall;

use super::flow::{PATIENCE, Recovery, SETTLE};

/// Long enough that only the kill ends it.
const HOLD: Duration = Duration::from_secs(300);

fn call_of(kind: StepKind) -> RecoveryCall {
    match kind {
        StepKind::ResetNode => RecoveryCall::Reset,
        StepKind::Bootstrap => RecoveryCall::Bootstrap,
        StepKind::StageControlplaneConfig => RecoveryCall::ApplyConfiguration,
        StepKind::RebootNode => RecoveryCall::Reboot,
        other => panic!("{other:?} makes no destructive call"),
    }
}

fn failpoint(kind: StepKind, point: &str) -> String {
    format!("{}:{point}", kind.as_str())
}

impl Recovery {
    fn executed(&self, kind: StepKind, node: Ipv4Addr) -> u64 {
        self.cluster.executed_on(node, call_of(kind))
    }

    /// Waits until every step of an earlier phase is done, so the request is not refused.
    async fn wait_turn(&self, kind: StepKind) {
        self.wait_view(&format!("every step before {kind:?} done"), |v| {
            v.steps
                .iter()
                .filter(|s| s.kind.phase() < kind.phase())
                .all(|s| s.state == StepState::Done)
        })
        .await;
    }

    /// Request, approve, then SIGKILL and start with `failpoints` armed: the step must still be
    /// approved, and nothing may have reached the node.
    async fn approve_then_restart(&mut self, kind: StepKind, node: Ipv4Addr, failpoints: &[&str]) {
        self.wait_turn(kind).await;
        let before = self.executed(kind, node);
        self.authorize(kind, node).await;
        self.log(&format!(
            "{kind:?} on {node} approved; killing the console before the run"
        ));
        self.restart(failpoints).await;
        tokio::time::sleep(SETTLE).await;
        let step = self.step(kind, Some(node)).await;
        assert_eq!(
            self.executed(kind, node),
            before,
            "{kind:?} on {node} reached the node without being run"
        );
        assert_eq!(
            step.state,
            StepState::Approved,
            "{kind:?} on {node} after a restart while approved: {:?}",
            step.detail
        );
    }

    /// Before: killed while approved, then run once after the restart.
    pub async fn killed_before_run(&mut self, kind: StepKind, node: Ipv4Addr) {
        let before = self.executed(kind, node);
        self.approve_then_restart(kind, node, &[]).await;
        self.run_to_done(kind, node).await;
        assert_eq!(
            self.executed(kind, node),
            before + 1,
            "{kind:?} on {node} ran once"
        );
        self.log(&format!("{kind:?} on {node}: before-run kill passed"));
    }

    /// No kill: request, approve, run.
    pub async fn plain_run(&mut self, kind: StepKind, node: Ipv4Addr) {
        self.wait_turn(kind).await;
        let before = self.executed(kind, node);
        self.authorize(kind, node).await;
        self.run_to_done(kind, node).await;
        assert_eq!(
            self.executed(kind, node),
            before + 1,
            "{kind:?} on {node} ran once"
        );
        self.log(&format!("{kind:?} on {node}: ran"));
    }

    /// During: the console stops right after writing `claimed`, before calling Talos. Ends with
    /// the step requestable again.
    pub async fn killed_after_claim(&mut self, kind: StepKind, node: Ipv4Addr) {
        let point = failpoint(kind, "after_claim");
        let before = self.executed(kind, node);
        self.approve_then_restart(kind, node, &[&point]).await;
        let hits = self.console.failpoint_hits(&point);
        self.run(kind, node).await;
        self.console.wait_failpoint(&point, hits, PATIENCE).await;
        let step = self.step(kind, Some(node)).await;
        if step.state != StepState::Claimed {
            self.finding(format!(
                "at {point} the step is {:?}, expected claimed",
                step.state
            ));
        }
        assert_eq!(
            self.executed(kind, node),
            before,
            "at {point} Talos was not called yet"
        );
        self.console.kill();
        self.log(&format!("killed at {point} on {node}"));
        self.start_again().await;
        self.judge_not_executed(kind, node, before, &point).await;
    }

    /// During: the console is killed while its call waits in the node (the emulator holds it),
    /// so the node never acts on it. Ends with the step requestable again.
    pub async fn killed_in_flight(&mut self, kind: StepKind, node: Ipv4Addr) {
        let call = call_of(kind);
        let before = self.executed(kind, node);
        self.approve_then_restart(kind, node, &[]).await;
        self.cluster.hold_next(node, call, HOLD);
        self.run(kind, node).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.cluster.in_hold(node, call) == 0 {
            if tokio::time::Instant::now() > deadline {
                let view = self.view().await;
                panic!(
                    "the {call} call never reached {node}: {}\nlog:\n{}",
                    super::steps::steps_summary(&view),
                    self.console.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.console.kill();
        self.log(&format!("killed with {call} in flight to {node}"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.cluster.in_hold(node, call) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the emulator kept the killed console's {call} call in its hold"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.cluster.hold_next(node, call, Duration::ZERO);
        assert_eq!(
            self.executed(kind, node),
            before,
            "the held {call} was dropped with its caller, not executed"
        );
        self.start_again().await;
        self.judge_not_executed(kind, node, before, "in flight")
            .await;
    }

    /// After a restart, a step whose call never took effect: the console must not send it on
    /// its own nor call it done; a person who checked the node asks for it again.
    async fn judge_not_executed(&mut self, kind: StepKind, node: Ipv4Addr, before: u64, at: &str) {
        let step = self
            .wait_step(kind, Some(node), "judged after the restart", |s| {
                !s.state.in_flight()
            })
            .await;
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            self.executed(kind, node),
            before,
            "{kind:?} on {node} was sent again on its own after a kill {at}; counters:\n{}",
            self.cluster.counters()
        );
        let now = self.step(kind, Some(node)).await;
        assert_eq!(now.state, step.state, "the step keeps still once judged");
        self.log(&format!(
            "after the kill {at}, {kind:?} on {node} is {:?} ({:?})",
            now.state, now.detail
        ));
        match now.state {
            StepState::Uncertain => {
                self.operator
                    .post_ok(
                        &self.step_path(&now, "resolve"),
                        &ResolveStepBody {
                            outcome: ResolveOutcome::Retry,
                            reason: "the node's boot id and etcd are unchanged: it never ran"
                                .into(),
                        },
                    )
                    .await;
                self.audited("step_resolve");
                self.wait_step(kind, Some(node), "requestable after retry", |s| {
                    matches!(s.state, StepState::Planned | StepState::Failed)
                })
                .await;
            }
            StepState::Planned | StepState::Failed => {}
            other => panic!(
                "after a kill {at} the node never acted, but {kind:?} on {node} is {other:?}: {:?}",
                now.detail
            ),
        }
    }

    /// After: the console stops at `point` (`after_call` or `after_sent`), when the node has
    /// acted. On restart it must see from the node that the step took effect.
    pub async fn killed_after_the_call(&mut self, kind: StepKind, node: Ipv4Addr, point: &str) {
        let point = failpoint(kind, point);
        let before = self.executed(kind, node);
        self.approve_then_restart(kind, node, &[&point]).await;
        let hits = self.console.failpoint_hits(&point);
        self.run(kind, node).await;
        self.console.wait_failpoint(&point, hits, PATIENCE).await;
        assert_eq!(
            self.executed(kind, node),
            before + 1,
            "at {point} Talos has answered: the node acted once"
        );
        let step = self.step(kind, Some(node)).await;
        let expected = if point.ends_with("after_call") {
            StepState::Claimed
        } else {
            StepState::Sent
        };
        if step.state != expected {
            self.finding(format!(
                "at {point} the step is {:?}, expected {expected:?}",
                step.state
            ));
        }
        self.console.kill();
        self.log(&format!("killed at {point} on {node}"));
        self.start_again().await;
        let judged = self
            .wait_step(kind, Some(node), "judged after the restart", |s| {
                !s.state.in_flight()
            })
            .await;
        tokio::time::sleep(SETTLE).await;
        assert_eq!(
            self.executed(kind, node),
            before + 1,
            "{kind:?} on {node} was sent again after a kill at {point}; counters:\n{}",
            self.cluster.counters()
        );
        self.log(&format!(
            "after the kill at {point}, {kind:?} on {node} is {:?} ({:?})",
            judged.state, judged.detail
        ));
        match judged.state {
            StepState::Done => {}
            StepState::Uncertain => {
                self.finding(format!(
                    "after a kill at {point} the node had acted ({kind:?} on {node}), but the console left the step uncertain instead of seeing it from the node: {:?}",
                    judged.detail
                ));
                self.operator
                    .post_ok(
                        &self.step_path(&judged, "resolve"),
                        &ResolveStepBody {
                            outcome: ResolveOutcome::Done,
                            reason: "the node rebooted / etcd restored: it took effect".into(),
                        },
                    )
                    .await;
                self.audited("step_resolve");
                self.wait_step(kind, Some(node), "done after resolve", |s| {
                    s.state == StepState::Done
                })
                .await;
            }
            other => panic!(
                "after a kill at {point} the node had acted, but {kind:?} on {node} is {other:?}: {:?}",
                judged.detail
            ),
        }
    }
}
