//! Which actions the incident page offers on each step, from the same guard rails the console
//! enforces (`talos_dr_shared::recovery` rules), and the words the page uses for steps. Pure, so
//! it is tested on the host.

use talos_dr_shared::Role;
use talos_dr_shared::recovery::{
    ApprovalBody, Decision, IncidentStatus, IncidentView, RecoveryStep, StepKind, StepState,
    check_approval, check_request, check_run, phase_open,
};

use crate::format::Tone;

/// What the signed-in person may do on one step right now (the console re-checks each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOffers {
    pub request: bool,
    pub approve: bool,
    pub break_glass: bool,
    pub run: bool,
    /// Mark an uncertain or failed step done (a person checked the node) or plan it again.
    pub resolve: bool,
    /// Mark a replaced node as re-created from its machine-config backup.
    pub recreate: bool,
    /// Why an approver who is looking cannot approve, or why an approved step cannot run.
    pub why_not: Option<String>,
}

pub fn step_offers(
    view: &IncidentView,
    step: &RecoveryStep,
    me: &str,
    roles: &[Role],
    now_ms: i64,
) -> StepOffers {
    let mut offers = StepOffers::default();
    if view.incident.status != IncidentStatus::Open {
        return offers;
    }
    let operator = roles.iter().any(|r| r.grants(Role::Operator));
    let policy = &view.incident.policy;
    offers.request = check_request(&view.steps, step, roles, "reason").is_ok();
    let approve = ApprovalBody {
        decision: Decision::Approve,
        reason: None,
        break_glass: false,
    };
    match check_approval(step, me, roles, &approve, policy) {
        Ok(()) => offers.approve = true,
        Err(why)
            if step.state == StepState::Requested
                && roles.iter().any(|r| r.grants(Role::Approver)) =>
        {
            offers.why_not = Some(why.to_string());
        }
        Err(_) => {}
    }
    let break_glass = ApprovalBody {
        decision: Decision::Approve,
        reason: Some("reason".into()),
        break_glass: true,
    };
    offers.break_glass = check_approval(step, me, roles, &break_glass, policy).is_ok();
    if step.state == StepState::Approved && operator {
        // The console compares the target's state now with the one approved; the page only
        // knows what the approvers saw, so it checks expiry and counts here.
        let seen = step
            .approvals
            .last()
            .map(|a| a.target_state.clone())
            .unwrap_or_default();
        let hostname = step
            .target
            .as_ref()
            .map(|t| t.hostname.clone())
            .unwrap_or_default();
        match check_run(&view.steps, step, roles, &hostname, policy, now_ms, &seen) {
            Ok(()) => offers.run = true,
            Err(why) => offers.why_not = Some(why.to_string()),
        }
    }
    let earlier_done = phase_open(&view.steps, step).is_ok();
    offers.resolve = operator && matches!(step.state, StepState::Uncertain | StepState::Failed);
    offers.recreate = operator
        && step.kind == StepKind::RecreateNode
        && step.state == StepState::Planned
        && earlier_done;
    offers
}

/// A step's state in words and tone; never colour alone.
pub fn state_words(state: StepState) -> (Tone, &'static str) {
    match state {
        StepState::Planned => (Tone::Unknown, "planned"),
        StepState::Requested => (Tone::Warn, "requested: waiting for approval"),
        StepState::Approved => (Tone::Warn, "approved: ready to run"),
        StepState::Claimed => (Tone::Warn, "running"),
        StepState::Sent => (Tone::Warn, "sent: watching the node"),
        StepState::Done => (Tone::Good, "done"),
        StepState::Failed => (Tone::Bad, "failed"),
        StepState::Uncertain => (Tone::Bad, "uncertain: check the node"),
    }
}

/// The destructive button's words: the action, the node by name and address, and what goes.
pub fn run_label(step: &RecoveryStep) -> String {
    let Some(t) = &step.target else {
        return format!("Run: {}", step.kind.title());
    };
    let node = format!("{} ({})", t.hostname, t.address);
    match step.kind {
        StepKind::ResetNode => format!(
            "Reset {node}: wipe {}",
            if step.params.wipe_labels.is_empty() {
                "?".to_string()
            } else {
                step.params.wipe_labels.join(", ")
            }
        ),
        StepKind::StageControlplaneConfig => {
            format!("Stage machine.type: controlplane on {node}")
        }
        StepKind::RebootNode => format!("Reboot {node}"),
        StepKind::Bootstrap => {
            let sha = step
                .params
                .snapshot_sha256
                .as_deref()
                .map(|s| &s[..s.len().min(12)])
                .unwrap_or("?");
            let skip = if step.params.skip_hash_check {
                ", skip hash check"
            } else {
                ""
            };
            format!("Bootstrap etcd on {node} from snapshot {sha}{skip}")
        }
        other => format!("{} on {node}", other.title()),
    }
}

