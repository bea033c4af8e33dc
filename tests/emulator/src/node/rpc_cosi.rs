//! The read-only COSI State API: MachineType, MachineConfig, the volume statuses and the
//! resource definitions `talosctl get` resolves aliases with.

use talos_api::cosi::resource as cosi;
use tonic::Status;

use super::block;
use super::machine_config as mc;
use super::{Node, RpcStream, lock};

impl Node {
    pub async fn cosi_get(&self, request: cosi::GetRequest) -> Result<cosi::GetResponse, Status> {
        let resources = self.resources(&request.namespace, &request.r#type)?;
        resources
            .into_iter()
            .find(|r| r.metadata.as_ref().is_some_and(|m| m.id == request.id))
            .map(|resource| cosi::GetResponse {
                resource: Some(resource),
            })
            .ok_or_else(|| {
                Status::not_found(format!(
                    "resource {}({}/{}@undefined) doesn't exist",
                    request.r#type, request.namespace, request.id
                ))
            })
    }

    pub async fn cosi_list(
        &self,
        request: cosi::ListRequest,
    ) -> Result<RpcStream<cosi::ListResponse>, Status> {
        let resources = self.resources(&request.namespace, &request.r#type)?;
        let items: Vec<Result<cosi::ListResponse, Status>> = resources
            .into_iter()
            .map(|r| Ok(cosi::ListResponse { resource: Some(r) }))
            .collect();
        Ok(Box::pin(futures::stream::iter(items)))
    }

    fn resources(
        &self,
        namespace: &str,
        resource_type: &str,
    ) -> Result<Vec<cosi::Resource>, Status> {
        let (active, version) = {
            let state = lock(&self.inner.state);
            (state.active_config.clone(), state.config_version)
        };
        match resource_type {
            mc::MACHINE_TYPE_TYPE if namespace == mc::CONFIG_NAMESPACE => {
                Ok(vec![mc::machine_type_resource(
                    active.as_ref().map(|c| c.machine_type),
                    version,
                )])
            }
            mc::MACHINE_CONFIG_TYPE if namespace == mc::CONFIG_NAMESPACE => {
                let mut items = Vec::new();
                if let Some(active) = &active {
                    items.push(mc::machine_config_resource(
                        "v1alpha1",
                        &active.raw,
                        version,
                    ));
                }
                if let Ok(stored) = std::fs::read(self.inner.volumes.config_file()) {
                    items.push(mc::machine_config_resource("persistent", &stored, version));
                }
                Ok(items)
            }
            block::VOLUME_STATUS_TYPE if namespace == block::RUNTIME_NAMESPACE => {
                Ok(block::volume_statuses(&self.inner.volumes))
            }
            mc::RESOURCE_DEFINITION_TYPE if namespace == mc::META_NAMESPACE => {
                let mut definitions = mc::resource_definitions();
                definitions.push(block::resource_definition());
                Ok(definitions)
            }
            mc::MACHINE_TYPE_TYPE
            | mc::MACHINE_CONFIG_TYPE
            | mc::RESOURCE_DEFINITION_TYPE
            | block::VOLUME_STATUS_TYPE => Ok(Vec::new()),
            other => Err(Status::permission_denied(format!(
                "resource type {other:?} is not supported"
            ))),
        }
    }
}
