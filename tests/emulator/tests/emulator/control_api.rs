//! The loopback control interface drives the same faults as the library API.

use std::net::Ipv4Addr;

use talos_emulator::control::CONTROL_ADDR_FILE;

use crate::transport_support::{TestCluster, http};

#[tokio::test]
async fn control_interface_stops_and_starts_a_node_api() {
    let base = Ipv4Addr::new(127, 0, 2, 50);
    let cluster = TestCluster::start(1, base, 0).await;
    let emulator = &cluster.emulator;
    let addr = emulator.control_addr();
    assert!(addr.ip().is_loopback());
    let recorded = std::fs::read_to_string(emulator.state_dir().join(CONTROL_ADDR_FILE))
        .expect("control.addr");
    assert_eq!(recorded.trim(), addr.to_string());
    assert!(emulator.state_dir().join("ready").exists());
    for name in [
        "talosconfig",
        "talosconfig.admin",
        "talosconfig.operator",
        "talosconfig.reader",
        "talosconfig.etcd-backup",
    ] {
        assert!(emulator.state_dir().join(name).exists(), "{name} written");
    }

    let (code, body) = http(addr, "GET", "/cluster", None).await;
    assert_eq!(code, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(view["nodes"][0]["ip"], "127.0.2.50");
    assert_eq!(view["nodes"][0]["api_up"], true);

    let (code, body) = http(addr, "POST", "/nodes/127.0.2.50/api/stop", None).await;
    assert_eq!(code, 200, "{body}");
    let refused = tokio::net::TcpStream::connect(emulator.api_addr(base))
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let (_, body) = http(addr, "GET", "/cluster", None).await;
    let view: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(view["nodes"][0]["api_up"], false);

    let (code, _) = http(addr, "POST", "/nodes/127.0.2.50/api/start", None).await;
    assert_eq!(code, 200);
    tokio::net::TcpStream::connect(emulator.api_addr(base))
        .await
        .expect("accepting again");

    let (code, _) = http(
        addr,
        "POST",
        "/nodes/127.0.2.50/slow",
        Some(r#"{"delay_ms":5}"#),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = http(addr, "POST", "/nodes/127.0.2.99/api/stop", None).await;
    assert_eq!(code, 404, "unknown node");
    let (code, body) = http(addr, "POST", "/nodes/not-an-ip/api/stop", None).await;
    assert_eq!(code, 400);
    assert!(body.contains("not-an-ip"), "{body}");
    cluster.stop().await;
}

#[tokio::test]
async fn control_interface_fills_etcd_until_it_raises_nospace() {
    let base = Ipv4Addr::new(127, 0, 3, 50);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = talos_emulator::EmulatorOptions::new(1, base, dir.path());
    options.etcd_quota_bytes = Some(8 << 20);
    let emulator = talos_emulator::Emulator::start(options)
        .await
        .expect("emulator starts");
    let addr = emulator.control_addr();

    let (code, body) = http(addr, "POST", "/nodes/127.0.3.50/etcd/nospace", None).await;
    assert_eq!(code, 200, "{body}");
    let mut admin = emulator
        .client(talos_emulator::Role::Admin, base)
        .await
        .expect("admin client");
    let alarms = admin
        .etcd_alarm_list(())
        .await
        .expect("alarm list")
        .into_inner();
    let raised: Vec<i32> = alarms
        .messages
        .iter()
        .flat_map(|m| m.member_alarms.iter().map(|a| a.alarm))
        .collect();
    assert_eq!(raised, vec![1], "etcd itself raised NOSPACE: {alarms:?}");
    let (code, _) = http(addr, "POST", "/nodes/127.0.3.99/etcd/nospace", None).await;
    assert_eq!(code, 404, "unknown node");
    emulator.shutdown().await;
}
