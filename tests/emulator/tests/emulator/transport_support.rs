//! Helpers for the transport tests: a cluster in a temporary state dir, raw HTTP.

use std::net::{Ipv4Addr, SocketAddr};

use talos_emulator::{Emulator, EmulatorOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct TestCluster {
    pub emulator: Emulator,
    // Held so the state dir lives as long as the cluster.
    _dir: tempfile::TempDir,
}

impl TestCluster {
    pub async fn start(nodes: usize, base_ip: Ipv4Addr, seed_keys: usize) -> TestCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut options = EmulatorOptions::new(nodes, base_ip, dir.path());
        options.seed_keys = seed_keys;
        let emulator = Emulator::start(options).await.expect("emulator starts");
        TestCluster {
            emulator,
            _dir: dir,
        }
    }

    pub async fn stop(self) {
        self.emulator.shutdown().await;
    }
}

/// One HTTP/1.1 request over a fresh connection; returns (status code, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to control");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
