//! The fault switches of a running emulated cluster, shared by the `Emulator`
//! handle and the HTTP control interface.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use crate::node::{CallCounts, Node, RecoveryCall};
use crate::server::{ApiServers, ServerError};

#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("node {0} is not part of the emulated cluster")]
    UnknownNode(Ipv4Addr),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("etcd on {node}: {message}")]
    Etcd { node: String, message: String },
}

/// One node as the control interface reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    pub ip: Ipv4Addr,
    pub hostname: String,
    /// `controlplane`, `init`, `worker`, or `None` before a config is active.
    pub machine_type: Option<String>,
    pub powered_on: bool,
    pub api_up: bool,
    pub delay_ms: u64,
    /// Talos service state string of etcd (`Running`, `Preparing`, ...), if registered.
    pub etcd_state: Option<String>,
    pub etcd_healthy: bool,
    /// Recovery calls the node acted on (see `node::RecoveryCall` for the counting rules).
    pub calls: CallCounts,
    /// Recovery calls the node answered with an error without acting.
    pub refused_calls: CallCounts,
    /// Recovery calls waiting in a hold right now.
    pub calls_in_hold: CallCounts,
    /// Holds armed for the next call of each kind, in milliseconds (0 = none).
    pub armed_holds_ms: CallCounts,
}

pub(crate) struct Faults {
    nodes: Vec<Node>,
    servers: ApiServers,
}

impl Faults {
    pub(crate) fn new(nodes: Vec<Node>, servers: ApiServers) -> Self {
        Self { nodes, servers }
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub(crate) fn servers(&self) -> &ApiServers {
        &self.servers
    }

    pub(crate) fn node(&self, ip: Ipv4Addr) -> Result<&Node, FaultError> {
        self.nodes
            .iter()
            .find(|node| node.ip() == ip)
            .ok_or(FaultError::UnknownNode(ip))
    }

    pub(crate) fn status(&self) -> Vec<NodeStatus> {
        self.nodes
            .iter()
            .map(|node| {
                let ip = node.ip();
                NodeStatus {
                    ip,
                    hostname: node.hostname(),
                    machine_type: node.machine_type().map(|t| t.as_str().to_owned()),
                    powered_on: node.is_powered_on(),
                    api_up: self.servers.is_api_up(ip).unwrap_or(false),
                    delay_ms: self
                        .servers
                        .delay(ip)
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                        .unwrap_or(0),
                    etcd_state: node.etcd_service_state().map(str::to_owned),
                    etcd_healthy: node.etcd_healthy(),
                    calls: node.calls(),
                    refused_calls: node.refused_calls(),
                    calls_in_hold: node.calls_in_hold(),
                    armed_holds_ms: node.armed_holds_ms(),
                }
            })
            .collect()
    }

    pub(crate) async fn stop_api(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?;
        Ok(self.servers.stop_api(ip).await?)
    }

    pub(crate) async fn start_api(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?;
        Ok(self.servers.start_api(ip).await?)
    }

    pub(crate) fn set_slow(&self, ip: Ipv4Addr, delay: Duration) -> Result<(), FaultError> {
        self.node(ip)?;
        Ok(self.servers.set_delay(ip, delay)?)
    }

    pub(crate) async fn kill_etcd(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?.kill_etcd().await;
        Ok(())
    }

    /// A new machine in the node's place, its Talos API up in maintenance mode.
    pub(crate) async fn replace_machine(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?.replace_machine().await;
        Ok(self.servers.start_api(ip).await?)
    }

    pub(crate) async fn start_etcd(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?.start_etcd().await;
        Ok(())
    }

    pub(crate) async fn corrupt_etcd(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?.corrupt_etcd_data().await;
        Ok(())
    }

    pub(crate) async fn raise_nospace(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?
            .raise_nospace()
            .await
            .map_err(|e| FaultError::Etcd {
                node: ip.to_string(),
                message: e.to_string(),
            })
    }

    pub(crate) async fn split_off_etcd(&self, ip: Ipv4Addr) -> Result<(), FaultError> {
        self.node(ip)?.split_off_etcd().await;
        Ok(())
    }

    pub(crate) fn hold_next(
        &self,
        ip: Ipv4Addr,
        call: RecoveryCall,
        hold: Duration,
    ) -> Result<(), FaultError> {
        self.node(ip)?.hold_next(call, hold);
        Ok(())
    }

    pub(crate) fn cut_next_snapshot(
        &self,
        ip: Ipv4Addr,
        after_bytes: u64,
        with_error: bool,
    ) -> Result<(), FaultError> {
        self.node(ip)?.cut_next_snapshot(after_bytes, with_error);
        Ok(())
    }
}
