//! A throwaway etcd member on loopback and the `etcdctl` calls around it: what a restore
//! rehearsal runs, and how tests make real snapshots.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rand::Rng;
use tokio::process::{Child, Command};

/// Where the etcd 3.4 binaries are (Debian's `etcd-server` and `etcd-client`).
#[derive(Debug, Clone)]
pub struct EtcdTools {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
}

impl Default for EtcdTools {
    fn default() -> Self {
        EtcdTools {
            etcd: PathBuf::from("etcd"),
            etcdctl: PathBuf::from("etcdctl"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
    #[error("no free loopback port on {ip}: {source}")]
    NoPort {
        ip: Ipv4Addr,
        source: std::io::Error,
    },
    #[error("etcd on {url} did not become healthy within {waited:?}; its log ends: {log}")]
    NotHealthy {
        url: String,
        waited: Duration,
        log: String,
    },
    #[error("etcd on {url} exited during start-up ({status}); its log ends: {log}")]
    Exited {
        url: String,
        status: String,
        log: String,
    },
    #[error("directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Loopback addresses for a member: a random address in 127.0.30.1–127.0.39.254 (so parallel
/// rehearsals and tests do not meet) and two ports the kernel says are free there.
#[derive(Debug, Clone, Copy)]
pub struct MemberAddress {
    pub ip: Ipv4Addr,
    pub client_port: u16,
    pub peer_port: u16,
}

impl MemberAddress {
    pub fn pick() -> Result<MemberAddress, EtcdError> {
        let mut rng = rand::thread_rng();
        let ip = Ipv4Addr::new(127, 0, rng.gen_range(30..=39), rng.gen_range(1..=254));
        let probe = |ip| {
            TcpListener::bind(SocketAddrV4::new(ip, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|source| EtcdError::NoPort { ip, source })
        };
        let client_port = probe(ip)?;
        let mut peer_port = probe(ip)?;
        while peer_port == client_port {
            peer_port = probe(ip)?;
        }
        Ok(MemberAddress {
            ip,
            client_port,
            peer_port,
        })
    }

    pub fn client_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.peer_port)
    }
}

/// Runs `etcdctl` (API v3) and returns its stdout, or its stderr in the error.
pub async fn etcdctl(tools: &EtcdTools, args: &[&str]) -> Result<String, EtcdError> {
    let program = tools.etcdctl.display().to_string();
    let output = Command::new(&tools.etcdctl)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| EtcdError::Spawn {
            program: program.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&output.stdout).trim().to_string();
        }
        Err(EtcdError::Command {
            command: format!("etcdctl {}", args.join(" ")),
            status: output.status.to_string(),
            output: last_lines(&text, 6),
        })
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// One etcd process. Killed when dropped; [`ThrowawayEtcd::stop`] also waits for it to exit.
pub struct ThrowawayEtcd {
    child: Child,
    address: MemberAddress,
    name: String,
    data_dir: PathBuf,
    log: PathBuf,
}

impl ThrowawayEtcd {
    /// Starts etcd on `address` with `data_dir` (new or restored) and waits until it answers
    /// `/health`. Its log goes to `log`.
    pub async fn start(
        tools: &EtcdTools,
        name: &str,
        data_dir: &Path,
        address: MemberAddress,
        log: &Path,
        patience: Duration,
    ) -> Result<ThrowawayEtcd, EtcdError> {
        let log_file = std::fs::File::create(log).map_err(|source| EtcdError::Directory {
            path: log.to_path_buf(),
            source,
        })?;
        let log_err = log_file
            .try_clone()
            .map_err(|source| EtcdError::Directory {
                path: log.to_path_buf(),
                source,
            })?;
        let client = address.client_url();
        let peer = address.peer_url();
        let child = Command::new(&tools.etcd)
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("{name}={peer}")])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| EtcdError::Spawn {
                program: tools.etcd.display().to_string(),
                source,
            })?;
        let mut member = ThrowawayEtcd {
            child,
            address,
            name: name.to_string(),
            data_dir: data_dir.to_path_buf(),
            log: log.to_path_buf(),
        };
        member.wait_healthy(patience).await?;
        Ok(member)
    }

    async fn wait_healthy(&mut self, patience: Duration) -> Result<(), EtcdError> {
        let url = format!("{}/health", self.address.client_url());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| EtcdError::NotHealthy {
                url: url.clone(),
                waited: Duration::ZERO,
                log: e.to_string(),
            })?;
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(EtcdError::Exited {
                    url,
                    status: status.to_string(),
                    log: self.log_tail(),
                });
            }
            if let Ok(r) = http.get(&url).send().await
                && let Ok(body) = r.text().await
                && body.contains("\"true\"")
            {
                return Ok(());
            }
            if started.elapsed() > patience {
                return Err(EtcdError::NotHealthy {
                    url,
                    waited: patience,
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        std::fs::read_to_string(&self.log)
            .map(|t| last_lines(&t, 4))
            .unwrap_or_else(|e| format!("(log {} unreadable: {e})", self.log.display()))
    }

    pub fn client_url(&self) -> String {
        self.address.client_url()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Kills the process and waits for it, so its files are closed before the caller copies
    /// or removes the data directory.
    pub async fn stop(mut self) {
        if let Err(e) = self.child.kill().await {
            tracing::warn!(error = %e, "cannot stop a throwaway etcd");
        }
    }
}
