//! Any byte sequence must give a result or an error: no panic, no unbounded memory, no endless
//! walk. Each input is read as it is, and once more with valid meta-page checksums so the
//! fuzzer gets past the meta checks into the page trees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talos_dr_snapshot::Snapshot;

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Forces magic, version and checksum of both meta pages, keeping the page size when plausible.
fn with_valid_metas(data: &[u8]) -> Option<Vec<u8>> {
    let mut b = data.to_vec();
    let stored = u32::from_le_bytes(b.get(24..28)?.try_into().ok()?);
    let ps = if (1024..=65536).contains(&stored) && stored.is_power_of_two() {
        stored
    } else {
        1024
    } as usize;
    if b.len() < 2 * ps {
        return None;
    }
    for page in [0, ps] {
        let m = page + 16;
        b[m..m + 4].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
        b[m + 4..m + 8].copy_from_slice(&2u32.to_le_bytes());
        b[m + 8..m + 12].copy_from_slice(&(ps as u32).to_le_bytes());
        let sum = fnv1a64(&b[m..m + 56]);
        b[m + 56..m + 64].copy_from_slice(&sum.to_le_bytes());
    }
    Some(b)
}

fn exercise(bytes: Vec<u8>) {
    let s = Snapshot::from_bytes("fuzz", bytes);
    let _ = s.status();
    let _ = s.contents();
    let _ = s.verify(true);
}

fuzz_target!(|data: &[u8]| {
    exercise(data.to_vec());
    if let Some(fixed) = with_valid_metas(data) {
        exercise(fixed);
    }
});
