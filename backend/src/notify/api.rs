//! `/api/clusters/{cluster}/webhook`: everyone sees whether the team is told and how the last
//! deliveries went; admins set, remove and test the receiver.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use talos_dr_shared::notifications::{NotificationKind, WebhookRequest, WebhookView};

use super::{Notification, Webhook, receiver_label, validate_url};
use crate::audit::AuditDetail;
use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::json::AppJson;
use crate::state::AppState;

/// Deliveries the page lists.
const RECENT: i64 = 20;

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
    ApiError::Internal(Box::new(e))
}

async fn view(state: &AppState, cluster: &str) -> ApiResult<WebhookView> {
    let store = state.notifier().store();
    let hook = store.find_webhook(cluster).await.map_err(internal)?;
    Ok(WebhookView {
        cluster: cluster.to_string(),
        receiver: hook.as_ref().map(|h| receiver_label(&h.url)),
        format: hook.map(|h| h.format),
        recent: store.recent(cluster, RECENT).await.map_err(internal)?,
    })
}

/// `GET /api/clusters/{cluster}/webhook`.
#[tracing::instrument(name = "find_webhook", skip(state))]
pub async fn find_webhook(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    state.cluster(&cluster)?;
    Ok(Json(view(&state, &cluster).await?))
}

/// `PUT /api/clusters/{cluster}/webhook`.
#[tracing::instrument(name = "put_webhook", skip(state, user, request))]
pub async fn put_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
    AppJson(request): AppJson<WebhookRequest>,
) -> ApiResult<(Extension<AuditDetail>, Json<WebhookView>)> {
    state.cluster(&cluster)?;
    let url = validate_url(&request.url).map_err(ApiError::BadRequest)?;
    let hook = Webhook {
        url: url.to_string(),
        format: request.format,
    };
    state
        .notifier()
        .store()
        .put_webhook(&cluster, &hook, &user.username, now_ms())
        .await
        .map_err(internal)?;
    let mut parameters = BTreeMap::new();
    parameters.insert("receiver".to_string(), receiver_label(&hook.url));
    parameters.insert(
        "format".to_string(),
        serde_json::to_value(request.format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    );
    let detail = AuditDetail {
        target: Some(cluster.clone()),
        parameters,
    };
    Ok((Extension(detail), Json(view(&state, &cluster).await?)))
}

/// `DELETE /api/clusters/{cluster}/webhook`.
#[tracing::instrument(name = "delete_webhook", skip(state))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    state.cluster(&cluster)?;
    state
        .notifier()
        .store()
        .delete_webhook(&cluster)
        .await
        .map_err(internal)?;
    Ok(Json(view(&state, &cluster).await?))
}

/// `POST /api/clusters/{cluster}/webhook/test`: queues a test notification.
#[tracing::instrument(name = "test_webhook", skip(state, user))]
pub async fn test_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    state.cluster(&cluster)?;
    let store = state.notifier().store();
    if store
        .find_webhook(&cluster)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "cluster {cluster} has no webhook: set one first"
        )));
    }
    state
        .notifier()
        .notify(Notification {
            cluster: cluster.clone(),
            kind: NotificationKind::Test,
            title: format!("Test notification from talos-dr for {cluster}"),
            text: format!(
                "{} checked that this receiver gets talos-dr's notifications.",
                user.username
            ),
            link: Some(format!("/clusters/{cluster}")),
            incident_id: None,
            at_ms: now_ms(),
            once_key: None,
        })
        .await;
    Ok((StatusCode::ACCEPTED, Json(view(&state, &cluster).await?)))
}
