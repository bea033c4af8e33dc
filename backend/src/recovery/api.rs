//! The recovery routes. Every action answers with the whole incident as it is afterwards
//! (`IncidentView`), so the page that acted needs no second request.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use talos_dr_shared::recovery::{
    ApprovalBody, ChooseSnapshotRequest, CloseIncidentBody, IncidentSummary, IncidentView,
    NoteBody, OpenIncidentRequest, OverrideRequest, ResolveStepBody, RunStepBody,
    SnapshotCandidate, StepRequestBody, StepState, describe,
};

use super::{RecoveryError, actions, candidates, report, step_actions};
use crate::audit::{AuditDetail, NewAuditEntry};
use crate::auth::CurrentUser;
use crate::auth::guard::client_addr;
use crate::error::ApiResult;
use crate::json::AppJson;
use crate::state::AppState;

type Audited<T> = (Extension<AuditDetail>, T);

fn audit(target: String, parameters: &[(&str, String)]) -> Extension<AuditDetail> {
    Extension(AuditDetail {
        target: Some(target),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    })
}

async fn view(state: &AppState, id: &str) -> ApiResult<Json<IncidentView>> {
    Ok(Json(state.recovery().view(id).await?))
}

/// `GET /api/clusters/{cluster}/incidents`: newest first.
pub async fn list_incidents(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Vec<IncidentSummary>>> {
    state.cluster(&cluster)?;
    let service = state.recovery();
    let mut out = Vec::new();
    for incident in service
        .store
        .incidents_of(&cluster)
        .await
        .map_err(RecoveryError::from)?
    {
        let steps = service.stored_steps(&incident.id).await?;
        let done = steps
            .iter()
            .filter(|s| s.step.state == StepState::Done)
            .count();
        out.push(IncidentSummary {
            current: steps
                .iter()
                .find(|s| s.step.state != StepState::Done)
                .map(|s| describe(&s.step)),
            steps_done: u32::try_from(done).unwrap_or(u32::MAX),
            steps_total: u32::try_from(steps.len()).unwrap_or(u32::MAX),
            id: incident.id,
            cluster: incident.cluster,
            status: incident.status,
            reason: incident.reason,
            opened_by: incident.opened_by,
            opened_at_ms: incident.opened_at_ms,
            closed_at_ms: incident.closed_at_ms,
        });
    }
    Ok(Json(out))
}

/// `POST /api/clusters/{cluster}/incidents`: 201 with the new incident.
#[tracing::instrument(name = "create_incident", skip(state, user, body))]
pub async fn create_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    AppJson(body): AppJson<OpenIncidentRequest>,
) -> ApiResult<Response> {
    let watched = state.cluster(&cluster)?;
    let id = actions::open(&state, watched, &user, &body.reason).await?;
    let detail = audit(id.clone(), &[("reason", body.reason.clone())]);
    let view = view(&state, &id).await?;
    Ok((StatusCode::CREATED, detail, view).into_response())
}

/// `GET /api/incidents/{id}`
pub async fn find_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentView>> {
    super::errors::check_id("incident", &id)?;
    view(&state, &id).await
}

/// `GET /api/incidents/{id}/report.json`
pub async fn report_json(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<report::IncidentReport>> {
    super::errors::check_id("incident", &id)?;
    Ok(Json(report::build(&state, &id).await?))
}

/// `GET /api/incidents/{id}/report.md`
pub async fn report_markdown(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    super::errors::check_id("incident", &id)?;
    let built = report::build(&state, &id).await?;
    let mut response = report::markdown(&built).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    // The id is generated hex, safe in a header.
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename=\"incident-{}.md\"",
        built.incident.id
    )) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// `POST /api/incidents/{id}/precheck`
pub async fn rerun_precheck(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    actions::rerun_precheck(&state, &id, &user).await?;
    Ok((audit(id.clone(), &[]), view(&state, &id).await?))
}

/// `POST /api/incidents/{id}/precheck/override`
pub async fn override_precheck(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    AppJson(body): AppJson<OverrideRequest>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    actions::override_precheck(&state, &id, &user, &body.reason).await?;
    Ok((
        audit(id.clone(), &[("reason", body.reason)]),
        view(&state, &id).await?,
    ))
}

/// `GET /api/incidents/{id}/snapshot-candidates`
pub async fn list_snapshot_candidates(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<SnapshotCandidate>>> {
    super::errors::check_id("incident", &id)?;
    Ok(Json(candidates::list(&state, &id).await?))
}

/// `POST /api/incidents/{id}/snapshot`
pub async fn choose_snapshot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    AppJson(body): AppJson<ChooseSnapshotRequest>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    let chosen = candidates::choose(
        &state,
        &id,
        &user,
        &body.snapshot_id,
        body.bootstrap_node.as_deref(),
    )
    .await?;
    let detail = audit(
        id.clone(),
        &[
            ("snapshot", chosen.snapshot_id.clone()),
            ("sha256", chosen.sha256.clone()),
            ("skip_hash_check", chosen.skip_hash_check.to_string()),
        ],
    );
    Ok((detail, view(&state, &id).await?))
}

