//! Per-call node targeting, the way apid expects it.

use tonic::metadata::{AsciiMetadataValue, errors::InvalidMetadataValue};

/// gRPC metadata key apid reads to proxy a call 1:1 to another node.
pub const NODE_METADATA_KEY: &str = "node";

/// A node target that apid would reject or that cannot travel as ASCII metadata.
#[derive(Debug, thiserror::Error)]
pub enum InvalidNode {
    #[error("node target is empty")]
    Empty,
    #[error("node target {0:?} must not contain a port (apid always dials port 50000)")]
    HasPort(String),
    #[error("node target {target:?} is not valid ASCII metadata: {source}")]
    NotAscii {
        target: String,
        #[source]
        source: InvalidMetadataValue,
    },
}

/// Wraps `message` in a request that apid forwards to `node` (host name or IP, no port).
pub fn with_node<T>(message: T, node: &str) -> Result<tonic::Request<T>, InvalidNode> {
    let target = node.trim();
    if target.is_empty() {
        return Err(InvalidNode::Empty);
    }
    if has_port(target) {
        return Err(InvalidNode::HasPort(target.to_owned()));
    }
    let value: AsciiMetadataValue = target.parse().map_err(|source| InvalidNode::NotAscii {
        target: target.to_owned(),
        source,
    })?;
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(NODE_METADATA_KEY, value);
    Ok(request)
}

/// True for `host:port` and `[v6]:port`; a bare IPv6 address has several colons and no port.
fn has_port(target: &str) -> bool {
    if let Some(rest) = target.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, tail)| tail.starts_with(':'));
    }
    target.matches(':').count() == 1
}
