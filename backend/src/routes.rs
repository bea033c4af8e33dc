//! Every URL the console serves, in one table, with the role each one needs.
//!
//! `route_table` is the single source: `router` builds the axum router from it and puts the
//! `auth::guard` in front of every entry, and the authorization test walks it, so a route cannot
//! be added without saying who may call it. Paths outside the table are the web UI's files
//! (public) and JSON 404s under `/api`.

use std::collections::BTreeMap;

use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, any, delete, get, post, put};
use axum::{Extension, Router};
use talos_dr_shared::Role;

use crate::auth::guard::{Access, RoutePolicy};
use crate::error::ApiError;
use crate::machine_configs::api as machine_configs;
use crate::schedules::api as schedules_api;
use crate::snapshots::{api as snapshots_api, api_read as snapshots_read};
use crate::state::AppState;
use crate::{assets, audit, auth, clusters, fleet, health, metrics};

/// Any signed-in user: every role includes reading.
const VIEWER: &[Role] = &[Role::Viewer];
const ADMIN: &[Role] = &[Role::Admin];
/// Those who take snapshots and start recoveries.
const OPERATOR: &[Role] = &[Role::Operator];
/// The trail shows who did what: for those who approve and those who administer.
const AUDIT_READERS: &[Role] = &[Role::Approver, Role::Admin];

/// One API route: method, path (axum syntax, `{cluster}` for parameters), who may call it.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// Audit action for state-changing routes whose entry the guard writes.
    pub audit: Option<&'static str>,
    handler: MethodRouter<AppState>,
}

fn spec(
    method: Method,
    path: &'static str,
    access: Access,
    audit: Option<&'static str>,
    handler: MethodRouter<AppState>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        audit,
        handler,
    }
}

/// The whole API.
pub fn route_table() -> Vec<RouteSpec> {
    use Access::{AnyRole, Public, Scrape};
    vec![
        // Signing in records its own audit entries: only the handler knows the username.
        spec(
            Method::POST,
            "/api/session",
            Public,
            None,
            post(auth::routes::create_session),
        ),
        spec(
            Method::GET,
            "/api/session",
            AnyRole(VIEWER),
            None,
            get(auth::routes::find_session),
        ),
        spec(
            Method::DELETE,
            "/api/session",
            AnyRole(VIEWER),
            Some("logout"),
            delete(auth::routes::delete_session),
        ),
        spec(
            Method::GET,
            "/api/users",
            AnyRole(ADMIN),
            None,
            get(auth::users::list_users),
        ),
        spec(
            Method::POST,
            "/api/users",
            AnyRole(ADMIN),
            Some("user_create"),
            post(auth::users::create_user),
        ),
        spec(
            Method::GET,
            "/api/clusters",
            AnyRole(VIEWER),
            None,
            get(clusters::list_clusters),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/health",
            AnyRole(VIEWER),
            None,
            get(health::routes::find_health),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/health/stream",
            AnyRole(VIEWER),
            None,
            get(health::routes::stream_health),
        ),
        spec(
            Method::GET,
            "/api/fleet",
            AnyRole(VIEWER),
            None,
            get(fleet::find_fleet),
        ),
        spec(
            Method::GET,
            "/api/fleet/stream",
            AnyRole(VIEWER),
            None,
            get(fleet::stream_fleet),
        ),
        // Snapshot history: operators write, everyone reads.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/snapshots",
            AnyRole(VIEWER),
            None,
            get(snapshots_read::list_snapshots),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/snapshots",
            AnyRole(OPERATOR),
            Some("snapshot_create"),
            post(snapshots_api::create_snapshot),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/snapshots/raw-copy",
            AnyRole(OPERATOR),
            Some("snapshot_raw_copy"),
            post(snapshots_api::create_raw_copy),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/snapshots/upload",
            AnyRole(OPERATOR),
            Some("snapshot_upload"),
            post(snapshots_api::upload_snapshot),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/snapshots/{id}",
            AnyRole(VIEWER),
            None,
            get(snapshots_read::find_snapshot),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/snapshots/{id}/download",
            AnyRole(VIEWER),
            None,
            get(snapshots_read::download_snapshot),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/snapshots/{a}/diff/{b}",
            AnyRole(VIEWER),
            None,
            get(snapshots_read::diff_snapshots),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/snapshots/{id}/rehearse",
            AnyRole(OPERATOR),
            Some("snapshot_rehearse"),
            post(snapshots_api::rehearse_snapshot),
        ),
        // Machine configs hold the cluster's secrets: admins only, and downloads are audited.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/machine-configs",
            AnyRole(ADMIN),
            None,
            get(machine_configs::list_machine_configs),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/machine-configs",
            AnyRole(ADMIN),
            Some("machine_config_backup"),
            post(machine_configs::back_up_machine_configs),
        ),
        spec(
            Method::GET,
            "/api/clusters/{cluster}/machine-configs/{id}/download",
            AnyRole(ADMIN),
            // A read: the handler records `machine_config_download` itself.
            None,
            get(machine_configs::download_machine_config),
        ),
        // Snapshot schedules: admins set them, everyone reads.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/schedule",
            AnyRole(VIEWER),
            None,
            get(schedules_api::find_schedule),
        ),
        spec(
            Method::PUT,
            "/api/clusters/{cluster}/schedule",
            AnyRole(ADMIN),
            Some("schedule_set"),
            put(schedules_api::put_schedule),
        ),
        spec(
            Method::GET,
            "/api/audit",
            AnyRole(AUDIT_READERS),
            None,
            get(audit::routes::list_audit_entries),
        ),
        spec(
            Method::GET,
            "/api/audit/export",
            AnyRole(AUDIT_READERS),
            None,
            get(audit::routes::export_audit_entries),
        ),
        spec(
            Method::GET,
            "/metrics",
            Scrape,
            None,
            get(metrics::find_metrics),
        ),
    ]
}

/// The router: every table entry behind the guard, then the API's 404s and the web UI.
pub fn router(state: AppState) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for route in route_table() {
        let policy = RoutePolicy {
            access: route.access,
            audit: route.audit,
        };
        // Layers run outside-in: the policy is in the request before the guard reads it.
        let guarded = route
            .handler
            .route_layer(from_fn_with_state(state.clone(), auth::guard))
            .route_layer(Extension(policy));
        let merged = match by_path.remove(route.path) {
            Some(existing) => existing.merge(guarded),
            None => guarded,
        };
        by_path.insert(route.path, merged);
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        router = router.route(path, methods);
    }
    router
        .route("/api", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(assets::serve_asset)
        .with_state(state)
}

async fn api_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
