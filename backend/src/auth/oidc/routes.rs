//! `GET /api/auth/providers`, `GET /api/auth/oidc/login` and `GET /api/auth/oidc/callback`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use talos_dr_shared::Role;
use talos_dr_shared::sign_in::{
    LocalSignIn, OidcRefusal, OidcSignInOption, SignInMethod, SignInOptions,
};
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};

use super::pending::{
    PENDING_COOKIE, PENDING_COOKIE_PATH, PENDING_LIFETIME_SECS, PendingLogin, PendingSeal,
    pkce_challenge, safe_next,
};
use super::{OidcError, OidcProvider};
use crate::audit::NewAuditEntry;
use crate::auth::routes::ClientAddr;
use crate::auth::session::sign_in_external;
use crate::state::AppState;

pub const LOGIN_PATH: &str = "/api/auth/oidc/login";

/// `GET /api/auth/providers`: what the login page offers.
#[tracing::instrument(name = "list_sign_in_options", skip_all)]
pub async fn list_sign_in_options(State(state): State<AppState>) -> Json<SignInOptions> {
    Json(match state.oidc() {
        Some(oidc) => SignInOptions {
            oidc: Some(OidcSignInOption {
                provider_name: oidc.settings.provider_name.clone(),
                login_url: LOGIN_PATH.to_string(),
            }),
            local: oidc.settings.local_sign_in,
        },
        None => SignInOptions {
            oidc: None,
            local: LocalSignIn::Everyone,
        },
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /api/auth/oidc/login?next=/path`: sends the browser to the provider.
#[tracing::instrument(name = "start_oidc_login", skip_all)]
pub async fn start_oidc_login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Response {
    let Some(oidc) = state.oidc() else {
        return OidcError::NotConfigured.into_response();
    };
    let pending = PendingLogin::start(safe_next(query.next.as_deref()));
    let url = match oidc.authorization_url(
        &pending.state,
        &pending.nonce,
        &pkce_challenge(&pending.code_verifier),
    ) {
        Ok(url) => url,
        Err(e) => return e.into_response(),
    };
    let Some(sealed) = seal(oidc).seal(&pending) else {
        return OidcError::Provider("cannot seal the sign-in state".into()).into_response();
    };
    let cookie = pending_cookie(sealed, PENDING_LIFETIME_SECS, &state);
    with_cookie(Redirect::to(&url).into_response(), &cookie)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    /// RFC 9207: the provider says who it is; must be ours when present.
    iss: Option<String>,
}

/// `GET /api/auth/oidc/callback`: the provider sends the browser back here. Success opens a
/// session and goes to the page the sign-in started from; any refusal goes to the login page
/// with a reason code, and leaves nothing behind but an audit entry.
#[tracing::instrument(name = "finish_oidc_login", skip_all)]
pub async fn finish_oidc_login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = state.oidc() else {
        return OidcError::NotConfigured.into_response();
    };
    let client = client.map(|a| a.ip().to_string());
    let pending = pending_cookie_value(&headers).and_then(|v| seal(oidc).open(&v));
    let outcome = finish(&state, oidc, &session, pending, query).await;
    let response = match outcome {
        Ok(done) => {
            record(
                &state,
                &done.username,
                done.roles.clone(),
                "login",
                "ok",
                done.parameters,
                client,
            )
            .await;
            Redirect::to(&done.next).into_response()
        }
        Err(refused) => {
            tracing::info!(reason = %refused.reason, "OIDC sign-in refused");
            record(
                &state,
                refused.actor.as_deref().unwrap_or("(not signed in)"),
                Vec::new(),
                "login_refused",
                &format!("refused: {}", refused.reason),
                refused.parameters,
                client,
            )
            .await;
            Redirect::to(&format!("/login?oidc_error={}", refused.code.code())).into_response()
        }
    };
    // The pending sign-in is used up whatever happened.
    with_cookie(response, &pending_cookie(String::new(), 0, &state))
}

struct SignedIn {
    username: String,
    roles: Vec<Role>,
    next: String,
    parameters: BTreeMap<String, String>,
}

struct Refused {
    code: OidcRefusal,
    reason: String,
    actor: Option<String>,
    parameters: BTreeMap<String, String>,
}

fn refused(code: OidcRefusal, reason: impl Into<String>) -> Refused {
    Refused {
        code,
        reason: reason.into(),
        actor: None,
        parameters: BTreeMap::new(),
    }
}

async fn finish(
    state: &AppState,
    oidc: &OidcProvider,
    session: &Session,
    pending: Option<PendingLogin>,
    query: CallbackQuery,
) -> Result<SignedIn, Refused> {
    let Some(pending) = pending else {
        return Err(refused(
            OidcRefusal::Expired,
            "no sign-in was started in this browser (or its cookie was altered)",
        ));
    };
    if pending.expired() {
        return Err(refused(OidcRefusal::Expired, "the sign-in took too long"));
    }
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|s| crate::auth::session::tokens_match(s, &pending.state));
    if !state_matches {
        return Err(refused(
            OidcRefusal::Invalid,
            "the state parameter does not match",
        ));
    }
    if let Some(iss) = &query.iss
        && *iss != oidc.settings.issuer
    {
        return Err(refused(
            OidcRefusal::Invalid,
            format!("answer from issuer {iss:?}"),
        ));
    }
    if let Some(error) = &query.error {
        return Err(refused(
            OidcRefusal::Provider,
            format!("the provider answered {error:?}"),
        ));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Err(refused(OidcRefusal::Invalid, "no authorization code"));
    };
    let tokens = oidc
        .exchange_code(code, &pending.code_verifier)
        .await
        .map_err(|e| refused(OidcRefusal::Provider, e.to_string()))?;
    let Some(id_token) = tokens.id_token.as_deref() else {
        return Err(refused(
            OidcRefusal::Invalid,
            "the provider sent no ID token",
        ));
    };
    let verified = oidc
        .verify_id_token(id_token, &pending.nonce)
        .await
        .map_err(|e| refused(OidcRefusal::Invalid, e.to_string()))?;
    let mut parameters = BTreeMap::from([
        ("via".to_string(), "oidc".to_string()),
        ("issuer".to_string(), oidc.settings.issuer.clone()),
        ("subject".to_string(), verified.subject.clone()),
    ]);
    let with_user = |mut r: Refused, parameters: &BTreeMap<String, String>| {
        r.actor = Some(verified.username.clone());
        r.parameters = parameters.clone();
        r
    };
    let groups = match (&verified.groups, tokens.access_token.as_deref()) {
        (Some(groups), _) => groups.clone(),
        // Some providers keep scope claims out of the ID token: ask userinfo.
        (None, Some(access_token)) if oidc.discovery.userinfo_endpoint.is_some() => {
            let claims = oidc
                .userinfo(access_token, &verified.subject)
                .await
                .map_err(|e| {
                    with_user(refused(OidcRefusal::Provider, e.to_string()), &parameters)
                })?;
            super::provider::groups_of(&claims, &oidc.settings.groups_claim)
                .map_err(|e| with_user(refused(OidcRefusal::Invalid, e.to_string()), &parameters))?
                .unwrap_or_default()
        }
        (None, _) => Vec::new(),
    };
    parameters.insert("groups".to_string(), groups.join(","));
    let roles = oidc.settings.roles_for(&groups);
    if roles.is_empty() {
        return Err(with_user(
            refused(
                OidcRefusal::NoRole,
                format!(
                    "no group in claim {:?} maps to a talos-dr role",
                    oidc.settings.groups_claim
                ),
            ),
            &parameters,
        ));
    }
    let via = SignInMethod::Oidc {
        provider: oidc.settings.provider_name.clone(),
    };
    sign_in_external(
        session,
        &state.session_settings(),
        &verified.username,
        roles.clone(),
        via,
    )
    .await
    .map_err(|e| with_user(refused(OidcRefusal::Invalid, e.to_string()), &parameters))?;
    Ok(SignedIn {
        username: verified.username,
        roles,
        next: pending.next,
        parameters,
    })
}

async fn record(
    state: &AppState,
    actor: &str,
    roles: Vec<Role>,
    action: &str,
    outcome: &str,
    parameters: BTreeMap<String, String>,
    client: Option<String>,
) {
    state
        .storage()
        .audit
        .record(NewAuditEntry {
            actor: actor.to_string(),
            roles,
            action: action.to_string(),
            cluster: None,
            target: None,
            parameters,
            outcome: outcome.to_string(),
            client,
        })
        .await;
}

fn seal(oidc: &OidcProvider) -> PendingSeal {
    PendingSeal::from_client_secret(oidc.settings.client_secret.expose())
}

/// SameSite=Lax: it must come back on the provider's top-level redirect to the callback.
fn pending_cookie(value: String, max_age_secs: i64, state: &AppState) -> Cookie<'static> {
    Cookie::build((PENDING_COOKIE, value))
        .path(PENDING_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.session_settings().secure_cookies)
        .max_age(time::Duration::seconds(max_age_secs))
        .build()
}

fn pending_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == PENDING_COOKIE)
        .map(|c| c.value().to_string())
}

fn with_cookie(mut response: Response, cookie: &Cookie<'_>) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
