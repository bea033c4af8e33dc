//! The one authorization check. The route table gives every route a `RoutePolicy`; `guard` runs
//! in front of each route's handler and enforces it:
//!
//! 1. state-changing requests (anything but GET/HEAD/OPTIONS) must come from this console's own
//!    pages: the `Origin` (or, without one, `Referer`) must name the host the request was sent to;
//! 2. the route's access rule: public, a signed-in user holding one of the listed roles (401
//!    without a session, 403 naming the role otherwise), or a metrics scraper;
//! 3. signed-in state-changing requests must carry the session's CSRF token in `X-CSRF-Token`;
//! 4. state-changing routes that name an audit action get an audit entry with the outcome,
//!    whether the handler ran or the request was refused here.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, RequestExt};
use talos_dr_shared::{CSRF_HEADER, Role};
use tower_sessions::Session;

use super::session::{current_user, tokens_match};
use super::{AuthError, CurrentUser};
use crate::audit::{AuditDetail, NewAuditEntry};
use crate::error::ApiError;
use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not: signing in, the web UI's files.
    Public,
    /// A signed-in user holding at least one of these roles (every role includes `viewer`).
    AnyRole(&'static [Role]),
    /// Prometheus: the bearer token from `--metrics-token`, or, when none is set, any client on
    /// a loopback address.
    Scrape,
}

/// What the route table says about one route, handed to `guard` as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct RoutePolicy {
    pub access: Access,
    /// The audit action recorded for a state-changing call (`None`: the handler records its own).
    pub audit: Option<&'static str>,
}

pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn guard(
    State(state): State<AppState>,
    Extension(policy): Extension<RoutePolicy>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let state_changing = changes_state(request.method());
    let client = client_addr(&request);
    let params: Vec<(String, String)> = request
        .extract_parts::<RawPathParams>()
        .await
        .map(|params| {
            params
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let param = |wanted: &str| {
        params
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.clone())
    };
    let cluster = match param("cluster") {
        Some(cluster) => Some(cluster),
        None if request.uri().path().starts_with("/api/incidents/") => match param("id") {
            Some(id) => incident_cluster(&state, &id).await,
            None => None,
        },
        None => None,
    };
    let audit_action = policy.audit.filter(|_| state_changing);
    let asked = Asked {
        headers: request.headers().clone(),
        authority: request.uri().authority().map(|a| a.to_string()),
        client,
        state_changing,
    };
    match authorize(&state, policy.access, &session, &asked).await {
        Ok(user) => {
            let (actor, roles) = user
                .as_ref()
                .map(|u| (u.username.clone(), u.roles.clone()))
                .unwrap_or_default();
            if let Some(user) = user {
                request.extensions_mut().insert(user);
            }
            let response = next.run(request).await;
            if let Some(action) = audit_action {
                let detail = response.extensions().get::<AuditDetail>().cloned();
                let status = response.status();
                let outcome = if status.is_success() {
                    "ok".to_string()
                } else {
                    format!("failed: {status}")
                };
                let detail = detail.unwrap_or_default();
                state
                    .storage()
                    .audit
                    .record(NewAuditEntry {
                        actor,
                        roles,
                        action: action.to_string(),
                        cluster,
                        target: detail.target,
                        parameters: detail.parameters,
                        outcome,
                        client: client.map(|a| a.ip().to_string()),
                    })
                    .await;
            }
            response
        }
        Err(refusal) => {
            if let Some(action) = audit_action {
                let mut parameters = BTreeMap::new();
                parameters.insert("path".to_string(), request.uri().path().to_string());
                state
                    .storage()
                    .audit
                    .record(NewAuditEntry {
                        actor: refusal_actor(&state, &session).await,
                        roles: Vec::new(),
                        action: action.to_string(),
                        cluster,
                        target: None,
                        parameters,
                        outcome: format!("refused: {refusal}"),
                        client: client.map(|a| a.ip().to_string()),
                    })
                    .await;
            }
            ApiError::Auth(refusal).into_response()
        }
    }
}

/// The cluster an incident route acts on, for its audit entry (also when the action fails).
async fn incident_cluster(state: &AppState, id: &str) -> Option<String> {
    match state.recovery().store.incident(id).await {
        Ok(incident) => incident.map(|i| i.cluster),
        Err(e) => {
            tracing::warn!(incident = %id, error = %e, "cannot read the incident's cluster for the audit trail");
            None
        }
    }
}

/// Who a refused request came from, as far as the session tells.
async fn refusal_actor(state: &AppState, session: &Session) -> String {
    match current_user(session, &state.session_settings(), &state.storage().users).await {
        Ok(user) => user.username,
        Err(_) => "(not signed in)".to_string(),
    }
}

/// What the guard looks at in a request (the body is not `Sync`, so not the request itself).
struct Asked {
    headers: HeaderMap,
    authority: Option<String>,
    client: Option<SocketAddr>,
    state_changing: bool,
}

async fn authorize(
    state: &AppState,
    access: Access,
    session: &Session,
    request: &Asked,
) -> Result<Option<CurrentUser>, AuthError> {
    let state_changing = request.state_changing;
    if state_changing {
        check_same_origin(&request.headers, request.authority.as_deref())?;
    }
    match access {
        Access::Public => Ok(None),
        Access::Scrape => {
            check_scraper(state, request)?;
            Ok(None)
        }
        Access::AnyRole(needed) => {
            let user =
                current_user(session, &state.session_settings(), &state.storage().users).await?;
            if !user.has_any(needed) {
                return Err(AuthError::RoleRequired(needed.to_vec()));
            }
            if state_changing {
                let given = request
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !tokens_match(given, &user.csrf_token) {
                    return Err(AuthError::CsrfToken);
                }
            }
            Ok(Some(user))
        }
    }
}

pub fn client_addr(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

fn check_scraper(state: &AppState, request: &Asked) -> Result<(), AuthError> {
    match state.metrics_token() {
        Some(token) => {
            let given = request
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if tokens_match(given, token) {
                Ok(())
            } else {
                Err(AuthError::MetricsToken)
            }
        }
        None => match request.client {
            Some(addr) if addr.ip().is_loopback() => Ok(()),
            _ => Err(AuthError::MetricsNotLocal),
        },
    }
}

/// The request must name, in `Origin` (or `Referer`), the host it was sent to. Browsers set
/// these headers themselves and a page on another site cannot fake them.
pub fn check_same_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), AuthError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority)
        .ok_or(AuthError::CrossOrigin)?;
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::CrossOrigin)?;
    let rest = source
        .strip_prefix("https://")
        .or_else(|| source.strip_prefix("http://"))
        .ok_or(AuthError::CrossOrigin)?;
    let source_host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !source_host.is_empty() && source_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(AuthError::CrossOrigin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(name.clone(), HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn same_origin_needs_a_matching_origin_or_referer() {
        let ok = headers(&[
            (header::HOST, "console.example:8080"),
            (header::ORIGIN, "https://console.example:8080"),
        ]);
        assert!(check_same_origin(&ok, None).is_ok());
        let referer = headers(&[
            (header::HOST, "console.example"),
            (header::REFERER, "http://console.example/clusters/prod"),
        ]);
        assert!(check_same_origin(&referer, None).is_ok());
        for bad in [
            headers(&[(header::HOST, "console.example")]),
            headers(&[
                (header::HOST, "console.example"),
                (header::ORIGIN, "https://evil.example"),
            ]),
            headers(&[(header::HOST, "console.example"), (header::ORIGIN, "null")]),
            headers(&[
                (header::HOST, "console.example"),
                (header::ORIGIN, "https://console.example.evil.example"),
            ]),
        ] {
            assert!(check_same_origin(&bad, None).is_err(), "{bad:?}");
        }
    }
}
