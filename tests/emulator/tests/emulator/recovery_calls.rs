//! Per-node counters of the state-changing recovery calls, and the hold fault, through the gRPC
//! API and the control interface. Uses 127.0.54.x and 127.0.55.x.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use talos_api::machine::machine_service_client::MachineServiceClient;
use talos_api::{common, machine};
use talos_emulator::{CallCounts, Emulator, RecoveryCall, Role};
use tonic::transport::Channel;

use crate::node_support::wait_until;
use crate::transport_support::{TestCluster, http};

fn reset(labels: &[&str]) -> machine::ResetRequest {
    machine::ResetRequest {
        graceful: false,
        reboot: true,
        system_partitions_to_wipe: labels
            .iter()
            .map(|l| machine::ResetPartitionSpec {
                label: l.to_string(),
                wipe: true,
            })
            .collect(),
        user_disks_to_wipe: Vec::new(),
        mode: machine::reset_request::WipeMode::All as i32,
    }
}

fn upload(bytes: Vec<u8>) -> impl futures::Stream<Item = common::Data> + Send + 'static {
    let chunks: Vec<common::Data> = bytes
        .chunks(4096)
        .map(|c| common::Data {
            metadata: None,
            bytes: c.to_vec(),
        })
        .collect();
    futures::stream::iter(chunks)
}

async fn client(emulator: &Emulator, role: Role, ip: Ipv4Addr) -> MachineServiceClient<Channel> {
    emulator.client(role, ip).await.expect("client connects")
}

fn boot_id(emulator: &Emulator, ip: Ipv4Addr) -> String {
    emulator.node(ip).expect("node").boot_id()
}

