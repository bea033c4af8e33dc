//! CRC-32C of the status byte stream, computed on worker threads while the tree walk goes on.
//!
//! The hash covers every value byte, so on large files it is bound by memory bandwidth. CRC-32C
//! of consecutive chunks combines exactly (`crc32c_combine`), so chunks are hashed in parallel.

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

/// Bytes per chunk handed to a worker.
const CHUNK_BYTES: usize = 16 << 20;
/// Slices per chunk, so a file of tiny keys cannot make one chunk's list large.
const CHUNK_SLICES: usize = 1 << 16;
/// Chunks waiting for a worker; bounds the memory held in slice lists.
const QUEUE: usize = 4;

type Job<'a> = (usize, Vec<&'a [u8]>);

fn crc_of(slices: &[&[u8]]) -> (u32, usize) {
    slices.iter().fold((0u32, 0usize), |(c, n), s| {
        (crc32c::crc32c_append(c, s), n + s.len())
    })
}

fn worker<'a>(rx: &Mutex<Receiver<Job<'a>>>) -> Vec<(usize, u32, usize)> {
    let mut done = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => break,
        };
        let Ok((index, slices)) = job else { break };
        let (crc, len) = crc_of(&slices);
        done.push((index, crc, len));
    }
    done
}

/// Runs `walk`, which feeds byte slices in stream order, and returns its result with the
/// CRC-32C of the concatenation of all slices fed.
///
/// Small inputs are hashed on the calling thread (`parallel == false`): threads cost more than
/// they save there.
pub(crate) fn crc32c_of_stream<'a, R>(
    parallel: bool,
    walk: impl FnOnce(&mut dyn FnMut(&'a [u8])) -> R,
) -> (R, u32) {
    if !parallel {
        let mut crc = 0u32;
        let out = walk(&mut |bytes: &'a [u8]| crc = crc32c::crc32c_append(crc, bytes));
        return (out, crc);
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Job<'a>>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                scope.spawn(move || worker(&rx))
            })
            .collect();
        let mut results = Vec::new();
        let mut batch: Vec<&'a [u8]> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut next = 0usize;
        // `move`: dropping the closure drops the sender, which lets the workers finish.
        let mut send = move |batch: Vec<&'a [u8]>, results: &mut Vec<(usize, u32, usize)>| {
            let index = next;
            next += 1;
            // Sending fails only if every worker is gone; hash here then.
            if let Err(std::sync::mpsc::SendError((_, batch))) = tx.send((index, batch)) {
                let (crc, len) = crc_of(&batch);
                results.push((index, crc, len));
            }
        };
        let out = walk(&mut |bytes: &'a [u8]| {
            if bytes.is_empty() {
                return;
            }
            batch.push(bytes);
            batch_bytes += bytes.len();
            if batch_bytes >= CHUNK_BYTES || batch.len() >= CHUNK_SLICES {
                send(std::mem::take(&mut batch), &mut results);
                batch_bytes = 0;
            }
        });
        if !batch.is_empty() {
            send(batch, &mut results);
        }
        drop(send);
        for w in workers {
            match w.join() {
                Ok(done) => results.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results.sort_unstable_by_key(|r| r.0);
        let crc = results.iter().fold(0u32, |acc, &(_, c, len)| {
            crc32c::crc32c_combine(acc, c, len)
        });
        (out, crc)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parallel_chunks_combine_to_the_sequential_crc() {
        let data: Vec<u8> = (0..(40usize << 20)).map(|i| (i * 31 % 251) as u8).collect();
        let pieces: Vec<&[u8]> = data.chunks(4093).collect();
        for parallel in [true, false] {
            let ((), crc) =
                super::crc32c_of_stream(parallel, |feed| pieces.iter().for_each(|p| feed(p)));
            assert_eq!(crc, crc32c::crc32c(&data));
        }
        let ((), empty) = super::crc32c_of_stream(true, |_| {});
        assert_eq!(empty, 0);
    }
}
