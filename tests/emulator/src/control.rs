//! Loopback-only HTTP JSON interface for injecting faults into a running emulator.
//!
//! Routes (bodies and answers are JSON; errors are `{"error": "..."}`, 404 for an unknown node):
//! - `GET /cluster`: `{"nodes": [{"ip", "hostname", "machine_type", "powered_on", "api_up",
//!   "delay_ms", "etcd_state", "etcd_healthy", "calls", "refused_calls", "calls_in_hold",
//!   "armed_holds_ms"}]}`; the last four are `{"reset": n, "bootstrap": n, "etcd_recover": n,
//!   "apply_configuration": n, "reboot": n}` (counting rules in `node::RecoveryCall`'s module).
//! - `POST /nodes/{ip}/api/stop`, `/api/start`: close or reopen the node's Talos API.
//! - `POST /nodes/{ip}/etcd/kill`, `/etcd/start`, `/etcd/corrupt`, `/etcd/nospace`,
//!   `/etcd/split`: etcd faults.
//! - `POST /nodes/{ip}/slow` `{"delay_ms": N}`: delay every answer of the node.
//! - `POST /nodes/{ip}/snapshot/cut` `{"after_bytes": N, "with_error": bool}`.
//! - `POST /nodes/{ip}/hold` `{"rpc": "reset"|"bootstrap"|"etcd_recover"|
//!   "apply_configuration"|"reboot", "ms": N}`: the next such call that reaches the node waits
//!   N ms before it is validated and executed (0 disarms). A caller that disconnects during the
//!   hold has its call dropped: not executed, no counter moves, the hold is used up.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::faults::{FaultError, Faults, NodeStatus};
use crate::node::RecoveryCall;

/// File in the state dir holding the control interface's `ip:port`.
pub const CONTROL_ADDR_FILE: &str = "control.addr";

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("binding the control interface on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    WriteAddr {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize)]
struct ClusterView {
    nodes: Vec<NodeStatus>,
}

#[derive(Debug, Deserialize)]
struct SlowBody {
    delay_ms: u64,
}

#[derive(Debug, Deserialize)]
struct SnapshotCutBody {
    after_bytes: u64,
    #[serde(default)]
    with_error: bool,
}

#[derive(Debug, Deserialize)]
struct HoldBody {
    rpc: String,
    ms: u64,
}

/// Errors as `{"error": "..."}` with a status that says whose fault it was.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<FaultError> for ApiError {
    fn from(err: FaultError) -> Self {
        match err {
            FaultError::UnknownNode(_) => ApiError(StatusCode::NOT_FOUND, err.to_string()),
            FaultError::Server(_) => ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            FaultError::Etcd { .. } => ApiError(StatusCode::BAD_GATEWAY, err.to_string()),
        }
    }
}

type Shared = State<Arc<Faults>>;

fn parse_ip(raw: &str) -> Result<Ipv4Addr, ApiError> {
    raw.parse().map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("path segment {raw:?} is not an IPv4 address"),
        )
    })
}

fn ok() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true }))
}

async fn get_cluster(State(faults): Shared) -> Json<ClusterView> {
    Json(ClusterView {
        nodes: faults.status(),
    })
}

async fn stop_api(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.stop_api(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn start_api(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.start_api(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn replace_machine(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.replace_machine(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn kill_etcd(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.kill_etcd(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn start_etcd(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.start_etcd(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn corrupt_etcd(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.corrupt_etcd(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn raise_nospace(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.raise_nospace(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn split_off_etcd(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    faults.split_off_etcd(parse_ip(&ip)?).await?;
    Ok(ok())
}

async fn slow(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
    Json(body): Json<SlowBody>,
) -> Result<impl IntoResponse, ApiError> {
    faults.set_slow(parse_ip(&ip)?, Duration::from_millis(body.delay_ms))?;
    Ok(ok())
}

async fn cut_snapshot(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
    Json(body): Json<SnapshotCutBody>,
) -> Result<impl IntoResponse, ApiError> {
    faults.cut_next_snapshot(parse_ip(&ip)?, body.after_bytes, body.with_error)?;
    Ok(ok())
}

async fn hold(
    State(faults): Shared,
    UrlPath(ip): UrlPath<String>,
    Json(body): Json<HoldBody>,
) -> Result<impl IntoResponse, ApiError> {
    let ip = parse_ip(&ip)?;
    let call = RecoveryCall::parse(&body.rpc).ok_or_else(|| {
        let known: Vec<&str> = RecoveryCall::ALL.iter().map(|c| c.as_str()).collect();
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "field rpc: unknown call {:?}; expected one of {}",
                body.rpc,
                known.join(", ")
            ),
        )
    })?;
    faults.hold_next(ip, call, Duration::from_millis(body.ms))?;
    Ok(ok())
}

/// Fault injection must not be reachable from other hosts, whatever the bind address.
async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !peer.ip().is_loopback() {
        return ApiError(
            StatusCode::FORBIDDEN,
            "the control interface only accepts loopback clients".into(),
        )
        .into_response();
    }
    next.run(request).await
}

pub(crate) fn router(faults: Arc<Faults>) -> Router {
    Router::new()
        .route("/cluster", get(get_cluster))
        .route("/nodes/{ip}/api/stop", post(stop_api))
        .route("/nodes/{ip}/api/start", post(start_api))
        .route("/nodes/{ip}/replace", post(replace_machine))
        .route("/nodes/{ip}/etcd/kill", post(kill_etcd))
        .route("/nodes/{ip}/etcd/start", post(start_etcd))
        .route("/nodes/{ip}/etcd/corrupt", post(corrupt_etcd))
        .route("/nodes/{ip}/etcd/nospace", post(raise_nospace))
        .route("/nodes/{ip}/etcd/split", post(split_off_etcd))
        .route("/nodes/{ip}/slow", post(slow))
        .route("/nodes/{ip}/snapshot/cut", post(cut_snapshot))
        .route("/nodes/{ip}/hold", post(hold))
        .layer(middleware::from_fn(loopback_only))
        .with_state(faults)
}

/// The running control interface.
pub(crate) struct ControlServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds 127.0.0.1:`port` (0 = any free port) and records the address in the state dir.
    pub(crate) async fn start(
        faults: Arc<Faults>,
        port: u16,
        state_dir: &Path,
    ) -> Result<Self, ControlError> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|source| ControlError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ControlError::Bind { port, source })?;
        let path = state_dir.join(CONTROL_ADDR_FILE);
        std::fs::write(&path, format!("{addr}\n"))
            .map_err(|source| ControlError::WriteAddr { path, source })?;
        let stop = CancellationToken::new();
        let app = router(faults).into_make_service_with_connect_info::<SocketAddr>();
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::error!(%err, "control interface failed");
            }
        });
        tracing::info!(%addr, "control interface listening");
        Ok(Self {
            addr,
            stop,
            task: Some(task),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn cancel(&self) {
        self.stop.cancel();
    }

    pub(crate) async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
