//! Streaming (stateful) ONNX models (`dsp/src/onnx/streaming.rs`) against the Python reference
//! that steps the same model hop by hop (`reference.py`, fixtures from `make_streaming.py`), for
//! random host block sizes; the states carry and reset; the state pairing rules and refusals.
//! ONNX Runtime comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).

mod common;

use common::{fixture, read_wav};
use demixer_dsp::onnx::{self, OnnxConfig};
use demixer_dsp::{Engine, EngineKind, Separator, Stem, StereoOut};

fn load(model: &str, rate: usize) -> Result<Engine, String> {
    onnx::load(&OnnxConfig { model: fixture(model), ..Default::default() }, rate).map_err(|e| e.to_string())
}

/// Runs `input` through `separator` in blocks of `block()` samples; planar `[source*2+channel][t]`.
fn run(separator: &mut dyn Separator, input: &[Vec<f32>], mut block: impl FnMut() -> usize) -> Vec<Vec<f32>> {
    let len = input[0].len();
    let lanes = separator.sources().len() * 2;
    let mut out = vec![vec![0.0; len]; lanes];
    let mut start = 0;
    while start < len {
        let end = (start + block()).min(len);
        let mut scratch = vec![vec![0.0; end - start]; lanes];
        {
            let mut lanes_iter = scratch.iter_mut();
            let mut stems: Vec<StereoOut<'_>> = (0..lanes / 2)
                .map(|_| [lanes_iter.next().unwrap().as_mut_slice(), lanes_iter.next().unwrap().as_mut_slice()])
                .collect();
            separator.process(&input[0][start..end], &input[1][start..end], &mut stems);
        }
        for (lane, samples) in out.iter_mut().zip(&scratch) {
            lane[start..end].copy_from_slice(samples);
        }
        start = end;
    }
    out
}

/// Error of `got` against `want` in dB of `want`'s energy.
fn error_db(got: &[f32], want: &[f32]) -> f64 {
    let error: f64 = got.iter().zip(want).map(|(a, b)| f64::from(a - b).powi(2)).sum();
    let energy: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    10.0 * (error.max(1e-30) / energy).log10()
}

fn random_blocks(seed: u32) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        (state >> 16) as usize % 700 + 1
    }
}

#[test]
fn a_stateful_model_matches_the_python_reference_for_any_block_sizes() {
    let input = read_wav("input.wav");
    let golden = read_wav("golden_stateful.wav");
    for seed in [1, 2, 3] {
        let mut engine = load("stateful.onnx", 44_100).unwrap();
        assert_eq!(engine.kind, EngineKind::StreamingModel);
        assert_eq!(engine.separator.sources(), Stem::ALL);
        let latency = engine.separator.latency_samples();
        assert_eq!(latency, 64, "the hop: no latency in the metadata");
        let got = run(&mut *engine.separator, &input, random_blocks(seed));
        for (lane, (got, want)) in got.iter().zip(&golden).enumerate() {
            let error = error_db(&got[latency..], &want[..want.len() - latency]);
            assert!(error <= -100.0, "seed {seed}, lane {lane}: {error:.1} dB from the reference");
        }
    }
}

#[test]
fn the_state_carries_from_hop_to_hop_and_reset_clears_it() {
    let input = read_wav("input.wav");
    let hop = 64;
    let two_hops: Vec<Vec<f32>> = input.iter().map(|c| c[..2 * hop].to_vec()).collect();
    let second: Vec<Vec<f32>> = input.iter().map(|c| c[hop..2 * hop].to_vec()).collect();
    let mut engine = load("stateful.onnx", 44_100).unwrap();
    // Outputs lag by one hop: feed one more hop of silence to read a hop's stems.
    let padded = |x: &[Vec<f32>]| -> Vec<Vec<f32>> { x.iter().map(|c| [c.as_slice(), &[0.0; 64]].concat()).collect() };
    let carried = run(&mut *engine.separator, &padded(&two_hops), || 64);
    engine.separator.reset();
    let fresh = run(&mut *engine.separator, &padded(&second), || 64);
    let (with_state, without) = (&carried[0][2 * hop..3 * hop], &fresh[0][hop..2 * hop]);
    let difference = with_state.iter().zip(without).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(difference > 1e-3, "the second hop's stems do not depend on the first: {difference}");
    engine.separator.reset();
    let again = run(&mut *engine.separator, &padded(&two_hops), || 64);
    assert_eq!(again, carried, "after reset the model starts from zero states again");
}

#[test]
fn states_pair_by_name_or_else_by_order_and_shape() {
    let input = read_wav("input.wav");
    let mut named = load("stateful.onnx", 44_100).unwrap();
    let mut numbered = load("numbered_states.onnx", 44_100).unwrap();
    assert!(named.description.contains("2 states paired by name"), "{}", named.description);
    assert!(numbered.description.contains("2 states paired by order and shape"), "{}", numbered.description);
    let a = run(&mut *named.separator, &input, || 512);
    let b = run(&mut *numbered.separator, &input, || 512);
    assert_eq!(a, b, "the same network under other names");
}

#[test]
fn the_published_hs_tasnet_interface_loads_pairs_its_states_and_runs() {
    let input = read_wav("input.wav");
    let mut engine = load("published_interface.onnx", 44_100).unwrap();
    assert!(engine.description.contains("hop 128") && engine.description.contains("latency 256"));
    assert!(engine.description.contains("8 states paired by name"), "{}", engine.description);
    let latency = engine.separator.latency_samples();
    assert_eq!(latency, 256);
    let got = run(&mut *engine.separator, &input, random_blocks(9));
    for channel in 0..2 {
        let sum: Vec<f32> = (latency..input[0].len()).map(|t| (0..4).map(|s| got[s * 2 + channel][t]).sum()).collect();
        let error = error_db(&sum, &input[channel][..input[0].len() - latency]);
        assert!(error < -100.0, "the stems sum to the input delayed by the latency: {error:.1} dB");
    }
    // At 48 kHz the model runs resampled, with the latency that resampling adds.
    let resampled = load("published_interface.onnx", 48_000).unwrap();
    assert!(resampled.separator.latency_samples() > 256 * 48_000 / 44_100);
}

#[test]
fn sum_to_input_completes_the_last_source() {
    let input = read_wav("input.wav");
    let mut engine = load("partial_sum.onnx", 44_100).unwrap();
    let latency = engine.separator.latency_samples();
    let got = run(&mut *engine.separator, &input, random_blocks(4));
    for channel in 0..2 {
        let sum: Vec<f32> = (latency..input[0].len()).map(|t| (0..4).map(|s| got[s * 2 + channel][t]).sum()).collect();
        let error = error_db(&sum, &input[channel][..input[0].len() - latency]);
        assert!(error < -100.0, "the stems sum to the delayed input: {error:.1} dB");
        let vocals = &got[3 * 2 + channel][latency..];
        let expected: Vec<f32> = input[channel][..input[0].len() - latency].iter().map(|x| 0.3 * x).collect();
        assert!(error_db(vocals, &expected) < -100.0, "vocals = 0.1 of the input + the 0.2 left over");
    }
}

#[test]
fn a_model_whose_states_cannot_be_paired_is_refused_with_what_was_found() {
    let error = load("ambiguous_states.onnx", 44_100).expect_err("refused");
    assert!(error.contains("cannot pair its states"), "{error}");
    assert!(error.contains("`a` Some([1, 1, 8])") && error.contains("`q` Some([1, 1, 4])"), "{error}");
}
