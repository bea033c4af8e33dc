//! The real Talos client: mTLS from a talosconfig, one tonic channel per endpoint, `node`
//! metadata on every call.
//!
//! A call for node N goes straight to N when N is one of the endpoints, so one dead node never
//! hides the others; any other node is reached through the first endpoint that connects.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use talos_api::cosi::resource::state_client::StateClient;
use talos_api::cosi::resource::{GetOptions, GetRequest};
use talos_api::machine::machine_service_client::MachineServiceClient;
use talos_api::machine::{EtcdMemberListRequest, EtcdSnapshotRequest, ReadRequest};
use talos_api::{MAX_MESSAGE_SIZE, with_node};
use talos_dr_shared::recovery::EtcdDataVolume;
use talos_dr_shared::{EtcdAlarm, EtcdMember, EtcdMemberStatus, EtcdService, MachineType};
use tonic::Status;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::{ByteStream, TalosApi, TalosContext, TalosEndpoint, TalosError, mapping};

mod recovery;
mod status;
mod upload;
mod volume;

pub(crate) use status::{classify, never_sent, timed_out};

/// How long a whole file transfer (a snapshot of a large database) may take; the per-call
/// timeout only bounds the wait for the node's first answer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A channel could not be set up for an endpoint (the TLS material or the address is unusable).
#[derive(Debug, thiserror::Error)]
#[error("talosconfig {path}: context {context:?}: endpoint {endpoint}: {message}")]
pub struct TalosClientError {
    pub path: String,
    pub context: String,
    pub endpoint: String,
    pub message: String,
}

/// How often an idle transfer connection is pinged, and how long a ping may go unanswered:
/// a dead node must not keep an upload or a followed log waiting for the whole transfer time.
const TRANSFER_KEEPALIVE: Duration = Duration::from_secs(20);
const TRANSFER_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Reads may be repeated on another endpoint after any local failure; a call that changes a
/// node only when it certainly never left this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Read,
    Change,
}

/// Talos API access for one cluster (one talosconfig context).
#[derive(Debug, Clone)]
pub struct TalosClient {
    endpoints: Vec<(TalosEndpoint, Channel)>,
    /// Per endpoint, a channel without the per-call timeout: an EtcdRecover answer only comes
    /// after the whole upload, and a followed Dmesg may wait long for its first line.
    transfers: Vec<Channel>,
    call_timeout: Duration,
}

