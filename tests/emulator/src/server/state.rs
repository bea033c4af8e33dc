//! `cosi.resource.State` as Talos serves it: reads only, sensitive types for admins.

use std::net::Ipv4Addr;
use std::sync::Arc;

use talos_api::cosi::resource::{
    CreateRequest, CreateResponse, DestroyRequest, DestroyResponse, GetRequest, GetResponse,
    ListRequest, ListResponse, TeardownAndDestroyRequest, TeardownAndDestroyResponse,
    TeardownRequest, TeardownResponse, UpdateRequest, UpdateResponse, WatchRequest, WatchResponse,
    state_server::State,
};
use tonic::{Request, Response, Status};

use super::NodeTable;
use super::authz::{self, Rpc};
use super::routing::guard_stream;
use crate::node::RpcStream;

pub(crate) struct StateApi {
    table: Arc<NodeTable>,
    local: Ipv4Addr,
}

impl StateApi {
    pub(crate) fn new(table: Arc<NodeTable>, local: Ipv4Addr) -> Self {
        Self { table, local }
    }

    async fn refuse_write<T>(&self, request: Request<T>) -> Status {
        match self.table.route(self.local, &request, Rpc::CosiWrite).await {
            Ok(_) => Status::permission_denied("write access is not allowed"),
            Err(status) => status,
        }
    }
}

#[tonic::async_trait]
impl State for StateApi {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let routed = self
            .table
            .route(self.local, &request, Rpc::CosiRead)
            .await?;
        let request = request.into_inner();
        authz::authorize_resource_type(&routed.roles, &request.r#type)?;
        Ok(Response::new(routed.target.node().cosi_get(request).await?))
    }

    type ListStream = RpcStream<ListResponse>;

    async fn list(
        &self,
        request: Request<ListRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let routed = self
            .table
            .route(self.local, &request, Rpc::CosiRead)
            .await?;
        let request = request.into_inner();
        authz::authorize_resource_type(&routed.roles, &request.r#type)?;
        let stream = routed.target.node().cosi_list(request).await?;
        Ok(Response::new(guard_stream(&routed, stream)))
    }

    type WatchStream = RpcStream<WatchResponse>;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let routed = self
            .table
            .route(self.local, &request, Rpc::CosiRead)
            .await?;
        authz::authorize_resource_type(&routed.roles, &request.get_ref().r#type)?;
        Err(Status::unimplemented(
            "Watch is not emulated; use Get or List",
        ))
    }

    async fn create(
        &self,
        request: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        Err(self.refuse_write(request).await)
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        Err(self.refuse_write(request).await)
    }

    async fn destroy(
        &self,
        request: Request<DestroyRequest>,
    ) -> Result<Response<DestroyResponse>, Status> {
        Err(self.refuse_write(request).await)
    }

    async fn teardown(
        &self,
        request: Request<TeardownRequest>,
    ) -> Result<Response<TeardownResponse>, Status> {
        Err(self.refuse_write(request).await)
    }

    async fn teardown_and_destroy(
        &self,
        request: Request<TeardownAndDestroyRequest>,
    ) -> Result<Response<TeardownAndDestroyResponse>, Status> {
        Err(self.refuse_write(request).await)
    }
}
