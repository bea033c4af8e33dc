//! `talos-dr snapshot status` against `etcdctl snapshot status`, byte for byte.

use std::path::{Path, PathBuf};

use talos_dr_snapshot::cli::{SnapshotCommand, StatusFormat, run_to};

use crate::etcd::{etcdctl, restore};
use crate::fixtures::{DAMAGED, FIXTURES, GOOD};

const FORMATS: [(StatusFormat, &str); 4] = [
    (StatusFormat::Simple, "simple"),
    (StatusFormat::Json, "json"),
    (StatusFormat::Table, "table"),
    (StatusFormat::Fields, "fields"),
];

pub fn ours(file: &Path, write_out: StatusFormat, etcd_36: bool) -> (u8, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_to(
        SnapshotCommand::Status {
            file: file.to_path_buf(),
            write_out,
            etcd_36,
        },
        &mut out,
        &mut err,
    );
    (code, String::from_utf8(out).expect("utf8"))
}

fn theirs(file: &Path, format: &str) -> Option<String> {
    let f = file.to_string_lossy();
    let out = etcdctl(&["snapshot", "status", &f, "-w", format], None);
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).expect("utf8"))
}

fn compare(file: &Path) {
    for (fmt, name) in FORMATS {
        let (code, text) = ours(file, fmt, false);
        match theirs(file, name) {
            Some(expected) => {
                assert_eq!(
                    code,
                    0,
                    "{} -w {name}: etcdctl succeeded, we failed",
                    file.display()
                );
                assert_eq!(text, expected, "{} -w {name}", file.display());
            }
            None => assert_ne!(
                code,
                0,
                "{} -w {name}: etcdctl failed, we printed {text}",
                file.display()
            ),
        }
    }
}

#[test]
fn status_equals_etcdctl_on_every_generated_file_in_every_format() {
    for name in GOOD {
        let file = FIXTURES.file(name);
        compare(&file);
        assert!(theirs(&file, "json").is_some(), "{name} is a good file");
    }
}

#[test]
fn status_equals_etcdctl_on_damaged_files_where_it_has_an_answer() {
    for (name, _) in DAMAGED {
        compare(&FIXTURES.file(name));
    }
}

#[test]
fn status_equals_etcdctl_on_a_restored_member_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("restored");
    let (ok, err) = restore(&FIXTURES.file("k8s.db"), false, &target);
    assert!(ok, "restore: {err}");
    let db: PathBuf = target.join("member/snap/db");
    compare(&db);
    // Restore rewrites members and the consistent index: same revision and count, other hash.
    let restored = talos_dr_snapshot::open(&db)
        .expect("open")
        .status()
        .expect("status");
    let original = talos_dr_snapshot::open(FIXTURES.file("k8s.db"))
        .expect("open")
        .status()
        .expect("status");
    assert_eq!(
        (restored.revision, restored.total_key_entries),
        (original.revision, original.total_key_entries)
    );
    assert_ne!(restored.hash, original.hash);
}

#[test]
fn etcd_36_semantics_count_live_keys_and_add_the_version_column() {
    let file = FIXTURES.file("k8s.db");
    let status = talos_dr_snapshot::open(&file)
        .expect("open")
        .status()
        .expect("status");
    let (_, json) = ours(&file, StatusFormat::Json, true);
    let expected = format!(
        "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{},\"version\":\"\"}}\n",
        status.hash,
        status.revision,
        status.live_keys.expect("live keys"),
        status.total_size
    );
    assert_eq!(json, expected);
    let (_, table) = ours(&file, StatusFormat::Table, true);
    assert!(
        table
            .lines()
            .nth(1)
            .expect("header")
            .ends_with("| VERSION |"),
        "{table}"
    );
    assert!(status.live_keys.expect("live keys") < status.total_key_entries);
    let quick = talos_dr_snapshot::open(&file)
        .expect("open")
        .status_for(talos_dr_snapshot::StatusSemantics::Etcd35)
        .expect("status");
    assert_eq!(
        (quick.hash, quick.total_key_entries, quick.live_keys),
        (status.hash, status.total_key_entries, None)
    );
}

#[test]
fn the_generated_files_cover_the_cases_they_stand_for() {
    let status = |n: &str| {
        talos_dr_snapshot::open(FIXTURES.file(n))
            .expect("open")
            .status()
            .expect("status")
    };
    assert!(status("many.db").live_keys.expect("live") > 100_000);
    let large = talos_dr_snapshot::open(FIXTURES.file("large.db"))
        .expect("open")
        .contents()
        .expect("contents");
    assert!(
        large.value_bytes > 3 * 1_400_000,
        "values large enough for overflow pages"
    );
    let binary = large
        .resources
        .iter()
        .find(|r| r.resource == talos_dr_snapshot::OUTSIDE_REGISTRY)
        .expect("binary key");
    assert_eq!(binary.keys, 2, "the binary key and /talos/outside-registry");
    let empty = status("empty.db");
    // An empty key bucket: etcdctl prints revision 0.
    assert_eq!((empty.revision, empty.live_keys), (0, Some(0)));
    let raw = std::fs::metadata(FIXTURES.file("raw.db"))
        .expect("raw")
        .len();
    assert_eq!(raw % 512, 0);
}

#[test]
fn cli_verify_inspect_and_diff() {
    let run = |cmd: SnapshotCommand| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_to(cmd, &mut out, &mut err);
        (
            code,
            String::from_utf8(out).expect("utf8"),
            String::from_utf8(err).expect("utf8"),
        )
    };
    let verify = |name: &str, skip: bool| {
        run(SnapshotCommand::Verify {
            file: FIXTURES.file(name),
            skip_hash_check: skip,
            json: false,
        })
    };
    assert_eq!(verify("k8s.db", false).0, 0);
    let (code, out, err) = verify("raw.db", false);
    assert_eq!(code, 1);
    assert!(
        err.contains("snapshot missing hash but --skip-hash-check=false"),
        "{err}"
    );
    assert!(
        out.contains("verdict: restores only with --skip-hash-check"),
        "{out}"
    );
    assert_eq!(verify("raw.db", true).0, 0);
    assert_eq!(verify("header-flip.db", true).0, 1);

    let (code, out, _) = run(SnapshotCommand::Inspect {
        file: FIXTURES.file("k8s.db"),
        json: true,
    });
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    assert_eq!(v["contents"]["live_keys"], v["status"]["live_keys"]);
    let (code, out, _) = run(SnapshotCommand::Inspect {
        file: FIXTURES.file("k8s.db"),
        json: false,
    });
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods ") && l.contains(" 1300 ")),
        "{out}"
    );

    let (code, out, _) = run(SnapshotCommand::Diff {
        old: FIXTURES.file("k8s.db"),
        new: FIXTURES.file("k8s2.db"),
        json: false,
        page: 0,
        page_size: 3,
    });
    assert_eq!(code, 0);
    assert!(
        out.contains("loses 25 keys, brings back 700 deleted keys and reverts 10 keys"),
        "{out}"
    );
    assert!(out.contains("keys 1-3 of 735:"), "{out}");
    let (code, _, err) = run(SnapshotCommand::Status {
        file: FIXTURES.file("missing.db"),
        write_out: StatusFormat::Json,
        etcd_36: false,
    });
    assert_eq!(code, 1);
    assert!(err.contains("missing.db"), "errors name the file: {err}");
}
