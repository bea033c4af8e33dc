//! mTLS, roles and node routing of the emulated apid endpoints.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use talos_api::cosi::resource::{CreateRequest, GetRequest};
use talos_api::machine::{
    BootstrapRequest, DmesgRequest, EtcdSnapshotRequest, GenerateClientConfigurationRequest,
    ResetRequest,
};
use talos_api::with_node;
use talos_emulator::talosconfig::TalosConfig;
use talos_emulator::{CertAndKey, ClusterPki, Role, client};
use tonic::Code;

use crate::transport_support::TestCluster;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 2, last)
}

/// Version over a fresh connection; a refused handshake and a failed call both count as errors.
async fn version_with(
    ca_pem: &str,
    identity: Option<&CertAndKey>,
    node: Ipv4Addr,
    port: u16,
) -> Result<(), String> {
    let channel = client::connect(ca_pem, identity, node, port)
        .await
        .map_err(|e| e.to_string())?;
    client::machine_client(channel)
        .version(())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn untrusted_clients_are_refused() {
    let cluster = TestCluster::start(1, ip(10), 0).await;
    let emulator = &cluster.emulator;
    let node = ip(10);
    let port = emulator.api_port();

    // Control: a proper identity works, so the failures below are about the certificate.
    let mut admin = emulator
        .client(Role::Admin, node)
        .await
        .expect("admin client");
    admin.version(()).await.expect("admin may call Version");

    // No client certificate at all.
    let anonymous = version_with(&emulator.ca_pem(), None, node, port).await;
    assert!(
        anonymous.is_err(),
        "a client without certificate must be refused"
    );

    // A certificate with the right role from a different CA.
    let foreign = ClusterPki::generate().expect("foreign CA");
    let stranger = foreign
        .issue_client(&["os:admin"])
        .expect("foreign admin cert");
    let foreign_call = version_with(&emulator.ca_pem(), Some(&stranger), node, port).await;
    assert!(
        foreign_call.is_err(),
        "a certificate from another CA must be refused"
    );

    // A server certificate of this CA is no client identity.
    let server_cert = emulator
        .pki()
        .issue_server(Ipv4Addr::new(127, 0, 2, 99), "intruder")
        .expect("cert");
    let wrong_usage = version_with(&emulator.ca_pem(), Some(&server_cert), node, port).await;
    assert!(
        wrong_usage.is_err(),
        "a server certificate must not work as a client identity"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn written_and_generated_talosconfigs_work() {
    let cluster = TestCluster::start(1, ip(60), 0).await;
    let emulator = &cluster.emulator;
    let node = ip(60);
    let port = emulator.api_port();

    // The etcd-backup talosconfig on disk is usable as talosctl would use it.
    let text =
        std::fs::read_to_string(emulator.talosconfig_path(Role::EtcdBackup)).expect("talosconfig");
    let config: TalosConfig = serde_yaml::from_str(&text).expect("talosconfig yaml");
    assert_eq!(config.context, "emulated-etcd-backup");
    let context = &config.contexts["emulated-etcd-backup"];
    assert_eq!(context.endpoints, [node.to_string()]);
    let decode =
        |field: &str| String::from_utf8(STANDARD.decode(field).expect("base64")).expect("utf-8");
    let identity = CertAndKey {
        cert_pem: decode(&context.crt),
        key_pem: decode(&context.key),
    };
    assert!(
        identity
            .key_pem
            .starts_with("-----BEGIN ED25519 PRIVATE KEY-----")
    );
    let channel = client::connect(&decode(&context.ca), Some(&identity), node, port)
        .await
        .expect("connect");
    let mut backup = client::machine_client(channel);
    backup
        .etcd_status(())
        .await
        .expect("etcd:backup reads etcd status");

    // GenerateClientConfiguration mints a working least-privilege identity.
    let mut admin = emulator
        .client(Role::Admin, node)
        .await
        .expect("admin client");
    let generated = admin
        .generate_client_configuration(GenerateClientConfigurationRequest {
            roles: vec!["os:reader".into()],
            crt_ttl: None,
        })
        .await
        .expect("generate")
        .into_inner()
        .messages
        .remove(0);
    let minted = CertAndKey {
        cert_pem: String::from_utf8(generated.crt).expect("utf-8"),
        key_pem: String::from_utf8(generated.key).expect("utf-8"),
    };
    let ca = String::from_utf8(generated.ca).expect("utf-8");
    let channel = client::connect(&ca, Some(&minted), node, port)
        .await
        .expect("connect");
    let mut reader = client::machine_client(channel);
    reader
        .version(())
        .await
        .expect("minted reader reads Version");
    let denied = reader
        .etcd_snapshot(EtcdSnapshotRequest {})
        .await
        .expect_err("reader");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let unknown = admin
        .generate_client_configuration(GenerateClientConfigurationRequest {
            roles: vec!["os:superuser".into()],
            crt_ttl: None,
        })
        .await
        .expect_err("unknown role");
    assert_eq!(unknown.code(), Code::InvalidArgument);
    cluster.stop().await;
}

#[tokio::test]
async fn roles_gate_destructive_and_backup_calls() {
    let cluster = TestCluster::start(1, ip(20), 50).await;
    let emulator = &cluster.emulator;
    let node = ip(20);

    let mut reader = emulator
        .client(Role::Reader, node)
        .await
        .expect("reader client");
    reader.version(()).await.expect("reader may call Version");
    let denied = |result: Result<(), tonic::Status>, what: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
        assert_eq!(status.message(), "not authorized", "{what}");
    };
    denied(
        reader
            .etcd_snapshot(EtcdSnapshotRequest {})
            .await
            .map(|_| ()),
        "reader EtcdSnapshot",
    );
    denied(
        reader.reset(ResetRequest::default()).await.map(|_| ()),
        "reader Reset",
    );
    denied(
        reader
            .bootstrap(BootstrapRequest::default())
            .await
            .map(|_| ()),
        "reader Bootstrap",
    );

    let mut backup = emulator
        .client(Role::EtcdBackup, node)
        .await
        .expect("backup client");
    denied(backup.version(()).await.map(|_| ()), "etcd:backup Version");
    let mut stream = backup
        .etcd_snapshot(EtcdSnapshotRequest {})
        .await
        .expect("etcd:backup may take a snapshot")
        .into_inner();
    let mut size = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("snapshot chunk");
        assert!(chunk.bytes.len() <= 1024, "Talos streams 1 KiB chunks");
        size += chunk.bytes.len();
    }
    // A snapshot carries a sha256 trailer after bbolt pages: size ≡ 32 mod 512.
    assert!(size > 4096, "snapshot of a seeded etcd is not tiny: {size}");
    assert_eq!(size % 512, 32, "snapshot ends in the sha256 trailer");

    // COSI: MachineConfig is sensitive, writes are never allowed.
    let mut reader_state = emulator
        .state_client(Role::Reader, node)
        .await
        .expect("state client");
    let machine_config = GetRequest {
        namespace: "config".into(),
        r#type: "MachineConfigs.config.talos.dev".into(),
        id: "v1alpha1".into(),
        options: None,
    };
    denied(
        reader_state.get(machine_config.clone()).await.map(|_| ()),
        "reader MachineConfig",
    );
    let mut admin_state = emulator
        .state_client(Role::Admin, node)
        .await
        .expect("state client");
    admin_state
        .get(machine_config)
        .await
        .expect("admin reads MachineConfig");
    let write = admin_state
        .create(CreateRequest::default())
        .await
        .expect_err("writes are refused");
    assert_eq!(write.code(), Code::PermissionDenied);
    assert_eq!(write.message(), "write access is not allowed");
    cluster.stop().await;
}

#[tokio::test]
async fn node_metadata_routes_and_stopped_api_refuses() {
    let cluster = TestCluster::start(2, ip(30), 0).await;
    let emulator = &cluster.emulator;
    let (first, second) = (ip(30), ip(31));

    let member_id = |reply: talos_api::machine::EtcdStatusResponse| {
        reply.messages[0]
            .member_status
            .as_ref()
            .expect("member status")
            .member_id
    };
    let mut via_first = emulator.client(Role::Admin, first).await.expect("client");
    let local = member_id(
        via_first
            .etcd_status(())
            .await
            .expect("local status")
            .into_inner(),
    );
    let routed = member_id(
        via_first
            .etcd_status(with_node((), &second.to_string()).expect("node"))
            .await
            .expect("routed status")
            .into_inner(),
    );
    let mut via_second = emulator.client(Role::Admin, second).await.expect("client");
    let direct = member_id(
        via_second
            .etcd_status(())
            .await
            .expect("direct status")
            .into_inner(),
    );
    assert_ne!(local, routed, "node metadata reaches the other member");
    assert_eq!(
        routed, direct,
        "the routed call is answered by the second node"
    );

    // Routing by hostname works like by IP.
    let by_name = member_id(
        via_first
            .etcd_status(with_node((), &emulator.nodes()[1].hostname()).expect("node"))
            .await
            .expect("status by hostname")
            .into_inner(),
    );
    assert_eq!(by_name, direct);

    // node metadata must be single-valued.
    let mut twice = tonic::Request::new(());
    twice
        .metadata_mut()
        .append("node", first.to_string().parse().expect("ascii"));
    twice
        .metadata_mut()
        .append("node", second.to_string().parse().expect("ascii"));
    let status = via_first.version(twice).await.expect_err("two node values");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "node metadata must be single-valued");

    // A followed stream proxied to the second node breaks when its API goes away.
    let mut follow = via_first
        .dmesg(
            with_node(
                DmesgRequest {
                    follow: true,
                    tail: false,
                },
                &second.to_string(),
            )
            .expect("node"),
        )
        .await
        .expect("dmesg follow")
        .into_inner();
    follow
        .next()
        .await
        .expect("kernel log has records")
        .expect("first record");

    // Stop the second node's API: connections are refused, the first node is fine.
    emulator.stop_api(second).await.expect("stop api");
    let broken = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match follow.next().await {
                Some(Ok(_)) => continue,
                Some(Err(status)) => break Some(status),
                None => break None,
            }
        }
    })
    .await
    .expect("the proxied stream ends promptly")
    .expect("it ends with an error, not a clean end");
    assert_eq!(broken.code(), Code::Unavailable);
    let refused = tokio::net::TcpStream::connect(emulator.api_addr(second))
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    via_first
        .version(())
        .await
        .expect("first node still answers");
    let proxied = via_first
        .version(with_node((), &second.to_string()).expect("node"))
        .await
        .expect_err("backend down");
    assert_eq!(proxied.code(), Code::Unavailable);
    assert!(
        via_second.version(()).await.is_err(),
        "the old connection is reset"
    );

    emulator.start_api(second).await.expect("start api");
    let mut again = emulator
        .client(Role::Admin, second)
        .await
        .expect("reconnect");
    again.version(()).await.expect("second node answers again");
    cluster.stop().await;
}

#[tokio::test]
async fn slow_node_delays_responses() {
    let cluster = TestCluster::start(1, ip(40), 0).await;
    let emulator = &cluster.emulator;
    let node = ip(40);
    let mut admin = emulator.client(Role::Admin, node).await.expect("client");
    admin.version(()).await.expect("warm up");
    emulator
        .slow(node, Duration::from_millis(400))
        .expect("slow");
    let started = Instant::now();
    admin.version(()).await.expect("slow version");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "took {:?}",
        started.elapsed()
    );
    emulator.slow(node, Duration::ZERO).expect("fast again");
    let started = Instant::now();
    admin.version(()).await.expect("fast version");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "took {:?}",
        started.elapsed()
    );
    cluster.stop().await;
}
