use super::*;
use crate::access::Role;

mod etcd_volume;

fn node(address: &str, hostname: &str, machine_type: MachineType, reachable: bool) -> PlanNode {
    PlanNode {
        address: address.into(),
        hostname: hostname.into(),
        machine_type,
        reachable,
        member_id: Some(format!("{:016x}", address.len())),
        etcd_volume: EtcdDataVolume::Directory,
    }
}

fn snapshot(skip: bool) -> ChosenSnapshot {
    ChosenSnapshot {
        snapshot_id: "s1".into(),
        sha256: "ab".repeat(32),
        kind: if skip {
            SnapshotEntryKind::RawCopy
        } else {
            SnapshotEntryKind::Snapshot
        },
        figures: None,
        size_bytes: 10,
        taken_at_ms: 0,
        skip_hash_check: skip,
        chosen_by: "op".into(),
        chosen_at_ms: 0,
    }
}

fn steps_from(plan: Vec<PlannedStep>) -> Vec<RecoveryStep> {
    plan.into_iter()
        .enumerate()
        .map(|(i, p)| RecoveryStep {
            id: format!("step-{i}"),
            incident_id: "i".into(),
            position: i as u32,
            kind: p.kind,
            target: p.target,
            params: p.params,
            state: StepState::Planned,
            talosctl: p.talosctl,
            request: None,
            approvals: vec![],
            run_by: None,
            started_at_ms: None,
            finished_at_ms: None,
            deadline_at_ms: None,
            progress: None,
            detail: None,
        })
        .collect()
}

fn approval(by: &str, at: i64, state: &str, break_glass: bool) -> Approval {
    Approval {
        by: by.into(),
        decision: Decision::Approve,
        at_ms: at,
        expires_at_ms: at + ApprovalPolicy::default().approval_ttl_ms,
        reason: None,
        break_glass,
        target_state: state.into(),
    }
}

#[test]
fn plan_converts_init_nodes_resets_reachable_ones_and_recreates_the_others() {
    let nodes = [
        node("10.0.0.2", "cp-1", MachineType::Init, true),
        node("10.0.0.3", "cp-2", MachineType::Controlplane, true),
        node("10.0.0.4", "cp-3", MachineType::Controlplane, false),
    ];
    let plan = build_plan(&nodes, &snapshot(false), "10.0.0.3");
    let kinds: Vec<(StepKind, Option<&str>)> = plan
        .iter()
        .map(|s| (s.kind, s.target.as_ref().map(|t| t.hostname.as_str())))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (StepKind::PreCheck, None),
            (StepKind::ChooseSnapshot, None),
            (StepKind::StageControlplaneConfig, Some("cp-1")),
            (StepKind::RebootNode, Some("cp-1")),
            (StepKind::ResetNode, Some("cp-1")),
            (StepKind::ResetNode, Some("cp-2")),
            (StepKind::RecreateNode, Some("cp-3")),
            (StepKind::WaitPreparing, None),
            (StepKind::UploadSnapshot, Some("cp-2")),
            (StepKind::Bootstrap, Some("cp-2")),
            (StepKind::WaitHealthy, Some("cp-2")),
            (StepKind::PostCheck, None),
        ]
    );
    // Phases never go backwards along the plan.
    assert!(
        plan.windows(2)
            .all(|w| w[0].kind.phase() <= w[1].kind.phase())
    );
    for reset in plan.iter().filter(|s| s.kind == StepKind::ResetNode) {
        assert_eq!(reset.params.wipe_labels, vec!["EPHEMERAL".to_string()]);
        assert!(
            reset
                .talosctl
                .contains("--graceful=false --reboot --system-labels-to-wipe=EPHEMERAL")
        );
    }
}

