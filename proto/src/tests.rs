use prost::Message;

use crate::machine::{EtcdMember, EtcdMemberStatus};
use crate::{InvalidNode, NODE_METADATA_KEY, with_node};

#[test]
fn etcd_member_id_is_field_two() {
    let member = EtcdMember {
        id: 7,
        hostname: "cp-1".into(),
        ..Default::default()
    };
    let bytes = member.encode_to_vec();
    // Tag (2 << 3 | varint) = 0x10, then the value 7.
    assert_eq!(&bytes[..2], &[0x10, 0x07]);
    // hostname is field 3, length-delimited: (3 << 3 | 2) = 0x1a.
    assert_eq!(bytes[2], 0x1a);
    let decoded = EtcdMember::decode(bytes.as_slice()).expect("decode");
    assert_eq!(decoded, member);
}

#[test]
fn etcd_member_status_member_id_and_storage_version_fields() {
    let status = EtcdMemberStatus {
        member_id: 5,
        storage_version: "3.6.0".into(),
        ..Default::default()
    };
    let bytes = status.encode_to_vec();
    // member_id = 10 varint: 10 << 3 = 0x50; storage_version = 11 bytes: 11 << 3 | 2 = 0x5a.
    assert_eq!(&bytes[..2], &[0x50, 0x05]);
    assert_eq!(&bytes[2..4], &[0x5a, 0x05]);
    assert_eq!(&bytes[4..], b"3.6.0");
    let decoded = EtcdMemberStatus::decode(bytes.as_slice()).expect("decode");
    assert_eq!(decoded, status);
}

#[test]
fn with_node_sets_node_metadata() {
    let request = with_node((), "10.0.0.2").expect("valid target");
    assert_eq!(
        request
            .metadata()
            .get(NODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok()),
        Some("10.0.0.2")
    );
}

#[test]
fn with_node_rejects_targets_with_port() {
    assert!(matches!(
        with_node((), "10.0.0.2:50000"),
        Err(InvalidNode::HasPort(_))
    ));
    assert!(matches!(
        with_node((), "[fd00::1]:50000"),
        Err(InvalidNode::HasPort(_))
    ));
    assert!(with_node((), "fd00::1").is_ok());
    assert!(matches!(with_node((), " "), Err(InvalidNode::Empty)));
}

#[test]
fn volume_status_type_is_field_sixteen_and_unknown_fields_are_skipped() {
    use crate::talos::resource::definitions::block::VolumeStatusSpec;
    use crate::talos::resource::definitions::enums::BlockVolumeType;

    // As a v1.10+ node sends it: phase (1) = READY (6), location (2), size (9), type (16).
    let mut bytes = vec![0x08, 0x06, 0x12, 0x09];
    bytes.extend_from_slice(b"/dev/sdb1");
    bytes.extend_from_slice(&[0x48, 0x80, 0x08]);
    // Field 16, varint: (16 << 3) = 128 = 0x80 0x01; DIRECTORY = 3.
    bytes.extend_from_slice(&[0x80, 0x01, 0x03]);
    let decoded = VolumeStatusSpec::decode(bytes.as_slice()).expect("decode");
    assert_eq!(decoded.location, "/dev/sdb1");
    assert_eq!(
        BlockVolumeType::try_from(decoded.r#type),
        Ok(BlockVolumeType::VolumeTypeDirectory)
    );
    let partition = VolumeStatusSpec {
        location: String::new(),
        r#type: BlockVolumeType::VolumeTypeDisk as i32,
    };
    assert_eq!(partition.encode_to_vec(), vec![0x80, 0x01, 0x01]);
}
