//! The plugin with the ONNX engine, through its CLAP entry point (debug build with
//! `assert_process_allocs`): an offline bounce is the engine's output at the reported latency, and
//! in real time the model loads while HPSS plays, then takes over with its own latency.
//! ONNX Runtime comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clack_extensions::render::RenderMode;
use demixer_dsp::onnx::{self, OnnxConfig};
use demixer_dsp::separate_aligned;
use demixer_host_tests::{
    Build, DEFAULT_CONFIG, MAX_BLOCK, Processing, RealtimeClock, SR, activate, activate_until_settled, choose_model,
    latency, latency_changes, load, music, render, restart_requested, set_mode,
};

fn fixture_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/four.onnx")
}

#[test]
fn an_offline_bounce_with_a_model_is_its_output_at_the_reported_latency() {
    let (_entry, mut instance) = load(Build::Checked);
    choose_model(&mut instance, &fixture_model().to_string_lossy(), "");
    let latency = set_mode(&mut instance, RenderMode::Offline);
    let input = music(2 * SR as usize);
    let mut seed = 777u32;
    let random_block = move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 16) as usize % MAX_BLOCK as usize + 1
    };
    let ports = render(&mut instance, DEFAULT_CONFIG, &input, &[], None, random_block, |_, _| {});

    let config = OnnxConfig { model: fixture_model(), ..Default::default() };
    let mut engine = onnx::load(&config, SR as usize).unwrap().separator;
    let extra = latency - engine.latency_samples();
    assert!(extra >= engine.burst_samples() + MAX_BLOCK as usize, "latency {latency} leaves the worker no time");
    // The engine's output lined up with its input, to compare at the plugin's whole latency.
    let direct = separate_aligned(&mut *engine, &input[0], &input[1], &mut |_| {});
    let len = input[0].len();
    for (stem, (port, want)) in ports[1..].iter().zip(&direct).enumerate() {
        for ch in 0..2 {
            let error = (latency..len).map(|t| (port[ch][t] - want[ch][t - latency]).abs()).fold(0.0, f32::max);
            assert!(error < 1e-5, "stem {stem} channel {ch} differs from the engine by {error}");
            assert!(port[ch][..latency].iter().all(|&x| x == 0.0), "stem {stem} starts before the latency");
        }
    }
    assert!(ports[1][0].iter().any(|x| x.abs() > 0.01), "the drums port carries the model's drums");
}

#[test]
fn in_real_time_hpss_plays_while_the_model_loads_then_the_model_takes_over() {
    let (_entry, mut instance) = load(Build::Checked);
    let hpss_latency = set_mode(&mut instance, RenderMode::Realtime);
    choose_model(&mut instance, &fixture_model().to_string_lossy(), "");
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    assert_eq!(latency(&mut instance), hpss_latency, "real-time activation does not wait for the model");
    let input = music(SR as usize);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut position = 0;
    // Once the model plays, its latency reaches the host by CLAP's rule: a restart request, then
    // `latency.changed()` inside `activate`.
    while !restart_requested(&mut instance) {
        assert!(Instant::now() < deadline, "the model never took over");
        let block = 512;
        let start = position % (input[0].len() - block);
        let ports = processing.block([&input[0][start..start + block], &input[1][start..start + block]], &[]);
        assert!(ports.iter().flatten().flatten().all(|x| x.is_finite()));
        position += block;
    }
    assert_eq!(latency(&mut instance), hpss_latency, "no latency change while active");
    processing.stop(&mut instance);
    let changes = latency_changes(&mut instance);
    let (processor, _) = activate_until_settled(&mut instance, DEFAULT_CONFIG);
    let onnx_latency = latency(&mut instance);
    assert_eq!(latency_changes(&mut instance), changes + 1, "the new latency is reported inside activate");
    let config = OnnxConfig { model: fixture_model(), ..Default::default() };
    let engine = onnx::load(&config, SR as usize).unwrap().separator;
    assert!(onnx_latency > engine.latency_samples() + engine.burst_samples(), "{onnx_latency}");
    instance.deactivate(processor);

    // Reactivating again starts with the kept model at once.
    let processor = activate(&mut instance, DEFAULT_CONFIG);
    assert_eq!(latency(&mut instance), onnx_latency);
    instance.deactivate(processor);
}

#[test]
fn a_model_that_cannot_load_leaves_hpss_playing() {
    let (_entry, mut reference) = load(Build::Checked);
    let hpss_latency = set_mode(&mut reference, RenderMode::Offline);
    let (_entry, mut instance) = load(Build::Checked);
    choose_model(&mut instance, "/nonexistent/htdemucs.onnx", "");
    assert_eq!(set_mode(&mut instance, RenderMode::Offline), hpss_latency);
    let input = music(SR as usize / 2);
    let ports = render(&mut instance, DEFAULT_CONFIG, &input, &[], None, || 512, |_, _| {});
    let mix = &ports[0][0];
    assert!(
        mix[hpss_latency..].iter().zip(&input[0]).all(|(y, x)| (y - x).abs() < 1e-4),
        "the mix is the delayed input"
    );
    assert!(ports[1][0][hpss_latency..].iter().any(|x| x.abs() > 1e-3), "HPSS separates drums");
}

