//! What people do with one step of the plan: request it, answer the request, run it with the
//! typed hostname, or judge it after a failure or a restart. Every action re-checks the shared
//! guard rails against the stored plan and the target's state read from the node.

use talos_dr_shared::Role;
use talos_dr_shared::recovery::{
    Approval, ApprovalBody, ApprovalStanding, Decision, Refusal, ResolveOutcome, StepKind,
    StepState, TimelineKind, approval_standing, check_approval, check_request, check_run, describe,
    phase_open,
};

use super::actions::{find_step, fingerprint_now, open_incident, plain, required_text};
use super::store::{NewEvent, StepChange, StoredStep};
use super::{RecoveryError, executor};
use crate::auth::CurrentUser;
use crate::state::AppState;

/// `POST /api/incidents/{id}/steps/{step}/request`
pub async fn request_step(
    state: &AppState,
    id: &str,
    step_id: &str,
    user: &CurrentUser,
    reason: &str,
) -> Result<StoredStep, RecoveryError> {
    let (_, cluster) = open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = find_step(&steps, id, step_id)?;
    check_request(&plain(&steps), &step.step, &user.roles, reason)?;
    let reason = required_text("reason", reason)?;
    let fingerprint = fingerprint_now(cluster, step).await?;
    let now = service.now_ms();
    let event = NewEvent::new(
        now,
        TimelineKind::Request,
        format!(
            "{} requests {}: {reason} (target now: {fingerprint})",
            user.username,
            describe(&step.step)
        ),
    )
    .by(&user.username)
    .step(step_id);
    service
        .store
        .transition(
            id,
            step_id,
            &[step.step.state],
            StepState::Requested,
            cleared()
                .int("request_no", Some(step.request_no + 1))
                .text("requested_by", Some(user.username.clone()))
                .int("requested_at_ms", Some(now))
                .text("request_reason", Some(reason))
                .text("request_target", Some(fingerprint)),
            &[event],
        )
        .await?;
    service.notify(id);
    Ok(step.clone())
}

/// What a fresh request (or a step sent back to planned) forgets of the last run.
fn cleared() -> StepChange {
    StepChange::default()
        .text("run_by", None::<String>)
        .int("started_at_ms", None)
        .int("finished_at_ms", None)
        .int("deadline_at_ms", None)
        .int("progress_done", None)
        .int("progress_total", None)
        .text("claimed_by", None::<String>)
        .int("claimed_at_ms", None)
        .text("boot_id_before", None::<String>)
}

/// A step as the audit trail names it.
#[derive(Debug, Clone)]
pub struct StepFacts {
    pub id: String,
    pub kind: String,
    /// Hostname and address.
    pub target: Option<(String, String)>,
}

impl StepFacts {
    pub fn of(step: &talos_dr_shared::recovery::RecoveryStep) -> Self {
        Self {
            id: step.id.clone(),
            kind: step.kind.as_str().to_string(),
            target: step
                .target
                .as_ref()
                .map(|t| (t.hostname.clone(), t.address.clone())),
        }
    }
}

/// What an approval call did, for the audit trail.
#[derive(Debug, Clone)]
pub struct Answered {
    pub step: StoredStep,
    pub approved: bool,
    pub break_glass: bool,
}

/// `POST /api/incidents/{id}/steps/{step}/approvals`
pub async fn answer_request(
    state: &AppState,
    id: &str,
    step_id: &str,
    user: &CurrentUser,
    body: &ApprovalBody,
) -> Result<Answered, RecoveryError> {
    let (incident, cluster) = open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = find_step(&steps, id, step_id)?;
    check_approval(
        &step.step,
        &user.username,
        &user.roles,
        body,
        &incident.policy,
    )?;
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| required_text("reason", r))
        .transpose()?;
    let fingerprint = fingerprint_now(cluster, step).await?;
    let now = service.now_ms();
    let approval = Approval {
        by: user.username.clone(),
        decision: body.decision,
        at_ms: now,
        expires_at_ms: now.saturating_add(incident.policy.approval_ttl_ms),
        reason: reason.clone(),
        break_glass: body.break_glass,
        target_state: fingerprint.clone(),
    };
    let mut with_answer = step.step.clone();
    with_answer.approvals.push(approval.clone());
    let standing = approval_standing(&with_answer, &incident.policy, now, &fingerprint);
    let why = reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let what = describe(&step.step);
    let (then, events) = match body.decision {
        Decision::Deny => (
            Some(StepState::Planned),
            vec![
                NewEvent::new(
                    now,
                    TimelineKind::Denial,
                    format!("{} denies {what}{why}", user.username),
                )
                .by(&user.username)
                .step(step_id)
                .loud(),
            ],
        ),
        Decision::Approve => {
            let mut events = Vec::new();
            if body.break_glass {
                events.push(
                    NewEvent::new(
                        now,
                        TimelineKind::BreakGlass,
                        format!(
                            "BREAK-GLASS: {} approves their own request for {what} without a second person{why}",
                            user.username
                        ),
                    )
                    .by(&user.username)
                    .step(step_id)
                    .loud(),
                );
            } else {
                events.push(
                    NewEvent::new(
                        now,
                        TimelineKind::Approval,
                        format!(
                            "{} approves {what}{why} (target: {fingerprint})",
                            user.username
                        ),
                    )
                    .by(&user.username)
                    .step(step_id),
                );
            }
            let then = (standing == ApprovalStanding::Enough).then_some(StepState::Approved);
            (then, events)
        }
    };
    service
        .store
        .answer(id, step_id, step.request_no, &approval, then, &events)
        .await?;
    service.notify(id);
    Ok(Answered {
        step: step.clone(),
        approved: then == Some(StepState::Approved),
        break_glass: body.break_glass,
    })
}

