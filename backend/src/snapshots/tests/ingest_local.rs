//! Ingest into a local directory store.

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::fixtures::{EtcdLab, PODS, chunks, files_under, options};
use crate::snapshots::{ExpectedKind, IngestFailure, SnapshotStore, StoredKind};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn store() -> (tempfile::TempDir, SnapshotStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SnapshotStore::local(dir.path().join("store"))
        .await
        .expect("local store");
    (dir, store)
}

/// Nothing committed and nothing staged.
async fn assert_empty(store: &SnapshotStore, root: &std::path::Path) {
    assert!(store.list("lab").await.expect("list").is_empty());
    assert_eq!(files_under(root), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn a_real_snapshot_is_stored_with_etcdctls_status() {
    let lab = EtcdLab::new().await;
    let (dir, store) = store().await;
    let bytes = lab.snapshot_bytes();
    let stored = store
        .ingest(chunks(&bytes), &options("lab", ExpectedKind::Snapshot))
        .await
        .expect("the snapshot is stored");
    assert_eq!(stored.kind, StoredKind::Snapshot);
    assert_eq!(stored.size, bytes.len() as u64);
    assert_eq!(stored.sha256, hex(&Sha256::digest(&bytes)));
    assert_eq!(stored.database_sha256, hex(&bytes[bytes.len() - 32..]));
    assert_eq!(
        i64::from(stored.status.hash),
        lab.status["hash"].as_i64().expect("hash")
    );
    assert_eq!(
        stored.status.revision,
        lab.status["revision"].as_i64().expect("revision")
    );
    assert_eq!(
        stored.status.total_key_entries,
        lab.status["totalKey"].as_u64().expect("totalKey")
    );
    assert_eq!(
        stored.status.total_size,
        lab.status["totalSize"].as_u64().expect("totalSize")
    );
    let pods = stored
        .contents
        .resources
        .iter()
        .find(|r| r.resource == "pods")
        .expect("pods");
    assert_eq!(pods.keys, PODS as u64 - 1, "one pod was deleted");
    assert!(
        stored.key.as_str().starts_with("lab/2026/11/26/"),
        "{}",
        stored.key
    );

    let on_disk = dir.path().join("store").join(stored.key.as_str());
    assert_eq!(std::fs::read(&on_disk).expect("stored file"), bytes);
    assert_eq!(
        store.list("lab").await.expect("list"),
        vec![stored.key.clone()]
    );
    assert_eq!(
        store.size(&stored.key).await.expect("size"),
        bytes.len() as u64
    );
    assert!(
        files_under(store.staging_dir()).is_empty(),
        "staging is empty after commit"
    );

    // Upload detects the kind by itself.
    let again = store
        .ingest(chunks(&bytes), &options("lab", ExpectedKind::Upload))
        .await
        .expect("an uploaded snapshot is stored");
    assert_eq!(again.kind, StoredKind::Snapshot);
    store.delete(&again.key).await.expect("delete");
    assert_eq!(store.list("lab").await.expect("list").len(), 1);
}

#[tokio::test]
async fn a_cut_stream_leaves_nothing_and_names_the_cut() {
    let lab = EtcdLab::new().await;
    let (dir, store) = store().await;
    let bytes = lab.snapshot_bytes();
    let err = store
        .ingest(
            chunks(&bytes[..5120]),
            &options("lab", ExpectedKind::Snapshot),
        )
        .await
        .expect_err("a cut snapshot is refused");
    assert!(
        matches!(err, IngestFailure::Cut { received: 5120, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("stream ended after 5,120 bytes: trailer missing"),
        "{err}"
    );
    assert_empty(&store, dir.path()).await;

    let err = store
        .ingest(
            chunks(&bytes[..bytes.len() - 7]),
            &options("lab", ExpectedKind::Snapshot),
        )
        .await
        .expect_err("a snapshot missing its last bytes is refused");
    assert!(err.to_string().contains("the transfer was cut"), "{err}");
    assert_empty(&store, dir.path()).await;

    // The sender fails part-way: the error and the byte count are reported.
    let parts: Vec<Result<Bytes, String>> = vec![
        Ok(Bytes::copy_from_slice(&bytes[..4096])),
        Ok(Bytes::copy_from_slice(&bytes[4096..8192])),
        Err("connection reset by node 10.5.0.2".to_string()),
    ];
    let err = store
        .ingest(
            futures::stream::iter(parts),
            &options("lab", ExpectedKind::Snapshot),
        )
        .await
        .expect_err("a failed stream is refused");
    assert_eq!(
        err.to_string(),
        "stream failed after 8,192 bytes: connection reset by node 10.5.0.2"
    );
    assert_empty(&store, dir.path()).await;
}

#[tokio::test]
async fn a_flipped_trailer_byte_is_refused() {
    let lab = EtcdLab::new().await;
    let (dir, store) = store().await;
    let mut bytes = lab.snapshot_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    for expected in [ExpectedKind::Snapshot, ExpectedKind::Upload] {
        let err = store
            .ingest(chunks(&bytes), &options("lab", expected))
            .await
            .expect_err("a snapshot whose trailer does not match is refused");
        assert!(
            matches!(err, IngestFailure::TrailerMismatch { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("sha256 trailer does not match"),
            "{err}"
        );
        assert_empty(&store, dir.path()).await;
    }
}

#[tokio::test]
async fn garbage_is_refused_with_the_inspectors_reason() {
    let (dir, store) = store().await;
    let garbage: Vec<u8> = (0..16384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let inspector =
        talos_dr_snapshot::Snapshot::from_bytes("garbage", garbage.clone()).verify(true);
    let reason = inspector
        .with_skip_hash_check
        .reason
        .expect("the inspector has a reason");
    let err = store
        .ingest(chunks(&garbage), &options("lab", ExpectedKind::Upload))
        .await
        .expect_err("garbage is refused");
    assert!(matches!(err, IngestFailure::Damaged { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("not a restorable etcd snapshot: {reason}")
    );
    assert_empty(&store, dir.path()).await;

    let err = store
        .ingest(
            futures::stream::iter(Vec::<Result<Bytes, String>>::new()),
            &options("lab", ExpectedKind::Upload),
        )
        .await
        .expect_err("an empty stream is refused");
    assert_eq!(err.to_string(), "stream ended before any bytes arrived");
    assert_empty(&store, dir.path()).await;
}

#[tokio::test]
async fn a_raw_database_copy_is_recorded_as_such() {
    let lab = EtcdLab::new().await;
    let (dir, store) = store().await;
    let raw = lab.raw_bytes();
    for expected in [ExpectedKind::RawCopy, ExpectedKind::Upload] {
        let stored = store
            .ingest(chunks(&raw), &options("lab", expected))
            .await
            .expect("a raw copy is stored");
        assert_eq!(stored.kind, StoredKind::RawCopy);
        assert!(!stored.verdict.without_skip_hash_check.restores);
        assert!(stored.verdict.with_skip_hash_check.restores);
        assert_eq!(
            stored.status.revision,
            lab.status["revision"].as_i64().expect("revision")
        );
    }
    let err = store
        .ingest(chunks(&raw), &options("lab", ExpectedKind::Snapshot))
        .await
        .expect_err("a raw copy is not a Snapshot-API file");
    assert!(err.to_string().contains("trailer missing"), "{err}");
    let err = store
        .ingest(
            chunks(&lab.snapshot_bytes()),
            &options("lab", ExpectedKind::RawCopy),
        )
        .await
        .expect_err("a snapshot is not a raw copy");
    assert!(matches!(err, IngestFailure::WrongKind { .. }), "{err:?}");
    assert_eq!(store.list("lab").await.expect("list").len(), 2);
    assert!(files_under(store.staging_dir()).is_empty());
    drop(dir);
}

#[tokio::test]
async fn the_size_limit_is_enforced() {
    let lab = EtcdLab::new().await;
    let (dir, store) = store().await;
    let bytes = lab.snapshot_bytes();
    let mut opts = options("lab", ExpectedKind::Snapshot);
    opts.size_limit = bytes.len() as u64 - 1;
    let err = store
        .ingest(chunks(&bytes), &opts)
        .await
        .expect_err("too large");
    assert!(matches!(err, IngestFailure::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "snapshot is larger than the limit of {} bytes",
            crate::snapshots::ingest::grouped(opts.size_limit)
        )),
        "{err}"
    );
    assert_empty(&store, dir.path()).await;
    opts.size_limit = bytes.len() as u64;
    store
        .ingest(chunks(&bytes), &opts)
        .await
        .expect("exactly at the limit is fine");
}

#[tokio::test]
async fn partial_files_of_an_earlier_run_are_removed_on_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("store");
    let store = SnapshotStore::local(&root).await.expect("store");
    let left = store.staging_dir().join("dead.partial");
    std::fs::write(&left, b"half a snapshot").expect("write");
    let store = SnapshotStore::local(&root).await.expect("store reopens");
    assert!(!left.exists());
    assert!(store.description().contains(&root.display().to_string()));
}
