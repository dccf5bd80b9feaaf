//! One conformance suite for every [`Separator`]: each engine kind below runs through the same
//! checks, one test per engine and property (`cargo test --test conformance spectrogram_model_live`
//! runs one engine; `cargo test --test conformance reset` one property), so that one failing
//! engine hides no other. Add every new engine kind to the `conformance!` list at the end.
//!
//! - any block sizes give the same output;
//! - an impulse comes out at exactly `latency_samples()` (the peak of the stems' sum);
//! - `reset()` forgets the past: after it, the output is a fresh engine's;
//! - NaN, infinite and subnormal input never reaches the output, and the engine recovers;
//! - where the engine is mask-based, the stems sum to the input delayed by the latency.
//!
//! The ONNX engines load ONNX Runtime from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it); where it
//! cannot be found, their tests say so and pass without running.

mod common;

use common::{Lcg, fixture, music, relative_error, separate};
use demixer_dsp::Padded;
use demixer_dsp::Resampled;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::onnx::{self, Mode, OnnxConfig};
use demixer_dsp::{EngineSpec, Separator, Stem};
use demixer_dsp::{InferenceError, OverlapAdd, SegmentModel};

/// An engine under test: how to make a fresh one, and what it promises.
struct Case {
    rate: f32,
    make: Box<dyn Fn() -> Box<dyn Separator>>,
    /// Relative error within which the stems sum to the delayed input; `None`: not mask-based.
    sums_within: Option<f64>,
    /// Resampled: Other also carries the delayed input minus what the engine saw, which lines
    /// up with the declared latency by construction, so timing is checked on the other stems.
    resampled: bool,
}

impl Case {
    fn new(rate: f32, make: impl Fn() -> Box<dyn Separator> + 'static, sums_within: Option<f64>) -> Option<Case> {
        Some(Case { rate, make: Box::new(make), sums_within, resampled: false })
    }

    fn resampled(mut self) -> Self {
        self.resampled = true;
        self
    }
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

/// An ONNX model fixture's engine at `rate`, or `None` (said) where ONNX Runtime is missing and
/// nobody pointed at one: a `DEMIXER_ORT_DYLIB` that does not load fails the case.
fn onnx_case(file: &'static str, rate: f32, mode: Mode, sums_within: Option<f64>) -> Option<Case> {
    if let Err(missing) = onnx::runtime::load(None, None) {
        assert!(std::env::var_os("DEMIXER_ORT_DYLIB").is_none(), "DEMIXER_ORT_DYLIB is set but {missing}");
        eprintln!("skipped: the ONNX engines need ONNX Runtime ({missing})");
        return None;
    }
    let make = move || {
        let config = OnnxConfig { model: fixture(file), mode, ..Default::default() };
        onnx::load(&config, rate as usize).unwrap().separator
    };
    Case::new(rate, make, sums_within)
}

fn hpss_case(preset: Preset) -> Option<Case> {
    Case::new(44_100.0, move || hpss(preset, 44_100.0), Some(1e-5))
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

fn any_block_sizes_give_the_same_output(case: Case) {
    let input = music(case.rate, seconds(&case, 0.4));
    let whole = separate(&mut *(case.make)(), &input, 4096);
    for block in [1, 37, 512, 3001] {
        let difference = max_difference(&separate(&mut *(case.make)(), &input, block), &whole);
        assert!(difference <= 1e-6, "blocks of {block} differ by {difference}");
    }
}

fn an_impulse_comes_out_at_exactly_the_latency(case: Case) {
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
        assert_eq!(peak, at + latency, "channel {channel}");
    }
}

fn reset_forgets_the_past(case: Case) {
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
    assert!(difference <= 1e-6, "differs from a fresh engine by {difference}");
}

fn bad_input_never_reaches_the_output(case: Case) {
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
            assert!(at.is_none(), "stem {stem} channel {channel} at {at:?}");
        }
    }
    let tail = &sum(&stems, 0)[len - 4000..];
    assert!(tail.iter().any(|x| x.abs() > 1e-3), "the engine did not recover");
}

