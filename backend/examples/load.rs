//! Load benchmark: the real console on loopback with an in-process fake Talos cluster, 500
//! viewers reading the health JSON while 500 health streams stay open. Prints the JSON latency
//! (p50/p99) twice: with every viewer reading once a second (a page's refresh rate), and with
//! every viewer reading back to back (a burst: 500 requests always in flight, so the latency is
//! mostly queueing); then how long one health change takes to reach every stream. Stops by
//! itself.
//!
//! `cargo run --release -p talos-dr --example load [-- --viewers N --streams N --requests N
//! --seconds N]` (scripts/bench-load.sh). Client and console share the machine's cores, so the
//! figures are a worst case for the console.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use futures::StreamExt;
use talos_dr::auth::users::add_user;
use talos_dr::health::PollSettings;
use talos_dr::talos::{TalosApi, TalosError};
use talos_dr::{AccessSettings, AppState, Storage, watch_cluster};
use talos_dr_shared::{
    EtcdAlarm, EtcdMember, EtcdMemberStatus, EtcdService, MachineType, Role, ServiceHealth,
    ServiceState, VerdictLevel, format_member_id,
};

const NODES: u8 = 3;
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The whole run stops after this, whatever happens.
const RUN_LIMIT: Duration = Duration::from_secs(120);
const PASSWORD: &str = "a long benchmark password";

/// Three healthy control-plane nodes; `down` stops etcd on the third.
struct FakeCluster {
    down: AtomicBool,
}

fn node(n: u8) -> String {
    format!("10.0.0.{n}")
}

fn member(n: u8) -> EtcdMember {
    EtcdMember {
        id: format_member_id(0x1000 + u64::from(n)),
        hostname: format!("cp-{n}"),
        peer_urls: vec![format!("https://10.0.0.{n}:2380")],
        client_urls: vec![format!("https://10.0.0.{n}:2379")],
        is_learner: false,
    }
}

fn index(node: &str) -> Result<u8, TalosError> {
    node.strip_prefix("10.0.0.")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=NODES).contains(n))
        .ok_or_else(|| TalosError::Unreachable("no such node".into()))
}

impl FakeCluster {
    fn etcd_up(&self, node: &str) -> Result<u8, TalosError> {
        let n = index(node)?;
        if n == NODES && self.down.load(Ordering::Relaxed) {
            return Err(TalosError::Refused(
                "etcd not running (connection refused)".into(),
            ));
        }
        Ok(n)
    }
}

#[async_trait]
impl TalosApi for FakeCluster {
    async fn version(&self, node: &str) -> Result<String, TalosError> {
        index(node).map(|_| "v1.11.2".into())
    }
    async fn machine_type(&self, node: &str) -> Result<MachineType, TalosError> {
        index(node).map(|_| MachineType::Controlplane)
    }
    async fn etcd_service(&self, node: &str) -> Result<Option<EtcdService>, TalosError> {
        let n = index(node)?;
        let failed = n == NODES && self.down.load(Ordering::Relaxed);
        Ok(Some(EtcdService {
            state: if failed {
                ServiceState::Failed
            } else {
                ServiceState::Running
            },
            health: if failed {
                ServiceHealth::Unhealthy
            } else {
                ServiceHealth::Healthy
            },
            health_message: String::new(),
            events: vec![],
        }))
    }
    async fn etcd_members(&self, node: &str) -> Result<Vec<EtcdMember>, TalosError> {
        self.etcd_up(node)?;
        Ok((1..=NODES).map(member).collect())
    }
    async fn etcd_status(&self, node: &str) -> Result<EtcdMemberStatus, TalosError> {
        let n = self.etcd_up(node)?;
        Ok(EtcdMemberStatus {
            member_id: member(n).id,
            leader: member(1).id,
            protocol_version: "3.5.0".into(),
            storage_version: "3.5.0".into(),
            db_size: 4096,
            db_size_in_use: 2048,
            raft_index: 100,
            raft_term: 2,
            raft_applied_index: 100,
            is_learner: false,
            errors: vec![],
        })
    }
    async fn etcd_alarms(&self, node: &str) -> Result<Vec<EtcdAlarm>, TalosError> {
        self.etcd_up(node)?;
        Ok(vec![])
    }
}

