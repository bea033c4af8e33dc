//! The talos-dr console: live etcd health of Talos clusters as a JSON API and server-sent
//! events, with the web UI embedded.
//!
//! `main.rs` only parses flags and calls into here, so tests can build the same app:
//! [`watch_clusters`] (or [`watch_cluster`] with a fake `TalosApi`) gives an [`AppState`],
//! [`app`] the router, and [`run`] serves it on a listener the caller bound.

pub mod assets;
pub mod clusters;
pub mod config;
pub mod error;
pub mod health;
pub mod routes;
pub mod startup;
pub mod state;
pub mod talos;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use startup::{StartupError, watch_cluster, watch_clusters};
pub use state::{AppState, WatchedCluster};

/// The whole console as a router: routes, security headers, request tracing.
pub fn app(state: AppState) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    routes::router()
        .with_state(state)
        .layer(header(header::CONTENT_SECURITY_POLICY, assets::API_CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let matched_path = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            tracing::info_span!("http_request", method = %request.method(), matched_path, path = %request.uri().path())
        }))
}

/// Serves the console on `listener` until the process stops or the listener fails.
pub async fn run(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    axum::serve(listener, app(state)).await
}
