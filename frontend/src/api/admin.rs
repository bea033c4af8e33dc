//! What the admin and approver pages read and change: the audit trail, console users and
//! machine config backups.

use gloo_net::http::Request;
use serde::Deserialize;

use super::{ApiError, cluster_path, get_json, post_json, read_json, with_csrf};

/// Filters of the audit page; empty fields are left out of the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: String,
    pub action: String,
    pub cluster: String,
    /// RFC 3339 or milliseconds since the epoch, as the console accepts them.
    pub since: String,
    pub until: String,
    /// Entries older than this `seq` (the previous page's `next_before`).
    pub before: Option<i64>,
    pub limit: u32,
}

impl AuditQuery {
    /// The query string for `GET /api/audit`.
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("cluster", &self.cluster),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            let value = value.trim();
            if !value.is_empty() {
                parts.push(format!(
                    "{key}={}",
                    String::from(js_sys::encode_uri_component(value))
                ));
            }
        }
        if let Some(before) = self.before {
            parts.push(format!("before={before}"));
        }
        if self.limit > 0 {
            parts.push(format!("limit={}", self.limit));
        }
        parts.join("&")
    }
}

/// One page of the audit trail, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<talos_dr_shared::AuditEntry>,
    pub meta: AuditPageMeta,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditPageMeta {
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

/// `GET /api/audit`: one filtered page of the audit trail (approver or admin).
pub async fn list_audit_entries(query: &AuditQuery) -> Result<AuditPage, ApiError> {
    let url = format!("/api/audit?{}", query.to_query_string());
    get_json::<AuditPage>(&url, "an audit page").await
}

/// Where the browser downloads the whole audit trail as JSON lines.
pub const AUDIT_EXPORT_URL: &str = "/api/audit/export";

#[derive(Deserialize)]
struct UserList {
    users: Vec<talos_dr_shared::UserSummary>,
}

/// `GET /api/users`: every console user (admin).
pub async fn list_users() -> Result<Vec<talos_dr_shared::UserSummary>, ApiError> {
    get_json::<UserList>("/api/users", "a user list")
        .await
        .map(|l| l.users)
}

/// The answer to creating a user: the password is there only when the console generated it,
/// and is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedUser {
    pub user: talos_dr_shared::UserSummary,
    pub generated_password: Option<String>,
}

/// `POST /api/users`: adds a user with a generated password (admin).
pub async fn create_user(
    username: &str,
    roles: &[talos_dr_shared::Role],
) -> Result<CreatedUser, ApiError> {
    let body = serde_json::json!({ "username": username, "roles": roles });
    post_json("/api/users", &body, "a created user").await
}

// ---- Machine config backups (admin) ----

/// One node's backed-up machine config, as `GET .../machine-configs` lists it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct MachineConfigBackup {
    pub id: String,
    pub node: String,
    pub taken_by: String,
    pub taken_at_ms: i64,
    pub sha256: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct MachineConfigList {
    backups: Vec<MachineConfigBackup>,
}

/// What one backup run stored, and the nodes whose config could not be fetched.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineConfigBackupRun {
    pub backups: Vec<MachineConfigBackup>,
    pub failures: Vec<MachineConfigFailure>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct MachineConfigFailure {
    pub node: String,
    pub reason: String,
}

/// `GET /api/clusters/{cluster}/machine-configs`: newest first.
pub async fn list_machine_configs(cluster: &str) -> Result<Vec<MachineConfigBackup>, ApiError> {
    let url = format!("{}/machine-configs", cluster_path(cluster));
    get_json::<MachineConfigList>(&url, "a machine config list")
        .await
        .map(|l| l.backups)
}

/// `POST /api/clusters/{cluster}/machine-configs`: backs up every control-plane node's config.
pub async fn back_up_machine_configs(cluster: &str) -> Result<MachineConfigBackupRun, ApiError> {
    let url = format!("{}/machine-configs", cluster_path(cluster));
    let response = with_csrf(Request::post(&url))
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    read_json(response, "a machine config backup").await
}

/// Where the browser downloads one backup, decrypted (the console records the download).
pub fn machine_config_download_url(cluster: &str, id: &str) -> String {
    format!(
        "{}/machine-configs/{}/download",
        cluster_path(cluster),
        String::from(js_sys::encode_uri_component(id))
    )
}