#[test]
fn a_raw_copy_bootstraps_with_skip_hash_check_and_an_etcd_volume_is_wiped_instead_of_ephemeral() {
    let mut n = node("10.0.0.2", "cp-1", MachineType::Controlplane, true);
    n.etcd_volume = EtcdDataVolume::Partition { location: None };
    let plan = build_plan(&[n], &snapshot(true), "10.0.0.2");
    let bootstrap = plan
        .iter()
        .find(|s| s.kind == StepKind::Bootstrap)
        .expect("a bootstrap step");
    assert!(bootstrap.params.skip_hash_check);
    assert!(bootstrap.talosctl.ends_with("--recover-skip-hash-check"));
    let reset = plan
        .iter()
        .find(|s| s.kind == StepKind::ResetNode)
        .expect("a reset step");
    assert_eq!(reset.params.wipe_labels, vec!["ETCD".to_string()]);
}

#[test]
fn a_step_is_requested_only_after_earlier_phases_by_an_operator_with_a_reason() {
    let nodes = [node("10.0.0.2", "cp-1", MachineType::Controlplane, true)];
    let mut steps = steps_from(build_plan(&nodes, &snapshot(false), "10.0.0.2"));
    let reset = steps
        .iter()
        .position(|s| s.kind == StepKind::ResetNode)
        .expect("a reset step");
    assert!(matches!(
        check_request(&steps, &steps[reset], &[Role::Operator], "etcd broken"),
        Err(Refusal::EarlierStepOpen { .. })
    ));
    steps[0].state = StepState::Done;
    steps[1].state = StepState::Done;
    assert_eq!(
        check_request(&steps, &steps[reset], &[Role::Viewer], "etcd broken"),
        Err(Refusal::NeedsRole(Role::Operator))
    );
    assert_eq!(
        check_request(&steps, &steps[reset], &[Role::Operator], "  "),
        Err(Refusal::ReasonMissing)
    );
    assert_eq!(
        check_request(&steps, &steps[reset], &[Role::Operator], "etcd broken"),
        Ok(())
    );
    assert_eq!(
        check_request(&steps, &steps[0], &[Role::Operator], "x"),
        Err(Refusal::NotDestructive)
    );
}

fn requested_reset() -> (Vec<RecoveryStep>, usize) {
    let nodes = [node("10.0.0.2", "cp-1", MachineType::Controlplane, true)];
    let mut steps = steps_from(build_plan(&nodes, &snapshot(false), "10.0.0.2"));
    steps[0].state = StepState::Done;
    steps[1].state = StepState::Done;
    let reset = steps
        .iter()
        .position(|s| s.kind == StepKind::ResetNode)
        .expect("a reset step");
    steps[reset].state = StepState::Requested;
    steps[reset].request = Some(StepRequest {
        by: "op".into(),
        at_ms: 0,
        reason: "etcd broken".into(),
        target_state: "s0".into(),
    });
    (steps, reset)
}

#[test]
fn the_requester_cannot_approve_and_break_glass_is_admin_only_and_can_be_switched_off() {
    let (steps, reset) = requested_reset();
    let policy = ApprovalPolicy::default();
    let approve = ApprovalBody {
        decision: Decision::Approve,
        reason: None,
        break_glass: false,
    };
    assert_eq!(
        check_approval(
            &steps[reset],
            "op",
            &[Role::Operator, Role::Approver],
            &approve,
            &policy
        ),
        Err(Refusal::SelfApproval)
    );
    assert_eq!(
        check_approval(&steps[reset], "ap", &[Role::Operator], &approve, &policy),
        Err(Refusal::NeedsRole(Role::Approver))
    );
    assert_eq!(
        check_approval(&steps[reset], "ap", &[Role::Approver], &approve, &policy),
        Ok(())
    );
    let glass = ApprovalBody {
        decision: Decision::Approve,
        reason: Some("approver unreachable at 3 a.m.".into()),
        break_glass: true,
    };
    assert_eq!(
        check_approval(&steps[reset], "op", &[Role::Operator], &glass, &policy),
        Err(Refusal::BreakGlassNeedsAdmin)
    );
    assert_eq!(
        check_approval(&steps[reset], "op", &[Role::Admin], &glass, &policy),
        Ok(())
    );
    let off = ApprovalPolicy {
        break_glass_allowed: false,
        ..policy
    };
    assert_eq!(
        check_approval(&steps[reset], "op", &[Role::Admin], &glass, &off),
        Err(Refusal::BreakGlassOff)
    );
    let deny = ApprovalBody {
        decision: Decision::Deny,
        reason: None,
        break_glass: false,
    };
    assert_eq!(
        check_approval(&steps[reset], "ap", &[Role::Approver], &deny, &policy),
        Err(Refusal::ReasonMissing)
    );
}

