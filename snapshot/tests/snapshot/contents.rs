//! Contents and diffs against what a member restored from the same file serves.

use std::collections::BTreeMap;

use base64::Engine;
use talos_dr_snapshot::{KeyChangeKind, StreamingVerifier, classify};

use crate::etcd::{Cluster, restore};
use crate::fixtures::FIXTURES;

/// Live keys per resource as a restored member serves them.
fn served_per_resource(file: &str, ip: &str) -> (BTreeMap<String, u64>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("member");
    let (ok, err) = restore(&FIXTURES.file(file), false, &data);
    assert!(ok, "restore {file}: {err}");
    let member = Cluster::start_restored(ip, &data);
    let out = member.ctl(&["get", "", "--prefix", "--keys-only", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut per = BTreeMap::new();
    let kvs = v["kvs"].as_array().cloned().unwrap_or_default();
    for kv in &kvs {
        let key = b64
            .decode(kv["key"].as_str().expect("key"))
            .expect("base64");
        *per.entry(classify(&key).resource).or_insert(0) += 1;
    }
    (per, kvs.len() as u64)
}

fn ours_per_resource(file: &str) -> (BTreeMap<String, u64>, u64, u64) {
    let snap = talos_dr_snapshot::open(FIXTURES.file(file)).expect("open");
    let c = snap.contents().expect("contents");
    let status = snap.status().expect("status");
    (
        c.resources
            .iter()
            .map(|r| (r.resource.clone(), r.keys))
            .collect(),
        c.live_keys,
        status.live_keys.expect("live keys"),
    )
}

fn compare_with_member(file: &str, ip: &str) {
    let (served, served_total) = served_per_resource(file, ip);
    let (ours, live, live_36) = ours_per_resource(file);
    assert_eq!(ours, served, "{file}: live keys per resource");
    assert_eq!(
        (live, live_36),
        (served_total, served_total),
        "{file}: live key totals"
    );
}

#[test]
fn live_keys_per_resource_equal_a_restored_member_k8s_and_compacted() {
    compare_with_member("k8s.db", "127.0.11.1");
    compare_with_member("compacted.db", "127.0.11.2");
}

#[test]
fn live_keys_per_resource_equal_a_restored_member_large_and_many() {
    compare_with_member("large.db", "127.0.11.3");
    compare_with_member("many.db", "127.0.11.4");
}

#[test]
fn contents_of_the_kubernetes_like_snapshot() {
    let c = talos_dr_snapshot::open(FIXTURES.file("k8s.db"))
        .expect("open")
        .contents()
        .expect("contents");
    let keys = |r: &str| c.resources.iter().find(|x| x.resource == r).map(|x| x.keys);
    assert_eq!(keys("pods"), Some(1300));
    assert_eq!(keys("configmaps"), Some(570));
    assert_eq!(keys("services/specs"), Some(100));
    assert_eq!(keys("monitoring.coreos.com/prometheuses"), Some(3));
    assert_eq!(keys("deployments"), Some(199));
    assert_eq!(keys(talos_dr_snapshot::OUTSIDE_REGISTRY), Some(1));
    let pods = c
        .resources
        .iter()
        .find(|x| x.resource == "pods")
        .expect("pods");
    assert_eq!(pods.namespaces.get("kube-system"), Some(&200));
    let attached: Vec<u64> = c.leases.iter().map(|l| l.attached_keys).collect();
    assert_eq!(attached, vec![10, 3]);
    assert_eq!(c.keys_with_unknown_lease, 0);
    assert!(
        c.namespaces.contains_key(""),
        "cluster-scoped keys are counted"
    );
    let status = talos_dr_snapshot::open(FIXTURES.file("k8s.db"))
        .expect("open")
        .status()
        .expect("status");
    assert_eq!(c.newest_mod_revision, status.revision);
    assert!(status.consistent_index.is_some());
}

#[test]
fn compaction_is_reported() {
    let s = talos_dr_snapshot::open(FIXTURES.file("compacted.db"))
        .expect("open")
        .status()
        .expect("status");
    let rev = s.compact_revision.expect("finishedCompactRev");
    assert_eq!(s.effective_revision, s.revision.max(rev));
    assert_eq!(s.scheduled_compact_revision, Some(rev));
}

#[test]
fn diff_names_what_restoring_the_older_snapshot_loses_and_brings_back() {
    let old = talos_dr_snapshot::open(FIXTURES.file("k8s.db")).expect("old");
    let new = talos_dr_snapshot::open(FIXTURES.file("k8s2.db")).expect("new");
    let d = talos_dr_snapshot::diff(&old, &new, 0, 10).expect("diff");
    assert_eq!(
        (d.totals.added, d.totals.removed, d.totals.changed),
        (25, 700, 10)
    );
    let g = |r: &str| {
        d.groups
            .iter()
            .find(|g| g.resource == r && g.namespace.as_deref() == Some("default"))
            .expect(r)
    };
    assert_eq!(g("pods").counts.added, 25);
    assert_eq!(g("events").counts.removed, 700);
    assert_eq!(g("configmaps").counts.changed, 10);
    assert_eq!(d.groups.len(), 3);
    assert_eq!(d.total_key_changes, 735);
    assert_eq!(d.keys.len(), 10);
    assert_eq!(d.keys[0].key, "/registry/configmaps/default/cm-00100");
    assert_eq!(d.keys[0].change, KeyChangeKind::Changed);
    let last = talos_dr_snapshot::diff(&old, &new, 73, 10).expect("last page");
    assert_eq!(last.keys.len(), 5);
    assert!(
        d.summary()
            .contains("loses 25 keys, brings back 700 deleted keys and reverts 10 keys"),
        "{}",
        d.summary()
    );
    let same = talos_dr_snapshot::diff(
        &old,
        &talos_dr_snapshot::open(FIXTURES.file("raw.db")).expect("raw"),
        0,
        10,
    )
    .expect("diff");
    assert_eq!(same.total_key_changes, 0);
}

#[test]
fn streaming_verifier_agrees_with_the_file_check() {
    for (name, matches) in [
        ("k8s.db", Some(true)),
        ("trailer-flip.db", Some(false)),
        ("raw.db", None),
    ] {
        let bytes = std::fs::read(FIXTURES.file(name)).expect("read");
        let mut v = StreamingVerifier::new();
        for chunk in bytes.chunks(32 * 1024) {
            v.update(chunk);
        }
        let r = v.finish();
        assert_eq!(r.trailer_matches, matches, "{name}");
        let file = talos_dr_snapshot::open(FIXTURES.file(name))
            .expect("open")
            .verify(false);
        assert_eq!(r.trailer_matches, file.trailer.matches, "{name}");
    }
}