fn mask_based_engines_sum_to_the_delayed_input(case: Case) {
    let Some(within) = case.sums_within else { return };
    let mut engine = (case.make)();
    let latency = engine.latency_samples();
    let input = music(case.rate, seconds(&case, 0.5));
    let len = input[0].len();
    let stems = separate(&mut *engine, &input, 1000);
    for (channel, input) in input.iter().enumerate() {
        let sum = sum(&stems, channel);
        // From one latency on, past the warm-up.
        let error = relative_error(&sum[2 * latency..], &input[latency..len - latency]);
        assert!(error <= within, "channel {channel} sums to the delayed input within {error}");
    }
}

/// One module per engine kind (`name => an Option<Case>`, `None` to skip) with one test per
/// property.
macro_rules! conformance {
    ($($name:ident => $case:expr;)*) => {$(
        mod $name {
            use super::*;

            fn case() -> Option<Case> {
                $case
            }

            #[test]
            fn any_block_sizes_give_the_same_output() {
                case().map(super::any_block_sizes_give_the_same_output);
            }

            #[test]
            fn an_impulse_comes_out_at_exactly_the_latency() {
                case().map(super::an_impulse_comes_out_at_exactly_the_latency);
            }

            #[test]
            fn reset_forgets_the_past() {
                case().map(super::reset_forgets_the_past);
            }

            #[test]
            fn bad_input_never_reaches_the_output() {
                case().map(super::bad_input_never_reaches_the_output);
            }

            #[test]
            fn mask_based_engines_sum_to_the_delayed_input() {
                case().map(super::mask_based_engines_sum_to_the_delayed_input);
            }
        }
    )*};
}

conformance! {
    hpss_low => hpss_case(Preset::Low);
    hpss_normal => hpss_case(Preset::Normal);
    hpss_high_quality => hpss_case(Preset::HighQuality);
    overlap_add_of_a_segment_model => Case::new(44_100.0, || Box::new(OverlapAdd::new(MeanSplit).unwrap()), Some(1e-5));
    // What the engine cannot see (the hi-hat noise above 22.05 kHz) comes back in Other.
    hpss_resampled_into_48k => Case::new(
        48_000.0,
        || Box::new(Resampled::new(hpss(Preset::Normal, 44_100.0), 48_000, 44_100).unwrap()),
        Some(1e-5),
    ).map(Case::resampled);
    hpss_resampled_into_1k => Case::new(
        1_000.0,
        || demixer_dsp::build(&EngineSpec::Hpss(Preset::Low), 1_000.0).unwrap().separator,
        Some(1e-5),
    ).map(Case::resampled);
    dry => Case::new(44_100.0, || demixer_dsp::build(&EngineSpec::Dry, 44_100.0).unwrap().separator, Some(0.0));
    padded_hpss => Case::new(44_100.0, || Box::new(Padded::new(hpss(Preset::Low, 44_100.0), 777)), Some(1e-5));
    onnx_segment_model => onnx_case("four.onnx", 44_100.0, Mode::Offline, Some(1e-5));
    onnx_segment_model_resampled_into_96k => onnx_case("four.onnx", 96_000.0, Mode::Offline, Some(1e-5)).map(Case::resampled);
    // The published HS-TasNet interface with random weights: not mask-based.
    onnx_streaming_model => onnx_case("published_interface.onnx", 44_100.0, Mode::Live, None);
    // A streaming model whose last source completes the others (`sum_to_input`).
    onnx_streaming_model_summing_to_its_input => onnx_case("partial_sum.onnx", 44_100.0, Mode::Live, Some(1e-5));
    // The 2-stem Spleeter network (small, converted from TensorFlow), completed by HPSS.
    onnx_spectrogram_model_offline => onnx_case("spleeter_tiny.onnx", 44_100.0, Mode::Offline, Some(1e-5));
    onnx_spectrogram_model_live => onnx_case("spleeter_tiny.onnx", 44_100.0, Mode::Live, Some(1e-5));
}