struct Args {
    viewers: usize,
    streams: usize,
    /// Health reads per viewer in the burst.
    requests: usize,
    /// Seconds of one read per viewer per second.
    seconds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        viewers: 500,
        streams: 500,
        requests: 20,
        seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it
            .next()
            .with_context(|| format!("{flag} needs a number"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--viewers" => args.viewers = value.clamp(1, 5000),
            "--streams" => args.streams = value.clamp(1, 5000),
            "--requests" => args.requests = value.clamp(1, 1000),
            "--seconds" => args.seconds = value.clamp(1, 60),
            other => {
                bail!("unknown flag {other:?} (use --viewers, --streams, --requests, --seconds)")
            }
        }
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `viewers` concurrent readers, `rounds` reads each: every `pace` (spread over the first
/// interval so they do not all fire together), or back to back without a pace. Returns every
/// latency, sorted, and the wall time.
async fn read_health(
    http: &reqwest::Client,
    url: &str,
    viewers: usize,
    rounds: usize,
    pace: Option<Duration>,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let readers: Vec<_> = (0..viewers)
        .map(|i| {
            let http = http.clone();
            let url = url.to_string();
            tokio::spawn(async move {
                let mut ticker = pace.map(|every| {
                    let offset = every.mul_f64(i as f64 / viewers as f64);
                    let mut t =
                        tokio::time::interval_at(tokio::time::Instant::now() + offset, every);
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    t
                });
                let mut took = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    if let Some(ticker) = ticker.as_mut() {
                        ticker.tick().await;
                    }
                    let t = Instant::now();
                    let response = http.get(&url).send().await?;
                    let status = response.status();
                    response.bytes().await?;
                    if !status.is_success() {
                        bail!("health answered HTTP {status}");
                    }
                    took.push(t.elapsed());
                }
                Ok(took)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(viewers * rounds);
    for reader in readers {
        latencies.extend(reader.await??);
    }
    let wall = started.elapsed();
    latencies.sort();
    Ok((latencies, wall))
}

fn report(what: &str, sorted: &[Duration], wall: Duration) {
    println!(
        "{what}: {} requests in {:.2} s ({:.0} req/s): p50 {}, p99 {}, max {}",
        sorted.len(),
        wall.as_secs_f64(),
        sorted.len() as f64 / wall.as_secs_f64(),
        ms(percentile(sorted, 50.0)),
        ms(percentile(sorted, 99.0)),
        ms(percentile(sorted, 100.0)),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    tokio::time::timeout(RUN_LIMIT, run(args))
        .await
        .context("the benchmark did not finish within its time limit")?
}

async fn run(args: Args) -> anyhow::Result<()> {
    // The console, watching one fake cluster.
    let fake = Arc::new(FakeCluster {
        down: AtomicBool::new(false),
    });
    let settings = PollSettings {
        cluster: "bench".into(),
        nodes: (1..=NODES).map(node).collect(),
        interval: POLL_INTERVAL,
        call_timeout: Duration::from_secs(1),
    };
    let watched = watch_cluster(settings, fake.clone() as Arc<dyn TalosApi>);
    let hub = watched.health.clone();
    let data_dir = tempfile::tempdir().context("temporary data directory")?;
    let storage = Storage::open(data_dir.path()).await?;
    add_user(
        &storage.users,
        "bench",
        &[Role::Viewer],
        Some(PASSWORD.into()),
    )
    .await?;
    let state = AppState::new(vec![watched], storage, AccessSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(talos_dr::run(listener, state));
    hub.wait_for(|h| h.verdict.level == VerdictLevel::Healthy)
        .await
        .context("the first poll never came back healthy")?;

    // One signed-in session, shared by every simulated browser (the cookie jar is shared).
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(args.viewers + args.streams)
        .build()?;
    let login = http
        .post(format!("{base}/api/session"))
        .header("Origin", &base)
        .json(&serde_json::json!({"username": "bench", "password": PASSWORD}))
        .send()
        .await?;
    if !login.status().is_success() {
        bail!("signing in answered HTTP {}", login.status());
    }

    // 500 open event streams, each waiting for the first health that is not healthy.
    let stream_url = format!("{base}/api/clusters/bench/health/stream");
    let mut opened = Vec::with_capacity(args.streams);
    for _ in 0..args.streams {
        let response = http.get(&stream_url).send().await?;
        if !response.status().is_success() {
            bail!("opening a stream answered HTTP {}", response.status());
        }
        opened.push(response);
    }
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.streams);
    let streams: Vec<_> = opened
        .into_iter()
        .map(|response| {
            let ready = ready_tx.clone();
            tokio::spawn(async move {
                let mut body = response.bytes_stream();
                let mut text = String::new();
                let mut told = false;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.ok()?;
                    text.push_str(&String::from_utf8_lossy(&chunk));
                    if !told && text.contains("event: health") {
                        told = true;
                        let _ = ready.send(()).await;
                    }
                    if text.contains("\"level\":\"degraded\"") {
                        return Some(Instant::now());
                    }
                    // Keep only what a split marker could still need.
                    if let Some(cut) = text.len().checked_sub(64) {
                        let cut = (cut..text.len()).find(|i| text.is_char_boundary(*i))?;
                        text.drain(..cut);
                    }
                }
                None
            })
        })
        .collect();
    drop(ready_tx);
    for _ in 0..args.streams {
        ready_rx
            .recv()
            .await
            .context("a stream closed before its first health event")?;
    }
    println!("{} event streams open and live", args.streams);

    // 500 viewers reading the health JSON, while the streams stay open.
    let health_url = format!("{base}/api/clusters/bench/health");
    let (latencies, wall) = read_health(
        &http,
        &health_url,
        args.viewers,
        args.seconds,
        Some(Duration::from_secs(1)),
    )
    .await?;
    report(
        &format!(
            "health JSON, {} viewers each reading once a second",
            args.viewers
        ),
        &latencies,
        wall,
    );
    let (latencies, wall) =
        read_health(&http, &health_url, args.viewers, args.requests, None).await?;
    report(
        &format!(
            "health JSON, {} viewers reading back to back (burst)",
            args.viewers
        ),
        &latencies,
        wall,
    );

    // One health change: etcd stops on a node; the next poll publishes it to every stream.
    let published = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.wait_for(|h| h.verdict.level == VerdictLevel::Degraded)
                .await
                .map(|_| Instant::now())
        })
    };
    let flipped = Instant::now();
    fake.down.store(true, Ordering::Relaxed);
    let published = published
        .await?
        .context("the console never published the change")?;
    let mut arrivals = Vec::with_capacity(args.streams);
    for stream in streams {
        let seen = stream
            .await?
            .context("a stream ended before the change arrived")?;
        arrivals.push(seen.saturating_duration_since(published));
    }
    arrivals.sort();
    println!(
        "health change: published {} after etcd stopped (poll every {}); reached all {} streams {} after publishing (p50 {}, p99 {})",
        ms(published - flipped),
        ms(POLL_INTERVAL),
        arrivals.len(),
        ms(percentile(&arrivals, 100.0)),
        ms(percentile(&arrivals, 50.0)),
        ms(percentile(&arrivals, 99.0)),
    );
    server.abort();
    Ok(())
}
