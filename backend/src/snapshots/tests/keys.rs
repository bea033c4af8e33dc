use crate::snapshots::{SnapshotId, SnapshotKey, StoreError};

#[test]
fn keys_are_generated_per_cluster_and_day() {
    let id = SnapshotId::parse("abc123").expect("id");
    let key = SnapshotKey::new("prod-eu", 1_795_687_200_000, &id).expect("key");
    assert_eq!(key.as_str(), "prod-eu/2026/11/26/abc123.snapshot");
    assert_eq!(SnapshotKey::parse(key.as_str()).expect("round trip"), key);
    assert_ne!(SnapshotId::random(), SnapshotId::random());
}

#[test]
fn names_that_leave_the_store_are_refused() {
    for name in [
        "../etc/passwd",
        "prod/2026/11/26/../../../../x.snapshot",
        "/etc/passwd",
        "prod/2026/11/26/..snapshot/../x.snapshot",
        "prod/2026/11/26/./x.snapshot",
        "\\windows\\x.snapshot",
        "prod/2026/11/26/x.db",
        "prod/2026/11/x.snapshot",
        "prod/2026/11/26/x y.snapshot",
        "",
    ] {
        let err = SnapshotKey::parse(name).expect_err(name);
        assert!(matches!(err, StoreError::BadKey { .. }), "{name}: {err}");
        assert!(err.to_string().contains("refused"), "{err}");
    }
    let id = SnapshotId::random();
    for cluster in ["..", "../prod", "a/b", "", ".hidden"] {
        let err = SnapshotKey::new(cluster, 0, &id).expect_err(cluster);
        assert!(
            matches!(err, StoreError::BadCluster { .. }),
            "{cluster}: {err}"
        );
    }
    assert!(SnapshotId::parse("../x").is_err());
}
