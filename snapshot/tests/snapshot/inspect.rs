//! The one-walk inspection a received snapshot gets equals verify, status and contents made
//! one by one.

use sha2::{Digest, Sha256};
use talos_dr_snapshot::{
    RestoreVerdict, Snapshot, SnapshotContents, SnapshotError, SnapshotStatus, StreamingVerifier,
};

use crate::fixtures::{DAMAGED, FIXTURES, GOOD};

fn shown<T: std::fmt::Debug>(r: &Result<T, SnapshotError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Asserts that `inspect` gives what the separate calls give, in both hash-check modes.
pub fn same_as_separate_calls(s: &Snapshot, name: &str) {
    let status = s.status();
    let contents = s.contents();
    for skip in [false, true] {
        assert_agrees(s, name, skip, &s.verify(skip), &status, &contents);
    }
}

/// Asserts that `inspect(skip_hash_check)` gives the verdict, status and contents the separate
/// calls gave.
pub fn assert_agrees(
    s: &Snapshot,
    name: &str,
    skip_hash_check: bool,
    verdict: &RestoreVerdict,
    status: &Result<SnapshotStatus, SnapshotError>,
    contents: &Result<SnapshotContents, SnapshotError>,
) {
    let one = s.inspect(skip_hash_check, None);
    assert_eq!(
        &one.verdict, verdict,
        "{name}: verdict, skip {skip_hash_check}"
    );
    assert_eq!(shown(&one.status), shown(status), "{name}: status");
    let same = shown(&one.contents) == shown(contents);
    // The one walk also checks buckets other than `key` and `lease`: a break there stops the
    // contents as it stops the status.
    let broken_elsewhere = matches!(one.contents, Err(SnapshotError::Integrity { .. }))
        && matches!(status, Err(SnapshotError::Integrity { .. }));
    assert!(
        same || broken_elsewhere,
        "{name}: contents {} vs {}",
        shown(&one.contents),
        shown(contents)
    );
}

#[test]
fn one_walk_equals_verify_status_and_contents_on_every_fixture() {
    for name in GOOD.iter().chain(DAMAGED.iter().map(|(n, _)| n)) {
        let s = talos_dr_snapshot::open(FIXTURES.file(name)).expect("open");
        same_as_separate_calls(&s, name);
    }
}

#[test]
fn a_digest_computed_while_receiving_stands_in_for_hashing_the_file() {
    for name in [
        "k8s.db",
        "large.db",
        "trailer-flip.db",
        "value-flip.db",
        "raw.db",
    ] {
        let bytes = std::fs::read(FIXTURES.file(name)).expect("read");
        let mut stream = StreamingVerifier::new();
        bytes.chunks(1024).for_each(|c| stream.update(c));
        let check = stream.finish();
        assert_eq!(
            check.file_sha256,
            format!("{:x}", Sha256::digest(&bytes)),
            "{name}: whole-file digest"
        );
        let s = Snapshot::from_bytes(name, bytes);
        let with_digest = s.inspect(false, Some(check.database_digest));
        assert_eq!(with_digest.verdict, s.verify(false), "{name}");
    }
    // A digest that does not match the trailer fails the check exactly as a changed file does.
    let s = talos_dr_snapshot::open(FIXTURES.file("k8s.db")).expect("open");
    let wrong = s.inspect(false, Some([7u8; 32]));
    assert_eq!(wrong.verdict.trailer.matches, Some(false));
    assert!(!wrong.verdict.restores, "{:?}", wrong.verdict.reason);
    assert_eq!(wrong.verdict.kind, talos_dr_snapshot::SnapshotKind::Damaged);
}
