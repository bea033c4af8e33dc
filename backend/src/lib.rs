//! The talos-dr console: live etcd health of Talos clusters as a JSON API and server-sent
//! events, with the web UI embedded.
//!
//! `main.rs` only parses flags and calls into here, so tests can build the same app:
//! [`watch_clusters`] (or [`watch_cluster`] with a fake `TalosApi`) gives the watched clusters,
//! [`Storage::open`] the database, [`AppState::new`] joins them, [`app`] is the router, and
//! [`run`] serves it on a listener the caller bound.

pub mod assets;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod clusters;
pub mod config;
pub mod error;
pub mod fleet;
pub mod health;
pub mod json;
pub mod machine_configs;
pub mod metrics;
pub mod notify;
pub mod presence;
pub mod recovery;
pub mod routes;
pub mod schedules;
pub mod snapshot_s3;
pub mod snapshots;
pub mod startup;
pub mod state;
pub mod storage;
pub mod talos;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use config::Config;
pub use startup::{StartupError, watch_cluster, watch_clusters};
pub use state::{AccessSettings, AppState, WatchedCluster};
pub use storage::Storage;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "talos_dr_session";

/// The whole console as a router: routes, sessions, security headers, request tracing.
pub fn app(state: AppState) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    let settings = state.session_settings();
    let idle =
        time::Duration::try_from(settings.idle_timeout).unwrap_or(time::Duration::minutes(30));
    let sessions = SessionManagerLayer::new(state.storage().sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(settings.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));
    routes::router(state)
        .layer(sessions)
        .layer(header(header::CONTENT_SECURITY_POLICY, assets::API_CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let matched_path = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            tracing::info_span!("http_request", method = %request.method(), matched_path, path = %request.uri().path())
        }))
}

/// Serves the console on `listener` until the process stops or the listener fails. Client
/// addresses are kept for the sign-in rate limit, the audit trail and the metrics rule.
/// The snapshot scheduler runs for as long as the console serves, and every open recovery
/// incident is resumed first (steps found in flight are judged from the nodes).
pub async fn run(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    // Stopped however `run` ends, returned or dropped: a console that stops serving stops its
    // heartbeat too, so the other replicas take its work over.
    let mut background = Background(vec![
        schedules::scheduler::spawn(state.clone()),
        tokio::spawn(recovery::resume::look_after(state.clone())),
        notify::spawn(state.clone()),
    ]);
    background.0.extend(listen_for_replicas(&state));
    background
        .0
        .extend(snapshots::transfers::share(state.clone()));
    background
        .0
        .extend(presence::shared::share_cluster_health(&state));
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Changes other console replicas make reach this one's live streams (PostgreSQL only).
fn listen_for_replicas(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let here = state.clone();
    state
        .storage()
        .listen_for_replicas(state.recovery().instance(), move |change| match change {
            Some((storage::Topic::Incident, id)) => here.recovery().notify_here(id),
            Some((storage::Topic::SnapshotHistory, cluster)) => {
                here.snapshots().transfers.finished_elsewhere(cluster)
            }
            Some((storage::Topic::SnapshotTransfers, note)) => {
                if let Err(e) = here.snapshots().transfers.heard_elsewhere(note) {
                    tracing::warn!(error = %e, "ignored a note from another console replica");
                }
            }
            Some((storage::Topic::ClusterViewers, cluster)) => {
                if let Ok(watched) = here.cluster(cluster) {
                    watched.presence.changed_elsewhere();
                }
            }
            // Reconnected: anything may have changed meanwhile.
            None => {
                here.recovery().notify_all_here();
                here.snapshots().transfers.finished_elsewhere_all();
                for watched in here.clusters() {
                    watched.presence.changed_elsewhere();
                }
            }
        })
}
