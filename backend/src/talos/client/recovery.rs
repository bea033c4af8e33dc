//! The state-changing calls of a recovery, and the reads that show their effect (boot id,
//! kernel log). None of them retries once the request may have reached the node.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use talos_api::machine::DmesgRequest;
use talos_api::with_node;
use tonic::Status;

use super::upload::{self, UploadWatch};
use super::{TRANSFER_TIMEOUT, TalosClient, classify, data_stream, never_sent, timed_out};
use crate::talos::mapping::recovery as wire;
use crate::talos::{
    ApplyMode, BootstrapOptions, ByteStream, KernelLogLine, KernelLogStream, ResetOptions,
    TalosApi, TalosError, TalosRecoveryApi, kernel_log,
};

/// An upload that hands nothing to the node for this long has stalled: the node accepted the
/// connection but stopped reading, or never answers after the last byte.
const UPLOAD_STALL: Duration = Duration::from_secs(5 * 60);
const STALL_CHECK: Duration = Duration::from_secs(2);
/// Reading the kernel buffer before following it: small, but maybe behind a slow node.
const HISTORY_MIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A boot id is one UUID line; anything longer is not one.
const BOOT_ID_MAX_BYTES: usize = 4096;

#[async_trait]
impl TalosRecoveryApi for TalosClient {
    async fn reset(&self, node: &str, options: &ResetOptions) -> Result<(), TalosError> {
        let request = wire::reset_request(options)?;
        let reply = self
            .change(node, "Reset", |ch| {
                let request = request.clone();
                async move { self.machine(ch).reset(self.request(request, node)?).await }
            })
            .await?;
        wire::reset_reply(reply.into_inner())
    }

    async fn bootstrap(&self, node: &str, options: BootstrapOptions) -> Result<(), TalosError> {
        let request = wire::bootstrap_request(options);
        let reply = self
            .change(node, "Bootstrap", |ch| async move {
                self.machine(ch)
                    .bootstrap(self.request(request, node)?)
                    .await
            })
            .await?;
        wire::bootstrap_reply(reply.into_inner())
    }

    async fn etcd_recover(
        &self,
        node: &str,
        snapshot: ByteStream,
        progress: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), TalosError> {
        tracing::info!(
            node,
            method = "EtcdRecover",
            "sending a state-changing Talos call"
        );
        let source = upload::source(snapshot);
        let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::from(progress);
        let mut last = TalosError::Unreachable("no endpoint configured".into());
        for (endpoint, channel, via_proxy) in self.transfer_routes(node) {
            let watch = UploadWatch::new();
            let body = upload::body(source.clone(), progress.clone(), watch.clone());
            // The answer only comes after the last byte: no per-call timeout here, only the
            // transfer deadline, the stall check and the connection's keepalive.
            let request = self
                .transfer_request(body, node)
                .map_err(|status| classify(&status, "EtcdRecover", false))?;
            let mut machine = self.machine(channel.clone());
            let outcome = tokio::select! {
                reply = machine.etcd_recover(request) => reply,
                () = watch.abort.notified() => return Err(watch.take_failure()),
                () = stalled(&watch) => {
                    tracing::debug!(node, %endpoint, idle = ?watch.idle(), "EtcdRecover upload stalled");
                    return Err(TalosError::Timeout);
                }
                () = tokio::time::sleep(TRANSFER_TIMEOUT) => return Err(TalosError::Timeout),
            };
            let status = match outcome {
                Ok(reply) => return wire::etcd_recover_reply(reply.into_inner()),
                Err(status) => status,
            };
            tracing::debug!(
                node, %endpoint, code = ?status.code(), message = status.message(),
                "EtcdRecover failed"
            );
            if timed_out(&status) {
                return Err(TalosError::Timeout);
            }
            let error = classify(&status, "EtcdRecover", via_proxy);
            // Another endpoint only if this one was never reached and nothing was sent.
            if via_proxy && never_sent(&status) && upload::is_untouched(&source) {
                last = error;
                continue;
            }
            return Err(error);
        }
        Err(last)
    }

    async fn apply_configuration(
        &self,
        node: &str,
        config: Vec<u8>,
        mode: ApplyMode,
    ) -> Result<(), TalosError> {
        let request = wire::apply_request(config, mode);
        let reply = self
            .change(node, "ApplyConfiguration", |ch| {
                let request = request.clone();
                async move {
                    self.machine(ch)
                        .apply_configuration(self.request(request, node)?)
                        .await
                }
            })
            .await?;
        wire::apply_reply(reply.into_inner(), mode)
    }

