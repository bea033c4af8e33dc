//! A full disk: refused before the first byte, while the file grows, and when the kernel says
//! ENOSPC (`/dev/full`), each time naming the store and leaving nothing behind.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;

use super::fixtures::{EtcdLab, chunks, files_under, options};
use crate::snapshots::disk::{CHECK_EVERY_BYTES, DiskSpace};
use crate::snapshots::receive::{Limits, write_stream};
use crate::snapshots::transfers::Unwatched;
use crate::snapshots::{ExpectedKind, IngestFailure, SnapshotStore};

async fn store_with_one_snapshot() -> (tempfile::TempDir, SnapshotStore, Vec<u8>) {
    let lab = EtcdLab::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SnapshotStore::local(dir.path().join("store"))
        .await
        .expect("local store");
    let bytes = lab.snapshot_bytes();
    store
        .ingest(chunks(&bytes), &options("lab", ExpectedKind::Snapshot))
        .await
        .expect("the first snapshot is stored");
    (dir, store, bytes)
}

/// The one earlier snapshot is still there, byte for byte, and nothing else is.
async fn assert_untouched(store: &SnapshotStore, root: &Path, first: &[u8]) {
    let keys = store.list("lab").await.expect("list");
    assert_eq!(keys.len(), 1, "only the earlier snapshot: {keys:?}");
    let files = files_under(root);
    assert_eq!(files.len(), 1, "no partial file left: {files:?}");
    assert_eq!(std::fs::read(&files[0]).expect("stored file"), first);
}

fn store_dir(root: &Path) -> String {
    std::fs::canonicalize(root.join("store"))
        .expect("store dir")
        .display()
        .to_string()
}

#[tokio::test]
async fn a_disk_below_the_minimum_is_refused_before_writing() {
    let (dir, store, first) = store_with_one_snapshot().await;
    let mut opts = options("lab", ExpectedKind::Snapshot);
    // More than any disk here has free: the real statvfs figure is below it.
    opts.min_free_bytes = u64::MAX / 4;
    let err = store
        .ingest(chunks(&first), &opts)
        .await
        .expect_err("a full disk refuses the snapshot");
    assert!(
        matches!(err, IngestFailure::DiskFull { received: 0, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "the disk of the snapshot store (directory {}) is full: ",
            store_dir(dir.path())
        )),
        "{message}"
    );
    assert!(message.contains("must stay free"), "{message}");
    assert!(message.contains("nothing was stored"), "{message}");
    assert_untouched(&store, dir.path(), &first).await;

    // Enough space, but not for the size the node's database has.
    let mut opts = options("lab", ExpectedKind::Snapshot);
    opts.expected_size = Some(u64::MAX / 4);
    let err = store
        .ingest(chunks(&first), &opts)
        .await
        .expect_err("a snapshot larger than the free space is refused");
    assert!(
        err.to_string().contains("the snapshot needs about"),
        "{err}"
    );
    assert_untouched(&store, dir.path(), &first).await;
}

/// A disk with plenty of room at the first look and none after that.
static LOOKS: AtomicU32 = AtomicU32::new(0);

fn filling_disk(_: &Path) -> std::io::Result<u64> {
    if LOOKS.fetch_add(1, Ordering::SeqCst) == 0 {
        Ok(1 << 40)
    } else {
        Ok(1 << 20)
    }
}

#[tokio::test]
async fn a_disk_that_fills_during_the_write_stops_it() {
    let (dir, store, first) = store_with_one_snapshot().await;
    let mut opts = options("lab", ExpectedKind::Upload);
    opts.min_free_bytes = 64 << 20;
    opts.free_space = filling_disk;
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..12)
        .map(|_| Ok(Bytes::from(vec![0u8; 1 << 20])))
        .collect();
    let err = store
        .ingest(futures::stream::iter(parts), &opts)
        .await
        .expect_err("the write stops when the disk fills");
    match &err {
        IngestFailure::DiskFull { space, received } => {
            assert_eq!(*received, CHECK_EVERY_BYTES, "stopped at the first check");
            assert_eq!(space.free, Some(1 << 20));
        }
        other => panic!("expected a full disk, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("directory {}", store_dir(dir.path()))),
        "{message}"
    );
    assert!(message.contains("1.0 MiB free"), "{message}");
    assert!(message.contains("64 MiB must stay free"), "{message}");
    assert!(
        message.contains("refused after 8,388,608 bytes"),
        "{message}"
    );
    assert_untouched(&store, dir.path(), &first).await;
}

#[tokio::test]
async fn enospc_says_the_disk_is_full() {
    // /dev/full accepts the open and refuses every write with ENOSPC, as a full disk does.
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .await
        .expect("/dev/full opens for writing");
    let disk = DiskSpace {
        store: "directory /var/lib/talos-dr/snapshots".into(),
        min_free_bytes: 0,
        probe: |_| Ok(u64::MAX),
    };
    let limits = Limits {
        size_limit: u64::MAX,
        expected_size: None,
        disk: &disk,
    };
    // 64 KiB messages: the 1 MiB write buffer fills, and its first flush hits the full disk.
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..48)
        .map(|_| Ok(Bytes::from(vec![7u8; 64 << 10])))
        .collect();
    let err = match write_stream(
        file,
        futures::stream::iter(parts),
        Path::new("/dev/full"),
        &limits,
        &mut Unwatched,
    )
    .await
    {
        Ok(_) => panic!("/dev/full took the bytes"),
        Err(err) => err,
    };
    assert!(matches!(err, IngestFailure::DiskFull { .. }), "{err:?}");
    // The byte count depends on when tokio's file reports the failed write; the words do not.
    let message = err.to_string();
    assert!(
        message.starts_with(
            "the disk of the snapshot store (directory /var/lib/talos-dr/snapshots) is full: a \
             write was refused for lack of space; refused after "
        ),
        "{message}"
    );
    assert!(message.ends_with(" bytes, nothing was stored"), "{message}");
}
