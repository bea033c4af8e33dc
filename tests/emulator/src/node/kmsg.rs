//! The node's kernel log (what `talosctl dmesg` reads from `/dev/kmsg`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::broadcast;

use super::clock::rfc3339_nano;
use super::lock;

/// Records kept per boot; older ones fall off like the kernel ring buffer.
const KEEP_RECORDS: usize = 4096;

#[derive(Debug, Clone)]
pub struct KernelRecord {
    pub facility: &'static str,
    pub priority: &'static str,
    pub at: SystemTime,
    pub message: String,
}

impl KernelRecord {
    /// The line Talos' Dmesg handler sends: `<facility>: <priority>: [<ts>]: <message>\n`.
    pub fn format(&self) -> String {
        format!(
            "{}: {:>7}: [{}]: {}\n",
            self.facility,
            self.priority,
            rfc3339_nano(self.at),
            self.message.trim_end_matches('\n')
        )
    }
}

pub struct KernelLog {
    records: Mutex<VecDeque<KernelRecord>>,
    live: broadcast::Sender<KernelRecord>,
}

impl KernelLog {
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            records: Mutex::new(VecDeque::new()),
            live,
        }
    }

    /// A machined log line: userspace writes to /dev/kmsg land as `user: warning` with the `[talos] ` prefix.
    pub fn talos(&self, message: impl Into<String>) {
        self.push("user", "warning", format!("[talos] {}", message.into()));
    }

    pub fn kernel(&self, priority: &'static str, message: impl Into<String>) {
        self.push("kern", priority, message.into());
    }

    fn push(&self, facility: &'static str, priority: &'static str, message: String) {
        let record = KernelRecord {
            facility,
            priority,
            at: SystemTime::now(),
            message,
        };
        {
            let mut records = lock(&self.records);
            if records.len() == KEEP_RECORDS {
                records.pop_front();
            }
            records.push_back(record.clone());
        }
        // Nobody following is fine.
        let _ = self.live.send(record);
    }

    /// A reboot starts a fresh ring buffer.
    pub fn clear(&self) {
        lock(&self.records).clear();
    }

    /// History (unless `tail`) plus, when following, a receiver for what comes next.
    /// The receiver is taken under the same lock so no record is lost or doubled.
    pub fn open(&self, tail: bool) -> (Vec<KernelRecord>, broadcast::Receiver<KernelRecord>) {
        let records = lock(&self.records);
        let history = if tail {
            Vec::new()
        } else {
            records.iter().cloned().collect()
        };
        (history, self.live.subscribe())
    }

    pub fn lines(&self) -> Vec<String> {
        lock(&self.records)
            .iter()
            .map(|r| r.message.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_format_like_talos_dmesg() {
        let log = KernelLog::new();
        log.talos("etcd is waiting to join the cluster");
        let (history, _) = log.open(false);
        let line = history[0].format();
        assert!(line.starts_with("user: warning: ["), "{line}");
        assert!(
            line.ends_with("]: [talos] etcd is waiting to join the cluster\n"),
            "{line}"
        );
        let (tail, _) = log.open(true);
        assert!(tail.is_empty());
    }
}
