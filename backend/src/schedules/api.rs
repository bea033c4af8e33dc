//! `GET` and `PUT /api/clusters/{cluster}/schedule`: viewers read a cluster's schedule with its
//! next run, last result and freshness; admins set it.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use talos_dr_shared::schedules::{ScheduleRequest, ScheduleView};

use super::cron::{CronSchedule, next_run_ms};
use super::freshness::{freshness_met, newest_verified_age_seconds};
use super::store::ScheduleStore;
use crate::audit::AuditDetail;
use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::AppJson;
use crate::state::AppState;

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::Internal(Box::new(e))
}

/// Checks a request; the error names the field that is wrong.
pub fn validate(request: &ScheduleRequest) -> Result<CronSchedule, ApiError> {
    let cron =
        CronSchedule::parse(&request.cron).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !request.retention.keeps_something() {
        return Err(ApiError::BadRequest(
            "retention: keeps nothing; set keep_last, hourly, daily or weekly above 0".into(),
        ));
    }
    if request.freshness_seconds == 0 {
        return Err(ApiError::BadRequest(
            "freshness_seconds: must be above 0".into(),
        ));
    }
    Ok(cron)
}

/// The schedule (if any) with its freshness, as the page and the metrics read it.
pub async fn view(state: &AppState, cluster: &str, now_ms: i64) -> ApiResult<ScheduleView> {
    let stored = ScheduleStore::new(state.storage().pool.clone())
        .find(cluster)
        .await
        .map_err(internal)?;
    let entries: Vec<_> = state
        .snapshots()
        .history
        .list(cluster)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| r.entry)
        .collect();
    let age = newest_verified_age_seconds(&entries, now_ms);
    let target = stored.as_ref().map(|s| s.request.freshness_seconds);
    Ok(ScheduleView {
        cluster: cluster.to_string(),
        freshness_met: freshness_met(age, target),
        newest_verified_age_seconds: age,
        next_run_ms: stored.as_ref().and_then(|s| s.next_run_ms),
        last_run: stored.as_ref().and_then(|s| s.last_run.clone()),
        schedule: stored.map(|s| s.request),
    })
}

/// `GET /api/clusters/{cluster}/schedule`.
#[tracing::instrument(name = "find_schedule", skip(state))]
pub async fn find_schedule(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<ScheduleView>> {
    state.cluster(&cluster)?;
    Ok(Json(view(&state, &cluster, now_ms()).await?))
}

/// `PUT /api/clusters/{cluster}/schedule`.
#[tracing::instrument(name = "put_schedule", skip(state, user, request))]
pub async fn put_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    AppJson(request): AppJson<ScheduleRequest>,
) -> ApiResult<(Extension<AuditDetail>, Json<ScheduleView>)> {
    state.cluster(&cluster)?;
    let cron = validate(&request)?;
    let now = now_ms();
    let next = next_run_ms(&cron, now, request.jitter_seconds)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    ScheduleStore::new(state.storage().pool.clone())
        .put(&cluster, &request, next, &user.username, now)
        .await
        .map_err(internal)?;
    let r = &request.retention;
    let mut parameters = BTreeMap::new();
    parameters.insert("cron".to_string(), request.cron.clone());
    for (name, value) in [
        ("keep_last", r.keep_last),
        ("hourly", r.hourly),
        ("daily", r.daily),
        ("weekly", r.weekly),
    ] {
        if let Some(v) = value {
            parameters.insert(name.to_string(), v.to_string());
        }
    }
    parameters.insert(
        "freshness_seconds".into(),
        request.freshness_seconds.to_string(),
    );
    parameters.insert("jitter_seconds".into(), request.jitter_seconds.to_string());
    parameters.insert("rehearse".into(), request.rehearse.to_string());
    let detail = Extension(AuditDetail {
        target: Some(cluster.clone()),
        parameters,
    });
    Ok((detail, Json(view(&state, &cluster, now).await?)))
}