/// A streaming model (the published HS-TasNet interface, random weights: 256 samples of latency)
/// in an offline bounce at 64-, 128- and 512-sample blocks: the plugin reports the model's latency
/// plus its worker margin (one block and 5 ms), and an impulse comes out of the stems, summed,
/// exactly there.
#[test]
fn a_streaming_model_plays_at_its_latency_plus_the_margin_for_every_block_size() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/published_interface.onnx");
    let margin_5ms = (0.005 * SR as f32).ceil() as usize;
    for block in [64u32, 128, 512] {
        let (_entry, mut instance) = load(Build::Checked);
        choose_model(&mut instance, &model.to_string_lossy(), "");
        let handle = instance.plugin_handle();
        let render_extension: clack_extensions::render::PluginRender = handle.get_extension().unwrap();
        render_extension.set(&handle, RenderMode::Offline).unwrap();
        let config = clack_host::prelude::PluginAudioConfiguration { max_frames_count: block, ..DEFAULT_CONFIG };
        let processor = activate(&mut instance, config);
        let reported = latency(&mut instance);
        instance.deactivate(processor);
        assert_eq!(reported, 256 + block as usize + margin_5ms, "{block}-sample blocks");
        let mut input = [vec![0.0f32; 4 * SR as usize / 10], vec![0.0f32; 4 * SR as usize / 10]];
        input[0][1000] = 0.5;
        input[1][1000] = 0.5;
        let ports = render(&mut instance, config, &input, &[], None, || block as usize, |_, _| {});
        let sum: Vec<f32> = (0..input[0].len()).map(|t| ports[1..].iter().map(|p| p[0][t]).sum()).collect();
        let peak = sum.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).map(|(t, _)| t);
        assert_eq!(peak, Some(1000 + reported), "{block}-sample blocks: the impulse is where the latency says");
        eprintln!(
            "streaming model, {block}-sample blocks: {reported} samples = {:.1} ms",
            reported as f32 * 1000.0 / SR as f32
        );
    }
}

#[test]
fn a_model_file_replaced_between_activations_is_loaded_again() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx");
    let path = std::env::temp_dir().join(format!("demixer-replaced-model-{}.onnx", std::process::id()));
    std::fs::copy(fixtures.join("four.onnx"), &path).unwrap();
    let (_entry, mut instance) = load(Build::Checked);
    choose_model(&mut instance, &path.to_string_lossy(), "");
    let first = set_mode(&mut instance, RenderMode::Offline);
    // Another model moved over the file, as a user updating it does; the same settings, rate and
    // mode. The parked engine of the first file must not play on silently.
    let replacement = path.with_extension("new");
    std::fs::copy(fixtures.join("long_segment.onnx"), &replacement).unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    let second = set_mode(&mut instance, RenderMode::Offline);
    std::fs::remove_file(&path).unwrap();
    let latency_of = |name: &str| {
        let config = OnnxConfig { model: fixtures.join(name), ..Default::default() };
        let engine = onnx::load(&config, SR as usize).unwrap().separator;
        engine.latency_samples() + engine.burst_samples()
    };
    let (four, long) = (latency_of("four.onnx"), latency_of("long_segment.onnx"));
    assert!(first > four && first < long, "the first file plays: {first}");
    assert!(second > long, "the replaced file plays after the next activation: {second}");
}

/// The 2-stem Spleeter network (the small checkpoint TensorFlow wrote for models/tests), converted
/// as `demixer models download` converts Deezer's, into `dir`.
fn spectrogram_model(dir: &std::path::Path) -> PathBuf {
    use demixer_models::spleeter::{SpleeterConfig, convert};
    use demixer_models::tensor_bundle::Bundle;
    let checkpoint = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/spleeter/unet2/model");
    let config: SpleeterConfig = serde_json::from_value(serde_json::json!({
        "instruments": ["vocals", "accompaniment"], "bins": 64, "frames": 64, "n_fft": 256, "hop": 64,
        "sample_rate": 44100, "separation_exponent": 2
    }))
    .unwrap();
    let path = dir.join("tiny-spleeter.onnx");
    std::fs::write(&path, convert(&Bundle::open(&checkpoint).unwrap(), &config, "test").unwrap()).unwrap();
    path
}

