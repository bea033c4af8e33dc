//! The guard rails, as pure functions: the server enforces them, the browser uses the same ones
//! to show only the buttons that will work.

use super::{ApprovalBody, ApprovalPolicy, Decision, RecoveryStep, StepState};
use crate::access::Role;
use crate::health::VerdictLevel;

/// Why an action on a step is refused, in words for the person who tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NeedsRole(Role),
    WrongState {
        state: StepState,
        wanted: &'static str,
    },
    EarlierStepOpen {
        step: String,
    },
    ReasonMissing,
    NotDestructive,
    SelfApproval,
    AlreadyAnswered,
    BreakGlassOff,
    BreakGlassNeedsAdmin,
    BreakGlassOnlyForOwnRequest,
    Denied {
        by: String,
    },
    NotEnoughApprovals {
        have: u32,
        need: u32,
    },
    ApprovalExpired,
    ApprovalVoided {
        approved: String,
        now: String,
    },
    WrongHostname {
        typed: String,
        expected: String,
    },
    NoTarget,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NeedsRole(role) => write!(f, "this needs the {role} role"),
            Self::WrongState { state, wanted } => {
                write!(f, "the step is {}; this needs it {wanted}", state.as_str())
            }
            Self::EarlierStepOpen { step } => {
                write!(f, "an earlier step is not done yet: {step}")
            }
            Self::ReasonMissing => f.write_str("a reason is required"),
            Self::NotDestructive => {
                f.write_str("only destructive steps are requested and approved")
            }
            Self::SelfApproval => f.write_str(
                "you requested this step: someone else with the approver role must approve it",
            ),
            Self::AlreadyAnswered => f.write_str("you already answered this request"),
            Self::BreakGlassOff => f.write_str("break-glass approval is switched off"),
            Self::BreakGlassNeedsAdmin => f.write_str("break-glass approval needs the admin role"),
            Self::BreakGlassOnlyForOwnRequest => {
                f.write_str("break-glass is for approving your own request; approve normally")
            }
            Self::Denied { by } => write!(f, "the request was denied by {by}"),
            Self::NotEnoughApprovals { have, need } => {
                write!(f, "{have} of {need} approvals given")
            }
            Self::ApprovalExpired => f.write_str("the approval expired: request the step again"),
            Self::ApprovalVoided { approved, now } => write!(
                f,
                "the node changed since the approval (approved: {approved}; now: {now}): request the step again"
            ),
            Self::WrongHostname { typed, expected } => write!(
                f,
                "the typed hostname \"{typed}\" is not the target's hostname \"{expected}\""
            ),
            Self::NoTarget => f.write_str("the step has no target node"),
        }
    }
}

impl std::error::Error for Refusal {}

fn holds(roles: &[Role], role: Role) -> bool {
    roles.iter().any(|r| r.grants(role))
}

/// Whether every step of an earlier phase is done.
pub fn phase_open(steps: &[RecoveryStep], step: &RecoveryStep) -> Result<(), Refusal> {
    match steps
        .iter()
        .filter(|s| s.kind.phase() < step.kind.phase())
        .find(|s| s.state != StepState::Done)
    {
        Some(open) => Err(Refusal::EarlierStepOpen {
            step: describe(open),
        }),
        None => Ok(()),
    }
}

/// "Reset: wipe etcd's data on cp-2 (requested)".
pub fn describe(step: &RecoveryStep) -> String {
    match &step.target {
        Some(t) => format!(
            "{} on {} ({})",
            step.kind.title(),
            t.hostname,
            step.state.as_str()
        ),
        None => format!("{} ({})", step.kind.title(), step.state.as_str()),
    }
}

/// A full recovery throws away whatever etcd still holds: unless the pre-checks found quorum
/// lost for good, going on needs an explicit override with a reason.
pub fn precheck_needs_override(verdict: VerdictLevel) -> bool {
    verdict != VerdictLevel::FullRecoveryNeeded
}

/// An operator asks for a destructive step.
pub fn check_request(
    steps: &[RecoveryStep],
    step: &RecoveryStep,
    roles: &[Role],
    reason: &str,
) -> Result<(), Refusal> {
    if !holds(roles, Role::Operator) {
        return Err(Refusal::NeedsRole(Role::Operator));
    }
    if !step.kind.is_destructive() {
        return Err(Refusal::NotDestructive);
    }
    // A failed step may be asked for again; nothing is retried without a new request.
    if !matches!(step.state, StepState::Planned | StepState::Failed) {
        return Err(Refusal::WrongState {
            state: step.state,
            wanted: "planned or failed",
        });
    }
    phase_open(steps, step)?;
    if reason.trim().is_empty() {
        return Err(Refusal::ReasonMissing);
    }
    Ok(())
}

