//! talosconfig files in the layout talosctl reads (`pkg/machinery/client/config`):
//! `ca`, `crt` and `key` are base64 (standard, padded) of the PEM text.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::pki::CertAndKey;
use crate::role::Role;

/// Port talosctl assumes when an endpoint has none.
pub const DEFAULT_API_PORT: u16 = 50000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalosConfig {
    pub context: String,
    pub contexts: BTreeMap<String, TalosContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TalosContext {
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    pub ca: String,
    pub crt: String,
    pub key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TalosConfigError {
    #[error("serializing talosconfig: {0}")]
    Serialize(#[from] serde_yaml::Error),
    #[error("writing talosconfig {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Context name used for a role's identity, e.g. `emulated-admin`.
pub fn context_name(role: Role) -> String {
    format!("emulated-{}", role.short_name())
}

/// File name of a single-role talosconfig in the state dir, e.g. `talosconfig.etcd-backup`.
pub fn file_name(role: Role) -> String {
    format!("talosconfig.{}", role.short_name())
}

/// An endpoint as talosctl expects it: the bare IP when the port is the default one.
pub fn endpoint(ip: Ipv4Addr, port: u16) -> String {
    if port == DEFAULT_API_PORT {
        ip.to_string()
    } else {
        format!("{ip}:{port}")
    }
}

impl TalosContext {
    pub fn new(
        endpoints: Vec<String>,
        nodes: Vec<String>,
        ca_pem: &str,
        client: &CertAndKey,
    ) -> Self {
        Self {
            endpoints,
            nodes,
            ca: STANDARD.encode(ca_pem),
            crt: STANDARD.encode(&client.cert_pem),
            key: STANDARD.encode(&client.key_pem),
        }
    }
}

impl TalosConfig {
    pub fn single(name: String, context: TalosContext) -> Self {
        Self {
            context: name.clone(),
            contexts: BTreeMap::from([(name, context)]),
        }
    }

    pub fn to_yaml(&self) -> Result<String, TalosConfigError> {
        Ok(serde_yaml::to_string(self)?)
    }

    pub fn write(&self, path: &Path) -> Result<(), TalosConfigError> {
        let yaml = self.to_yaml()?;
        std::fs::write(path, yaml).map_err(|source| TalosConfigError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `talosconfig.<role>` per role plus `talosconfig` holding every context,
/// current context `emulated-admin`. Returns the per-role paths.
pub fn write_all(
    state_dir: &Path,
    endpoints: &[String],
    nodes: &[String],
    ca_pem: &str,
    clients: &BTreeMap<Role, CertAndKey>,
) -> Result<BTreeMap<Role, PathBuf>, TalosConfigError> {
    let mut paths = BTreeMap::new();
    let mut combined = BTreeMap::new();
    for (role, client) in clients {
        let context = TalosContext::new(endpoints.to_vec(), nodes.to_vec(), ca_pem, client);
        let name = context_name(*role);
        let path = state_dir.join(file_name(*role));
        TalosConfig::single(name.clone(), context.clone()).write(&path)?;
        combined.insert(name, context);
        paths.insert(*role, path);
    }
    let all = TalosConfig {
        context: context_name(Role::Admin),
        contexts: combined,
    };
    all.write(&state_dir.join("talosconfig"))?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_has_talosctl_layout() {
        let client = CertAndKey {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        };
        let config = TalosConfig::single(
            context_name(Role::EtcdBackup),
            TalosContext::new(
                vec![
                    endpoint(Ipv4Addr::new(127, 0, 0, 2), 50000),
                    endpoint(Ipv4Addr::new(127, 0, 0, 3), 50001),
                ],
                vec!["127.0.0.2".into()],
                "CA",
                &client,
            ),
        );
        let yaml = config.to_yaml().expect("yaml");
        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("parse");
        assert_eq!(value["context"].as_str(), Some("emulated-etcd-backup"));
        let ctx = &value["contexts"]["emulated-etcd-backup"];
        assert_eq!(ctx["endpoints"][0].as_str(), Some("127.0.0.2"));
        assert_eq!(ctx["endpoints"][1].as_str(), Some("127.0.0.3:50001"));
        assert_eq!(ctx["nodes"][0].as_str(), Some("127.0.0.2"));
        assert_eq!(ctx["ca"].as_str(), Some("Q0E="));
        assert_eq!(ctx["crt"].as_str(), Some("Q0VSVA=="));
        assert_eq!(ctx["key"].as_str(), Some("S0VZ"));
    }
}
