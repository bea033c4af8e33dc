//! Turns changes of open incidents into notifications: a request waiting for approval, an
//! answer, a failed step, a finished recovery. It compares each incident's new view with the
//! last one seen, so every place that moves a step is covered without calling in here.

use std::collections::HashMap;

use talos_dr_shared::recovery::{IncidentStatus, IncidentView, StepKind, StepState};
use tokio::sync::broadcast::error::RecvError;

use super::{Notification, events};
use crate::clock::now_ms;
use crate::state::AppState;

/// What was last seen of one incident.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    status: Option<IncidentStatus>,
    /// Per step id: state, the current request's time, answers so far.
    steps: HashMap<String, (StepState, Option<i64>, usize)>,
}

impl Seen {
    pub fn of(view: &IncidentView) -> Self {
        Self {
            status: Some(view.incident.status),
            steps: view
                .steps
                .iter()
                .map(|s| {
                    (
                        s.id.clone(),
                        (
                            s.state,
                            s.request.as_ref().map(|r| r.at_ms),
                            s.approvals.len(),
                        ),
                    )
                })
                .collect(),
        }
    }
}

/// The notifications that going from `before` to `view` calls for.
pub fn changes(before: &Seen, view: &IncidentView, at_ms: i64) -> Vec<Notification> {
    let incident = &view.incident;
    let mut out = Vec::new();
    for step in &view.steps {
        let (old_state, old_request, old_answers) = before
            .steps
            .get(&step.id)
            .copied()
            .unwrap_or((StepState::Planned, None, 0));
        let request_at = step.request.as_ref().map(|r| r.at_ms);
        let new_request = request_at.is_some() && request_at != old_request;
        let request_key = format!("{}:{}", step.id, request_at.unwrap_or(0));
        if new_request && step.state == StepState::Requested {
            out.push(once(
                events::approval_requested(incident, step, at_ms),
                format!("approval_requested:{request_key}"),
            ));
        }
        let answered_before = if new_request { 0 } else { old_answers };
        for approval in step.approvals.iter().skip(answered_before) {
            out.push(once(
                events::answered(incident, step, approval, at_ms),
                format!("answered:{request_key}:{}", approval.by),
            ));
        }
        // A pre-check "fails" when quorum could still be restored: a decision for the people
        // in the incident, not a failure to page anyone about.
        if step.state == StepState::Failed
            && old_state != StepState::Failed
            && step.kind != StepKind::PreCheck
        {
            out.push(once(
                events::step_failed(incident, step, at_ms),
                format!(
                    "step_failed:{request_key}:{}",
                    step.finished_at_ms.unwrap_or(0)
                ),
            ));
        }
    }
    if before.status == Some(IncidentStatus::Open) && incident.status != IncidentStatus::Open {
        out.push(once(
            events::recovery_finished(incident, at_ms),
            format!("recovery_finished:{}", incident.id),
        ));
    }
    out
}

/// Every replica sees the same incident change; the key lets the outbox keep one.
fn once(mut n: Notification, key: String) -> Notification {
    n.once_key = Some(format!("{}:{key}", n.incident_id.as_deref().unwrap_or("")));
    n
}

pub(super) async fn watch(state: AppState) {
    let mut changed = state.recovery().subscribe();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    loop {
        let id = match changed.recv().await {
            Ok(id) => id,
            // Missed changes are caught up by the next comparison of that incident.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let view = match state.recovery().view(&id).await {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!(incident = %id, error = %e, "incident not read for notifications");
                continue;
            }
        };
        let now = Seen::of(&view);
        // An incident first seen here (opened just now, or open across a restart) only sets
        // the baseline: opening is not news for the receiver, and a restart must not repeat.
        let before = seen.get(&id).cloned().unwrap_or_else(|| now.clone());
        for n in changes(&before, &view, now_ms()) {
            state.notifier().notify(n).await;
        }
        if view.incident.status == IncidentStatus::Open {
            seen.insert(id, now);
        } else {
            seen.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use talos_dr_shared::notifications::NotificationKind;
    use talos_dr_shared::recovery::{
        Approval, ApprovalPolicy, Decision, Incident, RecoveryStep, StepParams, StepRequest,
    };

    use super::*;

    fn view(
        state: StepState,
        request: Option<i64>,
        answers: usize,
        status: IncidentStatus,
    ) -> IncidentView {
        let approval = Approval {
            by: "an-approver".into(),
            decision: Decision::Approve,
            at_ms: 5,
            expires_at_ms: 10,
            reason: None,
            break_glass: false,
            target_state: String::new(),
        };
        IncidentView {
            incident: Incident {
                id: "i1".into(),
                cluster: "prod".into(),
                status,
                reason: "etcd lost".into(),
                opened_by: "an-operator".into(),
                opened_at_ms: 0,
                closed_by: None,
                closed_at_ms: None,
                summary: Some("restored".into()),
                precheck: None,
                precheck_override: None,
                snapshot: None,
                bootstrap_node: None,
                policy: ApprovalPolicy::default(),
            },
            steps: vec![RecoveryStep {
                id: "s1".into(),
                incident_id: "i1".into(),
                position: 2,
                kind: StepKind::ResetNode,
                target: None,
                params: StepParams::default(),
                state,
                talosctl: String::new(),
                request: request.map(|at_ms| StepRequest {
                    by: "an-operator".into(),
                    at_ms,
                    reason: "broken".into(),
                    target_state: String::new(),
                }),
                approvals: vec![approval; answers],
                run_by: None,
                started_at_ms: None,
                finished_at_ms: None,
                deadline_at_ms: None,
                progress: None,
                detail: Some("the node did not answer".into()),
            }],
            timeline: vec![],
            watchers: vec![],
        }
    }

    fn kinds(before: &IncidentView, after: &IncidentView) -> Vec<NotificationKind> {
        changes(&Seen::of(before), after, 0)
            .into_iter()
            .map(|n| n.kind)
            .collect()
    }

    #[test]
    fn each_move_is_told_once() {
        let open = IncidentStatus::Open;
        let planned = view(StepState::Planned, None, 0, open);
        let requested = view(StepState::Requested, Some(1), 0, open);
        let approved = view(StepState::Approved, Some(1), 1, open);
        let failed = view(StepState::Failed, Some(1), 1, open);
        let resolved = view(StepState::Failed, Some(1), 1, IncidentStatus::Resolved);
        assert_eq!(
            kinds(&planned, &requested),
            vec![NotificationKind::ApprovalRequested]
        );
        assert_eq!(kinds(&requested, &requested), vec![]);
        assert_eq!(
            kinds(&requested, &approved),
            vec![NotificationKind::Approved]
        );
        assert_eq!(
            kinds(&approved, &failed),
            vec![NotificationKind::StepFailed]
        );
        assert_eq!(
            kinds(&failed, &resolved),
            vec![NotificationKind::RecoveryFinished]
        );
        // Asked again after a failure: a new request, answered from scratch.
        let again = view(StepState::Requested, Some(9), 0, open);
        assert_eq!(
            kinds(&failed, &again),
            vec![NotificationKind::ApprovalRequested]
        );
    }
}
