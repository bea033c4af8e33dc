use std::net::Ipv4Addr;

use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

use super::*;

fn parse(pem: &str) -> Vec<u8> {
    let (_, block) = parse_x509_pem(pem.as_bytes()).expect("pem");
    block.contents
}

#[test]
fn client_cert_carries_roles_and_only_client_auth() {
    let pki = ClusterPki::generate().expect("ca");
    let pair = pki
        .issue_client(&["os:reader", "os:etcd:backup"])
        .expect("client");
    let der = parse(&pair.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
    assert_eq!(cert.version(), x509_parser::x509::X509Version::V3);
    let orgs: Vec<_> = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    assert_eq!(orgs, ["os:reader", "os:etcd:backup"]);
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.client_auth);
    assert!(!eku.server_auth && !eku.any && eku.other.is_empty());
    assert!(
        pair.key_pem
            .starts_with("-----BEGIN ED25519 PRIVATE KEY-----\n")
    );
    assert!(
        pair.key_pem_for_rustls()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
}

#[test]
fn server_cert_names_ip_loopback_and_hostname() {
    let pki = ClusterPki::generate().expect("ca");
    let pair = pki
        .issue_server(Ipv4Addr::new(127, 0, 2, 7), "cp-7")
        .expect("server");
    let der = parse(&pair.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
    let sans = cert
        .subject_alternative_name()
        .expect("san")
        .expect("present")
        .value;
    let names: Vec<String> = sans
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::IPAddress(bytes) => bytes
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join("."),
            GeneralName::DNSName(dns) => (*dns).to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["127.0.2.7", "127.0.0.1", "cp-7"]);
    let eku = cert
        .extended_key_usage()
        .expect("eku")
        .expect("present")
        .value;
    assert!(eku.server_auth && !eku.client_auth);
    assert_ne!(cert.issuer(), cert.subject(), "leaf is issued by the CA");
}

#[test]
fn too_many_roles_is_an_error() {
    let pki = ClusterPki::generate().expect("ca");
    assert!(matches!(
        pki.issue_client(&["os:admin", "os:reader", "os:operator"]),
        Err(PkiError::TooManyRoles(3))
    ));
}
