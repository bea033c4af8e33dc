//! The fleet overview: one line per watched cluster, built from each cluster's health hub and
//! presence hub, as JSON and as a server-sent event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use talos_dr_shared::{Fleet, FleetCluster};
use tokio_stream::wrappers::WatchStream;

use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::state::AppState;

/// How often an idle stream gets a comment line, so proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The fleet as of now.
pub fn fleet(state: &AppState) -> Fleet {
    Fleet {
        clusters: state
            .clusters()
            .iter()
            .map(|c| {
                FleetCluster::from_health(
                    &c.name,
                    c.health.latest().as_deref(),
                    c.presence.usernames(),
                )
            })
            .collect(),
    }
}

/// `GET /api/fleet`
#[tracing::instrument(name = "find_fleet", skip_all)]
pub async fn find_fleet(State(state): State<AppState>) -> Json<Fleet> {
    Json(fleet(&state))
}

/// `GET /api/fleet/stream`: `event: fleet` with the whole `Fleet` at connect and whenever any
/// cluster's health or viewers change. Ends when the session reaches its absolute deadline.
#[tracing::instrument(name = "stream_fleet", skip_all, fields(username = %user.username))]
pub async fn stream_fleet(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Each watch stream yields once at once and then on every change; only the fact of a change
    // matters, the fleet is rebuilt from every hub each time.
    let mut changes = Vec::new();
    for cluster in state.clusters() {
        changes.push(
            WatchStream::new(cluster.health.subscribe())
                .map(|_| ())
                .boxed(),
        );
        changes.push(
            WatchStream::new(cluster.presence.subscribe())
                .map(|_| ())
                .boxed(),
        );
    }
    let first = futures::stream::once(futures::future::ready(()));
    let events = first
        .chain(futures::stream::select_all(changes))
        .ready_chunks(64)
        .scan(None::<Fleet>, move |last, _| {
            let now = fleet(&state);
            let changed = last.as_ref() != Some(&now);
            *last = Some(now.clone());
            futures::future::ready(Some(changed.then_some(now)))
        })
        .filter_map(|fleet| async move {
            let event = Event::default().event("fleet").json_data(fleet?);
            event
                .inspect_err(|e| tracing::error!(error = %e, "cannot encode the fleet"))
                .ok()
                .map(Ok)
        });
    let remaining = u64::try_from(user.expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
    let until_session_ends = tokio::time::sleep(Duration::from_millis(remaining));
    Sse::new(events.take_until(until_session_ends))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