impl TalosClient {
    /// Sets up the channels without connecting: connections are made on first use and
    /// re-made after failures, so startup never waits for a node that is down.
    pub fn new(ctx: &TalosContext, call_timeout: Duration) -> Result<Self, TalosClientError> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ctx.ca_pem))
            .identity(Identity::from_pem(&ctx.crt_pem, &ctx.key_pem));
        let mut endpoints = Vec::new();
        let mut transfers = Vec::new();
        for ep in &ctx.endpoints {
            let fail = |e: tonic::transport::Error| TalosClientError {
                path: ctx.source.display().to_string(),
                context: ctx.context.clone(),
                endpoint: ep.to_string(),
                message: e
                    .source()
                    .map_or_else(|| e.to_string(), |s| format!("{e}: {s}")),
            };
            let base = Endpoint::from_shared(ep.uri())
                .map_err(fail)?
                .tls_config(tls.clone())
                .map_err(fail)?
                .connect_timeout(call_timeout / 2);
            let transfer = base
                .clone()
                .http2_keep_alive_interval(TRANSFER_KEEPALIVE)
                .keep_alive_timeout(TRANSFER_KEEPALIVE_TIMEOUT)
                .connect_lazy();
            endpoints.push((ep.clone(), base.timeout(call_timeout).connect_lazy()));
            transfers.push(transfer);
        }
        Ok(Self {
            endpoints,
            transfers,
            call_timeout,
        })
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The channels to try for `node`, in order.
    fn routes(&self, node: &str) -> Vec<(&TalosEndpoint, &Channel, bool)> {
        if let Some((ep, ch)) = self.endpoints.iter().find(|(ep, _)| ep.host == node) {
            return vec![(ep, ch, false)];
        }
        self.endpoints
            .iter()
            .map(|(ep, ch)| (ep, ch, true))
            .collect()
    }

    /// Like `routes`, with the transfer channels (no per-call timeout).
    fn transfer_routes(&self, node: &str) -> Vec<(&TalosEndpoint, &Channel, bool)> {
        let all = self.endpoints.iter().zip(&self.transfers);
        if let Some(((ep, _), ch)) = all.clone().find(|((ep, _), _)| ep.host == node) {
            return vec![(ep, ch, false)];
        }
        all.map(|((ep, _), ch)| (ep, ch, true)).collect()
    }

    async fn call<T, F, Fut>(
        &self,
        node: &str,
        method: &'static str,
        call: F,
    ) -> Result<T, TalosError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        self.call_with(node, method, call, CallKind::Read).await
    }

    /// A call that changes the node: another endpoint is only tried when the call certainly
    /// never left this side, so a node never gets the same request twice.
    async fn change<T, F, Fut>(
        &self,
        node: &str,
        method: &'static str,
        call: F,
    ) -> Result<T, TalosError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        tracing::info!(node, method, "sending a state-changing Talos call");
        self.call_with(node, method, call, CallKind::Change).await
    }

    async fn call_with<T, F, Fut>(
        &self,
        node: &str,
        method: &'static str,
        call: F,
        kind: CallKind,
    ) -> Result<T, TalosError>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        // One deadline for all attempts: a dead first endpoint fails its connect at half the
        // budget, which leaves the rest for the next one.
        let deadline = tokio::time::Instant::now() + self.call_timeout;
        let mut last = TalosError::Unreachable("no endpoint configured".into());
        for (endpoint, channel, via_proxy) in self.routes(node) {
            let status = match tokio::time::timeout_at(deadline, call(channel.clone())).await {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(status)) => status,
                Err(_) => {
                    tracing::debug!(node, method, %endpoint, "Talos call timed out");
                    return Err(TalosError::Timeout);
                }
            };
            tracing::debug!(
                node, method, %endpoint, code = ?status.code(), message = status.message(),
                "Talos call failed"
            );
            if kind == CallKind::Change && timed_out(&status) {
                // The request may have reached the node: the outcome is unknown, not "unreachable".
                return Err(TalosError::Timeout);
            }
            let error = classify(&status, method, via_proxy);
            // Only a failure to reach the endpoint itself is worth trying the next one for.
            let may_retry = match kind {
                CallKind::Read => status.source().is_some(),
                CallKind::Change => never_sent(&status),
            };
            if via_proxy && may_retry {
                last = error;
                continue;
            }
            return Err(error);
        }
        Err(last)
    }

    fn machine(&self, channel: Channel) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// A request whose deadline covers a whole file transfer.
    fn transfer_request<T>(&self, message: T, node: &str) -> Result<tonic::Request<T>, Status> {
        let mut request =
            with_node(message, node).map_err(|e| Status::invalid_argument(e.to_string()))?;
        request.set_timeout(TRANSFER_TIMEOUT);
        Ok(request)
    }

    fn request<T>(&self, message: T, node: &str) -> Result<tonic::Request<T>, Status> {
        let mut request =
            with_node(message, node).map_err(|e| Status::invalid_argument(e.to_string()))?;
        request.set_timeout(self.call_timeout);
        Ok(request)
    }
}

#[async_trait]
impl TalosApi for TalosClient {
    async fn version(&self, node: &str) -> Result<String, TalosError> {
        let reply = self
            .call(node, "Version", |ch| async move {
                self.machine(ch).version(self.request((), node)?).await
            })
            .await?;
        mapping::version(reply.into_inner())
    }

    async fn machine_type(&self, node: &str) -> Result<MachineType, TalosError> {
        let reply = self
            .call(node, "MachineType", |ch| async move {
                let get = GetRequest {
                    namespace: "config".into(),
                    r#type: "MachineTypes.config.talos.dev".into(),
                    id: "machine-type".into(),
                    options: Some(GetOptions {}),
                };
                StateClient::new(ch)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .get(self.request(get, node)?)
                    .await
            })
            .await?;
        mapping::machine_type(reply.into_inner())
    }

