//! Baseline for the benchmark: read a file sequentially and CRC-32C it, nothing else.

use std::io::Read;

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: read-crc FILE");
        return std::process::ExitCode::from(2);
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("Error: {path}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let mut buf = vec![0u8; 1 << 20];
    let (mut crc, mut total) = (0u32, 0u64);
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                crc = crc32c::crc32c_append(crc, &buf[..n]);
                total += n as u64;
            }
            Err(e) => {
                eprintln!("Error: {path}: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
    println!("{crc:08x} {total}");
    std::process::ExitCode::SUCCESS
}
