//! Health over HTTP: the latest value as JSON, and a server-sent event stream of every new one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use talos_dr_shared::ClusterHealth;
use tokio_stream::wrappers::WatchStream;

use super::HealthError;
use crate::error::ApiResult;
use crate::state::AppState;

/// How often an idle stream gets a comment line, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize, Deserialize)]
pub struct HealthResponse {
    pub health: ClusterHealth,
}

/// `GET /api/clusters/{cluster}/health`
#[tracing::instrument(name = "find_health", skip(state))]
pub async fn find_health(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Json<HealthResponse>> {
    let watched = state.cluster(&cluster)?;
    let health = watched
        .health
        .latest()
        .ok_or(HealthError::NotPolledYet(cluster))?;
    Ok(Json(HealthResponse {
        health: Arc::unwrap_or_clone(health),
    }))
}

/// `GET /api/clusters/{cluster}/health/stream`: `event: health` with the whole `ClusterHealth`
/// as `data`, once at connect (when a poll has finished) and after every poll.
#[tracing::instrument(name = "stream_health", skip(state))]
pub async fn stream_health(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let watched = state.cluster(&cluster)?;
    let events = WatchStream::new(watched.health.subscribe()).filter_map(|latest| async move {
        let health = latest?;
        match Event::default().event("health").json_data(&*health) {
            Ok(event) => Some(Ok(event)),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode cluster health");
                None
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