/// `POST /api/incidents/{id}/steps/{step}/run`: checks, claims the step, and hands it to the
/// executor. Returns once the claim is written; the call itself runs in the background.
pub async fn run_step(
    state: &AppState,
    id: &str,
    step_id: &str,
    user: &CurrentUser,
    confirm_hostname: &str,
) -> Result<StoredStep, RecoveryError> {
    let (incident, cluster) = open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = find_step(&steps, id, step_id)?;
    let now = service.now_ms();
    let fingerprint = match &step.step.target {
        Some(_) => fingerprint_now(cluster, step).await?,
        None => String::new(),
    };
    let checked = check_run(
        &plain(&steps),
        &step.step,
        &user.roles,
        confirm_hostname,
        &incident.policy,
        now,
        &fingerprint,
    );
    if let Err(refusal) = checked {
        if matches!(
            refusal,
            Refusal::ApprovalExpired | Refusal::ApprovalVoided { .. } | Refusal::Denied { .. }
        ) && step.step.state == StepState::Approved
        {
            // The approval no longer stands: the step goes back so it can be requested again.
            // The reason stays on the step: the page rebuilds the run form and its message with it.
            let detail = format!("Not run: {refusal}");
            let event = NewEvent::new(
                now,
                TimelineKind::StepFailed,
                format!(
                    "{} cannot run {}: {refusal}",
                    user.username,
                    describe(&step.step)
                ),
            )
            .by(&user.username)
            .step(step_id)
            .loud();
            service
                .store
                .transition(
                    id,
                    step_id,
                    &[StepState::Approved],
                    StepState::Planned,
                    StepChange::default().text("detail", Some(detail)),
                    &[event],
                )
                .await?;
            service.notify(id);
        }
        return Err(refusal.into());
    }
    super::destructive::claim_destructive(state, &incident, step, &user.username).await?;
    Ok(step.clone())
}

/// `POST /api/incidents/{id}/steps/{step}/resolve`
pub async fn resolve_step(
    state: &AppState,
    id: &str,
    step_id: &str,
    user: &CurrentUser,
    outcome: ResolveOutcome,
    reason: &str,
) -> Result<StoredStep, RecoveryError> {
    if !user.roles.iter().any(|r| r.grants(Role::Operator)) {
        return Err(Refusal::NeedsRole(Role::Operator).into());
    }
    let reason = required_text("reason", reason)?;
    open_incident(state, id).await?;
    let service = state.recovery();
    let steps = service.stored_steps(id).await?;
    let step = find_step(&steps, id, step_id)?;
    let s = &step.step;
    let manual = s.kind == StepKind::RecreateNode && s.state == StepState::Planned;
    if manual {
        phase_open(&plain(&steps), s)?;
        if outcome == ResolveOutcome::Retry {
            return Err(RecoveryError::Invalid(
                "outcome: a node to re-create is marked done once it is back; there is nothing to retry".into(),
            ));
        }
    } else if !matches!(s.state, StepState::Uncertain | StepState::Failed) {
        return Err(Refusal::WrongState {
            state: s.state,
            wanted: "uncertain or failed (or a planned node re-creation)",
        }
        .into());
    }
    let now = service.now_ms();
    let (to, text, change) = match outcome {
        ResolveOutcome::Done => (
            StepState::Done,
            format!(
                "{} marks {} done after checking: {reason}",
                user.username,
                describe(s)
            ),
            StepChange::default()
                .text("run_by", Some(user.username.clone()))
                .int("finished_at_ms", Some(now))
                .text(
                    "detail",
                    Some(format!("marked done by {}: {reason}", user.username)),
                ),
        ),
        ResolveOutcome::Retry => (
            StepState::Planned,
            format!(
                "{} sends {} back to planned: {reason}{}",
                user.username,
                describe(s),
                if s.kind.is_destructive() {
                    " (it needs a new request and approval)"
                } else {
                    ""
                }
            ),
            cleared().text(
                "detail",
                Some(format!("sent back by {}: {reason}", user.username)),
            ),
        ),
    };
    let event = NewEvent::new(now, TimelineKind::StepFinished, text)
        .by(&user.username)
        .step(step_id)
        .loud();
    service
        .store
        .transition(id, step_id, &[s.state], to, change, &[event])
        .await?;
    service.notify(id);
    executor::advance(state, id);
    Ok(step.clone())
}
