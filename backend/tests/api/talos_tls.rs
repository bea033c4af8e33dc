use std::path::Path;
use std::time::Duration;

use talos_dr::config::{ClusterConfig, Config};
use talos_dr::talos::{TalosApi, TalosClient, TalosError, talosconfig};
use talos_dr_shared::{MachineType, VerdictLevel, format_member_id};

use crate::helpers::{console_config, spawn_app_with};
use crate::pki::TestPki;
use crate::tls_node::{self, MEMBER_ID};

const TIMEOUT: Duration = Duration::from_secs(5);

fn client_for(text: &str) -> TalosClient {
    let ctx = talosconfig::parse(Path::new("test-talosconfig"), text, None)
        .expect("talosconfig accepted");
    TalosClient::new(&ctx, TIMEOUT).expect("client set up")
}

/// A port on `ip` that nothing listens on.
async fn dead_port(ip: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn the_client_speaks_mtls_and_sends_the_node_metadata() {
    let pki = TestPki::new();
    let node = tls_node::start(&pki, "127.0.0.1").await;
    let client = client_for(&pki.talosconfig("prod", &[node.address.to_string()], &[]));

    let version = client.version("127.0.0.1").await;
    let members = client.etcd_members("10.9.9.9").await;
    let machine_type = client.machine_type("127.0.0.1").await;
    let status = client
        .etcd_status("127.0.0.1")
        .await
        .expect("EtcdStatus answered");
    let service = client
        .etcd_service("127.0.0.1")
        .await
        .expect("ServiceList answered");

    assert_eq!(version, Ok("v1.11.5".to_string()));
    let members = members.expect("EtcdMemberList answered");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].id, format_member_id(MEMBER_ID));
    assert_eq!(machine_type, Ok(MachineType::Controlplane));
    assert_eq!(status.leader, format_member_id(MEMBER_ID));
    assert!(service.is_some());
    let calls = node.recorder.calls();
    let seen: Vec<(&str, Option<&str>)> = calls
        .iter()
        .map(|c| (c.method, c.node.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("Version", Some("127.0.0.1")),
            ("EtcdMemberList", Some("10.9.9.9")),
            ("Get", Some("127.0.0.1")),
            ("EtcdStatus", Some("127.0.0.1")),
            ("ServiceList", Some("127.0.0.1")),
        ]
    );
    assert!(
        calls.iter().all(|c| c.client_certs == 1),
        "every call came with the client certificate"
    );
}

#[tokio::test]
async fn a_dead_endpoint_does_not_hide_a_live_one() {
    let pki = TestPki::new();
    let live = tls_node::start(&pki, "127.0.0.1").await;
    let dead = format!("127.0.0.3:{}", dead_port("127.0.0.3").await);
    let client = client_for(&pki.talosconfig("prod", &[dead, live.address.to_string()], &[]));

    let on_dead = client.version("127.0.0.3").await;
    let on_live = client.version("127.0.0.1").await;
    let through_any = client.version("10.9.9.9").await;

    assert_eq!(
        on_dead,
        Err(TalosError::Unreachable("connection refused".into()))
    );
    assert_eq!(on_live, Ok("v1.11.5".to_string()));
    assert_eq!(
        through_any,
        Ok("v1.11.5".to_string()),
        "the next endpoint carries calls for other nodes"
    );
    let nodes: Vec<Option<String>> = live.recorder.calls().into_iter().map(|c| c.node).collect();
    assert_eq!(
        nodes,
        vec![Some("127.0.0.1".into()), Some("10.9.9.9".into())]
    );
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let cluster_pki = TestPki::new();
    let node = tls_node::start(&cluster_pki, "127.0.0.1").await;
    let client = client_for(&TestPki::new().talosconfig("prod", &[node.address.to_string()], &[]));

    let result = client.version("127.0.0.1").await;

    assert_eq!(
        result,
        Err(TalosError::Unreachable("TLS handshake failed".into()))
    );
    assert!(node.recorder.calls().is_empty());
}

#[tokio::test]
async fn the_console_polls_a_real_talos_api_from_a_talosconfig() {
    let pki = TestPki::new();
    let node = tls_node::start(&pki, "127.0.0.1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        pki.talosconfig(
            "lab",
            &[node.address.to_string()],
            &["127.0.0.1".to_string()],
        ),
    )
    .expect("write talosconfig");
    let mut config = console_config("lab", path);
    config.poll_interval = Duration::from_millis(100);
    config.call_timeout = TIMEOUT;
    let app = spawn_app_with(talos_dr::watch_clusters(&config).expect("console starts")).await;

    let health = app.wait_for_health("lab", |_| true).await;

    assert_eq!(
        health.verdict.level,
        VerdictLevel::Healthy,
        "{:?}",
        health.verdict
    );
    assert_eq!(health.nodes.len(), 1);
    let polled = &health.nodes[0];
    assert_eq!(polled.node, "127.0.0.1");
    assert!(polled.reachable);
    assert_eq!(polled.talos_version.as_deref(), Some("v1.11.5"));
    assert_eq!(polled.machine_type, Some(MachineType::Controlplane));
    assert!(polled.failures.is_empty(), "{:?}", polled.failures);
    assert_eq!(health.members[0].node.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn the_poller_reads_with_the_reader_talosconfig() {
    use talos_dr::config::RoleTalosconfig;
    use talos_dr::talos::credentials::TalosRole;
    let pki = TestPki::new();
    let node = tls_node::start(&pki, "127.0.0.1").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoints = [node.address.to_string()];
    let nodes = ["127.0.0.1".to_string()];
    // The cluster's own talosconfig trusts another CA: polling with it would fail the handshake.
    let fallback = dir.path().join("admin.talosconfig");
    std::fs::write(
        &fallback,
        TestPki::new().talosconfig("lab", &endpoints, &nodes),
    )
    .expect("write");
    let reader = dir.path().join("reader.talosconfig");
    std::fs::write(&reader, pki.talosconfig("lab", &endpoints, &nodes)).expect("write");
    let mut config = Config::with_clusters(vec![ClusterConfig {
        name: "lab".into(),
        talosconfig: fallback,
        context: None,
        nodes: None,
        talosconfigs: [(
            TalosRole::Reader,
            RoleTalosconfig {
                talosconfig: reader.clone(),
                context: None,
            },
        )]
        .into(),
    }]);
    config.poll_interval = Duration::from_millis(100);
    config.call_timeout = TIMEOUT;
    let clusters = talos_dr::watch_clusters(&config).expect("console starts");
    let credentials = &clusters[0].talos_credentials;
    assert_eq!(
        credentials
            .for_role(TalosRole::Reader)
            .expect("reader")
            .source,
        reader
    );
    assert!(
        credentials
            .for_role(TalosRole::Admin)
            .expect("fallback")
            .source
            .ends_with("admin.talosconfig")
    );
    let app = spawn_app_with(clusters).await;

    let health = app.wait_for_health("lab", |_| true).await;

    assert!(health.nodes[0].reachable, "{:?}", health.nodes[0].failures);
    assert_eq!(
        health.verdict.level,
        VerdictLevel::Healthy,
        "{:?}",
        health.verdict
    );
}
