//! The ONNX engine against golden outputs of the Python reference
//! (`dsp/tests/fixtures/onnx/reference.py`, fixtures written by `make_fixtures.py`), and the model
//! contract's refusals. ONNX Runtime comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).

mod common;

use common::{fixture, read_wav, relative_error, separate};
use demixer_dsp::onnx::{self, OnnxConfig};
use demixer_dsp::separate_aligned;
use demixer_dsp::stream::{self, StreamConfig};
use demixer_dsp::{Engine, EngineKind, Routing, Stem, StereoOut, Timing};

fn config(model: &str) -> OnnxConfig {
    OnnxConfig { model: fixture(model), ..Default::default() }
}

fn load(model: &str, rate: usize) -> Result<Engine, String> {
    onnx::load(&config(model), rate).map_err(|e| e.to_string())
}

fn input() -> [Vec<f32>; 2] {
    let [l, r]: [Vec<f32>; 2] = read_wav("input.wav").try_into().unwrap();
    [l, r]
}

/// The engine's aligned output, one planar channel per source and side, as in the golden files.
fn separate_file(engine: &mut Engine) -> Vec<Vec<f32>> {
    let [l, r] = input();
    separate_aligned(&mut *engine.separator, &l, &r, &mut |_| {}).into_iter().flatten().collect()
}

fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "channel count");
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
}

#[test]
fn four_source_model_matches_the_python_reference() {
    let mut engine = load("four.onnx", 44_100).unwrap();
    assert_eq!(engine.sources(), Stem::ALL);
    assert_eq!(engine.separator.latency_samples(), 2048, "one segment");
    let got = separate_file(&mut engine);
    let golden = read_wav("golden_four.wav");
    assert!(golden[0].iter().any(|x| x.abs() > 0.05), "the golden file holds signal");
    let difference = max_difference(&got, &golden);
    assert!(difference < 1e-5, "differs from the reference by {difference}");
}

#[test]
fn a_tiny_real_htdemucs_matches_the_python_reference() {
    // demucs' own HTDemucs class with random weights (bench/export_htdemucs.py --tiny): STFT,
    // transformer and transposed convolutions through ONNX Runtime.
    let mut engine = load("htdemucs_tiny.onnx", 44_100).unwrap();
    assert_eq!(engine.separator.latency_samples(), 8820);
    let got = separate_file(&mut engine);
    let difference = max_difference(&got, &read_wav("golden_htdemucs_tiny.wav"));
    assert!(difference < 1e-5, "differs from the reference by {difference}");
    assert!(got.iter().flatten().any(|x| x.abs() > 1e-3), "the model makes sound");
}

#[test]
fn block_sizes_do_not_change_the_result() {
    let mut engine = load("four.onnx", 44_100).unwrap();
    let input = input();
    let whole = separate(&mut *engine.separator, &input, 4096);
    for block in [1, 37, 2048, 3000] {
        engine.separator.reset();
        assert!(separate(&mut *engine.separator, &input, block) == whole, "block {block}");
    }
}

#[test]
fn six_source_model_is_named_by_its_count_and_a_stream_can_fold_guitar_and_piano_into_other() {
    let mut engine = load("six.onnx", 44_100).unwrap();
    assert_eq!(engine.sources(), Stem::SIX);
    let golden = read_wav("golden_six.wav");
    let difference = max_difference(&separate_file(&mut engine), &golden);
    assert!(difference < 1e-5, "differs from the reference by {difference}");

    // The plugin's routing: four outputs, guitar and piano added into Other.
    let routing = Routing::new(4, |stem| Some(Stem::ALL.iter().position(|&s| s == stem).unwrap_or(2)));
    let config = StreamConfig { max_block: 512, margin: 512 };
    let latency = engine.separator.latency_samples() + engine.separator.burst_samples() + config.margin;
    let (mut side, _worker) = stream::spawn(vec![engine], EngineKind::SegmentModel, config, routing).unwrap();
    let [left, right] = input();
    let len = left.len();
    let mut ports: Vec<[Vec<f32>; 2]> = (0..4).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    for start in (0..len).step_by(512) {
        let end = (start + 512).min(len);
        let mut outs: Vec<StereoOut<'_>> =
            ports.iter_mut().map(|[l, r]| [&mut l[start..end], &mut r[start..end]]).collect();
        side.process(&left[start..end], &right[start..end], &mut outs, Timing::Offline);
    }
    assert_eq!(side.latency_samples(), latency);
    let lane = |stem: Stem, channel: usize, t: usize| golden[stem.index() * 2 + channel][t - latency];
    for (channel, (drums, other)) in ports[0].iter().zip(&ports[2]).enumerate() {
        for (t, (&drums, &other)) in drums.iter().zip(other).enumerate().skip(2 * latency) {
            let folded: f32 = [Stem::Other, Stem::Guitar, Stem::Piano].iter().map(|&s| lane(s, channel, t)).sum();
            assert!((other - folded).abs() < 1e-5, "other at {t}");
            assert!((drums - lane(Stem::Drums, channel, t)).abs() < 1e-5, "drums at {t}");
        }
    }
}