async fn cluster_view(emulator: &Emulator) -> serde_json::Value {
    let (code, body) = http(emulator.control_addr(), "GET", "/cluster", None).await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_tell_executed_from_refused_calls() {
    let ip = Ipv4Addr::new(127, 0, 54, 1);
    let cluster = TestCluster::start(1, ip, 0).await;
    let emulator = &cluster.emulator;
    let mut admin = client(emulator, Role::Admin, ip).await;
    let mut reader = client(emulator, Role::Reader, ip).await;
    assert_eq!(
        emulator.calls(ip).expect("known node"),
        CallCounts::default()
    );

    let unknown = admin
        .reset(reset(&["NOPE"]))
        .await
        .expect_err("unknown label");
    assert!(unknown.message().contains("NOPE"), "{unknown:?}");
    let denied = reader
        .reset(reset(&["EPHEMERAL"]))
        .await
        .expect_err("reader may not reset");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let exists = admin
        .bootstrap(machine::BootstrapRequest::default())
        .await
        .expect_err("etcd already has data");
    assert_eq!(exists.code(), tonic::Code::AlreadyExists);

    let config = std::fs::read(
        emulator
            .node(ip)
            .and_then(|n| n.host_path("/system/state/config.yaml"))
            .expect("config path"),
    )
    .expect("config");
    let apply = |dry_run| machine::ApplyConfigurationRequest {
        data: config.clone(),
        mode: machine::apply_configuration_request::Mode::Staged as i32,
        dry_run,
        try_mode_timeout: None,
    };
    admin
        .apply_configuration(apply(true))
        .await
        .expect("dry run");
    assert_eq!(
        emulator.calls(ip).expect("counts").total(),
        0,
        "a dry run changes nothing"
    );
    admin
        .apply_configuration(apply(false))
        .await
        .expect("staged");
    admin
        .etcd_recover(upload(vec![7u8; 10_000]))
        .await
        .expect("upload stored");
    let stored = emulator
        .node(ip)
        .and_then(|n| n.host_path("/var/lib/etcd.snapshot"))
        .expect("snapshot path");
    assert_eq!(std::fs::metadata(&stored).expect("stored").len(), 10_000);

    let before = boot_id(emulator, ip);
    admin
        .reboot(machine::RebootRequest::default())
        .await
        .expect("reboot");
    wait_until("a new boot", Duration::from_secs(15), || async {
        boot_id(emulator, ip) != before
    })
    .await;

    let executed = CallCounts {
        etcd_recover: 1,
        apply_configuration: 1,
        reboot: 1,
        ..CallCounts::default()
    };
    let refused = CallCounts {
        reset: 2,
        bootstrap: 1,
        ..CallCounts::default()
    };
    assert_eq!(
        emulator.calls(ip).expect("counts"),
        executed,
        "survive the reboot"
    );
    assert_eq!(emulator.refused_calls(ip).expect("counts"), refused);
    let view = cluster_view(emulator).await;
    assert_eq!(
        view["nodes"][0]["calls"],
        serde_json::json!({"reset": 0, "bootstrap": 0, "etcd_recover": 1, "apply_configuration": 1, "reboot": 1})
    );
    assert_eq!(view["nodes"][0]["refused_calls"]["reset"], 2);
    assert_eq!(view["nodes"][0]["refused_calls"]["bootstrap"], 1);
    assert_eq!(view["nodes"][0]["calls_in_hold"]["reset"], 0);
    assert!(emulator.calls(Ipv4Addr::new(127, 0, 54, 99)).is_err());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_call_waits_then_runs_once() {
    let ip = Ipv4Addr::new(127, 0, 54, 10);
    let cluster = TestCluster::start(1, ip, 0).await;
    let emulator = &cluster.emulator;
    let control = emulator.control_addr();

    let (code, body) = http(
        control,
        "POST",
        "/nodes/127.0.54.10/hold",
        Some(r#"{"rpc":"reboot","ms":1500}"#),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let view = cluster_view(emulator).await;
    assert_eq!(view["nodes"][0]["armed_holds_ms"]["reboot"], 1500);
    let (code, body) = http(
        control,
        "POST",
        "/nodes/127.0.54.10/hold",
        Some(r#"{"rpc":"shutdown","ms":10}"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("field rpc") && body.contains("shutdown"),
        "{body}"
    );
    let (code, _) = http(
        control,
        "POST",
        "/nodes/127.0.54.99/hold",
        Some(r#"{"rpc":"reset","ms":10}"#),
    )
    .await;
    assert_eq!(code, 404);

    let before = boot_id(emulator, ip);
    let mut admin = client(emulator, Role::Admin, ip).await;
    let started = Instant::now();
    let call = tokio::spawn(async move { admin.reboot(machine::RebootRequest::default()).await });
    wait_until("the reboot to be held", Duration::from_secs(5), || async {
        emulator.calls_in_hold(ip).ok().map(|c| c.reboot) == Some(1)
    })
    .await;
    assert_eq!(
        emulator.calls(ip).expect("counts").reboot,
        0,
        "not acted on yet"
    );
    assert_eq!(boot_id(emulator, ip), before);
    call.await
        .expect("task")
        .expect("reboot accepted after the hold");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(emulator.calls(ip).expect("counts").reboot, 1);
    assert_eq!(
        cluster_view(emulator).await["nodes"][0]["armed_holds_ms"]["reboot"],
        0
    );

    // The hold was for one call only.
    let mut admin = client(emulator, Role::Admin, ip).await;
    let started = Instant::now();
    admin
        .reboot(machine::RebootRequest::default())
        .await
        .expect("second reboot");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(emulator.calls(ip).expect("counts").reboot, 2);
    cluster.stop().await;
}

/// What the recovery fault tests rely on: a caller killed while its call is held leaves the
/// node untouched and every counter where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_during_its_hold_is_never_executed() {
    let ip = Ipv4Addr::new(127, 0, 55, 1);
    let cluster = TestCluster::start(1, ip, 0).await;
    let emulator = &cluster.emulator;
    let hold = Duration::from_millis(2500);
    let before = boot_id(emulator, ip);
    let snapshot_file = emulator
        .node(ip)
        .and_then(|n| n.host_path("/var/lib/etcd.snapshot"))
        .expect("snapshot path");

    for call in [RecoveryCall::Reset, RecoveryCall::EtcdRecover] {
        emulator.hold(ip, call, hold).expect("hold armed");
        let armed_at = Instant::now();
        // A caller of its own: its connection goes away with it, as with a killed process.
        let mut caller = client(emulator, Role::Admin, ip).await;
        let in_flight = tokio::spawn(async move {
            match call {
                RecoveryCall::Reset => caller.reset(reset(&["EPHEMERAL"])).await.map(|_| ()),
                _ => caller
                    .etcd_recover(upload(vec![1u8; 64 * 1024]))
                    .await
                    .map(|_| ()),
            }
        });
        wait_until("the call to be held", Duration::from_secs(5), || async {
            emulator.calls_in_hold(ip).ok().map(|c| c.get(call)) == Some(1)
        })
        .await;
        in_flight.abort();
        wait_until(
            "the node to drop the call",
            Duration::from_secs(2),
            || async { emulator.calls_in_hold(ip).ok().map(|c| c.get(call)) == Some(0) },
        )
        .await;
        // Past the end of the hold: a call still alive would have acted by now.
        tokio::time::sleep((hold + Duration::from_millis(500)).saturating_sub(armed_at.elapsed()))
            .await;
        assert_eq!(
            emulator.calls(ip).expect("counts"),
            CallCounts::default(),
            "{call}"
        );
        assert_eq!(
            emulator.refused_calls(ip).expect("counts"),
            CallCounts::default(),
            "{call}"
        );
        assert_eq!(
            boot_id(emulator, ip),
            before,
            "{call}: the node did not reset"
        );
        assert!(!snapshot_file.exists(), "{call}: no upload left behind");
        assert_eq!(
            emulator.node(ip).and_then(|n| n.etcd_service_state()),
            Some("Running")
        );
    }
    let view = cluster_view(emulator).await;
    assert_eq!(
        view["nodes"][0]["armed_holds_ms"]["reset"], 0,
        "the hold was used up"
    );

    // The next call is not held and runs.
    let mut admin = client(emulator, Role::Admin, ip).await;
    admin.reset(reset(&["EPHEMERAL"])).await.expect("reset");
    assert_eq!(emulator.calls(ip).expect("counts").reset, 1);
    wait_until("a new boot", Duration::from_secs(15), || async {
        boot_id(emulator, ip) != before
    })
    .await;
    cluster.stop().await;
}

/// A connection that vanishes without a word (the caller's process was SIGKILLed: the kernel
/// closes its sockets, no gRPC cancel is sent) drops the held call too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_connection_drops_the_held_call() {
    let ip = Ipv4Addr::new(127, 0, 55, 10);
    let cluster = TestCluster::start(1, ip, 0).await;
    let emulator = &cluster.emulator;
    let before = boot_id(emulator, ip);
    let hold = Duration::from_millis(2500);
    emulator
        .hold(ip, RecoveryCall::Bootstrap, hold)
        .expect("hold armed");
    let armed_at = Instant::now();

    // The caller reaches the node through a relay whose sockets are closed at once when it is
    // aborted, like a killed process's. The node's certificate names 127.0.0.1 too.
    let relay = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("relay binds");
    let relay_port = relay.local_addr().expect("relay address").port();
    let target = emulator.api_addr(ip);
    let relay = tokio::spawn(async move {
        let (mut caller, _) = relay.accept().await.expect("caller connects");
        let mut node = tokio::net::TcpStream::connect(target)
            .await
            .expect("node accepts");
        let _ = tokio::io::copy_bidirectional(&mut caller, &mut node).await;
    });
    let channel = talos_emulator::client::connect(
        &emulator.ca_pem(),
        Some(emulator.identity(Role::Admin)),
        Ipv4Addr::LOCALHOST,
        relay_port,
    )
    .await
    .expect("connects through the relay");
    let mut caller = talos_emulator::client::machine_client(channel);
    let in_flight = tokio::spawn(async move {
        caller
            .bootstrap(machine::BootstrapRequest::default())
            .await
            .map(|_| ())
    });
    wait_until("the call to be held", Duration::from_secs(5), || async {
        emulator.calls_in_hold(ip).ok().map(|c| c.bootstrap) == Some(1)
    })
    .await;
    relay.abort();
    wait_until(
        "the node to drop the call",
        Duration::from_secs(2),
        || async { emulator.calls_in_hold(ip).ok().map(|c| c.bootstrap) == Some(0) },
    )
    .await;
    let outcome = in_flight.await.expect("caller task");
    assert!(outcome.is_err(), "the caller saw its connection break");
    tokio::time::sleep((hold + Duration::from_millis(500)).saturating_sub(armed_at.elapsed()))
        .await;
    assert_eq!(emulator.calls(ip).expect("counts"), CallCounts::default());
    assert_eq!(
        emulator.refused_calls(ip).expect("counts"),
        CallCounts::default()
    );
    assert_eq!(boot_id(emulator, ip), before);
    assert_eq!(
        emulator.node(ip).and_then(|n| n.etcd_service_state()),
        Some("Running"),
        "etcd was not stopped for a bootstrap"
    );
    cluster.stop().await;
}