    async fn reboot(&self, node: &str) -> Result<(), TalosError> {
        let reply = self
            .change(node, "Reboot", |ch| async move {
                self.machine(ch)
                    .reboot(self.request(wire::reboot_request(), node)?)
                    .await
            })
            .await?;
        wire::reboot_reply(reply.into_inner())
    }

    async fn boot_id(&self, node: &str) -> Result<String, TalosError> {
        let read = async {
            let mut stream = self.read_file(node, wire::BOOT_ID_PATH).await?;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(&chunk?);
                if bytes.len() > BOOT_ID_MAX_BYTES {
                    return Err(TalosError::BadReply("boot id file is too large".into()));
                }
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(self.call_timeout(), read)
            .await
            .map_err(|_| TalosError::Timeout)??;
        wire::boot_id(&bytes)
    }

    /// Talos' Dmesg can only send the whole buffer or nothing of it (`tail`), so the history is
    /// read once to pick the last lines; following then opens a second stream that replays the
    /// buffer before new records, and the replay is dropped. Nothing between the two is lost.
    async fn dmesg(
        &self,
        node: &str,
        follow: bool,
        tail_lines: i32,
    ) -> Result<KernelLogStream, TalosError> {
        let history = self.kernel_log_history(node).await?;
        let seen: Option<HashSet<String>> =
            follow.then(|| history.iter().map(|l| l.text.clone()).collect());
        let shown = futures::stream::iter(
            kernel_log::last_lines(history, tail_lines)
                .into_iter()
                .map(Ok),
        );
        let Some(seen) = seen else {
            return Ok(shown.boxed());
        };
        let client = self.clone();
        let node = node.to_string();
        // Opened on first use: Talos sends no headers before its first record, so opening it
        // here could wait for as long as the node stays quiet.
        let followed = futures::stream::once(async move { client.follow_kernel_log(&node).await })
            .flat_map(|opened| match opened {
                Ok(lines) => lines,
                Err(error) => futures::stream::iter([Err(error)]).boxed(),
            })
            .boxed();
        Ok(shown
            .chain(kernel_log::after_history(followed, seen))
            .boxed())
    }
}

impl TalosClient {
    /// The whole kernel buffer, as lines.
    async fn kernel_log_history(&self, node: &str) -> Result<Vec<KernelLogLine>, TalosError> {
        let reply = self
            .call(node, "Dmesg", |ch| async move {
                let request = self.transfer_request(
                    DmesgRequest {
                        follow: false,
                        tail: false,
                    },
                    node,
                )?;
                self.machine(ch).dmesg(request).await
            })
            .await?;
        let read = kernel_log::lines(data_stream(reply.into_inner(), "Dmesg")).collect::<Vec<_>>();
        tokio::time::timeout(self.call_timeout().max(HISTORY_MIN_TIMEOUT), read)
            .await
            .map_err(|_| TalosError::Timeout)?
            .into_iter()
            .collect()
    }

    /// The kernel buffer and then new records as they come, with no deadline.
    async fn follow_kernel_log(&self, node: &str) -> Result<KernelLogStream, TalosError> {
        let mut last = TalosError::Unreachable("no endpoint configured".into());
        for (endpoint, channel, via_proxy) in self.transfer_routes(node) {
            let request = with_node(
                DmesgRequest {
                    follow: true,
                    tail: false,
                },
                node,
            )
            .map_err(|e| classify(&Status::invalid_argument(e.to_string()), "Dmesg", false))?;
            match self.machine(channel.clone()).dmesg(request).await {
                Ok(reply) => {
                    return Ok(kernel_log::lines(data_stream(reply.into_inner(), "Dmesg")));
                }
                Err(status) => {
                    tracing::debug!(node, %endpoint, code = ?status.code(), message = status.message(), "following Dmesg failed");
                    let error = classify(&status, "Dmesg", via_proxy);
                    if via_proxy && std::error::Error::source(&status).is_some() {
                        last = error;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
        Err(last)
    }
}

/// Resolves once the upload handed nothing over for `UPLOAD_STALL`.
async fn stalled(watch: &UploadWatch) {
    loop {
        tokio::time::sleep(STALL_CHECK).await;
        if watch.idle() >= UPLOAD_STALL {
            return;
        }
    }
}
