//! Ed25519 certificates shaped like Talos': an OS CA, client certs with ClientAuth only, apid
//! server certs with IP SANs; and talosconfig files in talosctl's layout.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ED25519,
};

pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Pair {
    pub crt: String,
    pub key: String,
}

fn ed25519() -> KeyPair {
    KeyPair::generate_for(&PKCS_ED25519).expect("ed25519 key")
}

impl TestPki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(DnType::OrganizationName, "talos");
        Self {
            ca: CertifiedIssuer::self_signed(params, ed25519()).expect("ca"),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A client certificate with role `os:admin`; the key carries Talos' `ED25519 PRIVATE KEY`
    /// label, as talosctl writes it.
    pub fn client(&self) -> Pair {
        let key = ed25519();
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "os:admin");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let crt = params.signed_by(&key, &self.ca).expect("client cert");
        Pair {
            crt: crt.pem(),
            key: key
                .serialize_pem()
                .replace("PRIVATE KEY", "ED25519 PRIVATE KEY"),
        }
    }

    /// An apid server certificate for the given IPs.
    pub fn server(&self, ips: &[&str]) -> Pair {
        let key = ed25519();
        let sans: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("params");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let crt = params.signed_by(&key, &self.ca).expect("server cert");
        Pair {
            crt: crt.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A talosconfig with one context `name`, laid out the way talosctl writes it.
    pub fn talosconfig(&self, name: &str, endpoints: &[String], nodes: &[String]) -> String {
        let client = self.client();
        talosconfig(
            name,
            endpoints,
            nodes,
            &self.ca_pem(),
            &client.crt,
            &client.key,
        )
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub fn talosconfig(
    name: &str,
    endpoints: &[String],
    nodes: &[String],
    ca: &str,
    crt: &str,
    key: &str,
) -> String {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("            - {i}\n"))
            .collect::<String>()
    };
    let nodes = if nodes.is_empty() {
        String::new()
    } else {
        format!("        nodes:\n{}", list(nodes))
    };
    format!(
        "context: {name}\ncontexts:\n    {name}:\n        endpoints:\n{}{nodes}        ca: {}\n        crt: {}\n        key: {}\n",
        list(endpoints),
        b64(ca),
        b64(crt),
        b64(key)
    )
}
