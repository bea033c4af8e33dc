//! The real console binary as a child process: started on a database that outlives it, killed
//! with SIGKILL at any moment, and started again on the same database.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::helpers::TEST_PASSWORD;

/// The cluster's name in the console.
pub const CLUSTER: &str = "faults";
const START_PATIENCE: Duration = Duration::from_secs(60);

pub struct ConsoleProcess {
    /// `http://ip:port`, the same for every start so sessions and URLs stay valid.
    pub address: String,
    /// A copy of the binary taken when the flow begins: every start of one flow runs the same
    /// build, even when the workspace rebuilds `talos-dr` meanwhile.
    binary: PathBuf,
    config_path: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    failpoint_file: PathBuf,
    child: Option<Child>,
    /// The failpoints the running process was started with.
    armed: Vec<String>,
    starts: u32,
}

impl ConsoleProcess {
    /// Writes the config file and adds the users to a fresh database under `dir`; starts nothing.
    pub async fn prepare(
        dir: &Path,
        listen: SocketAddr,
        talosconfig: &Path,
        users: &[(&str, &str)],
    ) -> Self {
        let data_dir = dir.join("data");
        let config_path = dir.join("talos-dr.yaml");
        let config = format!(
            "listen: {listen}\npoll_interval: 500ms\ncall_timeout: 3s\ndata_dir: {}\nclusters:\n  - name: {CLUSTER}\n    talosconfig: {}\n",
            data_dir.display(),
            talosconfig.display()
        );
        std::fs::write(&config_path, config).expect("write the console's config file");
        let binary = dir.join("talos-dr");
        std::fs::copy(env!("CARGO_BIN_EXE_talos-dr"), &binary).expect("copy the console binary");
        let console = Self {
            address: format!("http://{listen}"),
            binary,
            config_path,
            data_dir,
            log_path: dir.join("console.log"),
            failpoint_file: dir.join("failpoints.log"),
            child: None,
            armed: Vec::new(),
            starts: 0,
        };
        for (name, role) in users {
            console.add_user(name, role).await;
        }
        console
    }

    /// `talos-dr user add NAME --role ROLE --password-stdin`, as an SRE would.
    async fn add_user(&self, name: &str, role: &str) {
        let mut child = tokio::process::Command::new(&self.binary)
            .args(["user", "add", name, "--role", role, "--password-stdin"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("TALOS_DR_DATA_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("talos-dr user add starts");
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin
            .write_all(format!("{TEST_PASSWORD}\n").as_bytes())
            .await
            .expect("password written");
        drop(stdin);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("talos-dr user add finishes")
            .expect("talos-dr user add runs");
        assert!(
            out.status.success(),
            "talos-dr user add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts `talos-dr serve` with `failpoints` armed and waits until it answers HTTP.
    pub async fn start(&mut self, failpoints: &[&str]) {
        assert!(self.child.is_none(), "the console is already running");
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open the console log");
        std::io::Write::write_all(
            &mut log,
            format!(
                "\n===== start #{} failpoints=[{}] =====\n",
                self.starts,
                failpoints.join(",")
            )
            .as_bytes(),
        )
        .expect("write the console log");
        let stderr = log.try_clone().expect("clone the log file");
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .env_remove("TALOS_DR_CONFIG")
            .env_remove("TALOS_DR_LISTEN")
            .env_remove("TALOS_DR_DATA_DIR")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("TALOS_DR_FAILPOINTS", failpoints.join(","))
            .env("TALOS_DR_FAILPOINT_FILE", &self.failpoint_file)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("talos-dr serve starts");
        self.child = Some(child);
        self.armed = failpoints.iter().map(|f| f.to_string()).collect();
        self.wait_until_serving().await;
    }

    async fn wait_until_serving(&mut self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!(
                    "the console exited while starting ({status}); log:\n{}",
                    self.log_tail(40)
                );
            }
            // Another process on the address would answer too: only this start's own
            // "listening" line says the answer comes from the child.
            let answered = http
                .get(format!("{}/api/session", self.address))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok();
            if answered && self.this_start_listens() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the console did not answer within {START_PATIENCE:?}; log:\n{}",
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn this_start_listens(&self) -> bool {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let marker = format!("===== start #{} ", self.starts);
        log.rsplit_once(&marker)
            .is_some_and(|(_, this_start)| this_start.contains("console listening"))
    }

    /// SIGKILL, then reap. The process must still be running: a console that exits on its own
    /// (a failpoint that does not block, a crash) is a finding, not a kill.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the console is running");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the console had already exited ({status}) before the kill; log:\n{}",
                self.log_tail(40)
            );
        }
        child.kill().expect("SIGKILL the console");
        child.wait().expect("reap the console");
        self.armed.clear();
    }

    /// Kill, then start on the same database with `failpoints` armed.
    pub async fn restart(&mut self, failpoints: &[&str]) {
        self.kill();
        self.start(failpoints).await;
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// How many times `point` (`reset_node:after_claim`) was reached, over every start.
    pub fn failpoint_hits(&self, point: &str) -> usize {
        let wanted = format!("failpoint reached: {point}");
        std::fs::read_to_string(&self.failpoint_file)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.trim() == wanted)
            .count()
    }

    /// Waits until `point` has been reached once more than `before` times; the process is then
    /// blocked in it, waiting for the kill.
    pub async fn wait_failpoint(&mut self, point: &str, before: usize, within: Duration) {
        assert!(
            self.armed.iter().any(|p| p == point),
            "{point} is not armed in this start"
        );
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.failpoint_hits(point) > before {
                return;
            }
            if !self.is_running() {
                panic!(
                    "the console exited while waiting for failpoint {point}; log:\n{}",
                    self.log_tail(40)
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "failpoint {point} not reached within {within:?} (file {}); log:\n{}",
                self.failpoint_file.display(),
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `talos-dr audit verify` on the database: whether the hash chain is intact, and its words.
    pub async fn audit_verify(&self) -> (bool, String) {
        let out = tokio::process::Command::new(&self.binary)
            .args(["audit", "verify", "--data-dir"])
            .arg(&self.data_dir)
            .env_remove("TALOS_DR_DATA_DIR")
            .kill_on_drop(true)
            .output()
            .await
            .expect("talos-dr audit verify runs");
        let words = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        (out.status.success(), words)
    }

    /// The last `n` lines of the console's output over every start, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn starts(&self) -> u32 {
        self.starts
    }
}

impl Drop for ConsoleProcess {
    /// A failing test must not leave a console running (it would hold the address and block
    /// forever in a failpoint).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
