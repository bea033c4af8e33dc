//! Real etcd 3.4 processes and etcdctl calls for the tests. Every process is killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

pub struct Cluster {
    pub ips: Vec<String>,
    children: Vec<Child>,
    pub data_dirs: Vec<PathBuf>,
}

fn peer_url(ip: &str) -> String {
    format!("http://{ip}:2380")
}

impl Cluster {
    /// A new cluster with one member per address (loopback only).
    pub fn start(ips: &[&str], base: &Path) -> Cluster {
        let initial: Vec<String> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| format!("m{}={}", i + 1, peer_url(ip)))
            .collect();
        Self::launch(ips, base, &initial.join(","), None)
    }

    /// One member serving a data dir produced by `etcdctl snapshot restore` (member name r1).
    pub fn start_restored(ip: &str, data_dir: &Path) -> Cluster {
        Self::launch(
            &[ip],
            data_dir.parent().unwrap_or(data_dir),
            &format!("r1={}", peer_url(ip)),
            Some(data_dir),
        )
    }

    fn launch(
        ips: &[&str],
        base: &Path,
        initial_cluster: &str,
        restored: Option<&Path>,
    ) -> Cluster {
        let mut c = Cluster {
            ips: ips.iter().map(|s| s.to_string()).collect(),
            children: Vec::new(),
            data_dirs: Vec::new(),
        };
        for (i, ip) in ips.iter().enumerate() {
            let name = if restored.is_some() {
                "r1".to_string()
            } else {
                format!("m{}", i + 1)
            };
            let dir = restored
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base.join(format!("data-{ip}")));
            let log = std::fs::File::create(base.join(format!("etcd-{ip}.log"))).expect("log file");
            let child = Command::new("etcd")
                .args(["--name", &name, "--data-dir"])
                .arg(&dir)
                .args([
                    "--listen-client-urls",
                    &format!("http://{ip}:2379"),
                    "--advertise-client-urls",
                    &format!("http://{ip}:2379"),
                ])
                .args([
                    "--listen-peer-urls",
                    &peer_url(ip),
                    "--initial-advertise-peer-urls",
                    &peer_url(ip),
                ])
                .args([
                    "--initial-cluster",
                    initial_cluster,
                    "--initial-cluster-token",
                    "snapshot-tests",
                    "--initial-cluster-state",
                    "new",
                ])
                .args([
                    "--max-txn-ops",
                    "20000",
                    "--max-request-bytes",
                    "8388608",
                    "--quota-backend-bytes",
                    "8589934592",
                ])
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("etcd must be installed (etcd-server)");
            c.children.push(child);
            c.data_dirs.push(dir);
        }
        c.wait_healthy();
        c
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}:2379", self.ips[0])
    }

    fn wait_healthy(&self) {
        let eps: Vec<String> = self
            .ips
            .iter()
            .map(|ip| format!("http://{ip}:2379"))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = etcdctl(
                &[
                    "--endpoints",
                    &eps.join(","),
                    "--dial-timeout=1s",
                    "--command-timeout=1s",
                    "endpoint",
                    "health",
                ],
                None,
            );
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd cluster {:?} not healthy: {}",
                self.ips,
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs etcdctl against the first member.
    pub fn ctl(&self, args: &[&str]) -> String {
        let ep = self.endpoint();
        let mut all = vec!["--endpoints", ep.as_str()];
        all.extend_from_slice(args);
        let out = etcdctl(&all, None);
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One transaction (one revision) of `put KEY VALUE` / `del KEY` lines.
    pub fn txn(&self, ops: &[String]) {
        let ep = self.endpoint();
        let input = format!("\n{}\n\n\n", ops.join("\n"));
        let out = etcdctl(&["--endpoints", &ep, "txn"], Some(input.as_bytes()));
        assert!(
            out.status.success(),
            "txn: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A put with arbitrary bytes, through etcd's JSON gateway (etcdctl takes text only).
    pub fn put_bytes(&self, key: &[u8], value: &[u8]) {
        let b64 = base64::engine::general_purpose::STANDARD;
        let body = format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            b64.encode(key),
            b64.encode(value)
        );
        let mut s = TcpStream::connect(format!("{}:2379", self.ips[0])).expect("connect gateway");
        write!(
            s,
            "POST /v3/kv/put HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.ips[0],
            body.len(),
            body
        )
        .expect("write");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("read");
        assert!(
            resp.starts_with("HTTP/1.1 200"),
            "gateway put failed: {}",
            resp.lines().next().unwrap_or("")
        );
    }

    pub fn revision(&self) -> i64 {
        let out = self.ctl(&["get", "/", "--prefix", "--limit", "1", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["header"]["revision"].as_i64().expect("revision")
    }

    pub fn save(&self, path: &Path) {
        let p = path.to_string_lossy();
        self.ctl(&["snapshot", "save", &p]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGKILL: these are throwaway members and SIGTERM takes ~8 s per cluster.
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
    }
}

pub fn etcdctl(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg("etcdctl")
        .args(args)
        .env("ETCDCTL_API", "3");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("etcdctl must be installed (etcd-client)");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).expect("stdin");
    }
    child.wait_with_output().expect("etcdctl")
}

/// `etcdctl snapshot restore` into a fresh dir: whether it succeeded, and its stderr.
pub fn restore(file: &Path, skip_hash_check: bool, target: &Path) -> (bool, String) {
    let f = file.to_string_lossy();
    let d = target.to_string_lossy();
    let peer = "http://127.0.11.250:2380";
    let cluster = format!("r1={peer}");
    let mut args = vec![
        "snapshot",
        "restore",
        &f,
        "--data-dir",
        &d,
        "--name",
        "r1",
        "--initial-cluster",
        &cluster,
    ];
    args.extend(["--initial-advertise-peer-urls", peer]);
    if skip_hash_check {
        args.push("--skip-hash-check");
    }
    let out = etcdctl(&args, None);
    let err = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with('{'))
        .collect::<Vec<_>>()
        .join("\n");
    (out.status.success(), err)
}