/// A spectrogram model (Spleeter's kind, completed by HPSS into the four stems): an offline bounce
/// plays the model's own chunks, equal to the engine's offline separation at the reported latency;
/// in real time the live variant takes over with its own, shorter latency, reported by CLAP's rule,
/// and the stems sum to the input delayed by exactly that.
#[test]
fn a_spectrogram_model_plays_its_chunks_offline_and_its_live_variant_in_real_time() {
    use demixer_dsp::onnx::Mode;
    let dir = std::env::temp_dir().join(format!("demixer-spectrogram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = spectrogram_model(&dir);
    let engine =
        |mode| onnx::load(&OnnxConfig { model: model.clone(), mode, ..Default::default() }, SR as usize).unwrap();

    let (_entry, mut instance) = load(Build::Checked);
    choose_model(&mut instance, &model.to_string_lossy(), "");
    let offline = set_mode(&mut instance, RenderMode::Offline);
    let input = music(SR as usize);
    let ports = render(&mut instance, DEFAULT_CONFIG, &input, &[], None, || 333, |_, _| {});
    let mut reference = engine(Mode::Offline).separator;
    assert_eq!(reference.sources(), demixer_dsp::Stem::ALL, "HPSS completes the two-stem model");
    let direct = separate_aligned(&mut *reference, &input[0], &input[1], &mut |_| {});
    let len = input[0].len();
    for (stem, (port, want)) in ports[1..].iter().zip(&direct).enumerate() {
        let error = (offline..len).map(|t| (port[0][t] - want[0][t - offline]).abs()).fold(0.0, f32::max);
        assert!(error < 1e-5, "stem {stem} differs from the engine's offline separation by {error}");
    }

    // In real time, played as a DAW plays it (one block when it is due, so the workers keep pace
    // as they would), by a release build (a debug build's engines run at about real time).
    let (_entry, mut instance) = load(Build::CheckedRelease);
    choose_model(&mut instance, &model.to_string_lossy(), "");
    let hpss = set_mode(&mut instance, RenderMode::Realtime);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut position = 0;
    while !restart_requested(&mut instance) {
        assert!(Instant::now() < deadline, "the model never took over");
        let start = position % (len - 512);
        processing.block([&input[0][start..start + 512], &input[1][start..start + 512]], &[]);
        position += 512;
    }
    processing.stop(&mut instance);
    let (processor, _) = activate_until_settled(&mut instance, DEFAULT_CONFIG);
    let live = latency(&mut instance);
    instance.deactivate(processor);
    let live_engine = engine(Mode::Live).separator;
    let margin = MAX_BLOCK as usize + (0.005 * SR).ceil() as usize;
    assert_eq!(live, live_engine.latency_samples() + live_engine.burst_samples() + margin);
    assert!(live < offline && live != hpss, "live {live}, offline {offline}, HPSS {hpss}");
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let mut clock = RealtimeClock::start();
    let (mut mix, mut stems) = (Vec::new(), Vec::new());
    for start in (0..len - 512).step_by(512) {
        clock.wait(512);
        let ports = processing.block([&input[0][start..start + 512], &input[1][start..start + 512]], &[]);
        mix.extend_from_slice(&ports[0][0]);
        stems.extend((0..512).map(|t| ports[1..].iter().map(|p| p[0][t]).sum::<f32>()));
    }
    processing.stop(&mut instance);
    for t in live..mix.len() {
        assert!((mix[t] - input[0][t - live]).abs() < 1e-4, "the mix at {t}");
        assert!((stems[t] - mix[t]).abs() < 1e-4, "the stems at {t}: {} for {}", stems[t], mix[t]);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A model whose output is 1e30 times too loud (a failed export) in an offline bounce: its stems
/// never play; HPSS covers every sample after its warm-up, lined up with the model's latency, and
/// the mix stays the input at that latency (it used to be +600 dBFS on the main output).
#[test]
fn a_model_whose_output_is_not_audio_never_reaches_the_outputs_and_hpss_covers() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/loud.onnx");
    let (_entry, mut instance) = load(Build::Checked);
    choose_model(&mut instance, &model.to_string_lossy(), "");
    let latency = set_mode(&mut instance, RenderMode::Offline);
    let input = music(SR as usize);
    let ports = render(&mut instance, DEFAULT_CONFIG, &input, &[], None, || 512, |_, _| {});
    let peak = ports.iter().flatten().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak < 2.0, "an absurd sample reached an output: {peak}");
    for t in latency..input[0].len() {
        assert!((ports[0][0][t] - input[0][t - latency]).abs() < 1e-4, "the mix at {t}");
    }
    // After the cover's own warm-up, the stems are HPSS's and sum to the mix.
    let settled = 2 * latency;
    for t in settled..input[0].len() {
        let sum: f32 = ports[1..].iter().map(|p| p[0][t]).sum();
        assert!((sum - ports[0][0][t]).abs() < 1e-4, "the stems at {t}");
    }
    assert!(ports[1][0][settled..].iter().any(|x| x.abs() > 1e-3), "HPSS's drums play");
}