#[test]
fn a_bag_of_specialists_takes_each_stem_from_its_model() {
    let mut engine = load("bag/bag.json", 44_100).unwrap();
    assert_eq!(engine.sources(), Stem::ALL);
    assert!(engine.description.contains("drums.onnx + bass.onnx"), "{}", engine.description);
    let difference = max_difference(&separate_file(&mut engine), &read_wav("golden_bag.wav"));
    assert!(difference < 1e-5, "differs from the reference by {difference}");
}

#[test]
fn a_sidecar_names_the_sources_and_its_rate_is_resampled_with_exact_latency() {
    let mut engine = load("sidecar.onnx", 48_000).unwrap();
    // What the 22.05 kHz model cannot see of a 48 kHz stream comes back in an added Other.
    assert_eq!(engine.sources(), [Stem::Vocals, Stem::Drums, Stem::Bass, Stem::Other]);
    assert!(engine.notes.iter().any(|n| n.contains("22050 Hz")), "{:?}", engine.notes);
    // The masks sum to one, so the stems sum to the input, delayed by the reported latency.
    let latency = engine.separator.latency_samples();
    assert!(latency > 1024 * 48_000 / 22_050, "at least one segment: {latency}");
    let len = latency + 24_000;
    // 440 Hz for the model, 15 kHz above its band.
    let tone: Vec<f32> = (0..len)
        .map(|i| i as f32 * std::f32::consts::TAU / 48_000.0)
        .map(|phase| 0.5 * (440.0 * phase).sin() + 0.2 * (15_000.0 * phase).sin())
        .collect();
    let stems = separate(&mut *engine.separator, &[tone.clone(), tone.clone()], 512);
    let settled = latency + 4000;
    let sum: Vec<f32> = (settled..len).map(|t| stems.iter().map(|s| s[1][t]).sum()).collect();
    let error = relative_error(&sum, &tone[settled - latency..len - latency]);
    assert!(error < 1e-5, "stems do not sum to the delayed input: {error}");
    let other = &stems[3][1][settled..];
    assert!(other.iter().any(|x| x.abs() > 0.1), "the 15 kHz tone is in Other");
}

#[test]
fn models_outside_the_contract_are_refused_with_what_was_expected() {
    let refusal = |model: &str| load(model, 44_100).err().unwrap_or_else(|| panic!("{model} was accepted"));
    let wrong = refusal("wrong_input.onnx");
    assert!(wrong.contains("no input `mix`") && wrong.contains("`audio`") && wrong.contains("expected"), "{wrong}");
    assert!(refusal("dynamic_length.onnx").contains("no fixed length"));
    let unnamed = refusal("unnamed_three.onnx");
    assert!(unnamed.contains("not named") && unnamed.contains("unnamed_three.json"), "{unnamed}");
    assert!(refusal("missing.onnx").contains("does not exist"));

    let corrupt = std::env::temp_dir().join(format!("demixer-corrupt-{}.onnx", std::process::id()));
    std::fs::write(&corrupt, b"this is not an ONNX model").unwrap();
    let error = onnx::load(&OnnxConfig { model: corrupt.clone(), ..config("") }, 44_100).err().unwrap().to_string();
    std::fs::remove_file(&corrupt).unwrap();
    assert!(error.contains("cannot load model") && error.contains("expected"), "{error}");
}

/// Models whose output is not audio are failed models, never stems: all-NaN output is refused as
/// the model loads (its warm-up on silence gives NaN), output 1e30 times too loud (silence stays
/// silence) is caught on the first segment: the engine reports it, and the segment's input is in
/// Other, so the stems still sum to the input and hold no absurd sample.
#[test]
fn a_model_whose_output_is_not_audio_fails_and_never_reaches_the_stems() {
    let nan = load("nan.onnx", 44_100).unwrap_err();
    assert!(nan.contains("NaN"), "{nan}");
    let mut engine = load("loud.onnx", 44_100).unwrap();
    assert_eq!(engine.separator.failure(), None);
    let [l, r] = input();
    let stems = separate_aligned(&mut *engine.separator, &l, &r, &mut |_| {});
    let failure = engine.separator.failure().expect("the engine reports the failure").to_string();
    assert!(failure.contains("dBFS") && failure.contains("segment 1"), "{failure}");
    for (channel, input) in [&l, &r].into_iter().enumerate() {
        for t in 0..input.len() {
            let sum: f32 = stems.iter().map(|s| s[channel][t]).sum();
            assert!((sum - input[t]).abs() < 1e-5, "channel {channel} at {t}: {sum} for {}", input[t]);
            assert!(stems.iter().all(|s| s[channel][t].abs() <= 1.0), "an absurd sample at {t}");
        }
    }
    engine.separator.reset();
    assert_eq!(engine.separator.failure(), None, "a reset starts afresh");
}
