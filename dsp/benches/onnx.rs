//! Real-time factor of the ONNX engine on a model (the full-size HT-Demucs export, say), one pass
//! over generated stereo music: prints one JSON line. `python3 bench/onnx_speed.py` runs it next to
//! the Python onnxruntime reference and writes BENCHMARKS.md.
//!
//!     DEMIXER_BENCH_MODEL=bench/out/htdemucs_random.onnx DEMIXER_BENCH_SECONDS=30 \
//!         cargo bench -p demixer-dsp --bench onnx
//!
//! Also: DEMIXER_BENCH_DEVICE (auto, cpu, cuda), DEMIXER_BENCH_THREADS (0: ONNX Runtime's choice).

use std::path::PathBuf;
use std::time::Instant;

use demixer_dsp::onnx::{self, Device, OnnxConfig, SessionOptions};
use demixer_dsp::separate_aligned;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn main() {
    // Relative paths are from the workspace root (cargo runs benches in dsp/).
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = workspace.join(setting("DEMIXER_BENCH_MODEL", "bench/out/htdemucs_random.onnx"));
    let seconds: f32 = setting("DEMIXER_BENCH_SECONDS", "30").parse().expect("DEMIXER_BENCH_SECONDS");
    let device = Device::from_name(&setting("DEMIXER_BENCH_DEVICE", "cpu")).expect("DEMIXER_BENCH_DEVICE");
    let threads: usize = setting("DEMIXER_BENCH_THREADS", "0").parse().expect("DEMIXER_BENCH_THREADS");
    let rate = 44_100;
    let config =
        OnnxConfig { model, session: SessionOptions { device, threads, max_auto_threads: None }, ..Default::default() };
    let started = Instant::now();
    let mut engine = onnx::load(&config, rate).unwrap_or_else(|e| panic!("{e}"));
    let load = started.elapsed().as_secs_f64();
    let len = (seconds * rate as f32) as usize;
    let tone = |f: f32, i: usize| (std::f32::consts::TAU * f * i as f32 / rate as f32).sin();
    let left: Vec<f32> = (0..len).map(|i| 0.2 * tone(220.0, i) + 0.1 * tone(55.0, i)).collect();
    let right: Vec<f32> = (0..len).map(|i| 0.2 * tone(330.0, i) + 0.1 * tone(82.4, i)).collect();
    let started = Instant::now();
    let stems = separate_aligned(&mut *engine.separator, &left, &right, &mut |_| {});
    let wall = started.elapsed().as_secs_f64();
    assert!(stems.iter().flatten().flatten().all(|x| x.is_finite()));
    println!(
        "{{\"seconds\": {seconds}, \"wall\": {wall:.3}, \"realtime_factor\": {:.3}, \"load\": {load:.3}, \
         \"provider\": \"{}\", \"description\": {:?}}}",
        f64::from(seconds) / wall,
        engine.provider,
        engine.description
    );
}
