//! The memory a session with many instances takes (firefly-synth#6): `INSTANCES` instances of the
//! release plugin (with `assert_process_allocs`) in one process, loaded through CLAP and played
//! in real time for `MINUTES` minutes of ordinary playback, the transport advancing by the block
//! (one thread calls every instance's `process` per block, as a DAW's audio thread does). Prints
//! the process's resident memory at the start and each minute, and its peak (`VmHWM`).
//!
//!     cargo bench -p demixer-host-tests --bench cache_memory -- 40 4

use std::time::Instant;

use clack_extensions::render::RenderMode;
use demixer_host_tests::{Build, DEFAULT_CONFIG, Processing, RealtimeClock, SR, load, music, set_mode};

const BLOCK: usize = 512;

/// A line of `/proc/self/status` in MiB (`VmRSS`, `VmHWM`).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.starts_with(field)).expect("the field");
    let kib: f64 = line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a size in kB");
    kib / 1024.0
}

fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|arg| arg.parse().ok()).collect();
    let (instances, minutes) = (numbers.first().copied().unwrap_or(40), numbers.get(1).copied().unwrap_or(4));
    // Ten seconds of music over and over, each instance starting elsewhere in it.
    let song = music(10 * SR as usize);
    let mut plugins: Vec<_> = (0..instances)
        .map(|_| {
            let (entry, mut instance) = load(Build::CheckedRelease);
            set_mode(&mut instance, RenderMode::Realtime);
            let processing = Processing::start(&mut instance, DEFAULT_CONFIG);
            (entry, instance, processing)
        })
        .collect();
    println!("{instances} instances, {minutes} min of real-time play at 44.1 kHz in blocks of {BLOCK}");
    println!("start: VmRSS {:.0} MiB", status_mib("VmRSS:"));
    let total = minutes * 60 * SR as usize;
    let mut clock = RealtimeClock::start();
    let started = Instant::now();
    let mut played = 0;
    while played < total {
        clock.wait(BLOCK);
        for (i, (_, _, processing)) in plugins.iter_mut().enumerate() {
            let at = (played + i * 4410) % (song[0].len() - BLOCK);
            processing.block_at([&song[0][at..at + BLOCK], &song[1][at..at + BLOCK]], &[], Some(played as i64));
        }
        played += BLOCK;
        if played % (60 * SR as usize) < BLOCK {
            let minute = played / (60 * SR as usize);
            let late = started.elapsed().as_secs_f64() - played as f64 / SR;
            println!("{minute} min: VmRSS {:.0} MiB ({late:.1} s behind real time)", status_mib("VmRSS:"));
        }
    }
    println!("peak: VmHWM {:.0} MiB", status_mib("VmHWM:"));
    for (_entry, mut instance, processing) in plugins {
        processing.stop(&mut instance);
    }
}
