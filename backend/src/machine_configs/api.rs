//! The machine config routes: back up every control-plane node, list, download (decrypted).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use talos_dr_shared::ErrorBody;

use super::store::is_backup_id;
use super::{MachineConfigBackup, MachineConfigError};
use crate::audit::{AuditDetail, NewAuditEntry};
use crate::auth::CurrentUser;
use crate::clock::now_ms;
use crate::state::{AppState, WatchedCluster};
use crate::talos::credentials::TalosRole;
use crate::talos::{TalosApi, TalosClient};

const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The audit action of a download.
pub const DOWNLOAD_ACTION: &str = "machine_config_download";

#[derive(Debug, Serialize)]
pub struct MachineConfigList {
    pub backups: Vec<MachineConfigBackup>,
}

/// A node whose config could not be fetched; the others are still stored.
#[derive(Debug, Serialize)]
pub struct NodeFailure {
    pub node: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BackupResponse {
    pub backups: Vec<MachineConfigBackup>,
    pub failures: Vec<NodeFailure>,
}

impl IntoResponse for MachineConfigError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::NoKey => (StatusCode::CONFLICT, "config_backup_key_missing"),
            Self::Cluster(_) => (StatusCode::NOT_FOUND, "cluster_not_found"),
            Self::NotFound { .. } => (StatusCode::NOT_FOUND, "machine_config_not_found"),
            Self::BadId(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NothingFetched(_) => (StatusCode::BAD_GATEWAY, "machine_config_fetch_failed"),
            Self::Credentials(_) | Self::Seal { .. } | Self::Io { .. } | Self::Database(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "machine config request failed");
            "the console hit an internal error; the details are in its log".to_string()
        } else {
            self.to_string()
        };
        (status, Json(ErrorBody::new(code, message))).into_response()
    }
}

/// The cluster's Talos API with admin credentials; a cluster configured without talosconfigs
/// (a test fake) is asked through its one client.
fn admin_talos(cluster: &WatchedCluster) -> Result<Arc<dyn TalosApi>, MachineConfigError> {
    match cluster.talos_credentials.for_role(TalosRole::Admin) {
        Some(ctx) => TalosClient::new(ctx, CALL_TIMEOUT)
            .map(|c| Arc::new(c) as Arc<dyn TalosApi>)
            .map_err(|e| MachineConfigError::Credentials(e.to_string())),
        None => Ok(cluster.talos.clone()),
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `POST /api/clusters/{cluster}/machine-configs`
pub async fn back_up_machine_configs(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(cluster): Path<String>,
) -> Result<Response, MachineConfigError> {
    let watched = state.cluster(&cluster)?;
    let key = state.config_backup_key().ok_or(MachineConfigError::NoKey)?;
    let talos = admin_talos(watched)?;
    let store = state.machine_configs();
    let fetches = watched.control_plane_nodes.iter().map(|node| {
        let talos = talos.clone();
        async move { (node.clone(), talos.machine_config(node).await) }
    });
    let mut response = BackupResponse {
        backups: Vec::new(),
        failures: Vec::new(),
    };
    for (node, fetched) in futures::future::join_all(fetches).await {
        let yaml = match fetched {
            Ok(yaml) => yaml,
            Err(e) => {
                tracing::warn!(cluster, node, error = %e, "machine config not fetched");
                response.failures.push(NodeFailure {
                    node,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let id = new_id();
        let backup = MachineConfigBackup {
            object_key: String::new(),
            id: id.clone(),
            cluster: cluster.clone(),
            node,
            taken_by: user.username.clone(),
            taken_at_ms: now_ms(),
            sha256: hex::encode(Sha256::digest(&yaml)),
            size_bytes: i64::try_from(yaml.len()).unwrap_or(i64::MAX),
        };
        let sealed = key
            .seal(&yaml, &backup.binding())
            .map_err(|source| MachineConfigError::Seal { id, source })?;
        store.insert(&backup, &sealed).await?;
        response.backups.push(backup);
    }
    if response.backups.is_empty() {
        let reasons: Vec<String> = response
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.node, f.reason))
            .collect();
        return Err(MachineConfigError::NothingFetched(reasons.join("; ")));
    }
    let detail = AuditDetail {
        target: Some(
            response
                .backups
                .iter()
                .map(|b| b.node.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        parameters: [(
            "failed_nodes".to_string(),
            response.failures.len().to_string(),
        )]
        .into(),
    };
    let mut reply = (StatusCode::CREATED, Json(response)).into_response();
    reply.extensions_mut().insert(detail);
    Ok(reply)
}

/// `GET /api/clusters/{cluster}/machine-configs`
pub async fn list_machine_configs(
    State(state): State<AppState>,
    Path(cluster): Path<String>,
) -> Result<Json<MachineConfigList>, MachineConfigError> {
    state.cluster(&cluster)?;
    let backups = state.machine_configs().list(&cluster).await?;
    Ok(Json(MachineConfigList { backups }))
}

/// `GET /api/clusters/{cluster}/machine-configs/{id}/download`: the YAML as it was fetched.
/// The guard audits only state-changing methods; secrets leaving the server are recorded here,
/// whatever the outcome.
pub async fn download_machine_config(
    State(state): State<AppState>,
    user: CurrentUser,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((cluster, id)): Path<(String, String)>,
) -> Response {
    let response = decrypted(&state, &cluster, &id)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    let status = response.status();
    let outcome = if status.is_success() {
        "ok".to_string()
    } else {
        format!("failed: {status}")
    };
    state
        .storage()
        .audit
        .record(NewAuditEntry {
            actor: user.username,
            roles: user.roles,
            action: DOWNLOAD_ACTION.to_string(),
            cluster: Some(cluster),
            target: Some(id),
            parameters: BTreeMap::new(),
            outcome,
            client: Some(client.ip().to_string()),
        })
        .await;
    response
}

async fn decrypted(
    state: &AppState,
    cluster: &str,
    id: &str,
) -> Result<Response, MachineConfigError> {
    let (cluster, id) = (cluster.to_string(), id.to_string());
    state.cluster(&cluster)?;
    if !is_backup_id(&id) {
        return Err(MachineConfigError::BadId(id));
    }
    let key = state.config_backup_key().ok_or(MachineConfigError::NoKey)?;
    let store = state.machine_configs();
    let backup = store
        .find(&cluster, &id)
        .await?
        .ok_or_else(|| MachineConfigError::NotFound {
            cluster: cluster.clone(),
            id: id.clone(),
        })?;
    let sealed = store.read(&backup).await?;
    let yaml = key
        .open(&sealed, &backup.binding())
        .map_err(|source| MachineConfigError::Seal {
            id: id.clone(),
            source,
        })?;
    let mut response = yaml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    // Node names are addresses or host names; anything else is left out of the file name.
    let node: String = backup
        .node
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        .collect();
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{cluster}-{node}-{id}.yaml\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
