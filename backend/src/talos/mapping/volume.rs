//! `VolumeStatuses.block.talos.dev` `ETCD` → where the node keeps etcd's data.

use prost::Message as _;
use talos_api::cosi::resource::GetResponse;
use talos_api::talos::resource::definitions::block::VolumeStatusSpec;
use talos_api::talos::resource::definitions::enums::BlockVolumeType;
use talos_dr_shared::recovery::EtcdDataVolume;

use crate::talos::TalosError;

/// `None` is the node saying the volume does not exist: Talos before v1.10 keeps etcd's data in
/// a plain folder on EPHEMERAL.
pub fn etcd_data_volume(reply: Option<GetResponse>) -> Result<EtcdDataVolume, TalosError> {
    let Some(reply) = reply else {
        return Ok(EtcdDataVolume::Absent);
    };
    let spec = reply
        .resource
        .and_then(|r| r.spec)
        .ok_or_else(|| TalosError::BadReply("VolumeStatus ETCD has no spec".into()))?;
    let (volume_type, location) = if spec.proto_spec.is_empty() {
        // A server that fills only the YAML form: an empty proto would read as a partition
        // (the enum's zero value), so the type must be spelled out there.
        let volume_type = yaml_field(&spec.yaml_spec, "type")
            .and_then(parse_type)
            .ok_or_else(|| {
                TalosError::BadReply("VolumeStatus ETCD spec names no volume type".into())
            })?;
        (volume_type, yaml_field(&spec.yaml_spec, "location"))
    } else {
        let decoded = VolumeStatusSpec::decode(spec.proto_spec.as_slice())
            .map_err(|_| TalosError::BadReply("VolumeStatus ETCD spec does not decode".into()))?;
        let volume_type = BlockVolumeType::try_from(decoded.r#type).map_err(|_| {
            TalosError::BadReply(format!(
                "VolumeStatus ETCD has an unknown volume type {}",
                decoded.r#type
            ))
        })?;
        (volume_type, Some(decoded.location))
    };
    let location = location.filter(|l| !l.is_empty());
    match volume_type {
        BlockVolumeType::VolumeTypePartition => Ok(EtcdDataVolume::Partition { location }),
        BlockVolumeType::VolumeTypeDisk => Ok(EtcdDataVolume::Disk { location }),
        BlockVolumeType::VolumeTypeDirectory => Ok(EtcdDataVolume::Directory),
        other => Err(TalosError::BadReply(format!(
            "the ETCD volume is of type {}, which a reset is not known to wipe",
            type_name(other)
        ))),
    }
}

fn type_name(volume_type: BlockVolumeType) -> &'static str {
    match volume_type {
        BlockVolumeType::VolumeTypePartition => "partition",
        BlockVolumeType::VolumeTypeDisk => "disk",
        BlockVolumeType::VolumeTypeTmpfs => "tmpfs",
        BlockVolumeType::VolumeTypeDirectory => "directory",
        BlockVolumeType::VolumeTypeSymlink => "symlink",
        BlockVolumeType::VolumeTypeOverlay => "overlay",
        BlockVolumeType::VolumeTypeExternal => "external",
    }
}

fn parse_type(text: String) -> Option<BlockVolumeType> {
    [
        BlockVolumeType::VolumeTypePartition,
        BlockVolumeType::VolumeTypeDisk,
        BlockVolumeType::VolumeTypeTmpfs,
        BlockVolumeType::VolumeTypeDirectory,
        BlockVolumeType::VolumeTypeSymlink,
        BlockVolumeType::VolumeTypeOverlay,
        BlockVolumeType::VolumeTypeExternal,
    ]
    .into_iter()
    .find(|t| type_name(*t) == text)
}

/// A top-level `key: value` of the YAML spec (the spec is a flat mapping of scalars).
fn yaml_field(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        Some(rest.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use talos_api::cosi::resource::{Resource, Spec};

    use super::*;

    fn reply(proto_spec: Vec<u8>, yaml_spec: &str) -> Option<GetResponse> {
        Some(GetResponse {
            resource: Some(Resource {
                metadata: None,
                spec: Some(Spec {
                    proto_spec,
                    yaml_spec: yaml_spec.into(),
                }),
            }),
        })
    }

    fn proto(volume_type: BlockVolumeType, location: &str) -> Vec<u8> {
        VolumeStatusSpec {
            location: location.into(),
            r#type: volume_type as i32,
        }
        .encode_to_vec()
    }

    #[test]
    fn partition_disk_and_directory_from_the_proto_spec() {
        assert_eq!(
            etcd_data_volume(reply(
                proto(BlockVolumeType::VolumeTypePartition, "/dev/sdb1"),
                ""
            )),
            Ok(EtcdDataVolume::Partition {
                location: Some("/dev/sdb1".into())
            })
        );
        assert_eq!(
            etcd_data_volume(reply(
                proto(BlockVolumeType::VolumeTypeDisk, "/dev/sdc"),
                ""
            )),
            Ok(EtcdDataVolume::Disk {
                location: Some("/dev/sdc".into())
            })
        );
        assert_eq!(
            etcd_data_volume(reply(proto(BlockVolumeType::VolumeTypeDirectory, ""), "")),
            Ok(EtcdDataVolume::Directory)
        );
    }

    #[test]
    fn a_missing_resource_is_talos_before_v1_10() {
        assert_eq!(etcd_data_volume(None), Ok(EtcdDataVolume::Absent));
    }

    #[test]
    fn yaml_only_specs_must_spell_out_the_type() {
        assert_eq!(
            etcd_data_volume(reply(Vec::new(), "phase: ready\ntype: directory\n")),
            Ok(EtcdDataVolume::Directory)
        );
        assert_eq!(
            etcd_data_volume(reply(
                Vec::new(),
                "phase: ready\nlocation: /dev/sdb1\ntype: partition\n"
            )),
            Ok(EtcdDataVolume::Partition {
                location: Some("/dev/sdb1".into())
            })
        );
        assert!(matches!(
            etcd_data_volume(reply(Vec::new(), "phase: ready\n")),
            Err(TalosError::BadReply(_))
        ));
    }

    #[test]
    fn unexpected_types_and_bad_specs_are_errors() {
        let tmpfs = etcd_data_volume(reply(proto(BlockVolumeType::VolumeTypeTmpfs, ""), ""));
        assert!(
            matches!(&tmpfs, Err(TalosError::BadReply(m)) if m.contains("tmpfs")),
            "{tmpfs:?}"
        );
        let unknown = VolumeStatusSpec {
            location: String::new(),
            r#type: 42,
        };
        assert!(matches!(
            etcd_data_volume(reply(unknown.encode_to_vec(), "")),
            Err(TalosError::BadReply(_))
        ));
        assert!(matches!(
            etcd_data_volume(reply(vec![0xff, 0xff], "")),
            Err(TalosError::BadReply(_))
        ));
        assert!(matches!(
            etcd_data_volume(Some(GetResponse { resource: None })),
            Err(TalosError::BadReply(_))
        ));
    }
}
