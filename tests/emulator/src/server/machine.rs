//! `machine.MachineService`: route, authorize, then hand the call to the node.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use talos_api::common::Data;
use talos_api::machine::{self, machine_service_server::MachineService};
use tonic::{Request, Response, Status, Streaming};

use super::NodeTable;
use super::authz::Rpc;
use super::routing::guard_stream;
use crate::node::RpcStream;
use crate::talosconfig::{TalosConfig, TalosContext};

/// Every role string Talos knows (`pkg/machinery/role/role.go`).
const KNOWN_ROLES: &[&str] = &[
    "os:admin",
    "os:operator",
    "os:reader",
    "os:etcd:backup",
    "os:image:verifier",
    "os:meta:writer",
    "os:impersonator",
];

/// Talos' default lifetime for generated client certificates (one year).
const DEFAULT_CLIENT_CERT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

pub(crate) struct MachineApi {
    table: Arc<NodeTable>,
    local: Ipv4Addr,
}

impl MachineApi {
    pub(crate) fn new(table: Arc<NodeTable>, local: Ipv4Addr) -> Self {
        Self { table, local }
    }
}

/// Unary call: route and authorize, then `$call` with `$node` (the target `Node`)
/// and `$req` (the decoded request) in scope.
macro_rules! unary {
    ($self:ident, $request:ident, $rpc:expr, |$node:ident, $req:ident| $call:expr) => {{
        let routed = $self.table.route($self.local, &$request, $rpc).await?;
        #[allow(unused_variables)]
        let $req = $request.into_inner();
        let $node = routed.target.node();
        Ok(Response::new($call.await?))
    }};
}

/// Server-streaming call: like `unary!`, with the stream guarded against the
/// target's API going away.
macro_rules! streaming {
    ($self:ident, $request:ident, $rpc:expr, |$node:ident, $req:ident| $call:expr) => {{
        let routed = $self.table.route($self.local, &$request, $rpc).await?;
        #[allow(unused_variables)]
        let $req = $request.into_inner();
        let $node = routed.target.node();
        let stream = $call.await?;
        Ok(Response::new(guard_stream(&routed, stream)))
    }};
}

#[tonic::async_trait]
impl MachineService for MachineApi {
    async fn apply_configuration(
        &self,
        request: Request<machine::ApplyConfigurationRequest>,
    ) -> Result<Response<machine::ApplyConfigurationResponse>, Status> {
        unary!(self, request, Rpc::ApplyConfiguration, |node, req| node
            .apply_configuration(req))
    }

    async fn bootstrap(
        &self,
        request: Request<machine::BootstrapRequest>,
    ) -> Result<Response<machine::BootstrapResponse>, Status> {
        unary!(self, request, Rpc::Bootstrap, |node, req| node
            .bootstrap(req))
    }

    type CopyStream = RpcStream<Data>;

    async fn copy(
        &self,
        request: Request<machine::CopyRequest>,
    ) -> Result<Response<Self::CopyStream>, Status> {
        streaming!(self, request, Rpc::Copy, |node, req| node.copy(req))
    }

    type DmesgStream = RpcStream<Data>;

    async fn dmesg(
        &self,
        request: Request<machine::DmesgRequest>,
    ) -> Result<Response<Self::DmesgStream>, Status> {
        streaming!(self, request, Rpc::Dmesg, |node, req| node.dmesg(req))
    }

    type EventsStream = RpcStream<machine::Event>;

    async fn events(
        &self,
        request: Request<machine::EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        streaming!(self, request, Rpc::Events, |node, req| node.events(req))
    }

    async fn etcd_member_list(
        &self,
        request: Request<machine::EtcdMemberListRequest>,
    ) -> Result<Response<machine::EtcdMemberListResponse>, Status> {
        unary!(self, request, Rpc::EtcdMemberList, |node, req| node
            .etcd_member_list(req))
    }

    async fn etcd_remove_member_by_id(
        &self,
        request: Request<machine::EtcdRemoveMemberByIdRequest>,
    ) -> Result<Response<machine::EtcdRemoveMemberByIdResponse>, Status> {
        unary!(self, request, Rpc::EtcdRemoveMemberById, |node, req| node
            .etcd_remove_member_by_id(req))
    }

    async fn etcd_leave_cluster(
        &self,
        request: Request<machine::EtcdLeaveClusterRequest>,
    ) -> Result<Response<machine::EtcdLeaveClusterResponse>, Status> {
        unary!(self, request, Rpc::EtcdLeaveCluster, |node, req| node
            .etcd_leave_cluster(req))
    }

