//! The audio thread's cost per block: the release plugin loaded through CLAP, fed in real time
//! (the host paces blocks at the sample rate, so the worker runs as in a DAW), timing every
//! `process` call. Prints the cost as a fraction of the block period, with HPSS and with a
//! streaming model (the published HS-TasNet interface fixture; its HPSS cover runs beside it: two
//! streams on the audio thread). The model loads in the background during the first moments,
//! while HPSS plays. The looped rows play a 2 s section over and over with the transport saying
//! so: from the third pass on the loop cache serves the stems (the second is separated afresh at
//! the verified jump back, and kept). ONNX Runtime comes from DEMIXER_ORT_DYLIB.
//!
//!     cargo bench -p demixer-host-tests --bench audio_thread

use std::time::Duration;

use clack_extensions::render::RenderMode;
use demixer_host_tests::{Build, DEFAULT_CONFIG, Processing, RealtimeClock, SR, choose_model, load, music, set_mode};

const SECONDS: usize = 10;
/// The looped rows loop this long a section (from timeline 0), so that from the third pass on the
/// stems come from the loop cache.
const LOOP: usize = 2 * SR as usize;

fn main() {
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/published_interface.onnx");
    println!("| engine | block | period | mean | p99 | max | mean / period | p99 / period |");
    println!("|---|---|---|---|---|---|---|---|");
    let rows = [
        ("HPSS", 64, false),
        ("HPSS", 512, false),
        ("HPSS, 2 s loop from the cache", 64, true),
        ("HPSS, 2 s loop from the cache", 512, true),
        ("streaming model + cover", 64, false),
        ("streaming model + cover", 512, false),
    ];
    for (engine, block, looped) in rows {
        let (_entry, mut instance) = load(Build::Release);
        if engine.starts_with("streaming") {
            choose_model(&mut instance, &model.to_string_lossy(), "");
        }
        set_mode(&mut instance, RenderMode::Realtime);
        let len = SECONDS * SR as usize;
        let input = music(len);
        let period = Duration::from_secs_f64(block as f64 / SR);
        let mut costs = Vec::with_capacity(len / block + 1);
        let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
        let mut clock = RealtimeClock::start();
        let mut played = 0;
        while played < len {
            // Paced like an audio interface: the next block is due one period later.
            clock.wait(block);
            let at = if looped { played % LOOP } else { played };
            let n = block.min(if looped { LOOP - at } else { len - played });
            processing.block_at([&input[0][at..at + n], &input[1][at..at + n]], &[], Some(at as i64));
            costs.push(processing.last_duration);
            played += n;
        }
        processing.stop(&mut instance);
        costs.sort();
        let mean = costs.iter().sum::<Duration>() / costs.len() as u32;
        let p99 = costs[costs.len() * 99 / 100];
        let max = *costs.last().unwrap();
        let ratio = |d: Duration| d.as_secs_f64() / period.as_secs_f64();
        println!(
            "| {engine} | {block} | {:.2} ms | {:.1} µs | {:.1} µs | {:.1} µs | {:.2}% | {:.2}% |",
            period.as_secs_f64() * 1e3,
            mean.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            max.as_secs_f64() * 1e6,
            100.0 * ratio(mean),
            100.0 * ratio(p99)
        );
    }
}
