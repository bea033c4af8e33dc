//! Snapshot transfers on every replica: an upload streamed slowly through replica A shows with
//! its growing bytes in the transfers stream of replica B, and leaves it when it ends; the
//! transfers of a replica that stops (its background work ends with its server) leave B's stream
//! once the replica timeout has passed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use talos_dr::recovery::ShiftedClock;
use talos_dr::storage::replicas::{HEARTBEAT, REPLICA_TIMEOUT};
use talos_dr_shared::snapshots::{SnapshotEntryKind, SnapshotTransfers};
use tokio::sync::mpsc;

use super::{fake_replica, two_storages};
use crate::fake::FakeTalos;
use crate::helpers::{SseStream, TestApp};
use crate::recovery::PATIENCE;

const STREAM: &str = "/api/clusters/prod/snapshots/transfers/stream";
const CHUNK: usize = 64 * 1024;

type Chunks = mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

/// The next transfers event on `stream` that `accept` takes, within `within`.
async fn until(
    stream: &mut SseStream,
    within: Duration,
    what: &str,
    accept: impl Fn(&SnapshotTransfers) -> bool,
) -> SnapshotTransfers {
    tokio::time::timeout(within, async {
        loop {
            let event = stream.next_named_within("transfers", within).await;
            let view: SnapshotTransfers =
                serde_json::from_str(&event.data).expect("data is SnapshotTransfers");
            if accept(&view) {
                return view;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("B's transfers stream never showed {what}"))
}

/// An upload through `app` whose body the test hands over chunk by chunk.
fn slow_upload(app: &TestApp) -> (Chunks, tokio::task::JoinHandle<reqwest::Response>) {
    let (chunks, rx) = mpsc::channel(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = app
        .tester()
        .send(Method::POST, "/api/clusters/prod/snapshots/upload")
        .header("Content-Type", "application/octet-stream")
        .body(body);
    let response = tokio::spawn(async move { request.send().await.expect("upload sent") });
    (chunks, response)
}

/// Two consoles on the fake cluster `prod`, sharing one PostgreSQL database.
pub(super) async fn two_fake_replicas() -> (TestApp, TestApp) {
    let ((storage_a, dir_a), (storage_b, dir_b)) = two_storages().await;
    let fake = FakeTalos::healthy_cluster(3);
    let clock = Arc::new(ShiftedClock::default());
    let a = fake_replica(storage_a, dir_a, &fake, &clock).await;
    let b = fake_replica(storage_b, dir_b, &fake, &clock).await;
    (a, b)
}

fn bytes_in(view: &SnapshotTransfers) -> u64 {
    view.in_flight.first().map_or(0, |t| t.received_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_on_one_replica_shows_its_growing_bytes_on_the_other() {
    let (a, b) = two_fake_replicas().await;
    let mut on_b = b.open_stream(STREAM).await;
    let first = until(&mut on_b, PATIENCE, "a first view", |_| true).await;
    assert!(first.in_flight.is_empty(), "{first:?}");

    let (chunks, response) = slow_upload(&a);
    chunks.send(Ok(vec![7; CHUNK])).await.expect("chunk");
    let early = until(&mut on_b, PATIENCE, "the upload on A", |v| bytes_in(v) > 0).await;
    assert_eq!(early.in_flight.len(), 1, "{early:?}");
    let transfer = &early.in_flight[0];
    assert_eq!(transfer.kind, SnapshotEntryKind::Upload);
    assert_eq!(transfer.started_by, "tester");
    assert_eq!(transfer.node, None);
    let seen = transfer.received_bytes;

    for _ in 0..4 {
        chunks.send(Ok(vec![7; CHUNK])).await.expect("chunk");
    }
    let later = until(&mut on_b, PATIENCE, "more bytes of the upload", |v| {
        bytes_in(v) > seen
    })
    .await;
    assert_eq!(later.in_flight[0].id, transfer.id, "the same transfer");
    assert!(bytes_in(&later) <= 5 * CHUNK as u64, "{later:?}");

    // The body ends: A checks the garbage, refuses it, and B's bar goes away.
    drop(chunks);
    let ended = until(&mut on_b, PATIENCE, "the upload's end", |v| {
        v.in_flight.is_empty()
    })
    .await;
    assert!(ended.in_flight.is_empty());
    let response = response.await.expect("upload task");
    assert_eq!(response.status(), 422, "garbage is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_replicas_transfers_leave_the_others_after_the_timeout() {
    let (a, b) = two_fake_replicas().await;
    let mut on_b = b.open_stream(STREAM).await;
    let (chunks, _response) = slow_upload(&a);
    chunks.send(Ok(vec![7; CHUNK])).await.expect("chunk");
    until(&mut on_b, PATIENCE, "the upload on A", |v| bytes_in(v) > 0).await;

    // A stops serving (its background work with it) while the upload is still open: it says
    // nothing more, and its transfer never ends on A's side.
    let stopped = tokio::time::Instant::now();
    drop(a);
    let gone = until(
        &mut on_b,
        REPLICA_TIMEOUT + 2 * HEARTBEAT + Duration::from_secs(2),
        "the silent replica's transfer dropped",
        |v| v.in_flight.is_empty(),
    )
    .await;
    assert!(gone.in_flight.is_empty());
    // Not dropped early: A repeats itself every heartbeat or so, and only a replica timeout of
    // silence means it is gone.
    assert!(
        stopped.elapsed() >= REPLICA_TIMEOUT - 2 * HEARTBEAT,
        "dropped after {:?}",
        stopped.elapsed()
    );
    drop(chunks);
}
