//! Streaming overlap-add for models that separate fixed-length segments (the Demucs family).
//!
//! Segments start every `stride` samples (25 % overlap) and are blended with the triangular
//! weights of Demucs' own `apply_model`: in an overlap, each output sample is the weighted mean of
//! the two segments that cover it. A segment can only run once all of its input has arrived, so
//! the stream's latency is exactly one segment. `dsp/tests/fixtures/onnx/reference.py` computes
//! the same blend offline, and the golden tests hold the two to within 1e-5.

use crate::separator::{Separator, StereoOut};
use crate::signal::denormals::clean;
use crate::stem::Stem;

/// Fraction of a segment shared with the next one, as in Demucs.
pub const OVERLAP: f32 = 0.25;

/// A model that turns one stereo segment of a fixed length into stereo sources.
pub trait SegmentModel: Send {
    /// Samples per channel of every segment.
    fn segment_len(&self) -> usize;

    /// The sources [`SegmentModel::run`] writes, in order.
    fn sources(&self) -> &[Stem];

    /// Separates `mix` (planar: `segment_len` left samples, then right) into `out` (planar
    /// `[source][channel][sample]`, `sources().len() * 2 * segment_len` samples).
    ///
    /// # Errors
    /// [`InferenceError`] when the model fails on this segment (the stream then outputs silence
    /// for it).
    fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError>;
}

/// A model that failed on one segment, in its own words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("inference failed: {0}")]
pub struct InferenceError(pub String);

/// How far above its input (the input's peak) a model's output may go before it is taken for a
/// failed model rather than audio: +60 dB (and full scale besides, for near-silent input).
pub const ABSURD_GAIN: f32 = 1e3;

/// Checks what a model returned for `input`: every value finite, and the peak at most
/// `ABSURD_GAIN` (+60 dB) times the input's peak plus full scale. A model that outputs NaN (a broken
/// export, onnxruntime#11384) or values 1e30 too loud has failed; its output is not audio.
///
/// # Errors
/// [`InferenceError`] saying what was wrong.
pub fn check_output(input: &[f32], output: &[f32]) -> Result<(), InferenceError> {
    if let Some(bad) = output.iter().find(|x| !x.is_finite()) {
        return Err(InferenceError(format!("the model output {bad} (not a number a stem can hold)")));
    }
    let peak = |values: &[f32]| values.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let (input_peak, output_peak) = (peak(input), peak(output));
    if output_peak > ABSURD_GAIN * input_peak + 1.0 {
        return Err(InferenceError(format!(
            "the model output a peak of {output_peak:e} ({:+.0} dBFS) for input peaking at {input_peak:e}",
            20.0 * output_peak.log10()
        )));
    }
    Ok(())
}

/// Where a failed stretch's input goes among `sources`: Other, else the complement, else the first.
pub(crate) fn catch_all(sources: &[Stem]) -> usize {
    let find = |stem| sources.iter().position(|&s| s == stem);
    find(Stem::Other).or_else(|| find(Stem::Accompaniment)).unwrap_or(0)
}

/// A segment model that cannot be streamed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a segment of {0} samples is too short to overlap")]
pub struct SegmentTooShort(pub usize);

/// Demucs' transition weights for a segment of `len` samples: a triangle rising from `1/max` to 1
/// and back, `(1..=len/2, len-len/2..=1) / max`.
pub fn transition_weights(len: usize) -> Vec<f32> {
    let rising = 1..=len / 2;
    let falling = (1..=len - len / 2).rev();
    let raw: Vec<usize> = rising.chain(falling).collect();
    let max = raw.iter().copied().max().unwrap_or(1) as f32;
    raw.into_iter().map(|w| w as f32 / max).collect()
}

