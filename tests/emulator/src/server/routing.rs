//! apid's director for `node` metadata: which emulated node answers a call.

use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::StreamExt;
use talos_api::NODE_METADATA_KEY;
use tonic::{Request, Status};

use super::authz::{self, Rpc};
use super::{NodeEndpoint, NodeTable};
use crate::node::RpcStream;

/// Metadata key of the deprecated one-to-many proxying.
const NODES_METADATA_KEY: &str = "nodes";

/// The node chosen for a call, with the caller's roles already checked.
pub(crate) struct Routed {
    pub target: Arc<NodeEndpoint>,
    pub roles: Vec<String>,
    pub proxied: bool,
}

/// What a client of apid sees when the backend apid cannot be reached.
fn backend_unavailable(target: &str) -> Status {
    Status::unavailable(format!(
        "connection error: desc = \"transport: Error while dialing: dial tcp {target}:50000: connect: connection refused\""
    ))
}

impl NodeTable {
    fn find(&self, target: &str) -> Option<&Arc<NodeEndpoint>> {
        if let Ok(ip) = target.parse::<Ipv4Addr>() {
            return self.endpoints.get(&ip);
        }
        self.endpoints
            .values()
            .find(|endpoint| endpoint.hostname.eq_ignore_ascii_case(target))
    }

    /// Resolves the target node (routing errors first, as apid does), then applies
    /// the role table of the node that executes the call, then any injected delay.
    pub(crate) async fn route<T>(
        &self,
        local: Ipv4Addr,
        request: &Request<T>,
        rpc: Rpc,
    ) -> Result<Routed, Status> {
        let local_endpoint = self
            .endpoints
            .get(&local)
            .ok_or_else(|| Status::internal("endpoint is not part of the emulated cluster"))?;
        let metadata = request.metadata();
        if metadata.get(NODES_METADATA_KEY).is_some() {
            return Err(Status::unimplemented(
                "one-to-many proxying (nodes metadata) is not emulated; send one call per node with node metadata",
            ));
        }
        let values: Vec<_> = metadata.get_all(NODE_METADATA_KEY).iter().collect();
        let target = match values.as_slice() {
            [] => local_endpoint.clone(),
            [value] => {
                let target = value
                    .to_str()
                    .map_err(|_| Status::invalid_argument("node metadata is not valid ASCII"))?
                    .trim();
                if target.is_empty() || target.contains(':') {
                    return Err(Status::invalid_argument(format!(
                        "invalid node target {target:?}: expected a host name or IPv4 address without port"
                    )));
                }
                let endpoint = self
                    .find(target)
                    .ok_or_else(|| backend_unavailable(target))?;
                if !endpoint.is_up() {
                    return Err(backend_unavailable(target));
                }
                endpoint.clone()
            }
            _ => {
                return Err(Status::invalid_argument(
                    "node metadata must be single-valued",
                ));
            }
        };
        // A powered-off machine (reset without reboot) has no apid to answer.
        if !target.node.is_powered_on() {
            return Err(backend_unavailable(&target.ip.to_string()));
        }

        let roles = authz::caller_roles(request);
        if let Err(denied) = authz::authorize(&roles, rpc) {
            // The target node answered (with a denial): a refused recovery call.
            if let Some(call) = rpc.recovery_call() {
                target.node.record_refused(call);
            }
            return Err(denied);
        }

        let proxied = target.ip != local;
        let mut delay = local_endpoint.delay();
        if proxied {
            delay += target.delay();
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(Routed {
            target,
            roles,
            proxied,
        })
    }
}

/// A proxied stream breaks with Unavailable when the backend node's API goes away
/// mid-stream, as the apid-to-apid connection would.
pub(crate) fn guard_stream<T: Send + 'static>(
    routed: &Routed,
    stream: RpcStream<T>,
) -> RpcStream<T> {
    if !routed.proxied {
        return stream;
    }
    let Some(token) = routed.target.api_token() else {
        return Box::pin(futures::stream::once(async {
            Err(backend_unavailable("node"))
        }));
    };
    let target = routed.target.ip.to_string();
    let stopped = Box::pin(token.cancelled_owned());
    Box::pin(futures::stream::unfold(
        Some((stream, stopped, target)),
        |state| async move {
            let (mut stream, mut stopped, target) = state?;
            tokio::select! {
                biased;
                _ = &mut stopped => Some((Err(backend_unavailable(&target)), None)),
                item = stream.next() => item.map(|item| (item, Some((stream, stopped, target)))),
            }
        },
    ))
}
