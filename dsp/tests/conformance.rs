//! One conformance suite for every [`Separator`]: each engine below runs through the same checks.
//! Add every new engine kind to [`engines`].
//!
//! - any block sizes give the same output;
//! - an impulse comes out at exactly `latency_samples()` (the peak of the stems' sum);
//! - `reset()` forgets the past: after it, the output is a fresh engine's;
//! - NaN, infinite and subnormal input never reaches the output, and the engine recovers;
//! - where the engine is mask-based, the stems sum to the input delayed by the latency.
//!
//! The ONNX engines load ONNX Runtime from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).

mod common;

use std::path::Path;

use common::{Lcg, music, relative_error, separate};
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::onnx::{self, Mode, OnnxConfig};
use demixer_dsp::resampled::Resampled;
use demixer_dsp::segments::{InferenceError, OverlapAdd, SegmentModel};
use demixer_dsp::{EngineSpec, Separator, Stem};

/// An engine under test: how to make a fresh one, and what it promises.
struct Case {
    name: String,
    rate: f32,
    make: Box<dyn Fn() -> Box<dyn Separator>>,
    /// Relative error within which the stems sum to the delayed input; `None`: not mask-based.
    sums_within: Option<f64>,
    /// Resampled: Other also carries the delayed input minus what the engine saw, which lines
    /// up with the declared latency by construction, so timing is checked on the other stems.
    resampled: bool,
}

/// A segment model that is mask-based yet depends on its whole segment: source 0 is the
/// segment's mean per channel, source 1 the rest.
struct MeanSplit;

impl SegmentModel for MeanSplit {
    fn segment_len(&self) -> usize {
        256
    }
    fn sources(&self) -> &[Stem] {
        &[Stem::Bass, Stem::Other]
    }
    fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
        let (mean, rest) = out.split_at_mut(mix.len());
        for ((channel, mean), rest) in mix.chunks(256).zip(mean.chunks_mut(256)).zip(rest.chunks_mut(256)) {
            let average = channel.iter().sum::<f32>() / 256.0;
            mean.fill(average);
            rest.iter_mut().zip(channel).for_each(|(r, x)| *r = x - average);
        }
        Ok(())
    }
}

fn hpss(preset: Preset, rate: f32) -> Box<dyn Separator> {
    Box::new(HpssSeparator::new(HpssConfig::preset(preset, rate).unwrap()))
}

fn onnx_model(file: &str, rate: usize, mode: Mode) -> Box<dyn Separator> {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx").join(file);
    onnx::load(&OnnxConfig { model, mode, ..Default::default() }, rate).unwrap().separator
}

/// Every engine kind, at the rates and in the wrappers the plugin and the CLI use.
fn engines() -> Vec<Case> {
    let mut cases: Vec<Case> = Preset::ALL
        .into_iter()
        .map(|preset| Case {
            name: format!("HPSS {}", preset.name()),
            rate: 44_100.0,
            make: Box::new(move || hpss(preset, 44_100.0)),
            sums_within: Some(1e-5),
            resampled: false,
        })
        .collect();
    cases.push(Case {
        name: "overlap-add of a segment model".into(),
        rate: 44_100.0,
        make: Box::new(|| Box::new(OverlapAdd::new(MeanSplit).unwrap())),
        sums_within: Some(1e-5),
        resampled: false,
    });
    cases.push(Case {
        name: "HPSS at 44.1 kHz resampled in a 48 kHz stream".into(),
        rate: 48_000.0,
        make: Box::new(|| Box::new(Resampled::new(hpss(Preset::Normal, 44_100.0), 48_000, 44_100).unwrap())),
        // What the engine cannot see (the hi-hat noise above 22.05 kHz) comes back in Other.
        sums_within: Some(1e-5),
        resampled: true,
    });
    cases.push(Case {
        name: "HPSS at 8 kHz resampled in a 1 kHz stream".into(),
        rate: 1_000.0,
        make: Box::new(|| demixer_dsp::build(&EngineSpec::Hpss(Preset::Low), 1_000.0).unwrap().separator),
        sums_within: Some(1e-5),
        resampled: true,
    });
    cases.push(Case {
        name: "dry".into(),
        rate: 44_100.0,
        make: Box::new(|| demixer_dsp::build(&EngineSpec::Dry, 44_100.0).unwrap().separator),
        sums_within: Some(0.0),
        resampled: false,
    });
    cases.push(Case {
        name: "ONNX segment model".into(),
        rate: 44_100.0,
        make: Box::new(|| onnx_model("four.onnx", 44_100, Mode::Offline)),
        sums_within: Some(1e-5),
        resampled: false,
    });
    cases.push(Case {
        name: "ONNX segment model at 44.1 kHz resampled in a 96 kHz stream".into(),
        rate: 96_000.0,
        make: Box::new(|| onnx_model("four.onnx", 96_000, Mode::Offline)),
        sums_within: Some(1e-5),
        resampled: true,
    });
    // The 2-stem Spleeter network (small, converted from TensorFlow), completed by HPSS.
    for mode in [Mode::Offline, Mode::Live] {
        cases.push(Case {
            name: format!("ONNX spectrogram model, {mode:?}, completed by HPSS"),
            rate: 44_100.0,
            make: Box::new(move || onnx_model("spleeter_tiny.onnx", 44_100, mode)),
            sums_within: Some(1e-5),
            resampled: false,
        });
    }
    cases
}

