//! The same store against a real S3-compatible server (moto) with IAM checks on.

use futures::StreamExt;

use super::fixtures::{EtcdLab, Moto, chunks, files_under, options};
use crate::snapshots::{
    ExpectedKind, IngestFailure, SnapshotStore, StoreError, StoreKind, StoredKind,
};

#[tokio::test]
async fn snapshots_go_to_an_s3_bucket_and_come_back() {
    let (lab, moto) = tokio::join!(EtcdLab::new(), Moto::start());
    let staging = tempfile::tempdir().expect("temp dir");
    let store = SnapshotStore::s3(&moto.settings(), staging.path())
        .await
        .expect("s3 store");
    assert_eq!(store.kind(), StoreKind::S3);
    store
        .check()
        .await
        .expect("the right credentials are accepted");

    let bytes = lab.snapshot_bytes();
    let stored = store
        .ingest(chunks(&bytes), &options("lab", ExpectedKind::Snapshot))
        .await
        .expect("the snapshot is uploaded");
    assert_eq!(stored.kind, StoredKind::Snapshot);
    assert_eq!(
        store.size(&stored.key).await.expect("head"),
        bytes.len() as u64
    );
    assert_eq!(
        store.list("lab").await.expect("list"),
        vec![stored.key.clone()]
    );
    assert!(
        files_under(staging.path()).is_empty(),
        "the staged file is gone after upload"
    );

    let mut read = Vec::new();
    let mut stream = Box::pin(store.read(&stored.key).await.expect("get"));
    while let Some(chunk) = stream.next().await {
        read.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(read, bytes);
    let copy = staging.path().join("copy.snapshot");
    store.download(&stored.key, &copy).await.expect("download");
    assert_eq!(std::fs::read(&copy).expect("copy"), bytes);
    std::fs::remove_file(&copy).expect("remove copy");

    // A cut upload leaves no object and no staged file.
    let err = store
        .ingest(
            chunks(&bytes[..5120]),
            &options("lab", ExpectedKind::Snapshot),
        )
        .await
        .expect_err("cut");
    assert!(matches!(err, IngestFailure::Cut { .. }), "{err:?}");
    assert_eq!(store.list("lab").await.expect("list").len(), 1);
    assert!(files_under(staging.path()).is_empty());

    store.delete(&stored.key).await.expect("delete");
    assert!(store.list("lab").await.expect("list").is_empty());
    let missing = store.size(&stored.key).await.expect_err("deleted");
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_name_the_endpoint() {
    let (lab, moto) = tokio::join!(EtcdLab::new(), Moto::start());
    let staging = tempfile::tempdir().expect("temp dir");
    let mut settings = moto.settings();
    settings.secret_access_key = "not-the-secret".into();
    let store = SnapshotStore::s3(&settings, staging.path())
        .await
        .expect("s3 store");
    let err = store.check().await.expect_err("wrong secret is refused");
    assert!(matches!(err, StoreError::Credentials { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&moto.endpoint) && text.contains("refused the credentials"),
        "{text}"
    );

    settings.access_key_id = "AKIAUNKNOWNKEY000000".into();
    let store = SnapshotStore::s3(&settings, staging.path())
        .await
        .expect("s3 store");
    let err = store
        .ingest(
            chunks(&lab.snapshot_bytes()),
            &options("lab", ExpectedKind::Snapshot),
        )
        .await
        .expect_err("an unknown key cannot upload");
    assert!(
        matches!(err, IngestFailure::Store(StoreError::Credentials { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains(&moto.endpoint), "{err}");
    assert!(
        files_under(staging.path()).is_empty(),
        "the staged file is removed"
    );

    // Nothing listens here: the error names the endpoint too.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    settings.endpoint = format!("http://127.0.0.1:{port}");
    settings.timeout = std::time::Duration::from_secs(2);
    let store = SnapshotStore::s3(&settings, staging.path())
        .await
        .expect("s3 store");
    let err = store.check().await.expect_err("nothing listens");
    assert!(err.to_string().contains(&settings.endpoint), "{err}");
}

#[tokio::test]
async fn a_large_snapshot_goes_up_in_parts() {
    let (lab, moto) = tokio::join!(EtcdLab::with_bulk(12), Moto::start());
    let staging = tempfile::tempdir().expect("temp dir");
    let store = SnapshotStore::s3(&moto.settings(), staging.path())
        .await
        .expect("s3 store");
    let bytes = lab.snapshot_bytes();
    assert!(
        bytes.len() > 11 * 1024 * 1024,
        "{} bytes is not large enough",
        bytes.len()
    );
    let stored = store
        .ingest(chunks(&bytes), &options("lab", ExpectedKind::Snapshot))
        .await
        .expect("the large snapshot is uploaded");
    assert_eq!(stored.size, bytes.len() as u64);
    let secrets = stored
        .contents
        .resources
        .iter()
        .find(|r| r.resource == "secrets")
        .map(|r| r.keys);
    assert_eq!(secrets, Some(12));
    let copy = staging.path().join("copy.snapshot");
    assert_eq!(
        store.download(&stored.key, &copy).await.expect("download"),
        bytes.len() as u64
    );
    assert!(
        std::fs::read(&copy).expect("copy") == bytes,
        "the downloaded file equals the original"
    );
}
