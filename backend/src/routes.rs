//! Every URL the console serves, in one table.

use axum::Router;
use axum::http::Uri;
use axum::routing::{any, get};

use crate::error::ApiError;
use crate::state::AppState;
use crate::{assets, clusters, health};

/// The whole route table: the JSON API under `/api`, and the web UI for everything else.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/clusters", get(clusters::list_clusters))
        .route(
            "/api/clusters/{cluster}/health",
            get(health::routes::find_health),
        )
        .route(
            "/api/clusters/{cluster}/health/stream",
            get(health::routes::stream_health),
        )
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(assets::serve_asset)
}

async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
