//! Reading where a node keeps etcd's data: its `ETCD` volume's status.

use std::error::Error as _;

use talos_api::MAX_MESSAGE_SIZE;
use talos_api::cosi::resource::state_client::StateClient;
use talos_api::cosi::resource::{GetOptions, GetRequest};
use talos_dr_shared::recovery::EtcdDataVolume;
use tonic::{Code, Status};

use super::TalosClient;
use crate::talos::{TalosError, mapping};

/// Talos' `constants.EtcdDataVolumeID` and the namespace block volumes live in.
const ETCD_VOLUME_ID: &str = "ETCD";
const VOLUME_STATUS_TYPE: &str = "VolumeStatuses.block.talos.dev";
const VOLUME_NAMESPACE: &str = "runtime";

/// Whether the node answered that there is no such volume to read, rather than failing to read
/// it: NotFound (Talos v1.8 and v1.9 have block volumes but no ETCD), or the type not registered
/// at all (Talos before v1.8 answers PermissionDenied "resource type ... is not supported").
fn no_such_volume(status: &Status) -> bool {
    match status.code() {
        Code::NotFound => true,
        Code::PermissionDenied => status.message().contains("is not supported"),
        _ => false,
    }
}

impl TalosClient {
    pub(super) async fn read_etcd_data_volume(
        &self,
        node: &str,
    ) -> Result<EtcdDataVolume, TalosError> {
        let reply = self
            .call(node, "VolumeStatus", |ch| async move {
                let get = GetRequest {
                    namespace: VOLUME_NAMESPACE.into(),
                    r#type: VOLUME_STATUS_TYPE.into(),
                    id: ETCD_VOLUME_ID.into(),
                    options: Some(GetOptions {}),
                };
                let answer = StateClient::new(ch)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .get(self.request(get, node)?)
                    .await;
                match answer {
                    Ok(reply) => Ok(Some(reply.into_inner())),
                    Err(status) if status.source().is_none() && no_such_volume(&status) => {
                        tracing::debug!(
                            node,
                            message = status.message(),
                            "node has no ETCD volume"
                        );
                        Ok(None)
                    }
                    Err(status) => Err(status),
                }
            })
            .await?;
        mapping::etcd_data_volume(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_volume_or_type_counts_as_no_volume() {
        assert!(no_such_volume(&Status::not_found(
            "resource VolumeStatuses.block.talos.dev(runtime/ETCD@undefined) doesn't exist"
        )));
        assert!(no_such_volume(&Status::permission_denied(
            "resource type \"VolumeStatuses.block.talos.dev\" is not supported"
        )));
        assert!(!no_such_volume(&Status::permission_denied(
            "not authorized"
        )));
        assert!(!no_such_volume(&Status::unavailable("connection refused")));
    }
}
