use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ED25519,
};

use super::*;

struct Credentials {
    ca: String,
    crt: String,
    /// With Talos' `ED25519 PRIVATE KEY` label.
    key: String,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn ed25519() -> KeyPair {
    KeyPair::generate_for(&PKCS_ED25519).expect("key")
}

fn talos_label(pkcs8_pem: &str) -> String {
    pkcs8_pem.replace("PRIVATE KEY", "ED25519 PRIVATE KEY")
}

fn credentials() -> Credentials {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "talos");
    let ca = CertifiedIssuer::self_signed(ca_params, ed25519()).expect("ca");
    let key = ed25519();
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "os:admin");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let crt = params.signed_by(&key, &ca).expect("client cert");
    Credentials {
        ca: ca.pem(),
        crt: crt.pem(),
        key: talos_label(&key.serialize_pem()),
    }
}

fn talosconfig(ca: &str, crt: &str, key: &str) -> String {
    format!(
        "context: prod\ncontexts:\n    prod:\n        endpoints:\n            - 10.0.0.10\n            - 10.0.0.11:50001\n        nodes:\n            - 10.0.0.12\n        ca: {ca}\n        crt: {crt}\n        key: {key}\n"
    )
}

fn good() -> String {
    let c = credentials();
    talosconfig(&b64(&c.ca), &b64(&c.crt), &b64(&c.key))
}

fn refuse(text: &str, context: Option<&str>) -> TalosconfigError {
    parse(Path::new("/x/y"), text, context).expect_err("the talosconfig should be refused")
}

#[test]
fn reads_a_talosctl_style_config() {
    let ctx = parse(Path::new("/x/y"), &good(), None).expect("accepted");
    assert_eq!(ctx.context, "prod");
    assert_eq!(
        ctx.endpoints,
        vec![
            TalosEndpoint {
                host: "10.0.0.10".into(),
                port: 50000
            },
            TalosEndpoint {
                host: "10.0.0.11".into(),
                port: 50001
            },
        ]
    );
    assert_eq!(ctx.default_nodes(), vec!["10.0.0.12".to_string()]);
    let key = String::from_utf8(ctx.key_pem.clone()).expect("utf8");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    assert!(
        !format!("{ctx:?}").contains("PRIVATE"),
        "Debug must not print the key"
    );
}

#[test]
fn nodes_default_to_endpoints() {
    let text = good().replace("        nodes:\n            - 10.0.0.12\n", "");
    let ctx = parse(Path::new("/x/y"), &text, Some("prod")).expect("accepted");
    assert_eq!(
        ctx.default_nodes(),
        vec!["10.0.0.10".to_string(), "10.0.0.11".to_string()]
    );
}

#[test]
fn missing_file_names_the_file() {
    let err = load(Path::new("/nonexistent/talosconfig"), None).expect_err("refused");
    assert!(matches!(err.problem, TalosconfigProblem::Unreadable(_)));
    assert!(
        err.to_string()
            .starts_with("talosconfig /nonexistent/talosconfig: cannot read it: "),
        "{err}"
    );
}

#[test]
fn unreadable_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory cannot be read as a file, even by root.
    let err = load(dir.path(), None).expect_err("refused");
    assert!(
        matches!(err.problem, TalosconfigProblem::Unreadable(_)),
        "{err}"
    );
    let path = dir.path().join("talosconfig");
    std::fs::write(&path, "- just\n- a list\n").expect("write");
    let err = load(&path, None).expect_err("refused");
    assert!(
        matches!(err.problem, TalosconfigProblem::NotTalosconfig(_)),
        "{err}"
    );
}

#[test]
fn unknown_context_lists_the_known_ones() {
    let err = refuse(&good(), Some("staging"));
    assert_eq!(
        err.to_string(),
        "talosconfig /x/y: context \"staging\": no such context; the file has: prod"
    );
    let err = refuse(&good().replace("context: prod\n", ""), None);
    assert!(
        matches!(err.problem, TalosconfigProblem::NoCurrentContext),
        "{err}"
    );
}

#[test]
fn bad_base64_names_the_field() {
    let c = credentials();
    let err = refuse(&talosconfig(&b64(&c.ca), &b64(&c.crt), "not*base64!"), None);
    assert_eq!(
        err.to_string(),
        "talosconfig /x/y: context \"prod\": field \"key\": not valid base64"
    );
    let err = refuse(
        &talosconfig("ca~not~base64", &b64(&c.crt), &b64(&c.key)),
        None,
    );
    assert_eq!(err.field, Some("ca"));
    assert!(matches!(err.problem, TalosconfigProblem::NotBase64));
}

#[test]
fn bad_pem_names_the_field() {
    let c = credentials();
    let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let err = refuse(&talosconfig(&b64(&c.ca), &b64(broken), &b64(&c.key)), None);
    assert_eq!(err.field, Some("crt"));
    assert!(
        matches!(err.problem, TalosconfigProblem::NotPem(_)),
        "{err}"
    );
    let err = refuse(
        &talosconfig(&b64("hello"), &b64(&c.crt), &b64(&c.key)),
        None,
    );
    assert_eq!(
        err.to_string(),
        "talosconfig /x/y: context \"prod\": field \"ca\": holds no PEM CERTIFICATE block"
    );
    let err = refuse(&talosconfig(&b64(&c.ca), &b64(&c.crt), &b64(&c.crt)), None);
    assert_eq!(err.field, Some("key"));
    assert!(
        matches!(err.problem, TalosconfigProblem::NoPrivateKey),
        "{err}"
    );
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let c = credentials();
    let other = credentials();
    let err = refuse(
        &talosconfig(&b64(&c.ca), &b64(&c.crt), &b64(&other.key)),
        None,
    );
    assert_eq!(
        err.to_string(),
        "talosconfig /x/y: context \"prod\": field \"key\": the key does not belong to the certificate in field \"crt\""
    );
}

#[test]
fn missing_fields_and_endpoints() {
    let c = credentials();
    let text = talosconfig(&b64(&c.ca), &b64(&c.crt), &b64(&c.key))
        .replace(&format!("        crt: {}\n", b64(&c.crt)), "");
    let err = refuse(&text, None);
    assert_eq!(
        err.to_string(),
        "talosconfig /x/y: context \"prod\": field \"crt\": missing"
    );
    let text = "context: a\ncontexts:\n  a:\n    ca: x\n";
    assert_eq!(refuse(text, None).field, Some("endpoints"));
    let text = "context: a\ncontexts:\n  a:\n    endpoints: [\"ftp://x\"]\n";
    let err = refuse(text, None);
    assert!(
        matches!(err.problem, TalosconfigProblem::BadEndpoint(_)),
        "{err}"
    );
}

#[test]
fn endpoint_forms() {
    let p = |s: &str| TalosEndpoint::parse(s).expect("parses");
    assert_eq!(p("10.0.0.1").uri(), "https://10.0.0.1:50000");
    assert_eq!(p("cp1.example:6000").uri(), "https://cp1.example:6000");
    assert_eq!(p("https://omni.example").uri(), "https://omni.example:443");
    assert_eq!(p("[fd00::1]:50001").uri(), "https://[fd00::1]:50001");
    assert_eq!(p("fd00::1").host, "fd00::1");
    assert_eq!(p("fd00::1").to_string(), "[fd00::1]:50000");
    assert!(TalosEndpoint::parse("10.0.0.1:http").is_err());
    assert!(TalosEndpoint::parse("").is_err());
}
