//! Reading a talosconfig the way talosctl does, and refusing one the console could not use.
//!
//! Every error names the file, the context and the field, so the SRE can fix the right line:
//! `talosconfig /x/y: context "prod": field "key": not valid base64`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// apid's port (`constants.ApidPort`), used when an endpoint names none.
pub const APID_PORT: u16 = 50000;

/// One context of a talosconfig, checked and decoded.
#[derive(Clone)]
pub struct TalosContext {
    /// The file it came from, for messages.
    pub source: PathBuf,
    pub context: String,
    pub endpoints: Vec<TalosEndpoint>,
    /// The context's default target nodes (may be empty).
    pub nodes: Vec<String>,
    /// PEM of the CA(s) that sign apid's server certificates.
    pub ca_pem: Vec<u8>,
    /// PEM of the client certificate.
    pub crt_pem: Vec<u8>,
    /// PEM of the client key, relabelled so rustls accepts Talos' Ed25519 keys.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for TalosContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TalosContext")
            .field("source", &self.source)
            .field("context", &self.context)
            .field("endpoints", &self.endpoints)
            .field("nodes", &self.nodes)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TalosContext {
    /// The nodes to poll when the console's config names none: `nodes`, else the endpoints.
    pub fn default_nodes(&self) -> Vec<String> {
        if self.nodes.is_empty() {
            self.endpoints.iter().map(|e| e.host.clone()).collect()
        } else {
            self.nodes.clone()
        }
    }
}

/// An apid address: host (IP or DNS name, IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalosEndpoint {
    pub host: String,
    pub port: u16,
}

