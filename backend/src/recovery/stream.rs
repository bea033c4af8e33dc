//! `GET /api/incidents/{id}/stream`: the whole incident as `event: incident` (an `IncidentView`),
//! once at connect and after every change, including someone opening or closing the incident.
//! Opening the stream counts the user as watching the incident.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::error::ApiResult;
use crate::state::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[tracing::instrument(name = "stream_incident", skip(state, user), fields(username = %user.username))]
pub async fn stream_incident(
    State(state): State<AppState>,
    Path(id): Path<String>,
    user: CurrentUser,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    super::errors::check_id("incident", &id)?;
    let service = state.recovery();
    // Refuses an unknown incident before anything is streamed.
    service.view(&id).await?;
    let watchers = service.watchers(&id);
    let viewing = watchers.join(&user.username);
    let wanted = id.clone();
    let changes = BroadcastStream::new(service.subscribe()).filter_map(move |changed| {
        let wanted = wanted.clone();
        async move {
            match changed {
                Ok(changed) if changed == wanted => Some(()),
                Ok(_) => None,
                // Missed some: a fresh view covers them.
                Err(_) => Some(()),
            }
        }
    });
    let watching = WatchStream::new(watchers.subscribe()).map(|_| ());
    let ticks = futures::stream::select(changes, watching);
    let events = ticks.then(move |()| {
        let state = state.clone();
        let id = id.clone();
        async move {
            match state.recovery().view(&id).await {
                Ok(view) => Event::default()
                    .event("incident")
                    .json_data(&view)
                    .inspect_err(|e| tracing::error!(error = %e, "cannot encode the incident"))
                    .ok(),
                Err(e) => {
                    tracing::error!(incident = %id, error = %e, "cannot read the incident");
                    None
                }
            }
        }
    });
    let remaining = u64::try_from(user.expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let until_session_ends = tokio::time::sleep(Duration::from_millis(remaining));
    let events = events
        .filter_map(|e| async move { e.map(Ok) })
        .take_until(until_session_ends)
        .map(move |event| {
            // The stream owns the watcher guard: closing it leaves the watcher list.
            let _ = &viewing;
            event
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
