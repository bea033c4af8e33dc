//! The restore as the bootstrap node's kernel log tells it: the lines of the seed procedure
//! ("recovering etcd from snapshot", "restoring snapshot", "added member", ...) are copied into
//! the incident's timeline while the console waits for etcd to come up.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use talos_dr_shared::recovery::TimelineKind;
use tokio::task::JoinHandle;

use super::store::NewEvent;
use crate::state::AppState;
use crate::talos::TalosRecoveryApi;

/// Lines already in the log when following starts: enough to include a restore that began
/// moments before.
const TAIL_LINES: i32 = 200;

/// Whether a kernel-log line is part of an etcd restore.
pub fn is_recovery_line(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("recovering etcd from snapshot")
        || t.contains("restor")
        || t.contains("added member")
        || t.contains("bootstrapping etcd")
        || t.contains("error verifying snapshot")
}

/// Follows the node's kernel log until aborted, copying restore lines into the timeline once.
pub fn follow(
    state: AppState,
    incident_id: String,
    step_id: String,
    talos: Arc<dyn TalosRecoveryApi>,
    node: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let service = state.recovery();
        let mut seen: HashSet<String> = service
            .store
            .timeline(&incident_id)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.kind == TimelineKind::KernelLog)
            .map(|e| e.text)
            .collect();
        loop {
            let mut lines = match talos.dmesg(&node, true, TAIL_LINES).await {
                Ok(lines) => lines,
                Err(e) => {
                    tracing::debug!(node, error = %e, "kernel log not readable yet");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    continue;
                }
            };
            while let Some(line) = lines.next().await {
                let Ok(line) = line else { break };
                let text = format!("{node}: {}", line.text.trim_end());
                if !is_recovery_line(&line.text) || !seen.insert(text.clone()) {
                    continue;
                }
                let event =
                    NewEvent::new(service.now_ms(), TimelineKind::KernelLog, text).step(&step_id);
                service.log_event(&incident_id, event).await;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_procedures_restore_lines_are_recognised() {
        for line in [
            "recovering etcd from snapshot: hash c25fd181, revision 4193, total keys 1287, total size 3035136",
            r#"{"level":"info","msg":"restoring snapshot","path":"/var/lib/etcd.snapshot"}"#,
            r#"{"level":"info","msg":"added member","cluster-id":"a3390e43eb5274e2"}"#,
            r#"{"level":"info","msg":"restored snapshot","path":"/var/lib/etcd.snapshot"}"#,
        ] {
            assert!(is_recovery_line(line), "{line}");
        }
        assert!(!is_recovery_line("eth0: link up"));
    }
}
