//! The emulated cluster's Talos OS CA and the certificates it issues, shaped
//! like the ones Talos generates: Ed25519 everywhere, roles in Subject O=,
//! client certificates with exactly the ClientAuth extended key usage, and
//! private keys under the `ED25519 PRIVATE KEY` PEM label.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

/// PEM label Talos (siderolabs/crypto) writes for Ed25519 keys; the body is PKCS#8.
pub const TALOS_ED25519_KEY_LABEL: &str = "ED25519 PRIVATE KEY";

/// PKCS#8 v1 prefix for an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
/// Go's `x509.MarshalPKCS8PrivateKey` writes exactly this form (no embedded public key).
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// rcgen keeps one value per attribute type, so a second role needs a second spelling of
/// the Organization OID (2.5.4.10); both encode as ordinary O= attributes.
const MAX_ROLES_PER_CERT: usize = 2;
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating an Ed25519 key failed")]
    KeyGeneration,
    #[error("building certificate {what}: {source}")]
    Certificate {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("a client certificate carries at most {MAX_ROLES_PER_CERT} roles, got {0}")]
    TooManyRoles(usize),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A PEM certificate and its private key (Talos label).
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

impl CertAndKey {
    /// The key relabelled to `PRIVATE KEY`, the only PKCS#8 label rustls reads.
    pub fn key_pem_for_rustls(&self) -> String {
        relabel_key_for_rustls(&self.key_pem)
    }
}

/// Relabels a Talos `ED25519 PRIVATE KEY` PEM block to `PRIVATE KEY`; the DER is already PKCS#8.
pub fn relabel_key_for_rustls(pem: &str) -> String {
    pem.replace(
        &format!("-----BEGIN {TALOS_ED25519_KEY_LABEL}-----"),
        "-----BEGIN PRIVATE KEY-----",
    )
    .replace(
        &format!("-----END {TALOS_ED25519_KEY_LABEL}-----"),
        "-----END PRIVATE KEY-----",
    )
}

/// The cluster's Talos OS CA.
pub struct ClusterPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_key_pem: String,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki").finish_non_exhaustive()
    }
}

impl ClusterPki {
    /// A fresh Ed25519 CA, like `talosctl gen secrets` makes (`O=talos`).
    pub fn generate() -> Result<Self, PkiError> {
        let (key, ca_key_pem) = new_ed25519_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = organizations(&["talos"]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        set_validity(&mut params, Duration::days(3650))?;
        let ca =
            CertifiedIssuer::self_signed(params, key).map_err(|source| PkiError::Certificate {
                what: "Talos OS CA".into(),
                source,
            })?;
        Ok(Self { ca, ca_key_pem })
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// apid's serving certificate: SANs are the node IP, 127.0.0.1 and the hostname.
    pub fn issue_server(&self, ip: Ipv4Addr, hostname: &str) -> Result<CertAndKey, PkiError> {
        let what = || format!("server certificate for {ip}");
        let (key, key_pem) = new_ed25519_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, hostname);
        let mut sans = vec![SanType::IpAddress(IpAddr::V4(ip))];
        if ip != Ipv4Addr::LOCALHOST {
            sans.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        let dns = hostname
            .to_owned()
            .try_into()
            .map_err(|source| PkiError::Certificate {
                what: what(),
                source,
            })?;
        sans.push(SanType::DnsName(dns));
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, Duration::days(365))?;
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(|source| PkiError::Certificate {
                what: what(),
                source,
            })?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// A client certificate with `roles` as Subject O= values and exactly ClientAuth EKU.
    pub fn issue_client(&self, roles: &[&str]) -> Result<CertAndKey, PkiError> {
        self.issue_client_valid_for(roles, std::time::Duration::from_secs(365 * 24 * 3600))
    }

    /// Like [`Self::issue_client`], valid for `lifetime` from now.
    pub fn issue_client_valid_for(
        &self,
        roles: &[&str],
        lifetime: std::time::Duration,
    ) -> Result<CertAndKey, PkiError> {
        if roles.len() > MAX_ROLES_PER_CERT {
            return Err(PkiError::TooManyRoles(roles.len()));
        }
        let (key, key_pem) = new_ed25519_key()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = organizations(roles);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let lifetime = Duration::try_from(lifetime).unwrap_or(Duration::days(365));
        set_validity(&mut params, lifetime)?;
        let cert = params
            .signed_by(&key, &self.ca)
            .map_err(|source| PkiError::Certificate {
                what: format!("client certificate for {}", roles.join(",")),
                source,
            })?;
        Ok(CertAndKey {
            cert_pem: cert.pem(),
            key_pem,
        })
    }

    /// Writes `ca.crt` and `ca.key` (Talos key label) into `dir`.
    pub fn write_ca(&self, dir: &Path) -> Result<(), PkiError> {
        create_dir(dir)?;
        write_file(&dir.join("ca.crt"), self.ca_pem().as_bytes())?;
        write_file(&dir.join("ca.key"), self.ca_key_pem.as_bytes())
    }
}

/// Writes a certificate and key pair as `<stem>.crt` / `<stem>.key` into `dir`.
pub fn write_cert_and_key(dir: &Path, stem: &str, pair: &CertAndKey) -> Result<(), PkiError> {
    create_dir(dir)?;
    write_file(&dir.join(format!("{stem}.crt")), pair.cert_pem.as_bytes())?;
    write_file(&dir.join(format!("{stem}.key")), pair.key_pem.as_bytes())
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
        path: dir.to_owned(),
        source,
    })
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    std::fs::write(path, contents).map_err(|source| PkiError::Write {
        path: path.to_owned(),
        source,
    })
}

fn organizations(values: &[&str]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (index, value) in values.iter().filter(|v| !v.is_empty()).enumerate() {
        let ty = if index == 0 {
            DnType::OrganizationName
        } else {
            DnType::CustomDnType(ORGANIZATION_OID.to_vec())
        };
        name.push(ty, *value);
    }
    name
}

fn set_validity(params: &mut CertificateParams, lifetime: Duration) -> Result<(), PkiError> {
    // Backdated so a client whose clock is slightly behind still accepts the certificate.
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + lifetime;
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| PkiError::KeyGeneration)?;
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

/// A new Ed25519 key and its PEM in Talos' form (PKCS#8 v1 under `ED25519 PRIVATE KEY`).
fn new_ed25519_key() -> Result<(KeyPair, String), PkiError> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| PkiError::KeyGeneration)?;
    let mut der = ED25519_PKCS8_V1_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let key = KeyPair::try_from(der.as_slice()).map_err(|_| PkiError::KeyGeneration)?;
    Ok((key, pem_block(TALOS_ED25519_KEY_LABEL, &der)))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests;
