//! Real snapshots made once per test run with a three-member etcd 3.4 cluster on 127.0.10.1-3.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use crate::etcd::Cluster;

pub struct Fixtures {
    pub root: PathBuf,
}

impl Fixtures {
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Files that etcd itself wrote, each a different kind of state.
pub const GOOD: &[&str] = &[
    "empty.db",
    "k8s.db",
    "raw.db",
    "k8s2.db",
    "large.db",
    "compacted.db",
    "many.db",
];

/// Damaged variants of k8s.db: (file, expected verdict).
pub const DAMAGED: &[(&str, &str)] = &[
    ("trunc-half.db", "will_not_restore"),
    ("trunc-sector.db", "will_not_restore"),
    ("trunc-trailer.db", "restores_only_with_skip_hash_check"),
    ("trunc-100.db", "will_not_restore"),
    ("value-flip.db", "restores_only_with_skip_hash_check"),
    ("header-flip.db", "will_not_restore"),
    ("trailer-flip.db", "restores_only_with_skip_hash_check"),
    ("random.db", "will_not_restore"),
    ("random-trailer.db", "will_not_restore"),
    ("empty-file.db", "will_not_restore"),
    // Only a trailer: bbolt turns the empty remainder into a new, empty database.
    ("trailer-only.db", "restores_only_with_skip_hash_check"),
];

pub static FIXTURES: LazyLock<Fixtures> = LazyLock::new(build);

fn puts(prefix: &str, n: usize, value: impl Fn(usize) -> String) -> Vec<String> {
    (0..n)
        .map(|i| format!("put {prefix}{i:05} {}", value(i)))
        .collect()
}

fn txn_all(c: &Cluster, ops: Vec<String>) {
    for chunk in ops.chunks(5000) {
        c.txn(chunk);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// A static is never dropped, so a temp dir would leak every run: use one directory per test
/// process under the target dir, and remove those of processes that have ended.
fn fixture_dir() -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("snapshot-fixtures-") else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let root = base.join(format!("snapshot-fixtures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("fixture dir");
    root
}

fn build() -> Fixtures {
    let root = fixture_dir();
    let c = Cluster::start(&["127.0.10.1", "127.0.10.2", "127.0.10.3"], &root);
    c.save(&root.join("empty.db"));

    // A Kubernetes-like key space.
    let mut ops = Vec::new();
    for (prefix, n) in [
        ("/registry/pods/default/pod-", 1000),
        ("/registry/pods/kube-system/pod-", 200),
        ("/registry/pods/monitoring/pod-", 100),
        ("/registry/configmaps/default/cm-", 500),
        ("/registry/configmaps/kube-system/cm-", 100),
        ("/registry/services/specs/default/svc-", 100),
        ("/registry/services/endpoints/default/svc-", 100),
        ("/registry/deployments/default/dep-", 200),
        ("/registry/events/default/ev-", 700),
        ("/registry/minions/node-", 5),
        ("/registry/clusterroles/role-", 50),
        (
            "/registry/apiextensions.k8s.io/customresourcedefinitions/crd-",
            5,
        ),
        (
            "/registry/monitoring.coreos.com/prometheuses/monitoring/prom-",
            3,
        ),
    ] {
        ops.extend(puts(prefix, n, |i| format!("k8s-object-{i:05}-{:060}", 0)));
    }
    ops.extend(puts("/registry/secrets/default/s-", 300, |i| {
        format!("k8s:enc:secretbox:v1:key1:{i:040}")
    }));
    txn_all(&c, ops);
    // Overwrites (one txn and single puts), deletes, leases, delete + recreate.
    c.txn(&puts("/registry/pods/default/pod-", 50, |i| {
        format!("v2-{i}")
    }));
    for i in 50..55 {
        c.ctl(&["put", &format!("/registry/pods/default/pod-{i:05}"), "v3"]);
    }
    c.txn(
        &(0..30)
            .map(|i| format!("del /registry/configmaps/default/cm-{i:05}"))
            .collect::<Vec<_>>(),
    );
    c.ctl(&["del", "/registry/deployments/default/dep-00000"]);
    let grant = |ttl: &str| {
        c.ctl(&["lease", "grant", ttl])
            .split_whitespace()
            .nth(1)
            .expect("lease id")
            .to_string()
    };
    let (l1, l2) = (grant("3600"), grant("600"));
    for i in 0..10 {
        c.ctl(&[
            "put",
            "--lease",
            &l1,
            &format!("/registry/leases/kube-node-lease/node-{i}"),
            "l",
        ]);
    }
    for i in 0..3 {
        c.ctl(&[
            "put",
            "--lease",
            &l2,
            &format!("/registry/masterleases/10.0.0.{i}"),
            "m",
        ]);
    }
    c.ctl(&["del", "/registry/secrets/default/s-00000"]);
    c.ctl(&["put", "/registry/secrets/default/s-00000", "recreated"]);
    c.ctl(&["put", "/talos/outside-registry", "x"]);
    c.save(&root.join("k8s.db"));
    std::fs::copy(c.data_dirs[0].join("member/snap/db"), root.join("raw.db")).expect("raw copy");

    // Changes after k8s.db: 25 new pods, 700 events deleted, 10 configmaps overwritten.
    c.txn(&puts("/registry/pods/default/new-", 25, |_| {
        "new".to_string()
    }));
    c.ctl(&["del", "--prefix", "/registry/events/"]);
    c.txn(
        &(100..110)
            .map(|i| format!("put /registry/configmaps/default/cm-{i:05} changed"))
            .collect::<Vec<_>>(),
    );
    c.save(&root.join("k8s2.db"));

    // Values that need overflow pages, and binary values.
    let big: String = "0123456789abcdef".repeat(1_400_000 / 16);
    for i in 0..3 {
        c.put_bytes(
            format!("/registry/configmaps/big/cm-{i}").as_bytes(),
            big.as_bytes(),
        );
    }
    for i in 0..5u64 {
        let mut v = noise(100_000 + i as usize * 1000, 7 + i);
        v[0] = 0;
        c.put_bytes(format!("/registry/secrets/binary/s-{i}").as_bytes(), &v);
    }
    c.put_bytes(&[0x2f, 0xff, 0x00, 0x01], b"\x00binary key");
    c.save(&root.join("large.db"));

    c.ctl(&["del", "--prefix", "/registry/pods/monitoring/"]);
    let rev = c.revision().to_string();
    c.ctl(&["compact", &rev, "--physical"]);
    c.save(&root.join("compacted.db"));

    // More than 100k keys.
    let mut ops = Vec::new();
    for i in 0..110_000 {
        ops.push(format!(
            "put /registry/configmaps/bulk-{:02}/cm-{i:06} {i}",
            i % 20
        ));
    }
    for chunk in ops.chunks(10_000) {
        c.txn(chunk);
    }
    c.save(&root.join("many.db"));
    let data_dirs = c.data_dirs.clone();
    drop(c);
    // Only the snapshot files are needed from here on.
    for d in data_dirs {
        let _ = std::fs::remove_dir_all(d);
    }

    damage(&root);
    Fixtures { root }
}

fn damage(root: &Path) {
    let good = std::fs::read(root.join("k8s.db")).expect("k8s.db");
    let len = good.len();
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(root.join(name), bytes).expect("write damaged file")
    };
    write("trunc-half.db", &good[..len / 2]);
    write("trunc-sector.db", &good[..(len / 2) / 512 * 512]);
    write("trunc-trailer.db", &good[..len - 32]);
    write("trunc-100.db", &good[..100]);

    // A byte inside a live value, located through the reader itself.
    let snap = talos_dr_snapshot::Snapshot::from_bytes("k8s.db", good.clone());
    let live = snap.live_keys().expect("live keys");
    let kv = live
        .keys
        .get(&b"/registry/pods/default/pod-00700"[..])
        .expect("pod-00700");
    let value_at = kv.value.as_ptr() as usize - snap.bytes().as_ptr() as usize + 5;
    let mut b = good.clone();
    b[value_at] ^= 0xff;
    write("value-flip.db", &b);

    // The flags of the root page: a leaf (0x02) becomes 0xfd, which reads as a branch.
    let bolt_root = talos_dr_snapshot::bbolt::BoltFile::parse(snap.database_bytes())
        .expect("bolt")
        .meta()
        .root as usize;
    let mut b = good.clone();
    b[bolt_root * 4096 + 8] ^= 0xff;
    write("header-flip.db", &b);

    let mut b = good.clone();
    b[len - 1] ^= 0xff;
    write("trailer-flip.db", &b);
    write("random.db", &noise(1 << 20, 42));
    write("random-trailer.db", &noise(4096 * 10 + 32, 43));
    write("empty-file.db", &[]);
    write("trailer-only.db", &good[len - 32..]);
}
