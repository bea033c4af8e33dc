//! The node's machine configuration (v1alpha1 YAML) and the COSI resources built from it.

use std::net::Ipv4Addr;

use prost::Message;
use talos_api::cosi::resource as cosi;
use talos_api::resource::config as config_pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    Init,
    ControlPlane,
    Worker,
}

impl MachineType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::ControlPlane => "controlplane",
            Self::Worker => "worker",
        }
    }

    /// Talos' parsing also accepts `join` (and empty) for workers.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "init" => Some(Self::Init),
            "controlplane" => Some(Self::ControlPlane),
            "worker" | "join" | "" => Some(Self::Worker),
            _ => None,
        }
    }

    pub fn is_control_plane(self) -> bool {
        matches!(self, Self::Init | Self::ControlPlane)
    }

    fn proto(self) -> config_pb::MachineType {
        match self {
            Self::Init => config_pb::MachineType::Init,
            Self::ControlPlane => config_pb::MachineType::ControlPlane,
            Self::Worker => config_pb::MachineType::Worker,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to parse config: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the config has no v1alpha1 document")]
    NoV1Alpha1,
    #[error("unknown machine type {0:?} in field machine.type")]
    UnknownMachineType(String),
}

/// A parsed, validated machine configuration: the raw bytes as submitted plus what the node needs.
#[derive(Debug, Clone)]
pub struct MachineConfig {
    pub raw: Vec<u8>,
    pub machine_type: MachineType,
    pub has_etcd_ca: bool,
}

impl MachineConfig {
    pub fn parse(raw: &[u8]) -> Result<Self, ConfigError> {
        for document in serde_yaml::Deserializer::from_slice(raw) {
            let value = serde_yaml::Value::deserialize(document)?;
            if value.get("version").and_then(|v| v.as_str()) != Some("v1alpha1") {
                continue;
            }
            let type_text = value
                .get("machine")
                .and_then(|m| m.get("type"))
                .and_then(|t| t.as_str())
                .unwrap_or("");
            let machine_type = MachineType::parse(type_text)
                .ok_or_else(|| ConfigError::UnknownMachineType(type_text.to_string()))?;
            let has_etcd_ca = value
                .get("cluster")
                .and_then(|c| c.get("etcd"))
                .and_then(|e| e.get("ca"))
                .is_some();
            return Ok(Self {
                raw: raw.to_vec(),
                machine_type,
                has_etcd_ca,
            });
        }
        Err(ConfigError::NoV1Alpha1)
    }
}

use serde::Deserialize;

/// A realistic (abridged) v1alpha1 config for one node; the key material is placeholder text.
pub fn generate(
    machine_type: MachineType,
    hostname: &str,
    ip: Ipv4Addr,
    cluster_name: &str,
    endpoint_ip: Ipv4Addr,
) -> String {
    let control_plane = if machine_type.is_control_plane() {
        "cluster:\n  etcd:\n    ca:\n      crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n      key: LS0tLS1CRUdJTiBFQzIgUFJJVkFURSBLRVktLS0tLQo=\n    extraArgs:\n      heartbeat-interval: \"50\"\n      election-timeout: \"500\"\n".to_string()
    } else {
        "cluster:\n".to_string()
    };
    format!(
        "version: v1alpha1\ndebug: false\npersist: true\nmachine:\n  type: {ty}\n  token: emulator.token0000000000\n  ca:\n    crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n  certSANs:\n    - {ip}\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.34.1\n  network:\n    hostname: {hostname}\n    interfaces:\n      - interface: eth0\n        addresses:\n          - {ip}/24\n  install:\n    disk: /dev/sda\n{cp}  controlPlane:\n    endpoint: https://{endpoint_ip}:6443\n  clusterName: {cluster_name}\n  network:\n    dnsDomain: cluster.local\n    podSubnets:\n      - 10.244.0.0/16\n    serviceSubnets:\n      - 10.96.0.0/12\n",
        ty = machine_type.as_str(),
        cp = control_plane,
    )
}

pub const CONFIG_NAMESPACE: &str = "config";
pub const MACHINE_TYPE_TYPE: &str = "MachineTypes.config.talos.dev";
pub const MACHINE_CONFIG_TYPE: &str = "MachineConfigs.config.talos.dev";
pub const META_NAMESPACE: &str = "meta";
pub const RESOURCE_DEFINITION_TYPE: &str = "ResourceDefinitions.meta.cosi.dev";

pub(super) fn metadata(
    namespace: &str,
    resource_type: &str,
    id: &str,
    version: u64,
) -> cosi::Metadata {
    let now = super::clock::timestamp(std::time::SystemTime::now());
    cosi::Metadata {
        namespace: namespace.to_string(),
        r#type: resource_type.to_string(),
        id: id.to_string(),
        version: version.to_string(),
        owner: String::new(),
        phase: "running".to_string(),
        created: Some(now),
        updated: Some(now),
        ..Default::default()
    }
}

pub fn machine_type_resource(machine_type: Option<MachineType>, version: u64) -> cosi::Resource {
    let (proto, text) = match machine_type {
        Some(t) => (t.proto(), t.as_str()),
        None => (config_pb::MachineType::Unknown, "unknown"),
    };
    cosi::Resource {
        metadata: Some(metadata(
            CONFIG_NAMESPACE,
            MACHINE_TYPE_TYPE,
            "machine-type",
            version,
        )),
        spec: Some(cosi::Spec {
            proto_spec: config_pb::MachineTypeSpec {
                machine_type: proto as i32,
            }
            .encode_to_vec(),
            yaml_spec: text.to_string(),
        }),
    }
}

pub fn machine_config_resource(id: &str, raw: &[u8], version: u64) -> cosi::Resource {
    let mut meta = metadata(CONFIG_NAMESPACE, MACHINE_CONFIG_TYPE, id, version);
    meta.annotations
        .insert("talos.dev/yaml-spec".to_string(), "1".to_string());
    let text = String::from_utf8_lossy(raw).into_owned();
    cosi::Resource {
        metadata: Some(meta),
        spec: Some(cosi::Spec {
            proto_spec: config_pb::MachineConfigSpec {
                yaml_marshalled: raw.to_vec(),
            }
            .encode_to_vec(),
            // Since v1.12 the YAML spec is the whole config as one string scalar.
            yaml_spec: serde_yaml::to_string(&text).unwrap_or_default(),
        }),
    }
}

/// Resource definitions so `talosctl get machinetype` / `get mc` can resolve their aliases.
pub fn resource_definitions() -> Vec<cosi::Resource> {
    vec![
        definition(
            MACHINE_CONFIG_TYPE,
            "MachineConfig",
            &["machineconfig", "mc", "mcs"],
            CONFIG_NAMESPACE,
            true,
        ),
        definition(
            MACHINE_TYPE_TYPE,
            "MachineType",
            &["machinetype", "mt", "mts"],
            CONFIG_NAMESPACE,
            false,
        ),
    ]
}

/// One `ResourceDefinitions.meta.cosi.dev` entry; the all-aliases add the plural forms the cosi
/// runtime derives from the type (`machinetypes`, `machinetypes.config`, ...).
pub(super) fn definition(
    resource_type: &str,
    display: &str,
    aliases: &[&str],
    default_namespace: &str,
    sensitive: bool,
) -> cosi::Resource {
    use talos_api::cosi::resource::meta::ResourceDefinitionSpec;
    let lower = resource_type.to_lowercase();
    let parts: Vec<&str> = lower.split('.').collect();
    let mut all_aliases: Vec<String> = aliases.iter().map(|a| a.to_string()).collect();
    for n in 1..parts.len().min(4) {
        all_aliases.push(parts[..n].join("."));
    }
    let spec = ResourceDefinitionSpec {
        resource_type: resource_type.to_string(),
        display_type: display.to_string(),
        default_namespace: default_namespace.to_string(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        all_aliases,
        print_columns: Vec::new(),
        sensitivity: i32::from(sensitive),
    };
    cosi::Resource {
        metadata: Some(metadata(
            META_NAMESPACE,
            RESOURCE_DEFINITION_TYPE,
            &lower,
            1,
        )),
        spec: Some(cosi::Spec {
            proto_spec: spec.encode_to_vec(),
            yaml_spec: format!("type: {resource_type}\ndisplayType: {display}\n"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_parse_back_with_their_type() {
        for t in [
            MachineType::Init,
            MachineType::ControlPlane,
            MachineType::Worker,
        ] {
            let text = generate(
                t,
                "cp-1",
                Ipv4Addr::new(127, 0, 5, 1),
                "c",
                Ipv4Addr::new(127, 0, 5, 1),
            );
            let parsed = MachineConfig::parse(text.as_bytes()).expect("parses");
            assert_eq!(parsed.machine_type, t);
            assert_eq!(parsed.has_etcd_ca, t.is_control_plane());
        }
    }

    #[test]
    fn bad_configs_name_what_is_wrong() {
        let unknown = MachineConfig::parse(b"version: v1alpha1\nmachine:\n  type: boss\n")
            .expect_err("unknown type");
        assert!(unknown.to_string().contains("machine.type"), "{unknown}");
        let none =
            MachineConfig::parse(b"apiVersion: v1alpha1\nkind: NetworkDefaultActionConfig\n")
                .expect_err("no v1alpha1");
        assert!(matches!(none, ConfigError::NoV1Alpha1));
        assert!(MachineConfig::parse(b"version: [").is_err());
    }

    #[test]
    fn machine_type_resource_carries_proto_and_yaml_spec() {
        let resource = machine_type_resource(Some(MachineType::ControlPlane), 2);
        let spec = resource.spec.expect("spec");
        assert_eq!(spec.yaml_spec, "controlplane");
        let decoded =
            config_pb::MachineTypeSpec::decode(spec.proto_spec.as_slice()).expect("proto");
        assert_eq!(
            decoded.machine_type,
            config_pb::MachineType::ControlPlane as i32
        );
        assert_eq!(resource.metadata.map(|m| m.version), Some("2".to_string()));
    }
}