/// The first step that is not done: where the incident stands.
pub fn current_step(view: &IncidentView) -> Option<&RecoveryStep> {
    view.steps.iter().find(|s| s.state != StepState::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use talos_dr_shared::MachineType;
    use talos_dr_shared::recovery::{
        Approval, ApprovalPolicy, Incident, StepParams, StepRequest, StepTarget,
    };

    fn step(position: u32, kind: StepKind, state: StepState) -> RecoveryStep {
        RecoveryStep {
            id: format!("s{position}"),
            incident_id: "i1".into(),
            position,
            kind,
            target: Some(StepTarget {
                hostname: "cp-2".into(),
                address: "10.5.0.3".into(),
                machine_type: MachineType::Controlplane,
                member_id: Some("8e9e05c52164694d".into()),
            }),
            params: StepParams {
                wipe_labels: vec!["EPHEMERAL".into()],
                ..StepParams::default()
            },
            state,
            talosctl: String::new(),
            request: None,
            approvals: Vec::new(),
            run_by: None,
            started_at_ms: None,
            finished_at_ms: None,
            deadline_at_ms: None,
            progress: None,
            detail: None,
        }
    }

    fn incident_view(steps: Vec<RecoveryStep>) -> IncidentView {
        IncidentView {
            incident: Incident {
                id: "i1".into(),
                cluster: "prod".into(),
                status: IncidentStatus::Open,
                reason: "etcd down on two nodes".into(),
                opened_by: "alice".into(),
                opened_at_ms: 0,
                closed_by: None,
                closed_at_ms: None,
                summary: None,
                precheck: None,
                precheck_override: None,
                snapshot: None,
                bootstrap_node: None,
                policy: ApprovalPolicy::default(),
            },
            steps,
            timeline: Vec::new(),
            watchers: Vec::new(),
        }
    }

    fn requested_by(mut s: RecoveryStep, who: &str) -> RecoveryStep {
        s.state = StepState::Requested;
        s.request = Some(StepRequest {
            by: who.into(),
            at_ms: 0,
            reason: "etcd data is broken".into(),
            target_state: "x".into(),
        });
        s
    }

    #[test]
    fn an_operator_may_request_a_destructive_step_once_earlier_phases_are_done() {
        let view = incident_view(vec![
            step(0, StepKind::PreCheck, StepState::Done),
            step(1, StepKind::ResetNode, StepState::Planned),
        ]);
        let offers = step_offers(&view, &view.steps[1], "alice", &[Role::Operator], 0);
        assert!(offers.request);
        assert!(!offers.approve);
        let viewer = step_offers(&view, &view.steps[1], "bob", &[Role::Viewer], 0);
        assert_eq!(viewer, StepOffers::default());

        let blocked = incident_view(vec![
            step(0, StepKind::PreCheck, StepState::Planned),
            step(1, StepKind::ResetNode, StepState::Planned),
        ]);
        assert!(!step_offers(&blocked, &blocked.steps[1], "alice", &[Role::Operator], 0).request);
    }

    #[test]
    fn the_requester_is_never_offered_approval_but_an_admin_may_break_glass() {
        let view = incident_view(vec![requested_by(
            step(0, StepKind::ResetNode, StepState::Planned),
            "alice",
        )]);
        let own = step_offers(
            &view,
            &view.steps[0],
            "alice",
            &[Role::Operator, Role::Approver, Role::Admin],
            0,
        );
        assert!(!own.approve);
        assert!(own.break_glass);
        assert!(own.why_not.is_some_and(|w| w.contains("someone else")));
        let approver = step_offers(&view, &view.steps[0], "bob", &[Role::Approver], 0);
        assert!(approver.approve);
        assert!(!approver.break_glass);
    }

    #[test]
    fn an_expired_approval_is_not_offered_to_run() {
        let mut s = step(0, StepKind::ResetNode, StepState::Approved);
        s.approvals.push(Approval {
            by: "bob".into(),
            decision: Decision::Approve,
            at_ms: 0,
            expires_at_ms: 1_000,
            reason: None,
            break_glass: false,
            target_state: "x".into(),
        });
        let view = incident_view(vec![s]);
        assert!(step_offers(&view, &view.steps[0], "alice", &[Role::Operator], 500).run);
        let late = step_offers(&view, &view.steps[0], "alice", &[Role::Operator], 2_000);
        assert!(!late.run);
        assert!(late.why_not.is_some_and(|w| w.contains("expired")));
    }

    #[test]
    fn the_destructive_button_names_action_node_and_what_is_wiped() {
        let s = step(0, StepKind::ResetNode, StepState::Approved);
        assert_eq!(run_label(&s), "Reset cp-2 (10.5.0.3): wipe EPHEMERAL");
        let mut b = step(0, StepKind::Bootstrap, StepState::Approved);
        b.params.snapshot_sha256 = Some("0123456789abcdef".into());
        b.params.skip_hash_check = true;
        assert_eq!(
            run_label(&b),
            "Bootstrap etcd on cp-2 (10.5.0.3) from snapshot 0123456789ab, skip hash check"
        );
    }

    #[test]
    fn every_state_has_a_word() {
        for s in [
            StepState::Planned,
            StepState::Requested,
            StepState::Approved,
            StepState::Claimed,
            StepState::Sent,
            StepState::Done,
            StepState::Failed,
            StepState::Uncertain,
        ] {
            assert!(!state_words(s).1.is_empty());
        }
    }
}
