//! Our restore verdict against what `etcdctl snapshot restore` actually does.

use talos_dr_snapshot::Restorability;

use crate::etcd::restore;
use crate::fixtures::{DAMAGED, FIXTURES, GOOD};

fn check(name: &str) -> Restorability {
    let file = FIXTURES.file(name);
    let snap = talos_dr_snapshot::open(&file).expect("open");
    let dir = tempfile::tempdir().expect("tempdir");
    for skip in [false, true] {
        let v = snap.verify(skip);
        let (ok, err) = restore(&file, skip, &dir.path().join(format!("skip-{skip}")));
        assert_eq!(
            v.restores, ok,
            "{name} skip-hash-check={skip}: we say {:?}, etcdctl says ok={ok} {err}",
            v.reason
        );
        if !ok && !skip {
            // Where etcdctl names the trailer problem, we name the same one.
            for phrase in ["snapshot missing hash", "expected sha256"] {
                if err.contains(phrase) {
                    assert!(
                        v.reason.as_deref().unwrap_or("").contains(phrase),
                        "{name}: {err} vs {:?}",
                        v.reason
                    );
                }
            }
        }
    }
    snap.verify(false).restorability
}

#[test]
fn verdict_equals_etcdctl_restore_on_generated_files() {
    for name in GOOD {
        let expected = if *name == "raw.db" {
            Restorability::RestoresOnlyWithSkipHashCheck
        } else {
            Restorability::Restores
        };
        assert_eq!(check(name), expected, "{name}");
    }
}

#[test]
fn verdict_equals_etcdctl_restore_on_damaged_files() {
    for (name, expected) in DAMAGED {
        let got = check(name);
        let got = serde_json::to_value(got).expect("json");
        assert_eq!(got.as_str(), Some(*expected), "{name}");
    }
}

#[test]
fn kinds_and_trailer_checks() {
    use talos_dr_snapshot::SnapshotKind;
    let v = |n: &str| {
        talos_dr_snapshot::open(FIXTURES.file(n))
            .expect("open")
            .verify(false)
    };
    assert_eq!(v("k8s.db").kind, SnapshotKind::SnapshotWithTrailer);
    assert_eq!(v("k8s.db").trailer.matches, Some(true));
    assert_eq!(v("raw.db").kind, SnapshotKind::RawDatabaseCopy);
    assert_eq!(v("raw.db").trailer.matches, None);
    assert!(v("raw.db").length.ok);
    for n in ["value-flip.db", "trailer-flip.db"] {
        assert_eq!(v(n).kind, SnapshotKind::Damaged, "{n}");
        assert_eq!(v(n).trailer.matches, Some(false), "{n}");
    }
    let t = v("trunc-sector.db");
    assert_eq!(t.kind, SnapshotKind::Damaged);
    assert!(!t.length.ok, "{:?}", t.length);
    assert!(v("header-flip.db").problem_count > 0);
}
