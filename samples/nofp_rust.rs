// Rust workload built WITHOUT frame pointers (rustc -O -C debuginfo=2 -C force-frame-pointers=no).
// `nofp_rust [SECONDS]` (default 5). Stack of the hot code (leaf last), below std's runtime
// (_start → __libc_start_main → main → std::rt::lang_start → … → nofp_rust::main):
//   nofp_rust::main → nofp_rust::run_for → nofp_rust::checksum_heavy (≈ 75 %)
//   nofp_rust::main → nofp_rust::run_for → nofp_rust::checksum_light (≈ 25 %)
use std::hint::black_box;
use std::time::{Duration, Instant};

#[inline(never)]
fn mix(data: &[u64], seed: u64, rounds: u32) -> u64 {
    let mut acc = seed;
    for _ in 0..rounds {
        for value in data {
            acc ^= value;
            acc ^= acc << 13;
            acc ^= acc >> 7;
            acc ^= acc << 17;
        }
    }
    acc
}

#[inline(never)]
fn checksum_heavy(data: &[u64], seed: u64) -> u64 {
    black_box(mix(data, seed, 3)).wrapping_add(1)
}

#[inline(never)]
fn checksum_light(data: &[u64], seed: u64) -> u64 {
    black_box(mix(data, seed, 1)).wrapping_add(1)
}

#[inline(never)]
fn run_for(seconds: f64, data: &[u64]) -> u64 {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    let mut sum = 1u64;
    while start.elapsed() < limit {
        sum = checksum_heavy(black_box(data), sum);
        sum = checksum_light(black_box(data), sum);
    }
    sum
}

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let data: Vec<u64> = (0..4096u64).map(|i| i.wrapping_mul(0x9e3779b97f4a7c15)).collect();
    let sum = run_for(seconds, &data);
    println!("nofp_rust: checksum {:x}", sum);
}
