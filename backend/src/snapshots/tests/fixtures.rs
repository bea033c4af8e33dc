//! Real snapshots from a throwaway etcd, and a moto S3 server with IAM checks switched on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::Stream;
use tempfile::TempDir;

use crate::snapshots::etcd::{EtcdTools, MemberAddress, ThrowawayEtcd, etcdctl};
use crate::snapshots::{ExpectedKind, IngestOptions, SnapshotId};

pub const PODS: usize = 12;
/// A value that tests find in the snapshot file to flip one of its bytes.
pub const MARKER_VALUE: &[u8] = b"marker-value-abcdefghijklmnopqrstuvwxyz";

/// A snapshot (`etcdctl snapshot save`) and a raw `member/snap/db` copy of the same member,
/// with what `etcdctl snapshot status -w json` says about the snapshot.
pub struct EtcdLab {
    pub dir: TempDir,
    pub snapshot: PathBuf,
    pub raw_copy: PathBuf,
    pub status: serde_json::Value,
}

impl EtcdLab {
    pub async fn new() -> EtcdLab {
        EtcdLab::with_bulk(0).await
    }

    /// Adds `mib` secrets of 1 MiB each, for files large enough to need a multipart upload.
    pub async fn with_bulk(mib: usize) -> EtcdLab {
        let dir = tempfile::tempdir().expect("temp dir");
        let tools = EtcdTools::default();
        let address = MemberAddress::pick().expect("free loopback address");
        let data = dir.path().join("data");
        let member = ThrowawayEtcd::start(
            &tools,
            "lab",
            &data,
            address,
            &dir.path().join("etcd.log"),
            Duration::from_secs(60),
        )
        .await
        .expect("a throwaway etcd starts (etcd 3.4 must be installed: scripts/setup.sh)");
        let url = member.client_url();
        let http = reqwest::Client::new();
        let put = |key: String, value: Vec<u8>| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let body = serde_json::json!({"key": B64.encode(key.as_bytes()), "value": B64.encode(value)});
                let r = http
                    .post(format!("{url}/v3/kv/put"))
                    .json(&body)
                    .send()
                    .await
                    .expect("put");
                assert!(r.status().is_success(), "put {key}: {}", r.status());
            }
        };
        for i in 0..PODS {
            put(
                format!("/registry/pods/default/web-{i}"),
                format!("pod {i}").into_bytes(),
            )
            .await;
        }
        put(
            "/registry/deployments/kube-system/coredns".into(),
            b"deployment".to_vec(),
        )
        .await;
        put(
            "/registry/services/specs/default/kubernetes".into(),
            b"service".to_vec(),
        )
        .await;
        put(
            "/registry/configmaps/default/marker".into(),
            MARKER_VALUE.to_vec(),
        )
        .await;
        for i in 0..mib {
            let value: Vec<u8> = (0..1024 * 1024u32)
                .map(|b| (b.wrapping_mul(31).wrapping_add(i as u32)) as u8)
                .collect();
            put(format!("/registry/secrets/default/bulk-{i}"), value).await;
        }
        // Overwrite and delete too, so the history holds more than one revision per key.
        put(
            "/registry/pods/default/web-0".into(),
            b"pod 0 again".to_vec(),
        )
        .await;
        let del = serde_json::json!({"key": B64.encode("/registry/pods/default/web-1")});
        let r = http
            .post(format!("{url}/v3/kv/deleterange"))
            .json(&del)
            .send()
            .await
            .expect("delete");
        assert!(r.status().is_success());

        let snapshot = dir.path().join("lab.snapshot");
        let snapshot_arg = snapshot.to_string_lossy().into_owned();
        etcdctl(
            &tools,
            &["--endpoints", &url, "snapshot", "save", &snapshot_arg],
        )
        .await
        .expect("etcdctl snapshot save");
        member.stop().await;
        let raw_copy = dir.path().join("lab-raw.db");
        std::fs::copy(data.join("member/snap/db"), &raw_copy).expect("copy member/snap/db");
        let status = etcdctl(&tools, &["snapshot", "status", &snapshot_arg, "-w", "json"])
            .await
            .expect("etcdctl snapshot status");
        let status = serde_json::from_str(status.trim()).expect("status json");
        EtcdLab {
            dir,
            snapshot,
            raw_copy,
            status,
        }
    }

    pub fn snapshot_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.snapshot).expect("read snapshot")
    }

    pub fn raw_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.raw_copy).expect("read raw copy")
    }
}

/// `bytes` as a stream of odd-sized chunks (never aligned with pages or the trailer).
pub fn chunks(bytes: &[u8]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + use<> {
    let parts: Vec<Result<Bytes, std::io::Error>> = bytes
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts)
}

pub fn options(cluster: &str, expected: ExpectedKind) -> IngestOptions {
    IngestOptions {
        cluster: cluster.into(),
        expected,
        size_limit: 64 * 1024 * 1024,
        // 2026-11-26T10:00:00Z
        taken_at_ms: 1_795_687_200_000,
        id: SnapshotId::random(),
        expected_size: None,
        min_free_bytes: 0,
        free_space: crate::snapshots::disk::free_bytes,
    }
}

/// Files (not directories) anywhere under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Flips one byte of the marker value: same length, valid structure, different content.
pub fn flip_marker(bytes: &mut [u8]) {
    let at = bytes
        .windows(MARKER_VALUE.len())
        .position(|w| w == MARKER_VALUE)
        .expect("marker value in the file");
    bytes[at + 7] ^= 0x01;
}

#[path = "../../../tests/support/moto.rs"]
mod moto;
pub use moto::Moto;

impl Moto {
    pub fn settings(&self) -> crate::snapshots::S3Settings {
        crate::snapshots::S3Settings {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            path_style: true,
            timeout: Duration::from_secs(20),
        }
    }
}
