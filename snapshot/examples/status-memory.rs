//! Runs `snapshot status` on FILE while sampling the process's anonymous memory (heap and
//! stacks, not the mapped file), and prints the peak.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: status-memory FILE");
        return std::process::ExitCode::from(2);
    };
    let baseline = rss_anon_kib();
    let done = AtomicBool::new(false);
    let mut peak = baseline;
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let r = talos_dr_snapshot::open(&path).and_then(|snap| snap.status());
            done.store(true, Ordering::Release);
            r
        });
        while !done.load(Ordering::Acquire) {
            peak = peak.max(rss_anon_kib());
            std::thread::sleep(Duration::from_millis(2));
        }
        worker.join()
    });
    let elapsed = started.elapsed();
    peak = peak.max(rss_anon_kib());
    match result {
        Ok(Ok(st)) => {
            println!(
                "status {:x} rev {} keys {} size {} in {:.3}s; peak anonymous memory {} KiB ({} KiB before opening)",
                st.hash,
                st.revision,
                st.total_key_entries,
                st.total_size,
                elapsed.as_secs_f64(),
                peak,
                baseline
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("Error: {e}");
            std::process::ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("Error: status panicked");
            std::process::ExitCode::from(1)
        }
    }
}
