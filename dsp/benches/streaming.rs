//! Per-hop cost of a streaming (stateful) ONNX model through Demixer's engine (`HopStream`): the
//! model is fed one hop per call, so each call is one inference. Prints one JSON line: real-time
//! factor, per-hop p50/p99/max in microseconds against the hop period. `python3
//! bench/streaming_speed.py` makes the model, runs this next to the Python reference and writes
//! BENCHMARKS.md.
//!
//!     DEMIXER_BENCH_MODEL=bench/out/streaming_9m.onnx DEMIXER_BENCH_SECONDS=20 \
//!         cargo bench -p demixer-dsp --bench streaming
//!
//! Also: DEMIXER_BENCH_DEVICE (auto, cpu, cuda), DEMIXER_BENCH_THREADS (0: one thread).

use std::path::PathBuf;
use std::time::Instant;

use demixer_dsp::StereoOut;
use demixer_dsp::onnx::{self, Device, OnnxConfig, SessionOptions};

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = workspace.join(setting("DEMIXER_BENCH_MODEL", "bench/out/streaming_9m.onnx"));
    let seconds: f64 = setting("DEMIXER_BENCH_SECONDS", "20").parse().expect("DEMIXER_BENCH_SECONDS");
    let device = Device::from_name(&setting("DEMIXER_BENCH_DEVICE", "cpu")).expect("DEMIXER_BENCH_DEVICE");
    let threads: usize = setting("DEMIXER_BENCH_THREADS", "0").parse().expect("DEMIXER_BENCH_THREADS");
    let rate = 44_100;
    let session = SessionOptions { device, threads, max_auto_threads: None };
    let config = OnnxConfig { model, session, ..Default::default() };
    let mut engine = onnx::load(&config, rate).unwrap_or_else(|e| panic!("{e}"));
    let hop = engine.description.split("hop ").nth(1).and_then(|s| s.split(' ').next()).and_then(|h| h.parse().ok());
    let hop: usize = hop.expect("a streaming model");
    let sources = engine.separator.sources().len();
    let hops = (seconds * rate as f64 / hop as f64) as usize;
    let tone = |f: f32, i: usize| (std::f32::consts::TAU * f * i as f32 / rate as f32).sin();
    let mut lanes = vec![vec![0.0f32; hop]; 2 * sources];
    let mut times = Vec::with_capacity(hops);
    let started = Instant::now();
    for k in 0..hops {
        let left: Vec<f32> = (k * hop..(k + 1) * hop).map(|i| 0.2 * tone(220.0, i) + 0.1 * tone(55.0, i)).collect();
        let right: Vec<f32> = (k * hop..(k + 1) * hop).map(|i| 0.2 * tone(330.0, i) + 0.1 * tone(82.4, i)).collect();
        let mut iter = lanes.iter_mut();
        let mut stems: Vec<StereoOut<'_>> =
            (0..sources).map(|_| [iter.next().unwrap().as_mut_slice(), iter.next().unwrap().as_mut_slice()]).collect();
        let call = Instant::now();
        engine.separator.process(&left, &right, &mut stems);
        times.push(call.elapsed().as_secs_f64() * 1e6);
    }
    let wall = started.elapsed().as_secs_f64();
    assert!(lanes.iter().flatten().all(|x| x.is_finite()));
    times.sort_by(f64::total_cmp);
    let period = hop as f64 * 1e6 / rate as f64;
    let busy: f64 = times.iter().sum::<f64>() / 1e6;
    println!(
        "{{\"hops\": {hops}, \"hop\": {hop}, \"period_us\": {period:.1}, \"p50_us\": {:.1}, \"p99_us\": {:.1}, \
         \"max_us\": {:.1}, \"realtime_factor\": {:.2}, \"core_share\": {:.4}, \"wall\": {wall:.3}, \"provider\": \"{}\"}}",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1],
        seconds / busy,
        busy / seconds,
        engine.provider
    );
}