    async fn machine_config(&self, node: &str) -> Result<Vec<u8>, TalosError> {
        let reply = self
            .call(node, "MachineConfig", |ch| async move {
                let get = GetRequest {
                    namespace: "config".into(),
                    r#type: "MachineConfigs.config.talos.dev".into(),
                    id: "v1alpha1".into(),
                    options: Some(GetOptions {}),
                };
                StateClient::new(ch)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .get(self.request(get, node)?)
                    .await
            })
            .await?;
        mapping::machine_config(reply.into_inner())
    }

    async fn etcd_data_volume(&self, node: &str) -> Result<EtcdDataVolume, TalosError> {
        self.read_etcd_data_volume(node).await
    }

    async fn etcd_service(&self, node: &str) -> Result<Option<EtcdService>, TalosError> {
        let reply = self
            .call(node, "ServiceList", |ch| async move {
                self.machine(ch).service_list(self.request((), node)?).await
            })
            .await?;
        mapping::etcd_service(reply.into_inner())
    }

    async fn etcd_members(&self, node: &str) -> Result<Vec<EtcdMember>, TalosError> {
        let reply = self
            .call(node, "EtcdMemberList", |ch| async move {
                let request = self.request(EtcdMemberListRequest { query_local: true }, node)?;
                self.machine(ch).etcd_member_list(request).await
            })
            .await?;
        mapping::etcd_members(reply.into_inner())
    }

    async fn etcd_status(&self, node: &str) -> Result<EtcdMemberStatus, TalosError> {
        let reply = self
            .call(node, "EtcdStatus", |ch| async move {
                self.machine(ch).etcd_status(self.request((), node)?).await
            })
            .await?;
        mapping::etcd_status(reply.into_inner())
    }

    async fn etcd_alarms(&self, node: &str) -> Result<Vec<EtcdAlarm>, TalosError> {
        let reply = self
            .call(node, "EtcdAlarmList", |ch| async move {
                self.machine(ch)
                    .etcd_alarm_list(self.request((), node)?)
                    .await
            })
            .await?;
        mapping::etcd_alarms(reply.into_inner())
    }

    async fn etcd_snapshot(&self, node: &str) -> Result<ByteStream, TalosError> {
        let reply = self
            .call(node, "EtcdSnapshot", |ch| async move {
                let request = self.transfer_request(EtcdSnapshotRequest {}, node)?;
                self.machine(ch).etcd_snapshot(request).await
            })
            .await?;
        Ok(data_stream(reply.into_inner(), "EtcdSnapshot"))
    }

    async fn read_file(&self, node: &str, path: &str) -> Result<ByteStream, TalosError> {
        let reply = self
            .call(node, "Read", |ch| async move {
                let request = self.transfer_request(
                    ReadRequest {
                        path: path.to_string(),
                    },
                    node,
                )?;
                self.machine(ch).read(request).await
            })
            .await?;
        Ok(data_stream(reply.into_inner(), "Read"))
    }
}

/// The chunks of a `stream common.Data` reply; a status mid-stream, or an error apid puts in a
/// chunk's metadata, ends it as a `TalosError`.
fn data_stream(
    stream: tonic::Streaming<talos_api::common::Data>,
    method: &'static str,
) -> ByteStream {
    stream
        .map(move |item| match item {
            Ok(data) => match data.metadata {
                Some(meta) if !meta.error.is_empty() => {
                    tracing::debug!(method, error = %meta.error, "Talos stream reported an error");
                    Err(TalosError::Refused("the node reported an error mid-stream".into()))
                }
                _ => Ok(bytes::Bytes::from(data.bytes)),
            },
            Err(status) => {
                tracing::debug!(method, code = ?status.code(), message = status.message(), "Talos stream failed");
                Err(classify(&status, method, false))
            }
        })
        .boxed()
}
