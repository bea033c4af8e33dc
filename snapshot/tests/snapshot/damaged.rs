//! Damaged and hostile input: always an answer, never a panic, never an endless walk.

use talos_dr_snapshot::{Restorability, Snapshot};

use crate::fixtures::{DAMAGED, FIXTURES, noise};

fn exercise(s: &Snapshot) {
    let status = s.status();
    let contents = s.contents();
    let v = s.verify(true);
    let _ = s.verify(false);
    let name = s.path().display().to_string();
    crate::inspect::assert_agrees(s, &name, true, &v, &status, &contents);
    if status.is_err() {
        assert!(
            v.kind == talos_dr_snapshot::SnapshotKind::Damaged || s.is_empty(),
            "{:?}",
            v.kind
        );
    }
}

#[test]
fn damaged_files_never_panic_and_are_reported() {
    for (name, _) in DAMAGED {
        let s = talos_dr_snapshot::open(FIXTURES.file(name)).expect("open");
        exercise(&s);
        assert_ne!(
            s.verify(true).kind,
            talos_dr_snapshot::SnapshotKind::SnapshotWithTrailer,
            "{name}"
        );
    }
}

#[test]
fn every_truncation_and_many_byte_flips_give_an_answer() {
    let good = std::fs::read(FIXTURES.file("k8s.db")).expect("read");
    for cut in (0..good.len()).step_by(good.len() / 150) {
        exercise(&Snapshot::from_bytes("cut", good[..cut].to_vec()));
    }
    let positions = noise(4000, 99);
    for pair in positions.chunks(4) {
        let at = (u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]) as usize) % good.len();
        let mut b = good.clone();
        b[at] ^= 0x5a;
        exercise(&Snapshot::from_bytes("flip", b));
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A bbolt image whose root is a branch page pointing at itself.
fn cyclic_image() -> Vec<u8> {
    let ps = 4096usize;
    let mut b = vec![0u8; ps * 3];
    for (i, txid) in [(0usize, 2u64), (1, 1)] {
        let p = i * ps;
        b[p..p + 8].copy_from_slice(&(i as u64).to_le_bytes());
        b[p + 8..p + 10].copy_from_slice(&0x04u16.to_le_bytes());
        let m = p + 16;
        b[m..m + 4].copy_from_slice(&0xED0C_DAEDu32.to_le_bytes());
        b[m + 4..m + 8].copy_from_slice(&2u32.to_le_bytes());
        b[m + 8..m + 12].copy_from_slice(&(ps as u32).to_le_bytes());
        b[m + 16..m + 24].copy_from_slice(&2u64.to_le_bytes()); // root
        b[m + 32..m + 40].copy_from_slice(&u64::MAX.to_le_bytes()); // no freelist
        b[m + 40..m + 48].copy_from_slice(&3u64.to_le_bytes()); // pgid
        b[m + 48..m + 56].copy_from_slice(&txid.to_le_bytes());
        let sum = fnv1a64(&b[m..m + 56]);
        b[m + 56..m + 64].copy_from_slice(&sum.to_le_bytes());
    }
    let p = 2 * ps;
    b[p..p + 8].copy_from_slice(&2u64.to_le_bytes());
    b[p + 8..p + 10].copy_from_slice(&0x01u16.to_le_bytes());
    b[p + 10..p + 12].copy_from_slice(&1u16.to_le_bytes());
    let e = p + 16;
    b[e..e + 4].copy_from_slice(&16u32.to_le_bytes()); // key right after the element
    b[e + 4..e + 8].copy_from_slice(&1u32.to_le_bytes());
    b[e + 8..e + 16].copy_from_slice(&2u64.to_le_bytes()); // child: itself
    b[e + 16] = b'k';
    b
}

#[test]
fn a_page_cycle_ends_the_walk_with_a_multiple_reference_error() {
    let s = Snapshot::from_bytes("cycle", cyclic_image());
    let err = s.status().expect_err("cycle").to_string();
    assert!(err.contains("multiple references"), "{err}");
    let v = s.verify(true);
    assert_eq!(v.restorability, Restorability::WillNotRestore);
    assert!(
        v.problems
            .iter()
            .any(|p| p.kind == talos_dr_snapshot::bbolt::ProblemKind::MultipleReferences)
    );
}

#[test]
fn short_and_empty_inputs() {
    for len in [0usize, 1, 31, 32, 33, 4096, 8192] {
        let s = Snapshot::from_bytes("zeros", vec![0; len]);
        assert!(
            s.status().is_err(),
            "{len} zero bytes have no valid meta page"
        );
        exercise(&s);
    }
    let v = Snapshot::from_bytes("empty", Vec::new()).verify(true);
    assert_eq!(v.restorability, Restorability::WillNotRestore);
}
