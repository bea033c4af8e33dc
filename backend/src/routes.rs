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
use crate::notify::api as notify_api;
use crate::recovery::{api as recovery_api, stream as recovery_stream};
use crate::schedules::api as schedules_api;
use crate::snapshots::{api as snapshots_api, api_read as snapshots_read};
use crate::state::AppState;
use crate::{assets, audit, auth, clusters, fleet, health, metrics};

/// Any signed-in user: every role includes reading.
const VIEWER: &[Role] = &[Role::Viewer];
const ADMIN: &[Role] = &[Role::Admin];
/// Those who take snapshots and start recoveries.
const OPERATOR: &[Role] = &[Role::Operator];
/// Those who answer requests for destructive recovery steps (admins for break-glass).
const APPROVERS: &[Role] = &[Role::Approver, Role::Admin];
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
        // OIDC sign-in: public, like `POST /api/session`; the callback records its own audit
        // entries (`login`, `login_refused`).
        spec(
            Method::GET,
            "/api/auth/providers",
            Public,
            None,
            get(auth::oidc::routes::list_sign_in_options),
        ),
        spec(
            Method::GET,
            "/api/auth/oidc/login",
            Public,
            None,
            get(auth::oidc::routes::start_oidc_login),
        ),
        spec(
            Method::GET,
            "/api/auth/oidc/callback",
            Public,
            None,
            get(auth::oidc::routes::finish_oidc_login),
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
        // Takes, raw copies and uploads in flight, with their bytes: for every open page.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/snapshots/transfers/stream",
            AnyRole(VIEWER),
            None,
            get(crate::snapshots::transfers::stream_transfers),
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
        // Webhook notifications: everyone sees whether deliveries work; admins set the receiver.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/webhook",
            AnyRole(VIEWER),
            None,
            get(notify_api::find_webhook),
        ),
        spec(
            Method::PUT,
            "/api/clusters/{cluster}/webhook",
            AnyRole(ADMIN),
            Some("webhook_set"),
            put(notify_api::put_webhook),
        ),
        spec(
            Method::DELETE,
            "/api/clusters/{cluster}/webhook",
            AnyRole(ADMIN),
            Some("webhook_remove"),
            delete(notify_api::delete_webhook),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/webhook/test",
            AnyRole(ADMIN),
            Some("webhook_test"),
            post(notify_api::test_webhook),
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
        // Recovery incidents: operators act, approvers (or an admin, break-glass) approve,
        // everyone watches and may add notes.
        spec(
            Method::GET,
            "/api/clusters/{cluster}/incidents",
            AnyRole(VIEWER),
            None,
            get(recovery_api::list_incidents),
        ),
        spec(
            Method::POST,
            "/api/clusters/{cluster}/incidents",
            AnyRole(OPERATOR),
            Some("incident_open"),
            post(recovery_api::create_incident),
        ),
        spec(
            Method::GET,
            "/api/incidents/{id}",
            AnyRole(VIEWER),
            None,
            get(recovery_api::find_incident),
        ),
        spec(
            Method::GET,
            "/api/incidents/{id}/stream",
            AnyRole(VIEWER),
            None,
            get(recovery_stream::stream_incident),
        ),
        spec(
            Method::GET,
            "/api/incidents/{id}/report.md",
            AnyRole(VIEWER),
            None,
            get(recovery_api::report_markdown),
        ),
        spec(
            Method::GET,
            "/api/incidents/{id}/report.json",
            AnyRole(VIEWER),
            None,
            get(recovery_api::report_json),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/precheck",
            AnyRole(OPERATOR),
            Some("incident_precheck"),
            post(recovery_api::rerun_precheck),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/precheck/override",
            AnyRole(OPERATOR),
            Some("incident_precheck_override"),
            post(recovery_api::override_precheck),
        ),
        spec(
            Method::GET,
            "/api/incidents/{id}/snapshot-candidates",
            AnyRole(VIEWER),
            None,
            get(recovery_api::list_snapshot_candidates),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/snapshot",
            AnyRole(OPERATOR),
            Some("incident_snapshot_choose"),
            post(recovery_api::choose_snapshot),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/steps/{step}/request",
            AnyRole(OPERATOR),
            Some("step_request"),
            post(recovery_api::request_step),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/steps/{step}/approvals",
            AnyRole(APPROVERS),
            Some("step_answer"),
            post(recovery_api::answer_request),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/steps/{step}/run",
            AnyRole(OPERATOR),
            Some("step_run"),
            post(recovery_api::run_step),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/steps/{step}/resolve",
            AnyRole(OPERATOR),
            Some("step_resolve"),
            post(recovery_api::resolve_step),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/notes",
            AnyRole(VIEWER),
            Some("incident_note"),
            post(recovery_api::add_note),
        ),
        spec(
            Method::POST,
            "/api/incidents/{id}/close",
            AnyRole(OPERATOR),
            Some("incident_close"),
            post(recovery_api::close_incident),
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