/// Someone answers a request.
pub fn check_approval(
    step: &RecoveryStep,
    who: &str,
    roles: &[Role],
    body: &ApprovalBody,
    policy: &ApprovalPolicy,
) -> Result<(), Refusal> {
    if step.state != StepState::Requested {
        return Err(Refusal::WrongState {
            state: step.state,
            wanted: "requested",
        });
    }
    let requester = step.request.as_ref().map(|r| r.by.as_str());
    if body.break_glass {
        if !policy.break_glass_allowed {
            return Err(Refusal::BreakGlassOff);
        }
        if !holds(roles, Role::Admin) {
            return Err(Refusal::BreakGlassNeedsAdmin);
        }
        if requester != Some(who) {
            return Err(Refusal::BreakGlassOnlyForOwnRequest);
        }
        if body.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(Refusal::ReasonMissing);
        }
    } else {
        if !holds(roles, Role::Approver) {
            return Err(Refusal::NeedsRole(Role::Approver));
        }
        if requester == Some(who) {
            return Err(Refusal::SelfApproval);
        }
        if body.decision == Decision::Deny
            && body.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(Refusal::ReasonMissing);
        }
    }
    if step.approvals.iter().any(|a| a.by == who) {
        return Err(Refusal::AlreadyAnswered);
    }
    Ok(())
}

/// Where a requested step's approvals stand right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStanding {
    Enough,
    Missing(Refusal),
}

/// Counts the approvals that still stand: not expired, given for the target's current state.
/// `current_target_state` is [`super::TargetState::fingerprint`] of the target now.
pub fn approval_standing(
    step: &RecoveryStep,
    policy: &ApprovalPolicy,
    now_ms: i64,
    current_target_state: &str,
) -> ApprovalStanding {
    if let Some(denial) = step.approvals.iter().find(|a| a.decision == Decision::Deny) {
        return ApprovalStanding::Missing(Refusal::Denied {
            by: denial.by.clone(),
        });
    }
    let approvals: Vec<_> = step
        .approvals
        .iter()
        .filter(|a| a.decision == Decision::Approve)
        .collect();
    let standing = approvals
        .iter()
        .filter(|a| a.expires_at_ms > now_ms && a.target_state == current_target_state)
        .count() as u32;
    // Break-glass counts as every approval the policy asks for: it is one admin's word, loudly.
    let break_glass = approvals.iter().any(|a| {
        a.break_glass && a.expires_at_ms > now_ms && a.target_state == current_target_state
    });
    let need = policy.approvals_required.max(1);
    if standing >= need || break_glass {
        return ApprovalStanding::Enough;
    }
    if let Some(voided) = approvals
        .iter()
        .find(|a| a.expires_at_ms > now_ms && a.target_state != current_target_state)
    {
        return ApprovalStanding::Missing(Refusal::ApprovalVoided {
            approved: voided.target_state.clone(),
            now: current_target_state.to_string(),
        });
    }
    if approvals.iter().any(|a| a.expires_at_ms <= now_ms) {
        return ApprovalStanding::Missing(Refusal::ApprovalExpired);
    }
    ApprovalStanding::Missing(Refusal::NotEnoughApprovals {
        have: standing,
        need,
    })
}

/// Someone runs an approved destructive step, typing the target's hostname.
#[allow(clippy::too_many_arguments)]
pub fn check_run(
    steps: &[RecoveryStep],
    step: &RecoveryStep,
    roles: &[Role],
    confirm_hostname: &str,
    policy: &ApprovalPolicy,
    now_ms: i64,
    current_target_state: &str,
) -> Result<(), Refusal> {
    if !holds(roles, Role::Operator) {
        return Err(Refusal::NeedsRole(Role::Operator));
    }
    if !step.kind.is_destructive() {
        return Err(Refusal::NotDestructive);
    }
    if step.state != StepState::Approved {
        return Err(Refusal::WrongState {
            state: step.state,
            wanted: "approved",
        });
    }
    phase_open(steps, step)?;
    let target = step.target.as_ref().ok_or(Refusal::NoTarget)?;
    if confirm_hostname != target.hostname {
        return Err(Refusal::WrongHostname {
            typed: confirm_hostname.to_string(),
            expected: target.hostname.clone(),
        });
    }
    match approval_standing(step, policy, now_ms, current_target_state) {
        ApprovalStanding::Enough => Ok(()),
        ApprovalStanding::Missing(why) => Err(why),
    }
}
