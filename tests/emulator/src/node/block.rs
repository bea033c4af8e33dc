//! The node's block volumes as COSI resources: `VolumeStatuses.block.talos.dev` in namespace
//! `runtime`, one per system volume, so a client can tell where etcd's data lives (`ETCD`).

use prost::Message;
use talos_api::cosi::resource as cosi;
use talos_api::talos::resource::definitions::block::VolumeStatusSpec;
use talos_api::talos::resource::definitions::enums::BlockVolumeType;

use super::EtcdVolume;
use super::machine_config::{definition, metadata};
use super::volumes::{ETCD_PARTITION_DEVICE, NodeVolumes, SYSTEM_PARTITIONS};

pub const VOLUME_STATUS_TYPE: &str = "VolumeStatuses.block.talos.dev";
pub const RUNTIME_NAMESPACE: &str = "runtime";

/// Every volume the node has, by label; `ETCD` as its layout says (none before Talos v1.10).
pub fn volume_statuses(volumes: &NodeVolumes) -> Vec<cosi::Resource> {
    let mut items: Vec<cosi::Resource> = SYSTEM_PARTITIONS
        .iter()
        .map(|(label, device)| status(label, BlockVolumeType::VolumeTypePartition, device))
        .collect();
    match volumes.etcd_volume {
        EtcdVolume::Directory => {
            items.push(status("ETCD", BlockVolumeType::VolumeTypeDirectory, ""));
        }
        EtcdVolume::Partition => items.push(status(
            "ETCD",
            BlockVolumeType::VolumeTypePartition,
            ETCD_PARTITION_DEVICE,
        )),
        EtcdVolume::Absent => {}
    }
    items
}

fn status(label: &str, volume_type: BlockVolumeType, location: &str) -> cosi::Resource {
    let type_name = match volume_type {
        BlockVolumeType::VolumeTypeDirectory => "directory",
        _ => "partition",
    };
    let mut yaml = "phase: ready\n".to_string();
    if !location.is_empty() {
        yaml.push_str(&format!("location: {location}\n"));
    }
    yaml.push_str(&format!("type: {type_name}\n"));
    cosi::Resource {
        metadata: Some(metadata(RUNTIME_NAMESPACE, VOLUME_STATUS_TYPE, label, 1)),
        spec: Some(cosi::Spec {
            proto_spec: VolumeStatusSpec {
                location: location.to_string(),
                r#type: volume_type as i32,
            }
            .encode_to_vec(),
            yaml_spec: yaml,
        }),
    }
}

/// The definition `talosctl get volumestatus` resolves; volume statuses are not sensitive.
pub fn resource_definition() -> cosi::Resource {
    definition(
        VOLUME_STATUS_TYPE,
        "VolumeStatus",
        &["volumestatus", "vs", "vss"],
        RUNTIME_NAMESPACE,
        false,
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn etcd_of(layout: EtcdVolume) -> Option<VolumeStatusSpec> {
        let volumes = NodeVolumes::new(PathBuf::from("/n"), layout);
        volume_statuses(&volumes)
            .into_iter()
            .find(|r| r.metadata.as_ref().is_some_and(|m| m.id == "ETCD"))
            .and_then(|r| r.spec)
            .map(|s| VolumeStatusSpec::decode(s.proto_spec.as_slice()).expect("decodes"))
    }

    #[test]
    fn etcd_volume_follows_the_layout() {
        let directory = etcd_of(EtcdVolume::Directory).expect("ETCD");
        assert_eq!(
            directory.r#type,
            BlockVolumeType::VolumeTypeDirectory as i32
        );
        assert_eq!(directory.location, "");
        let partition = etcd_of(EtcdVolume::Partition).expect("ETCD");
        assert_eq!(
            partition.r#type,
            BlockVolumeType::VolumeTypePartition as i32
        );
        assert_eq!(partition.location, ETCD_PARTITION_DEVICE);
        assert_eq!(etcd_of(EtcdVolume::Absent), None);
    }

    #[test]
    fn every_listed_volume_is_a_label_reset_accepts() {
        for layout in [
            EtcdVolume::Directory,
            EtcdVolume::Partition,
            EtcdVolume::Absent,
        ] {
            let volumes = NodeVolumes::new(PathBuf::from("/n"), layout);
            let listed: Vec<String> = volume_statuses(&volumes)
                .into_iter()
                .filter_map(|r| r.metadata.map(|m| m.id))
                .collect();
            for label in ["EFI", "BOOT", "META", "STATE", "EPHEMERAL", "ETCD"] {
                assert_eq!(
                    listed.iter().any(|l| l == label),
                    volumes.has_label(label),
                    "{layout:?} {label}"
                );
            }
        }
    }
}