#[test]
fn approvals_expire_and_are_void_once_the_target_changed() {
    let (mut steps, reset) = requested_reset();
    let policy = ApprovalPolicy::default();
    steps[reset]
        .approvals
        .push(approval("ap", 1_000, "s0", false));
    let step = &steps[reset];
    assert_eq!(
        approval_standing(step, &policy, 2_000, "s0"),
        ApprovalStanding::Enough
    );
    assert_eq!(
        approval_standing(step, &policy, 1_000 + policy.approval_ttl_ms, "s0"),
        ApprovalStanding::Missing(Refusal::ApprovalExpired)
    );
    assert!(matches!(
        approval_standing(step, &policy, 2_000, "s1"),
        ApprovalStanding::Missing(Refusal::ApprovalVoided { .. })
    ));
    let two = ApprovalPolicy {
        approvals_required: 2,
        ..policy
    };
    assert_eq!(
        approval_standing(step, &two, 2_000, "s0"),
        ApprovalStanding::Missing(Refusal::NotEnoughApprovals { have: 1, need: 2 })
    );
}

#[test]
fn running_needs_the_exact_hostname_and_standing_approvals() {
    let (mut steps, reset) = requested_reset();
    let policy = ApprovalPolicy::default();
    steps[reset]
        .approvals
        .push(approval("ap", 1_000, "s0", false));
    steps[reset].state = StepState::Approved;
    let run = |typed: &str, now: i64, state: &str| {
        check_run(
            &steps,
            &steps[reset],
            &[Role::Operator],
            typed,
            &policy,
            now,
            state,
        )
    };
    assert_eq!(run("cp-1", 2_000, "s0"), Ok(()));
    assert!(matches!(
        run("cp-2", 2_000, "s0"),
        Err(Refusal::WrongHostname { .. })
    ));
    assert!(matches!(
        run("CP-1", 2_000, "s0"),
        Err(Refusal::WrongHostname { .. })
    ));
    assert!(matches!(
        run("cp-1", 2_000, "s1"),
        Err(Refusal::ApprovalVoided { .. })
    ));
    assert_eq!(
        check_run(
            &steps,
            &steps[reset],
            &[Role::Viewer],
            "cp-1",
            &policy,
            2_000,
            "s0"
        ),
        Err(Refusal::NeedsRole(Role::Operator))
    );
}

#[test]
fn only_a_lost_quorum_goes_on_without_an_override() {
    assert!(!precheck_needs_override(VerdictLevel::FullRecoveryNeeded));
    for level in [
        VerdictLevel::Healthy,
        VerdictLevel::Degraded,
        VerdictLevel::QuorumRestorable,
        VerdictLevel::Unknown,
    ] {
        assert!(precheck_needs_override(level));
    }
}

#[test]
fn step_kinds_and_states_round_trip_through_their_names() {
    for kind in StepKind::ALL {
        assert_eq!(StepKind::parse(kind.as_str()), Some(kind));
    }
    for state in [StepState::Planned, StepState::Uncertain, StepState::Sent] {
        assert_eq!(StepState::parse(state.as_str()), Some(state));
    }
    let fp = TargetState {
        reachable: true,
        machine_type: Some(MachineType::Controlplane),
        etcd_state: Some(crate::health::ServiceState::Preparing),
        member_id: None,
    }
    .fingerprint();
    assert_eq!(
        fp,
        "reachable=true machine_type=controlplane etcd=Preparing member=-"
    );
}
