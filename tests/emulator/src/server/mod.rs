//! One apid-like gRPC endpoint per emulated node: TLS + mTLS, the Talos role
//! table, `node` metadata routing between the nodes of this process, and the
//! transport faults (stopped API, slow responses).

mod authz;
mod machine;
mod routing;
mod state;
pub mod tls;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use talos_api::MAX_MESSAGE_SIZE;
use talos_api::cosi::resource::state_server::StateServer;
use talos_api::machine::machine_service_server::MachineServiceServer;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::node::Node;
use crate::pki::ClusterPki;

pub use authz::{Rpc, is_sensitive_type};
pub use tls::TlsSetupError;

/// How long a stopping API may take to wind down its connections before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("node {0} is not part of the emulated cluster")]
    UnknownNode(Ipv4Addr),
    #[error("binding the API of node {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup for node {ip}: {source}")]
    Tls {
        ip: Ipv4Addr,
        #[source]
        source: TlsSetupError,
    },
    #[error("issuing the API certificate of node {ip}: {source}")]
    Pki {
        ip: Ipv4Addr,
        #[source]
        source: crate::pki::PkiError,
    },
}

/// What the emulated nodes share: every node's endpoint, plus what
/// GenerateClientConfiguration needs to mint new identities.
pub(crate) struct NodeTable {
    endpoints: BTreeMap<Ipv4Addr, Arc<NodeEndpoint>>,
    pki: Arc<ClusterPki>,
    /// Endpoints written into minted talosconfigs (control-plane nodes).
    talos_endpoints: Vec<String>,
}

pub(crate) struct NodeEndpoint {
    node: Node,
    ip: Ipv4Addr,
    hostname: String,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    delay_ms: AtomicU64,
    /// Serializes start/stop of this node's listener.
    lifecycle: tokio::sync::Mutex<Option<RunningApi>>,
    /// Cancelled when the running API stops; `None` while stopped.
    current: Mutex<Option<CancellationToken>>,
}

struct RunningApi {
    stopped: CancellationToken,
    server: JoinHandle<()>,
}

impl NodeEndpoint {
    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        // A poisoned lock only means a panic elsewhere; the token inside is still valid.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn api_token(&self) -> Option<CancellationToken> {
        self.lock_current()
            .clone()
            .filter(|token| !token.is_cancelled())
    }

    pub(crate) fn is_up(&self) -> bool {
        self.api_token().is_some()
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }
}

/// The gRPC endpoints of all emulated nodes.
#[derive(Clone)]
pub struct ApiServers {
    table: Arc<NodeTable>,
}

impl ApiServers {
    /// Issues every node its apid certificate and prepares (but does not start) its listener.
    pub fn new(
        nodes: &[Node],
        api_port: u16,
        pki: Arc<ClusterPki>,
        talos_endpoints: Vec<String>,
    ) -> Result<Self, ServerError> {
        let ca_pem = pki.ca_pem();
        let mut endpoints = BTreeMap::new();
        for node in nodes {
            let ip = node.ip();
            let hostname = node.hostname();
            let cert = pki
                .issue_server(ip, &hostname)
                .map_err(|source| ServerError::Pki { ip, source })?;
            let tls = tls::server_config(&ca_pem, &cert)
                .map_err(|source| ServerError::Tls { ip, source })?;
            let endpoint = NodeEndpoint {
                node: node.clone(),
                ip,
                hostname,
                addr: SocketAddr::V4(SocketAddrV4::new(ip, api_port)),
                tls,
                delay_ms: AtomicU64::new(0),
                lifecycle: tokio::sync::Mutex::new(None),
                current: Mutex::new(None),
            };
            endpoints.insert(ip, Arc::new(endpoint));
        }
        Ok(Self {
            table: Arc::new(NodeTable {
                endpoints,
                pki,
                talos_endpoints,
            }),
        })
    }

    pub async fn start_all(&self) -> Result<(), ServerError> {
        for ip in self.table.endpoints.keys() {
            self.start_api(*ip).await?;
        }
        Ok(())
    }

    pub async fn stop_all(&self) {
        for ip in self.table.endpoints.keys() {
            // Every key is known, so this cannot fail.
            let _ = self.stop_api(*ip).await;
        }
    }

    /// Synchronous best effort for `Drop`: cancels every listener and connection.
    pub fn cancel_all(&self) {
        for endpoint in self.table.endpoints.values() {
            if let Some(token) = endpoint.lock_current().take() {
                token.cancel();
            }
        }
    }

    fn endpoint(&self, ip: Ipv4Addr) -> Result<&Arc<NodeEndpoint>, ServerError> {
        self.table
            .endpoints
            .get(&ip)
            .ok_or(ServerError::UnknownNode(ip))
    }

    /// Opens the node's listener (again). Starting a running API is a no-op.
    pub async fn start_api(&self, ip: Ipv4Addr) -> Result<(), ServerError> {
        let endpoint = self.endpoint(ip)?.clone();
        let mut lifecycle = endpoint.lifecycle.lock().await;
        if lifecycle.is_some() {
            return Ok(());
        }
        let listener = tls::bind(endpoint.addr).map_err(|source| ServerError::Bind {
            addr: endpoint.addr,
            source,
        })?;
        let stopped = CancellationToken::new();
        let incoming = ReceiverStream::new(tls::accept_loop(
            listener,
            endpoint.tls.clone(),
            stopped.clone(),
        ));
        let machine = MachineServiceServer::new(machine::MachineApi::new(self.table.clone(), ip))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let state = StateServer::new(state::StateApi::new(self.table.clone(), ip))
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let signal = stopped.clone().cancelled_owned();
        let addr = endpoint.addr;
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(machine)
                .add_service(state)
                .serve_with_incoming_shutdown(incoming, signal)
                .await;
            if let Err(err) = result {
                tracing::error!(%addr, %err, "node API server failed");
            }
        });
        *endpoint.lock_current() = Some(stopped.clone());
        *lifecycle = Some(RunningApi { stopped, server });
        tracing::info!(%addr, "node API listening");
        Ok(())
    }

    /// Closes the node's listener and resets its open connections, so clients see
    /// "connection refused" like with a dead apid. Stopping a stopped API is a no-op.
    pub async fn stop_api(&self, ip: Ipv4Addr) -> Result<(), ServerError> {
        let endpoint = self.endpoint(ip)?.clone();
        let mut lifecycle = endpoint.lifecycle.lock().await;
        let Some(running) = lifecycle.take() else {
            return Ok(());
        };
        endpoint.lock_current().take();
        running.stopped.cancel();
        let mut server = running.server;
        if tokio::time::timeout(STOP_GRACE, &mut server).await.is_err() {
            tracing::warn!(addr = %endpoint.addr, "node API did not stop in time, aborting it");
            server.abort();
        }
        tracing::info!(addr = %endpoint.addr, "node API stopped");
        Ok(())
    }

    pub fn is_api_up(&self, ip: Ipv4Addr) -> Result<bool, ServerError> {
        Ok(self.endpoint(ip)?.is_up())
    }

    /// Delays every response this node gives (as endpoint or as routed target).
    pub fn set_delay(&self, ip: Ipv4Addr, delay: Duration) -> Result<(), ServerError> {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.endpoint(ip)?.delay_ms.store(millis, Ordering::Relaxed);
        Ok(())
    }

    pub fn delay(&self, ip: Ipv4Addr) -> Result<Duration, ServerError> {
        Ok(self.endpoint(ip)?.delay())
    }
}