/// `base` seconds of test audio, stretched for low rates so that they span the engine's latency.
fn seconds(case: &Case, base: f32) -> f32 {
    base * (44_100.0 / case.rate).clamp(1.0, 10.0)
}

fn max_difference(a: &[[Vec<f32>; 2]], b: &[[Vec<f32>; 2]]) -> f32 {
    a.iter().flatten().flatten().zip(b.iter().flatten().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The stems' sum on `channel`.
fn sum(stems: &[[Vec<f32>; 2]], channel: usize) -> Vec<f32> {
    (0..stems[0][channel].len()).map(|t| stems.iter().map(|s| s[channel][t]).sum()).collect()
}

/// The sum on `channel` of the stems the engine itself made: for a resampled engine all but
/// Other, which also holds what the engine could not see.
fn engine_sum(case: &Case, engine: &dyn Separator, stems: &[[Vec<f32>; 2]], channel: usize) -> Vec<f32> {
    let own: Vec<[Vec<f32>; 2]> = engine
        .sources()
        .iter()
        .zip(stems)
        .filter(|(source, _)| !(case.resampled && **source == Stem::Other))
        .map(|(_, stem)| stem.clone())
        .collect();
    sum(&own, channel)
}

#[test]
fn any_block_sizes_give_the_same_output() {
    for case in engines() {
        let input = music(case.rate, seconds(&case, 0.4));
        let whole = separate(&mut *(case.make)(), &input, 4096);
        for block in [1, 37, 512, 3001] {
            let difference = max_difference(&separate(&mut *(case.make)(), &input, block), &whole);
            assert!(difference <= 1e-6, "{}: blocks of {block} differ by {difference}", case.name);
        }
    }
}

#[test]
fn an_impulse_comes_out_at_exactly_the_latency() {
    for case in engines() {
        let mut engine = (case.make)();
        let latency = engine.latency_samples();
        let at = 3000;
        let len = at + latency + 4096;
        let mut impulse = vec![0.0; len];
        impulse[at] = 0.5;
        let stems = separate(&mut *engine, &[impulse.clone(), impulse], 512);
        for channel in 0..2 {
            let sum = engine_sum(&case, &*engine, &stems, channel);
            let peak = (0..len).max_by(|&a, &b| sum[a].abs().total_cmp(&sum[b].abs())).unwrap();
            assert_eq!(peak, at + latency, "{}: channel {channel}", case.name);
        }
    }
}

#[test]
fn reset_forgets_the_past() {
    for case in engines() {
        let [a, b] = music(case.rate, seconds(&case, 0.3));
        let noise: Vec<f32> = {
            let mut rng = Lcg(5);
            (0..a.len()).map(|_| rng.next()).collect()
        };
        let fresh = separate(&mut *(case.make)(), &[a.clone(), b.clone()], 700);
        let mut engine = (case.make)();
        separate(&mut *engine, &[noise.clone(), noise], 700);
        engine.reset();
        let after_reset = separate(&mut *engine, &[a, b], 700);
        let difference = max_difference(&after_reset, &fresh);
        assert!(difference <= 1e-6, "{}: differs from a fresh engine by {difference}", case.name);
    }
}

#[test]
fn nan_infinite_subnormal_and_absurdly_loud_input_never_reaches_the_output() {
    for case in engines() {
        let mut input = music(case.rate, seconds(&case, 0.6));
        let len = input[0].len();
        let bad = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MIN_POSITIVE / 8.0, -1e-40, 1e30, -f32::MAX];
        for (i, channel) in input.iter_mut().enumerate() {
            for (k, &x) in bad.iter().enumerate() {
                channel[len / 10 + len / 12 * k + i] = x;
            }
            channel[len / 2..len / 2 + 300].fill(f32::MIN_POSITIVE / 4.0);
        }
        let mut engine = (case.make)();
        let stems = separate(&mut *engine, &input, 512);
        let clean = |x: f32| x == 0.0 || (x.is_finite() && x.abs() >= f32::MIN_POSITIVE);
        for (stem, channels) in stems.iter().enumerate() {
            for (channel, samples) in channels.iter().enumerate() {
                let at = samples.iter().position(|&x| !clean(x));
                assert!(at.is_none(), "{}: stem {stem} channel {channel} at {at:?}", case.name);
            }
        }
        let tail = &sum(&stems, 0)[len - 4000..];
        assert!(tail.iter().any(|x| x.abs() > 1e-3), "{}: the engine did not recover", case.name);
    }
}

#[test]
fn mask_based_engines_sum_to_the_delayed_input() {
    for case in engines() {
        let Some(within) = case.sums_within else { continue };
        let mut engine = (case.make)();
        let latency = engine.latency_samples();
        let input = music(case.rate, seconds(&case, 0.5));
        let len = input[0].len();
        let stems = separate(&mut *engine, &input, 1000);
        for (channel, input) in input.iter().enumerate() {
            let sum = sum(&stems, channel);
            // From one latency on, past the warm-up.
            let error = relative_error(&sum[2 * latency..], &input[latency..len - latency]);
            assert!(error <= within, "{}: channel {channel} sums to the delayed input within {error}", case.name);
        }
    }
}
