//! Health over HTTP: the latest value as JSON, and a server-sent event stream of every new one.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use talos_dr_shared::{ClusterHealth, Viewers};
use tokio_stream::wrappers::WatchStream;

use super::HealthError;
use crate::auth::CurrentUser;
use crate::clock::now_ms;
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
/// as `data`, once at connect (when a poll has finished) and after every poll; and
/// `event: viewers` (`Viewers`) at connect and whenever someone opens or closes the cluster's
/// stream, on this replica or (PostgreSQL) another. The stream ends when the session reaches its
/// absolute deadline.
#[tracing::instrument(name = "stream_health", skip(state, user), fields(username = %user.username))]
pub async fn stream_health(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
    user: CurrentUser,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let watched = state.cluster(&cluster)?;
    let viewing = watched.presence.join(&user.username);
    // Either list changing (viewers here, or through the other replicas) re-sends everyone.
    let presence = watched.presence.clone();
    let here = WatchStream::new(watched.presence.subscribe()).map(|_| ());
    let elsewhere = WatchStream::new(watched.presence.subscribe_elsewhere()).map(|_| ());
    let viewers = futures::stream::select(here, elsewhere)
        .map(move |()| presence.everyone())
        .scan(None::<Vec<String>>, |last, names| {
            let changed = last.as_ref() != Some(&names);
            *last = Some(names.clone());
            futures::future::ready(Some(changed.then_some(names)))
        })
        .filter_map(|names| async move {
            let event = Event::default()
                .event("viewers")
                .json_data(Viewers { viewers: names? });
            event
                .inspect_err(|e| tracing::error!(error = %e, "cannot encode viewers"))
                .ok()
                .map(Ok)
        });
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
    let remaining = u64::try_from(user.expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let until_session_ends = tokio::time::sleep(Duration::from_millis(remaining));
    let events = futures::stream::select(events, viewers)
        .take_until(until_session_ends)
        .map(move |event| {
            // The stream owns the presence guard: closing it leaves the viewer list.
            let _ = &viewing;
            event
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
