//! Restore rehearsal: proves a stored file restores by doing it. The file is restored with
//! `etcdctl snapshot restore` into a throwaway data directory, a throwaway etcd serves it on
//! loopback, and what etcd serves (revision, keys per Kubernetes resource, a digest of every
//! key, value and mod revision) is compared with what the inspector read from the same file.
//! The process and the directory are always removed, whatever happens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use talos_dr_snapshot::classify;

use super::etcd::{EtcdError, EtcdTools, MemberAddress, ThrowawayEtcd, etcdctl};
use super::keyspace::{KeySpace, KeySpaceDigest, read_key_space};

#[derive(Debug, Clone)]
pub struct RehearsalOptions {
    pub tools: EtcdTools,
    /// Parent of the throwaway data directory (it must have room for the restored database).
    pub work_dir: PathBuf,
    /// How long the throwaway etcd may take to become healthy.
    pub patience: Duration,
    /// The sha256 recorded when the file was stored: a stored file changed since then fails.
    pub expected_sha256: Option<String>,
}

impl Default for RehearsalOptions {
    fn default() -> Self {
        RehearsalOptions {
            tools: EtcdTools::default(),
            work_dir: std::env::temp_dir(),
            patience: Duration::from_secs(30),
            expected_sha256: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDifference {
    pub resource: String,
    pub inspector_keys: u64,
    pub etcd_keys: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RehearsalReport {
    pub passed: bool,
    /// `etcdctl snapshot restore` succeeded and etcd served the result.
    pub restored: bool,
    pub skip_hash_check: bool,
    pub inspector_revision: Option<i64>,
    pub etcd_revision: Option<i64>,
    pub inspector_keys: Option<u64>,
    pub etcd_keys: Option<u64>,
    /// Keys per resource, as etcd served them.
    pub etcd_resources: BTreeMap<String, u64>,
    /// Resources whose key counts differ between the inspector and etcd.
    pub resource_differences: Vec<ResourceDifference>,
    /// Every finding that makes the rehearsal fail, in words.
    pub differences: Vec<String>,
    /// Why the rehearsal could not run to the end, when it could not.
    pub error: Option<String>,
    pub took_ms: u64,
}

/// What the inspector read from the file.
struct InspectorView {
    revision: i64,
    keys: u64,
    resources: BTreeMap<String, u64>,
    digest: String,
    findings: Vec<String>,
}

/// Rehearses a restore of `file`. Never returns early without cleaning up; problems become
/// `error` or `differences` in the report.
pub async fn rehearse(
    file: &Path,
    skip_hash_check: bool,
    options: &RehearsalOptions,
) -> RehearsalReport {
    let started = Instant::now();
    let mut report = RehearsalReport {
        passed: false,
        restored: false,
        skip_hash_check,
        inspector_revision: None,
        etcd_revision: None,
        inspector_keys: None,
        etcd_keys: None,
        etcd_resources: BTreeMap::new(),
        resource_differences: Vec::new(),
        differences: Vec::new(),
        error: None,
        took_ms: 0,
    };
    let path = file.to_path_buf();
    let expected = options.expected_sha256.clone();
    let inspected =
        tokio::task::spawn_blocking(move || inspect(&path, skip_hash_check, expected.as_deref()))
            .await
            .map_err(|e| format!("the inspector stopped unexpectedly: {e}"))
            .and_then(|r| r);
    let inspector = match inspected {
        Ok(view) => view,
        Err(e) => {
            report.error = Some(e);
            report.took_ms = elapsed_ms(started);
            return report;
        }
    };
    report.inspector_revision = Some(inspector.revision);
    report.inspector_keys = Some(inspector.keys);
    report
        .differences
        .extend(inspector.findings.iter().cloned());

    match restore_and_read(file, skip_hash_check, options).await {
        Err(e) => report.error = Some(e),
        Ok(etcd) => {
            report.restored = true;
            compare(&inspector, &etcd, &mut report);
        }
    }
    report.passed = report.restored && report.error.is_none() && report.differences.is_empty();
    report.took_ms = elapsed_ms(started);
    tracing::info!(file = %file.display(), passed = report.passed, differences = report.differences.len(), "restore rehearsal finished");
    report
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn compare(inspector: &InspectorView, etcd: &KeySpace, report: &mut RehearsalReport) {
    report.etcd_revision = Some(etcd.revision);
    report.etcd_keys = Some(etcd.keys);
    report.etcd_resources = etcd.resources.clone();
    if inspector.revision != etcd.revision {
        report.differences.push(format!(
            "revision: the inspector read {}, the restored etcd serves {}",
            inspector.revision, etcd.revision
        ));
    }
    if inspector.keys != etcd.keys {
        report.differences.push(format!(
            "live keys: the inspector counted {}, the restored etcd serves {}",
            inspector.keys, etcd.keys
        ));
    }
    let names: std::collections::BTreeSet<&String> = inspector
        .resources
        .keys()
        .chain(etcd.resources.keys())
        .collect();
    for name in names {
        let a = inspector.resources.get(name).copied().unwrap_or(0);
        let b = etcd.resources.get(name).copied().unwrap_or(0);
        if a != b {
            report.resource_differences.push(ResourceDifference {
                resource: name.clone(),
                inspector_keys: a,
                etcd_keys: b,
            });
            report.differences.push(format!(
                "{name}: the inspector counted {a} keys, the restored etcd serves {b}"
            ));
        }
    }
    if inspector.digest != etcd.digest {
        report.differences.push(
            "keys, values or mod revisions served by the restored etcd differ from the file's"
                .to_string(),
        );
    }
}

fn inspect(
    file: &Path,
    skip_hash_check: bool,
    expected_sha256: Option<&str>,
) -> Result<InspectorView, String> {
    let snapshot = talos_dr_snapshot::open(file).map_err(|e| e.to_string())?;
    let mut findings = Vec::new();
    if let Some(expected) = expected_sha256 {
        let actual: String = Sha256::digest(snapshot.bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !actual.eq_ignore_ascii_case(expected) {
            findings.push(format!(
                "file sha256 is {actual}, but {expected} was recorded when it was stored: the stored file has changed"
            ));
        }
    }
    let verdict = snapshot.verify(skip_hash_check);
    if verdict.trailer.matches == Some(false) {
        findings.push(format!(
            "the sha256 trailer does not match the database (stored {}, computed {}){}",
            verdict.trailer.stored_sha256.as_deref().unwrap_or("?"),
            verdict.trailer.computed_sha256.as_deref().unwrap_or("?"),
            if skip_hash_check {
                ": the file was changed after it was saved, and restores only because the hash check is skipped"
            } else {
                ""
            }
        ));
    }
    let status = snapshot.status().map_err(|e| e.to_string())?;
    let live = snapshot.live_keys().map_err(|e| e.to_string())?;
    let mut resources = BTreeMap::new();
    let mut entries: Vec<(&[u8], &[u8], i64)> = live
        .keys
        .values()
        .map(|kv| (kv.key, kv.value, kv.mod_revision))
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut digest = KeySpaceDigest::default();
    for (key, value, mod_revision) in &entries {
        *resources.entry(classify(key).resource).or_insert(0u64) += 1;
        digest.add(key, value, *mod_revision);
    }
    Ok(InspectorView {
        revision: status.effective_revision,
        keys: entries.len() as u64,
        resources,
        digest: digest.finish(),
        findings,
    })
}

/// Restores into a throwaway directory, serves it, reads it back. The directory is a
/// `TempDir` and the process is killed on drop, so every exit path cleans up.
async fn restore_and_read(
    file: &Path,
    skip_hash_check: bool,
    options: &RehearsalOptions,
) -> Result<KeySpace, String> {
    let work = tempfile::Builder::new()
        .prefix("talos-dr-rehearsal-")
        .tempdir_in(&options.work_dir)
        .map_err(|e| {
            format!(
                "cannot create a throwaway directory in {}: {e}",
                options.work_dir.display()
            )
        })?;
    let file_arg = file.to_string_lossy().into_owned();
    let mut last_error = String::new();
    // A port probed free can be taken before etcd binds it; a new address is then tried.
    for attempt in 0..3 {
        let address = MemberAddress::pick().map_err(|e| e.to_string())?;
        let data_dir = work.path().join(format!("data-{attempt}"));
        let data_arg = data_dir.to_string_lossy().into_owned();
        let initial_cluster = format!("rehearsal={}", address.peer_url());
        let peer = address.peer_url();
        let mut args = vec![
            "snapshot",
            "restore",
            file_arg.as_str(),
            "--data-dir",
            data_arg.as_str(),
            "--name",
            "rehearsal",
            "--initial-cluster",
            initial_cluster.as_str(),
            "--initial-advertise-peer-urls",
            peer.as_str(),
        ];
        if skip_hash_check {
            args.push("--skip-hash-check");
        }
        etcdctl(&options.tools, &args)
            .await
            .map_err(|e| format!("etcdctl snapshot restore refused the file: {e}"))?;
        let log = work.path().join(format!("etcd-{attempt}.log"));
        match ThrowawayEtcd::start(
            &options.tools,
            "rehearsal",
            &data_dir,
            address,
            &log,
            options.patience,
        )
        .await
        {
            Ok(member) => {
                let read = read_key_space(&member.client_url()).await;
                member.stop().await;
                return read;
            }
            Err(e @ EtcdError::Exited { .. })
                if e.to_string().contains("address already in use") =>
            {
                last_error = e.to_string();
            }
            Err(e) => return Err(format!("the restored member did not start: {e}")),
        }
    }
    Err(format!("the restored member did not start: {last_error}"))
}

impl super::SnapshotStore {
    /// Rehearses a stored snapshot: fetches it into the staging directory, rehearses it with the
    /// hash check its kind allows, checks it against the sha256 recorded at ingest, and removes
    /// the local copy again.
    pub async fn rehearse_stored(
        &self,
        stored: &super::StoredSnapshot,
        options: &RehearsalOptions,
    ) -> Result<RehearsalReport, super::StoreError> {
        let local = self.staging_dir().join(format!(
            "{}.rehearsal",
            super::SnapshotId::random().as_str()
        ));
        let fetched = self.download(&stored.key, &local).await;
        let report = match fetched {
            Ok(_) => {
                let options = RehearsalOptions {
                    expected_sha256: Some(stored.sha256.clone()),
                    ..options.clone()
                };
                let skip = stored.kind == super::StoredKind::RawCopy;
                Ok(rehearse(&local, skip, &options).await)
            }
            Err(e) => Err(e),
        };
        super::store::remove_quietly(&local).await;
        report
    }
}