/// A [`SegmentModel`] streamed as a [`Separator`], with a latency of one segment.
pub struct OverlapAdd<M: SegmentModel> {
    model: M,
    segment: usize,
    stride: usize,
    weights: Vec<f32>,
    /// The segment being filled, planar.
    window: Vec<f32>,
    filled: usize,
    /// The model's output for the last segment, planar `[source][channel][sample]`.
    result: Vec<f32>,
    /// Weighted output of the last segment over the start of the next one, and its weight.
    tail: Vec<f32>,
    tail_weight: Vec<f32>,
    /// Final samples from the start of the last segment up to the start of the next one.
    finished: Vec<f32>,
    /// Next sample of `finished` to output.
    read: usize,
    /// Samples of silence still to output before the first segment's result.
    silence: usize,
    /// The first failure since the reset, and where the source the input goes to then lies.
    failure: Option<String>,
    catch_all: usize,
    /// Segments run since the reset.
    segments: usize,
}

impl<M: SegmentModel> OverlapAdd<M> {
    /// Streams `model`; the engine's sources are the model's.
    ///
    /// # Errors
    /// [`SegmentTooShort`] for segments under 4 samples.
    pub fn new(model: M) -> Result<Self, SegmentTooShort> {
        let segment = model.segment_len();
        let stride = ((1.0 - OVERLAP) * segment as f32) as usize;
        if segment < 4 || stride == 0 {
            return Err(SegmentTooShort(segment));
        }
        let sources = model.sources().len();
        let catch_all = catch_all(model.sources());
        let overlap = segment - stride;
        let mut engine = Self {
            model,
            segment,
            stride,
            weights: transition_weights(segment),
            window: vec![0.0; 2 * segment],
            filled: 0,
            result: vec![0.0; sources * 2 * segment],
            tail: vec![0.0; sources * 2 * overlap],
            tail_weight: vec![0.0; overlap],
            finished: vec![0.0; sources * 2 * stride],
            read: 0,
            silence: segment,
            failure: None,
            catch_all,
            segments: 0,
        };
        engine.reset();
        Ok(engine)
    }

    /// The model being streamed.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Runs the model on the full window and finishes the samples up to the next segment's start.
    fn run_segment(&mut self) {
        let (segment, stride) = (self.segment, self.stride);
        let overlap = segment - stride;
        // A segment the model fails on (out of device memory, NaN, absurd levels) is its input, in
        // the catch-all source: the stems still sum to the input, and the failure is reported.
        let outcome =
            self.model.run(&self.window, &mut self.result).and_then(|()| check_output(&self.window, &self.result));
        match outcome {
            Ok(()) => self.result.iter_mut().for_each(|y| *y = clean(*y)),
            Err(e) => {
                self.result.fill(0.0);
                let lanes = &mut self.result[self.catch_all * 2 * segment..][..2 * segment];
                lanes.copy_from_slice(&self.window);
                let segment = self.segments + 1;
                self.failure.get_or_insert_with(|| format!("{e} (segment {segment} since the stream started)"));
            }
        }
        self.segments += 1;
        let w = &self.weights;
        for (lane, y) in self.result.chunks_exact(segment).enumerate() {
            let finished = &mut self.finished[lane * stride..(lane + 1) * stride];
            let tail = &mut self.tail[lane * overlap..(lane + 1) * overlap];
            for i in 0..stride {
                let (carried, carried_weight) = if i < overlap { (tail[i], self.tail_weight[i]) } else { (0.0, 0.0) };
                finished[i] = (carried + w[i] * y[i]) / (carried_weight + w[i]);
            }
            for i in 0..overlap {
                tail[i] = w[stride + i] * y[stride + i];
            }
        }
        self.tail_weight.copy_from_slice(&w[stride..]);
        self.read = 0;
        // The next segment starts `stride` samples later: its first `overlap` samples are here.
        for channel in self.window.chunks_exact_mut(segment) {
            channel.copy_within(stride.., 0);
        }
        self.filled = overlap;
    }