impl TalosEndpoint {
    /// Parses an endpoint as talosctl accepts it: `host`, `host:port`, `[v6]:port`, `https://host`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{text:?} is not a usable endpoint: {why}");
        let mut rest = text.trim();
        let mut default_port = APID_PORT;
        if let Some(r) = rest.strip_prefix("https://") {
            // Omni-style endpoints: an https URL without a port means 443.
            rest = r;
            default_port = 443;
        } else if rest.contains("://") {
            return Err(bad("only https:// URLs are understood"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(bad("no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The URI tonic dials; TLS verifies the server certificate against `host`.
    pub fn uri(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for TalosEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What is wrong, without where (that is in `TalosconfigError`).
#[derive(Debug, thiserror::Error)]
pub enum TalosconfigProblem {
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("not a talosconfig: {0}")]
    NotTalosconfig(String),
    #[error("no context was chosen and the file names no current context")]
    NoCurrentContext,
    #[error("no such context; the file has: {}", if .0.is_empty() { "none".to_string() } else { .0.join(", ") })]
    UnknownContext(Vec<String>),
    #[error("missing")]
    Missing,
    #[error("not valid base64")]
    NotBase64,
    #[error("not valid PEM: {0}")]
    NotPem(String),
    #[error("holds no PEM CERTIFICATE block")]
    NoCertificate,
    #[error("holds no PEM private key block")]
    NoPrivateKey,
    #[error("not a usable certificate: {0}")]
    BadCertificate(String),
    #[error("not a usable private key: {0}")]
    BadKey(String),
    #[error("the key does not belong to the certificate in field \"crt\"")]
    KeyMismatch,
    #[error("{0}")]
    BadEndpoint(String),
}

/// A talosconfig the console cannot use, with where the problem is.
#[derive(Debug)]
pub struct TalosconfigError {
    pub path: PathBuf,
    pub context: Option<String>,
    pub field: Option<&'static str>,
    pub problem: TalosconfigProblem,
}

impl fmt::Display for TalosconfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "talosconfig {}", self.path.display())?;
        if let Some(c) = &self.context {
            write!(f, ": context {c:?}")?;
        }
        if let Some(field) = self.field {
            write!(f, ": field {field:?}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for TalosconfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.problem)
    }
}

#[derive(Deserialize)]
struct RawTalosconfig {
    context: Option<String>,
    #[serde(default)]
    contexts: BTreeMap<String, RawContext>,
}

#[derive(Deserialize)]
struct RawContext {
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    nodes: Vec<String>,
    target: Option<String>,
    ca: Option<String>,
    crt: Option<String>,
    key: Option<String>,
}

/// Reads and checks one context of a talosconfig file (the current context when `context` is
/// `None`).
pub fn load(path: &Path, context: Option<&str>) -> Result<TalosContext, TalosconfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| TalosconfigError {
        path: path.to_path_buf(),
        context: None,
        field: None,
        problem: TalosconfigProblem::Unreadable(e),
    })?;
    parse(path, &text, context)
}

/// Like [`load`], from text already read; `path` is only used in messages.
pub fn parse(
    path: &Path,
    text: &str,
    context: Option<&str>,
) -> Result<TalosContext, TalosconfigError> {
    let fail = |context: Option<&str>, field: Option<&'static str>, problem| TalosconfigError {
        path: path.to_path_buf(),
        context: context.map(str::to_string),
        field,
        problem,
    };
    let raw: RawTalosconfig = serde_yaml::from_str(text).map_err(|e| {
        fail(
            None,
            None,
            TalosconfigProblem::NotTalosconfig(e.to_string()),
        )
    })?;
    let name = match context
        .map(str::to_string)
        .or(raw.context.filter(|c| !c.is_empty()))
    {
        Some(name) => name,
        None => return Err(fail(None, None, TalosconfigProblem::NoCurrentContext)),
    };
    let Some(ctx) = raw.contexts.get(&name) else {
        let known = raw.contexts.keys().cloned().collect();
        return Err(fail(
            Some(&name),
            None,
            TalosconfigProblem::UnknownContext(known),
        ));
    };
    let fail = |field, problem| fail(Some(&name), Some(field), problem);

    let mut endpoint_texts = ctx.endpoints.clone();
    // The deprecated single `target` is appended to the endpoints, as talosctl does on load.
    endpoint_texts.extend(ctx.target.iter().filter(|t| !t.is_empty()).cloned());
    if endpoint_texts.is_empty() {
        return Err(fail("endpoints", TalosconfigProblem::Missing));
    }
    let endpoints = endpoint_texts
        .iter()
        .map(|e| TalosEndpoint::parse(e))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|why| fail("endpoints", TalosconfigProblem::BadEndpoint(why)))?;

    let ca_pem = decode_field(ctx.ca.as_deref()).map_err(|p| fail("ca", p))?;
    let ca_certs = read_certificates(&ca_pem).map_err(|p| fail("ca", p))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in ca_certs {
        roots
            .add(cert)
            .map_err(|e| fail("ca", TalosconfigProblem::BadCertificate(e.to_string())))?;
    }

    let crt_pem = decode_field(ctx.crt.as_deref()).map_err(|p| fail("crt", p))?;
    let chain = read_certificates(&crt_pem).map_err(|p| fail("crt", p))?;
    let key_pem =
        relabel_ed25519_key(&decode_field(ctx.key.as_deref()).map_err(|p| fail("key", p))?);
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(fail("key", TalosconfigProblem::NoPrivateKey));
        }
        Err(e) => return Err(fail("key", TalosconfigProblem::NotPem(e.to_string()))),
    };
    check_key_matches(chain, key).map_err(|(field, p)| fail(field, p))?;

    Ok(TalosContext {
        source: path.to_path_buf(),
        context: name.clone(),
        endpoints,
        nodes: ctx.nodes.clone(),
        ca_pem,
        crt_pem,
        key_pem,
    })
}

fn decode_field(value: Option<&str>) -> Result<Vec<u8>, TalosconfigProblem> {
    let value = value
        .filter(|v| !v.trim().is_empty())
        .ok_or(TalosconfigProblem::Missing)?;
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| TalosconfigProblem::NotBase64)
}

fn read_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TalosconfigProblem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TalosconfigProblem::NotPem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TalosconfigProblem::NoCertificate);
    }
    Ok(certs)
}

/// Talos writes Ed25519 keys as PKCS#8 under the label `ED25519 PRIVATE KEY`, which rustls does
/// not know; the DER is already PKCS#8, so the plain `PRIVATE KEY` label is correct for it.
pub fn relabel_ed25519_key(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    if !text.contains("ED25519 PRIVATE KEY") {
        return pem.to_vec();
    }
    text.replace(
        "-----BEGIN ED25519 PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
    )
    .replace(
        "-----END ED25519 PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
    )
    .into_bytes()
}

fn check_key_matches(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(), (&'static str, TalosconfigProblem)> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| ("key", TalosconfigProblem::BadKey(e.to_string())))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // Unknown: the key type cannot report its public half; the TLS handshake will tell.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(("key", TalosconfigProblem::KeyMismatch))
        }
        Err(e) => Err(("crt", TalosconfigProblem::BadCertificate(e.to_string()))),
    }
}

#[cfg(test)]
#[path = "talosconfig_tests.rs"]
mod tests;
