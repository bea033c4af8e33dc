//! Restore rehearsals with etcd 3.4's own restore and a throwaway member.

use super::fixtures::{EtcdLab, PODS, files_under, flip_marker};
use crate::snapshots::{RehearsalOptions, rehearse};

fn options(work: &tempfile::TempDir) -> RehearsalOptions {
    RehearsalOptions {
        work_dir: work.path().to_path_buf(),
        ..RehearsalOptions::default()
    }
}

#[tokio::test]
async fn a_good_snapshot_and_its_raw_copy_rehearse_clean() {
    let lab = EtcdLab::new().await;
    let work = tempfile::tempdir().expect("temp dir");
    let report = rehearse(&lab.snapshot, false, &options(&work)).await;
    assert!(report.passed, "{report:#?}");
    assert!(report.restored);
    assert_eq!(
        report.etcd_revision,
        Some(lab.status["revision"].as_i64().expect("revision"))
    );
    assert_eq!(report.etcd_revision, report.inspector_revision);
    assert_eq!(report.etcd_resources.get("pods"), Some(&(PODS as u64 - 1)));
    assert_eq!(report.etcd_resources.get("services/specs"), Some(&1));
    assert!(
        files_under(work.path()).is_empty()
            && std::fs::read_dir(work.path())
                .expect("dir")
                .next()
                .is_none(),
        "the throwaway directory is removed"
    );

    let report = rehearse(&lab.raw_copy, true, &options(&work)).await;
    assert!(report.passed, "{report:#?}");
    let report = rehearse(&lab.raw_copy, false, &options(&work)).await;
    assert!(!report.passed && !report.restored);
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("snapshot missing hash"),
        "{report:#?}"
    );
    assert!(
        std::fs::read_dir(work.path())
            .expect("dir")
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn a_flipped_value_byte_is_reported() {
    let lab = EtcdLab::new().await;
    let work = tempfile::tempdir().expect("temp dir");
    let mut bytes = lab.snapshot_bytes();
    flip_marker(&mut bytes);
    let flipped = lab.dir.path().join("flipped.snapshot");
    std::fs::write(&flipped, &bytes).expect("write");

    // Without --skip-hash-check etcd's restore refuses it.
    let report = rehearse(&flipped, false, &options(&work)).await;
    assert!(!report.passed && !report.restored, "{report:#?}");
    assert!(
        report
            .error
            .as_deref()
            .unwrap_or("")
            .contains("expected sha256"),
        "{report:#?}"
    );

    // With it, etcd serves the changed value; the rehearsal still fails and says why.
    let report = rehearse(&flipped, true, &options(&work)).await;
    assert!(report.restored, "{report:#?}");
    assert!(!report.passed);
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.contains("sha256 trailer does not match")),
        "{report:#?}"
    );
    assert_eq!(report.etcd_revision, report.inspector_revision);

    // A raw copy has no trailer; the sha256 recorded at ingest is what catches the change.
    let mut raw = lab.raw_bytes();
    let recorded: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    flip_marker(&mut raw);
    let flipped_raw = lab.dir.path().join("flipped-raw.db");
    std::fs::write(&flipped_raw, &raw).expect("write");
    let mut opts = options(&work);
    opts.expected_sha256 = Some(recorded);
    let report = rehearse(&flipped_raw, true, &opts).await;
    assert!(report.restored && !report.passed, "{report:#?}");
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.contains("the stored file has changed")),
        "{report:#?}"
    );
    assert!(
        std::fs::read_dir(work.path())
            .expect("dir")
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn garbage_does_not_rehearse() {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("garbage.snapshot");
    std::fs::write(&file, vec![0x5au8; 8192]).expect("write");
    let report = rehearse(&file, true, &options(&work)).await;
    assert!(!report.passed && !report.restored, "{report:#?}");
    assert!(report.error.is_some());
    std::fs::remove_file(&file).expect("remove");
    assert!(
        std::fs::read_dir(work.path())
            .expect("dir")
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn a_stored_snapshot_is_rehearsed_from_the_store() {
    let lab = EtcdLab::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = crate::snapshots::SnapshotStore::local(dir.path().join("store"))
        .await
        .expect("store");
    let raw = lab.raw_bytes();
    let stored = store
        .ingest(
            super::fixtures::chunks(&raw),
            &super::fixtures::options("lab", crate::snapshots::ExpectedKind::RawCopy),
        )
        .await
        .expect("stored");
    let work = tempfile::tempdir().expect("temp dir");
    let report = store
        .rehearse_stored(&stored, &options(&work))
        .await
        .expect("rehearsal runs");
    assert!(report.passed && report.skip_hash_check, "{report:#?}");
    assert!(
        files_under(store.staging_dir()).is_empty(),
        "the local copy is removed"
    );

    // Someone changes the stored file behind the console's back.
    let on_disk = dir.path().join("store").join(stored.key.as_str());
    let mut changed = raw.clone();
    flip_marker(&mut changed);
    std::fs::write(&on_disk, &changed).expect("write");
    let report = store
        .rehearse_stored(&stored, &options(&work))
        .await
        .expect("rehearsal runs");
    assert!(!report.passed, "{report:#?}");
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.contains("the stored file has changed")),
        "{report:#?}"
    );
}