    async fn etcd_forfeit_leadership(
        &self,
        request: Request<machine::EtcdForfeitLeadershipRequest>,
    ) -> Result<Response<machine::EtcdForfeitLeadershipResponse>, Status> {
        unary!(self, request, Rpc::EtcdForfeitLeadership, |node, req| node
            .etcd_forfeit_leadership(req))
    }

    async fn etcd_recover(
        &self,
        request: Request<Streaming<Data>>,
    ) -> Result<Response<machine::EtcdRecoverResponse>, Status> {
        unary!(self, request, Rpc::EtcdRecover, |node, req| node
            .etcd_recover(Box::pin(req)))
    }

    type EtcdSnapshotStream = RpcStream<Data>;

    async fn etcd_snapshot(
        &self,
        request: Request<machine::EtcdSnapshotRequest>,
    ) -> Result<Response<Self::EtcdSnapshotStream>, Status> {
        streaming!(self, request, Rpc::EtcdSnapshot, |node, req| node
            .etcd_snapshot())
    }

    async fn etcd_alarm_list(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::EtcdAlarmListResponse>, Status> {
        unary!(self, request, Rpc::EtcdAlarmList, |node, req| node
            .etcd_alarm_list())
    }

    async fn etcd_alarm_disarm(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::EtcdAlarmDisarmResponse>, Status> {
        unary!(self, request, Rpc::EtcdAlarmDisarm, |node, req| node
            .etcd_alarm_disarm())
    }

    async fn etcd_defragment(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::EtcdDefragmentResponse>, Status> {
        unary!(self, request, Rpc::EtcdDefragment, |node, req| node
            .etcd_defragment())
    }

    async fn etcd_status(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::EtcdStatusResponse>, Status> {
        unary!(self, request, Rpc::EtcdStatus, |node, req| node
            .etcd_status())
    }

    async fn generate_client_configuration(
        &self,
        request: Request<machine::GenerateClientConfigurationRequest>,
    ) -> Result<Response<machine::GenerateClientConfigurationResponse>, Status> {
        self.table
            .route(self.local, &request, Rpc::GenerateClientConfiguration)
            .await?;
        let request = request.into_inner();
        if request.roles.is_empty() {
            return Err(Status::invalid_argument("at least one role is required"));
        }
        if let Some(unknown) = request
            .roles
            .iter()
            .find(|role| !KNOWN_ROLES.contains(&role.as_str()))
        {
            return Err(Status::invalid_argument(format!(
                "unknown role {unknown:?}"
            )));
        }
        let ttl = match request.crt_ttl {
            Some(ttl) => Duration::try_from(ttl)
                .map_err(|_| Status::invalid_argument("crt_ttl must be a positive duration"))?,
            None => DEFAULT_CLIENT_CERT_TTL,
        };
        let roles: Vec<&str> = request.roles.iter().map(String::as_str).collect();
        let pki = &self.table.pki;
        let pair = pki
            .issue_client_valid_for(&roles, ttl)
            .map_err(|err| Status::invalid_argument(err.to_string()))?;
        let ca_pem = pki.ca_pem();
        let config = TalosConfig::single(
            "emulated".to_owned(),
            TalosContext::new(
                self.table.talos_endpoints.clone(),
                Vec::new(),
                &ca_pem,
                &pair,
            ),
        );
        let talosconfig = config
            .to_yaml()
            .map_err(|err| Status::internal(err.to_string()))?;
        Ok(Response::new(
            machine::GenerateClientConfigurationResponse {
                messages: vec![machine::GenerateClientConfiguration {
                    metadata: None,
                    ca: ca_pem.into_bytes(),
                    crt: pair.cert_pem.into_bytes(),
                    key: pair.key_pem.into_bytes(),
                    talosconfig: talosconfig.into_bytes(),
                }],
            },
        ))
    }

    type ReadStream = RpcStream<Data>;

    async fn read(
        &self,
        request: Request<machine::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        streaming!(self, request, Rpc::Read, |node, req| node.read(req))
    }

    async fn reboot(
        &self,
        request: Request<machine::RebootRequest>,
    ) -> Result<Response<machine::RebootResponse>, Status> {
        unary!(self, request, Rpc::Reboot, |node, req| node.reboot(req))
    }

    async fn reset(
        &self,
        request: Request<machine::ResetRequest>,
    ) -> Result<Response<machine::ResetResponse>, Status> {
        unary!(self, request, Rpc::Reset, |node, req| node.reset(req))
    }

    async fn service_list(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::ServiceListResponse>, Status> {
        unary!(self, request, Rpc::ServiceList, |node, req| node
            .service_list())
    }

    async fn version(
        &self,
        request: Request<()>,
    ) -> Result<Response<machine::VersionResponse>, Status> {
        unary!(self, request, Rpc::Version, |node, req| node.version())
    }
}