    /// Writes the next `len` output samples at `at` in `stems`.
    fn emit(&mut self, stems: &mut [StereoOut<'_>], at: usize, len: usize) {
        let quiet = self.silence.min(len);
        self.silence -= quiet;
        let (from, count) = (self.read, len - quiet);
        for (lane, finished) in self.finished.chunks_exact(self.stride).enumerate() {
            let (source, channel) = (lane / 2, lane % 2);
            let out = &mut stems[source][channel][at..at + len];
            out[..quiet].fill(0.0);
            out[quiet..].copy_from_slice(&finished[from..from + count]);
        }
        self.read += count;
    }
}

impl<M: SegmentModel> Separator for OverlapAdd<M> {
    fn sources(&self) -> &[Stem] {
        self.model.sources()
    }

    fn latency_samples(&self) -> usize {
        self.segment
    }

    /// A sample's segment (and the one before, overlapping it) began up to a segment earlier.
    fn history_samples(&self) -> usize {
        self.segment
    }

    /// A whole segment's inference happens every stride.
    fn burst_samples(&self) -> usize {
        self.stride
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let mut done = 0;
        while done < left.len() {
            let n = (left.len() - done).min(self.segment - self.filled);
            let (l, r) = self.window.split_at_mut(self.segment);
            for (window, input) in [(l, left), (r, right)] {
                let window = &mut window[self.filled..self.filled + n];
                window.iter_mut().zip(&input[done..done + n]).for_each(|(w, &x)| *w = clean(x));
            }
            self.filled += n;
            self.emit(stems, done, n);
            done += n;
            if self.filled == self.segment {
                self.run_segment();
            }
        }
    }

    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn reset(&mut self) {
        (self.failure, self.segments) = (None, 0);
        self.window.fill(0.0);
        self.filled = 0;
        self.tail.fill(0.0);
        self.tail_weight.fill(0.0);
        self.finished.fill(0.0);
        self.read = 0;
        self.silence = self.segment;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles the mix into "drums" and negates it into "bass", so every sample is checkable.
    struct Gains {
        segment: usize,
        runs: usize,
    }

    impl SegmentModel for Gains {
        fn segment_len(&self) -> usize {
            self.segment
        }
        fn sources(&self) -> &[Stem] {
            &[Stem::Drums, Stem::Guitar]
        }
        fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
            self.runs += 1;
            let (drums, guitar) = out.split_at_mut(mix.len());
            drums.iter_mut().zip(mix).for_each(|(o, x)| *o = 2.0 * x);
            guitar.iter_mut().zip(mix).for_each(|(o, x)| *o = -x);
            Ok(())
        }
    }

    #[test]
    fn weights_are_demucs_triangles() {
        assert_eq!(transition_weights(4), [0.5, 1.0, 1.0, 0.5]);
        assert_eq!(transition_weights(5), [1.0 / 3.0, 2.0 / 3.0, 1.0, 2.0 / 3.0, 1.0 / 3.0]);
    }

    #[test]
    fn a_pointwise_model_comes_out_delayed_by_one_segment() {
        let segment = 64;
        let mut engine = OverlapAdd::new(Gains { segment, runs: 0 }).unwrap();
        assert_eq!(engine.sources(), [Stem::Drums, Stem::Guitar]);
        assert_eq!(engine.latency_samples(), segment);
        let len = 1000;
        let input: Vec<f32> = (0..len).map(|i| ((i * 7919) % 113) as f32 / 113.0 - 0.5).collect();
        let mut outs = vec![[vec![0.0; len], vec![0.0; len]]; 2];
        for (start, end) in [(0, 1), (1, 100), (100, 163), (163, 700), (700, len)] {
            let mut stems: Vec<StereoOut<'_>> =
                outs.iter_mut().map(|[l, r]| [&mut l[start..end], &mut r[start..end]]).collect();
            engine.process(&input[start..end], &input[start..end], &mut stems);
        }
        for t in 0..len {
            let dry = if t >= segment { input[t - segment] } else { 0.0 };
            assert!((outs[0][0][t] - 2.0 * dry).abs() < 1e-6, "drums at {t}");
            assert!((outs[1][1][t] + dry).abs() < 1e-6, "guitar at {t}");
        }
        // Segments start every 48 samples once 64 have arrived.
        assert_eq!(engine.model().runs, (len - segment) / 48 + 1);
    }
}
