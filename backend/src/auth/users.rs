//! Managing users: `GET` and `POST /api/users` (admin), and the same logic for the
//! `talos-dr user add` command.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use talos_dr_shared::{Role, UserSummary};

use super::password::{check_strength, generate_password, hash_password};
use super::{AuthError, UserStore};
use crate::audit::AuditDetail;
use crate::error::ApiResult;
use crate::json::AppJson;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize)]
pub struct UserListResponse {
    pub users: Vec<UserSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserCreateRequest {
    pub username: String,
    pub roles: Vec<Role>,
    /// Left out: the console generates one and returns it, once.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserCreateResponse {
    pub user: UserSummary,
    /// Only when the console generated the password; it is not stored in clear anywhere.
    pub generated_password: Option<String>,
}

/// Creates a user; returns the password when it was generated here.
pub async fn add_user(
    users: &UserStore,
    username: &str,
    roles: &[Role],
    password: Option<String>,
) -> Result<Option<String>, AuthError> {
    super::store::check_username(username)?;
    if roles.is_empty() {
        return Err(AuthError::NoRoles);
    }
    let (password, generated) = match password {
        Some(p) => {
            check_strength(&p)?;
            (p, false)
        }
        None => {
            let p = generate_password();
            (p, true)
        }
    };
    let hash = hash_password(password.clone()).await?;
    users.create(username, &hash, roles).await?;
    Ok(generated.then_some(password))
}

/// `GET /api/users`
#[tracing::instrument(name = "list_users", skip_all)]
pub async fn list_users(State(state): State<AppState>) -> ApiResult<Json<UserListResponse>> {
    Ok(Json(UserListResponse {
        users: state.storage().users.list().await?,
    }))
}

/// `POST /api/users`
#[tracing::instrument(name = "create_user", skip_all, fields(username = %body.username))]
pub async fn create_user(
    State(state): State<AppState>,
    AppJson(body): AppJson<UserCreateRequest>,
) -> ApiResult<(StatusCode, Extension<AuditDetail>, Json<UserCreateResponse>)> {
    let users = &state.storage().users;
    let generated = add_user(users, &body.username, &body.roles, body.password).await?;
    let roles: Vec<&str> = body.roles.iter().map(Role::as_str).collect();
    let detail = AuditDetail {
        target: Some(body.username.clone()),
        parameters: BTreeMap::from([("roles".to_string(), roles.join(","))]),
    };
    let mut sorted = body.roles.clone();
    sorted.sort();
    sorted.dedup();
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        Json(UserCreateResponse {
            user: UserSummary {
                username: body.username,
                roles: sorted,
                created_at_ms: crate::clock::now_ms(),
            },
            generated_password: generated,
        }),
    ))
}
