//! Snapshot transfers in flight, as every open page sees them: a take from a node the emulator
//! slows down is listed at once with 0 bytes, then with its bytes growing, then with every byte
//! while it is checked, then gone; another user watching sees the same. Uses 127.0.56.x.

use std::net::Ipv4Addr;
use std::time::Duration;

use talos_dr_shared::Role;
use talos_dr_shared::snapshots::{
    SnapshotEntryKind, SnapshotResponse, SnapshotTransfers, TransferPhase,
};

use super::{CLUSTER, start};
use crate::helpers::{SseStream, TEST_PASSWORD};

/// Long enough for the stream to report the waiting transfer, short enough for the health
/// poller's 2 s call timeout.
const SLOW: Duration = Duration::from_millis(1500);

/// Large enough that the transfer outlasts a few progress intervals (Talos sends 1 KiB messages).
const FILL_MIB: usize = 48;

/// Writes `mib` one-MiB values through `node`'s etcd (values go through stdin: too long for an
/// argument), so its database and any snapshot of it are at least that large.
fn fill(node: Ipv4Addr, mib: usize) {
    use std::io::Write;
    let endpoints = format!("http://{node}:2379");
    let value = vec![b'x'; 1024 * 1024];
    for i in 0..mib {
        let mut child = std::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoints, "--command-timeout=10s", "put"])
            .arg(format!("/registry/configmaps/bulk/fill-{i}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("etcdctl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&value)
            .expect("value written");
        assert!(child.wait().expect("etcdctl ends").success(), "put {i}");
    }
}

/// The node's etcd database size in the console's latest health poll.
async fn polled_db_size(console: &super::Console, node: Ipv4Addr) -> u64 {
    let body: serde_json::Value = console
        .app
        .get(&format!("/api/clusters/{CLUSTER}/health"))
        .await
        .json()
        .await
        .expect("health json");
    body["health"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node"] == node.to_string())
        .and_then(|n| n["etcd_status"]["db_size"].as_u64())
        .unwrap_or(0)
}

async fn next_transfers(stream: &mut SseStream) -> SnapshotTransfers {
    let event = stream.next_named("transfers").await;
    serde_json::from_str(&event.data).expect("data is SnapshotTransfers")
}

/// Every event until the stream reports `finished` transfers done and none in flight.
async fn until_finished(stream: &mut SseStream, finished: u64) -> Vec<SnapshotTransfers> {
    let mut seen = Vec::new();
    loop {
        let event = next_transfers(stream).await;
        let done = event.finished == finished && event.in_flight.is_empty();
        seen.push(event);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_is_streamed_with_its_growing_bytes_to_everyone_watching() {
    let console = start(Ipv4Addr::new(127, 0, 56, 2)).await;
    let path = format!("/api/clusters/{CLUSTER}/snapshots/transfers/stream");
    let mut mine = console.app.open_stream(&path).await;
    console.app.add_user("watcher", &[Role::Viewer]).await;
    let watcher = console.app.sign_in("watcher", TEST_PASSWORD).await;
    let mut theirs = console.app.open_stream_as(&watcher, &path).await;

    // At connect: nothing in flight, nothing finished.
    for stream in [&mut mine, &mut theirs] {
        let first = next_transfers(stream).await;
        assert_eq!(first.cluster, CLUSTER);
        assert!(first.in_flight.is_empty(), "{first:?}");
        assert_eq!(first.finished, 0);
    }

    let node = console.node(1);
    fill(node, FILL_MIB);
    let filled = (FILL_MIB as u64) << 20;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while polled_db_size(&console, node).await < filled {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the health poll never saw the larger database"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    console.emulator.slow(node, SLOW).expect("slow fault");
    let take = console.take(serde_json::json!({"node": node.to_string()}));
    let (response, seen, seen_by_watcher) = tokio::join!(
        take,
        until_finished(&mut mine, 1),
        until_finished(&mut theirs, 1)
    );
    console
        .emulator
        .slow(node, Duration::ZERO)
        .expect("slow fault off");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let entry = response
        .json::<SnapshotResponse>()
        .await
        .expect("snapshot")
        .snapshot;
    let size = entry.size.expect("a stored size");

    let reports: Vec<_> = seen.iter().flat_map(|e| e.in_flight.clone()).collect();
    assert!(!reports.is_empty(), "the take was reported in flight");
    for report in &reports {
        assert_eq!(report.id, entry.id, "the transfer becomes the entry");
        assert_eq!(report.kind, SnapshotEntryKind::Snapshot);
        assert_eq!(report.node.as_deref(), Some(node.to_string().as_str()));
        assert_eq!(report.started_by, "tester");
        let expected = report
            .expected_bytes
            .expect("the node's database size is known");
        assert!(
            expected / 2 < size && size < expected * 2,
            "expected {expected} bytes from the health poll, got {size}"
        );
    }
    // Waiting for the slow node: listed with nothing in yet.
    assert_eq!(reports[0].received_bytes, 0, "{reports:?}");
    assert_eq!(reports[0].phase, TransferPhase::Receiving);
    // The bytes only grow, are seen part-way, and end at the stored size while the file is
    // checked.
    let bytes: Vec<u64> = reports.iter().map(|r| r.received_bytes).collect();
    assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "{bytes:?}");
    assert!(
        bytes.iter().any(|b| 0 < *b && *b < size),
        "a report while the bytes arrived: {bytes:?} of {size}"
    );
    let last = reports.last().expect("a last report");
    assert_eq!(last.received_bytes, size, "{bytes:?}");
    assert_eq!(last.phase, TransferPhase::Verifying);

    // The other user saw the same transfer, and its end.
    let theirs: Vec<_> = seen_by_watcher
        .iter()
        .flat_map(|e| e.in_flight.clone())
        .collect();
    assert!(
        theirs
            .iter()
            .any(|r| r.id == entry.id && r.received_bytes == 0)
    );
    assert!(
        theirs
            .iter()
            .any(|r| r.id == entry.id && r.received_bytes == size)
    );
    assert_eq!(seen_by_watcher.last().map(|e| e.finished), Some(1));
}