fn step_audit(
    id: &str,
    step: &step_actions::StepFacts,
    extra: &[(&str, String)],
) -> Extension<AuditDetail> {
    let mut parameters = vec![("step", step.kind.clone())];
    if let Some((host, address)) = &step.target {
        parameters.push(("hostname", host.clone()));
        parameters.push(("node", address.clone()));
    }
    parameters.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    audit(format!("{id}/{}", step.id), &parameters)
}

/// `POST /api/incidents/{id}/steps/{step}/request`
pub async fn request_step(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<StepRequestBody>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    super::errors::check_id("step", &step)?;
    let stored = step_actions::request_step(&state, &id, &step, &user, &body.reason).await?;
    let facts = step_actions::StepFacts::of(&stored.step);
    Ok((
        step_audit(&id, &facts, &[("reason", body.reason)]),
        view(&state, &id).await?,
    ))
}

/// `POST /api/incidents/{id}/steps/{step}/approvals`. A break-glass approval also gets its own
/// audit entry (`break_glass_approval`), besides the route's.
pub async fn answer_request(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, step)): Path<(String, String)>,
    request: axum::extract::Request,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    super::errors::check_id("step", &step)?;
    let client = client_addr(&request).map(|a| a.ip().to_string());
    let AppJson(body) =
        <AppJson<ApprovalBody> as axum::extract::FromRequest<AppState>>::from_request(
            request, &state,
        )
        .await?;
    let answered = step_actions::answer_request(&state, &id, &step, &user, &body).await?;
    let facts = step_actions::StepFacts::of(&answered.step.step);
    let decision = match body.decision {
        talos_dr_shared::recovery::Decision::Approve => "approve",
        talos_dr_shared::recovery::Decision::Deny => "deny",
    };
    let mut extra = vec![
        ("decision", decision.to_string()),
        ("break_glass", body.break_glass.to_string()),
    ];
    if let Some(reason) = &body.reason {
        extra.push(("reason", reason.clone()));
    }
    let detail = step_audit(&id, &facts, &extra);
    if answered.break_glass {
        let cluster = state
            .recovery()
            .store
            .incident(&id)
            .await
            .ok()
            .flatten()
            .map(|i| i.cluster);
        state
            .storage()
            .audit
            .record(NewAuditEntry {
                actor: user.username.clone(),
                roles: user.roles.clone(),
                action: "break_glass_approval".into(),
                cluster,
                target: detail.0.target.clone(),
                parameters: detail.0.parameters.clone(),
                outcome: "ok".into(),
                client,
            })
            .await;
    }
    Ok((detail, view(&state, &id).await?))
}

/// `POST /api/incidents/{id}/steps/{step}/run`: 202 once the step is claimed; the call runs in
/// the background and the stream shows it.
pub async fn run_step(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<RunStepBody>,
) -> ApiResult<Response> {
    super::errors::check_id("incident", &id)?;
    super::errors::check_id("step", &step)?;
    let stored = step_actions::run_step(&state, &id, &step, &user, &body.confirm_hostname).await?;
    let facts = step_actions::StepFacts::of(&stored.step);
    let detail = step_audit(&id, &facts, &[("talosctl", stored.step.talosctl.clone())]);
    let view = view(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, detail, view).into_response())
}

/// `POST /api/incidents/{id}/steps/{step}/resolve`
pub async fn resolve_step(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, step)): Path<(String, String)>,
    AppJson(body): AppJson<ResolveStepBody>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    super::errors::check_id("step", &step)?;
    let stored =
        step_actions::resolve_step(&state, &id, &step, &user, body.outcome, &body.reason).await?;
    let facts = step_actions::StepFacts::of(&stored.step);
    let outcome = match body.outcome {
        talos_dr_shared::recovery::ResolveOutcome::Done => "done",
        talos_dr_shared::recovery::ResolveOutcome::Retry => "retry",
    };
    let detail = step_audit(
        &id,
        &facts,
        &[("outcome", outcome.into()), ("reason", body.reason)],
    );
    Ok((detail, view(&state, &id).await?))
}

/// `POST /api/incidents/{id}/notes`
pub async fn add_note(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    AppJson(body): AppJson<NoteBody>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    actions::add_note(&state, &id, &user, &body.text).await?;
    Ok((audit(id.clone(), &[]), view(&state, &id).await?))
}

/// `POST /api/incidents/{id}/close`
pub async fn close_incident(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    AppJson(body): AppJson<CloseIncidentBody>,
) -> ApiResult<Audited<Json<IncidentView>>> {
    super::errors::check_id("incident", &id)?;
    actions::close(&state, &id, &user, &body.summary, body.abandon).await?;
    let detail = audit(id.clone(), &[("abandon", body.abandon.to_string())]);
    Ok((detail, view(&state, &id).await?))
}
