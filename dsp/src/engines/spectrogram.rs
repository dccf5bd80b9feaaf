//! Streaming for models that separate magnitude spectrograms (Deezer's Spleeter and its kind):
//! Demixer computes the STFT, hands the model chunks of frames, turns its per-source magnitude
//! estimates into ratio masks, and resynthesises every source by inverse STFT.
//!
//! The pipeline is Spleeter's own (`spleeter/model/__init__.py`, `EstimatorSpecBuilder`): frames of
//! `n_fft` samples every `hop` with a periodic Hann window, the first frame ending at the stream's
//! first sample (Spleeter pads one frame of zeros in front); the magnitudes of bins `0..F` go to
//! the model; ratio masks `(v_s^p + ε/S) / (Σ v^p + ε)` (`p` the separation exponent, ε = 1e-10)
//! below `F` and zero above ("zeros" mask extension); the masked STFT is resynthesised by
//! windowed overlap-add with the same window, normalised by the window's overlap (Spleeter's
//! ×2/3 at a quarter hop). What the masks leave out (the band above `F`, and anything a failed
//! chunk could not separate) is the input minus the sources; it goes to the model's *complement*
//! source (Spleeter's "accompaniment"), else to Other, so the stems always sum to the input.
//!
//! [`Chunking`] decides which frames the model sees. Spleeter separates a song in chunks of `T`
//! frames (512: 11.9 s) side by side, each masked from its own chunk ([`Chunking::reference`]):
//! exact, and about 12 s of latency. [`Chunking::live`] slides a short window instead: every
//! `emit` frames it runs the model on `window` frames that end `lookahead` frames after the ones
//! it masks, so each frame is masked with some context on both sides, at a latency under 2 s.

use realfft::num_complex::Complex;

use crate::engines::segments::InferenceError;
use crate::separator::{Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::signal::denormals::clean;
use crate::signal::stft::{Analyzer, FftPair, Synthesizer, hann};
use crate::stem::Stem;

/// Spleeter's ε in its ratio masks (`EstimatorSpecBuilder.EPSILON`).
pub const MASK_EPSILON: f32 = 1e-10;

/// What a spectrogram model outputs per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimates {
    /// Magnitude spectrograms, turned into ratio masks with the separation exponent.
    Magnitudes {
        /// The exponent `p` of the ratio masks (Spleeter: 2).
        exponent: i32,
    },
    /// Masks, applied as they are.
    Masks,
}

/// The STFT and mask layout a spectrogram model works in.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrogramSpec {
    /// Frame length in samples (a power of two).
    pub n_fft: usize,
    /// Samples between frames (a quarter of `n_fft` reconstructs exactly with the Hann window).
    pub hop: usize,
    /// Bins the model sees, from bin 0 (`F`); the masks are zero above.
    pub bins: usize,
    /// The model's sources, in output order.
    pub sources: Vec<Stem>,
    /// What the model outputs.
    pub estimates: Estimates,
}

/// A model that maps magnitude spectrograms to per-source estimates.
pub trait SpectrogramModel: Send {
    /// The layout the model works in.
    fn spec(&self) -> &SpectrogramSpec;

    /// Separates `frames` frames: `magnitude` is `[2 channels][frames][bins]`, `out` receives
    /// `[sources][2][frames][bins]`.
    ///
    /// # Errors
    /// [`InferenceError`] when the model fails on this chunk, or outputs values that are not
    /// audio (see [`crate::engines::segments::check_output`]): the chunk is then left unseparated, in the
    /// complement source, and the engine reports the failure.
    fn run(&mut self, magnitude: &[f32], frames: usize, out: &mut [f32]) -> Result<(), InferenceError>;
}

/// Which frames the model sees: blocks of `emit` frames are masked at a time, from a model run
/// on `window` frames that end `lookahead` frames after the block (so `window - emit - lookahead`
/// frames of context come before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunking {
    /// Frames per model run.
    pub window: usize,
    /// Frames masked per run.
    pub emit: usize,
    /// Frames after the masked ones that the run sees.
    pub lookahead: usize,
}

impl Chunking {
    /// Spleeter's own separation: chunks of `frames` frames side by side, the first starting at
    /// the stream's first frame.
    pub fn reference(frames: usize) -> Chunking {
        Chunking { window: frames, emit: frames, lookahead: 0 }
    }

    /// A sliding window of `window` frames (a model's smallest chunk) that masks its middle half
    /// and looks 7/32 of it ahead (14 of Spleeter's 64 frames), the rest is context before: half
    /// the model's work per frame repeated. A quarter ahead (16 frames) scored 0.06 dB more on the
    /// vdev split but, with the normal preset's completion, put Spleeter over 2 s of latency at
    /// 44.1 kHz (2.03 s against 1.98 s in the plugin).
    pub fn live(window: usize) -> Chunking {
        Chunking { window, emit: window / 2, lookahead: window * 7 / 32 }
    }

    fn context(&self) -> usize {
        self.window - self.emit - self.lookahead
    }
}

/// A [`SpectrogramModel`] streamed as a [`Separator`]: latency
/// `hop * (emit + lookahead - 1) + n_fft - 1` samples (see [`MaskedStft::new`]).
pub struct MaskedStft<M: SpectrogramModel> {
    model: M,
    chunking: Chunking,
    /// The model's sources, then Other if the residual has no source to go to.
    sources: Vec<Stem>,
    /// Where the residual goes.
    complement: usize,
    analyzers: [Analyzer; 2],
    /// Per model source and channel.
    synthesizers: Vec<Synthesizer>,
    /// The last `window` frames' spectra, `[slot][channel][bin]` (`n_fft / 2 + 1` bins).
    spectra: Vec<Complex<f32>>,
    /// The model's input: `[channel][window][bins]`.
    magnitude: Vec<f32>,
    /// The model's output: `[source][channel][window][bins]`.
    estimates: Vec<f32>,
    /// Scratch for one masked frame and the hop it completes.
    masked: Vec<Complex<f32>>,
    hop_out: Vec<f32>,
    /// Resynthesised samples not yet output, per model source and channel, a ring each.
    pending: Vec<Vec<f32>>,
    /// Ring positions: next sample to output, and count waiting.
    read: usize,
    waiting: usize,
    /// The input delayed by the latency, per channel: the residual's reference.
    delayed: [DelayLine; 2],
    delayed_out: [Vec<f32>; 2],
    /// Frames analysed since the reset (frame 0, all zeros, is the reset's).
    frames: usize,
    /// Samples of the current hop received.
    filled: usize,
    /// Resynthesised samples still to drop: those before the stream's start.
    skip: usize,
    /// Output samples of silence still owed before the first resynthesised one.
    silence: usize,
    latency: usize,
    /// Chunks the model failed on since the reset, and the first failure.
    failures: usize,
    failure: Option<String>,
}

impl<M: SpectrogramModel> MaskedStft<M> {
    /// Streams `model` with `chunking`. The latency is the frames a masked sample waits for (the
    /// rest of its block and the lookahead: `hop * (emit + lookahead - 1)`) plus one frame less a
    /// sample (`n_fft - 1`: the frames that overlap it).
    ///
    /// # Panics
    /// If the chunking's emit is zero or its window shorter than emit plus lookahead, or the spec's
    /// hop does not divide `n_fft`, or it has more bins than the STFT.
    pub fn new(model: M, chunking: Chunking) -> Self {
        let spec = model.spec().clone();
        assert!(chunking.emit > 0 && chunking.window >= chunking.emit + chunking.lookahead, "{chunking:?}");
        assert!(spec.n_fft.is_multiple_of(spec.hop) && spec.bins <= spec.n_fft / 2 + 1, "{spec:?}");
        let fft = FftPair::new(spec.n_fft);
        let window: std::sync::Arc<[f32]> = hann(spec.n_fft).into();
        let lanes = 2 * spec.sources.len();
        let mut sources = spec.sources.clone();
        let complement = match sources.iter().position(|&s| s == Stem::Accompaniment) {
            Some(accompaniment) => accompaniment,
            None => Stem::Other.position_or_push(&mut sources),
        };
        let latency = spec.hop * (chunking.emit + chunking.lookahead - 1) + spec.n_fft - 1;
        let block = spec.hop * chunking.emit;
        let mut engine = Self {
            analyzers: std::array::from_fn(|_| Analyzer::new(fft.clone(), window.clone(), spec.hop)),
            synthesizers: (0..lanes).map(|_| Synthesizer::new(fft.clone(), window.clone(), spec.hop)).collect(),
            spectra: vec![Complex::default(); chunking.window * 2 * fft.bins()],
            magnitude: vec![0.0; 2 * chunking.window * spec.bins],
            estimates: vec![0.0; lanes * chunking.window * spec.bins],
            masked: vec![Complex::default(); fft.bins()],
            hop_out: vec![0.0; spec.hop],
            pending: vec![vec![0.0; 2 * block + spec.n_fft]; lanes],
            read: 0,
            waiting: 0,
            delayed: std::array::from_fn(|_| DelayLine::new(latency, latency)),
            delayed_out: [vec![0.0; spec.hop], vec![0.0; spec.hop]],
            frames: 0,
            filled: 0,
            skip: 0,
            silence: 0,
            latency,
            failures: 0,
            failure: None,
            model,
            chunking,
            sources,
            complement,
        };
        engine.reset();
        engine
    }

    /// The model being streamed.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Chunks the model failed on since the last reset.
    pub fn failures(&self) -> usize {
        self.failures
    }

    fn bins(&self) -> usize {
        self.masked.len()
    }

    /// Analyses the hop just completed into the next frame's slot, and masks a block when its
    /// lookahead is complete.
    fn analyze(&mut self) {
        self.frames += 1;
        let (bins, window) = (self.bins(), self.chunking.window);
        let slot = self.frames % window;
        for (channel, analyzer) in self.analyzers.iter_mut().enumerate() {
            let spectrum = &mut self.spectra[(slot * 2 + channel) * bins..][..bins];
            analyzer.analyze(spectrum);
        }
        let Chunking { emit, lookahead, .. } = self.chunking;
        if let Some(since) = self.frames.checked_sub(emit - 1 + lookahead)
            && since.is_multiple_of(emit)
        {
            self.mask_block(since);
        }
    }

    /// Runs the model on the window around the block of frames `first..first + emit` and
    /// resynthesises the block's masked frames.
    fn mask_block(&mut self, first: usize) {
        let spec = self.model.spec().clone();
        let (bins, window, f) = (self.bins(), self.chunking.window, spec.bins);
        // The window's frames, oldest first; those before the stream's start are silent.
        let oldest = first as isize - self.chunking.context() as isize;
        for w in 0..window {
            let frame = oldest + w as isize;
            for channel in 0..2 {
                let magnitudes = &mut self.magnitude[(channel * window + w) * f..][..f];
                if frame < 0 {
                    magnitudes.fill(0.0);
                    continue;
                }
                let slot = frame as usize % window;
                let spectrum = &self.spectra[(slot * 2 + channel) * bins..][..f];
                magnitudes.iter_mut().zip(spectrum).for_each(|(m, x)| *m = x.norm());
            }
        }
        let outcome = self.model.run(&self.magnitude, window, &mut self.estimates);
        let ok = outcome.is_ok();
        if let Err(e) = outcome {
            self.failures += 1;
            self.failure.get_or_insert_with(|| {
                format!("{e} (the chunk masking frames {first} to {})", first + self.chunking.emit - 1)
            });
        }
        let sources = spec.sources.len();
        let plane = window * f;
        for e in 0..self.chunking.emit {
            let (frame, w) = (first + e, (first + e) as isize - oldest);
            let slot = frame % window;
            for channel in 0..2 {
                let spectrum = (slot * 2 + channel) * bins;
                for source in 0..sources {
                    let at = |s: usize| (s * 2 + channel) * plane + w as usize * f;
                    self.masked.fill(Complex::default());
                    if ok {
                        for bin in 0..f {
                            let mask = ratio_mask(&self.estimates, spec.estimates, sources, source, |s| at(s) + bin);
                            self.masked[bin] = self.spectra[spectrum + bin] * mask;
                        }
                    }
                    self.resynthesize(source * 2 + channel);
                }
            }
            self.commit_hop();
        }
    }

    /// Overlap-adds `masked` into lane `lane` and appends the hop that is complete to its ring.
    fn resynthesize(&mut self, lane: usize) {
        self.synthesizers[lane].synthesize(&mut self.masked, &mut self.hop_out);
        let ring = &mut self.pending[lane];
        let at = (self.read + self.waiting) % ring.len();
        let (head, tail) = self.hop_out.split_at((ring.len() - at).min(self.hop_out.len()));
        ring[at..at + head.len()].copy_from_slice(head);
        ring[..tail.len()].copy_from_slice(tail);
    }

    /// Counts the hop every lane just resynthesised as waiting, dropping it while it lies before
    /// the stream's start.
    fn commit_hop(&mut self) {
        let hop = self.model.spec().hop;
        if self.skip >= hop {
            self.skip -= hop;
        } else {
            self.waiting += hop;
            assert!(self.waiting <= self.pending[0].len(), "the output ring is sized for two blocks");
        }
    }

    /// Writes the next `len` output samples at `at` in `stems`: silence while the latency is
    /// owed, then the resynthesised sources, with the input delayed by the latency minus the
    /// sources added to the complement.
    fn emit(&mut self, stems: &mut [StereoOut<'_>], at: usize, len: usize) {
        let quiet = self.silence.min(len);
        self.silence -= quiet;
        let count = len - quiet;
        assert!(count <= self.waiting, "resynthesis fell behind the latency: {count} > {}", self.waiting);
        let ring = self.pending.first().map_or(1, Vec::len);
        let model_sources = self.pending.len() / 2;
        for (lane, pending) in self.pending.iter().enumerate() {
            let out = &mut stems[lane / 2][lane % 2][at..at + len];
            out[..quiet].fill(0.0);
            for (t, o) in out[quiet..].iter_mut().enumerate() {
                *o = pending[(self.read + t) % ring];
            }
        }
        if self.complement == model_sources {
            stems[self.complement].iter_mut().for_each(|out| out[at..at + len].fill(0.0));
        }
        for (channel, delayed) in self.delayed_out.iter().enumerate() {
            for t in at..at + len {
                let sum: f32 = (0..model_sources).map(|s| stems[s][channel][t]).sum();
                let residual = delayed[t - at] - sum;
                let out = &mut stems[self.complement][channel][t];
                *out = clean(*out + residual);
            }
        }
        for out in stems[..model_sources].iter_mut().flat_map(|s| s.iter_mut()) {
            out[at..at + len].iter_mut().for_each(|x| *x = clean(*x));
        }
        self.read = (self.read + count) % ring;
        self.waiting -= count;
    }
}

/// Source `source`'s mask at one bin from `estimates` (index of each source's value by `index`).
fn ratio_mask(
    estimates: &[f32],
    kind: Estimates,
    sources: usize,
    source: usize,
    index: impl Fn(usize) -> usize,
) -> f32 {
    match kind {
        Estimates::Masks => estimates[index(source)].max(0.0),
        Estimates::Magnitudes { exponent } => {
            let power = |s: usize| estimates[index(s)].max(0.0).powi(exponent);
            let total: f32 = (0..sources).map(power).sum::<f32>() + MASK_EPSILON;
            (power(source) + MASK_EPSILON / sources as f32) / total
        }
    }
}

impl<M: SpectrogramModel> Separator for MaskedStft<M> {
    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn latency_samples(&self) -> usize {
        self.latency
    }

    /// The model's window reaches its context frames before the masked ones, and a frame spans
    /// `n_fft` samples.
    fn history_samples(&self) -> usize {
        self.chunking.context() * self.model.spec().hop + self.model.spec().n_fft
    }

    /// A model run masks `emit` frames at once.
    fn burst_samples(&self) -> usize {
        self.model.spec().hop * self.chunking.emit
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let hop = self.model.spec().hop;
        let mut done = 0;
        while done < left.len() {
            let n = (left.len() - done).min(hop - self.filled);
            for (channel, input) in [left, right].into_iter().enumerate() {
                let slots = &mut self.analyzers[channel].input()[self.filled..self.filled + n];
                slots.iter_mut().zip(&input[done..done + n]).for_each(|(s, &x)| *s = clean(x));
                self.delayed[channel].process(slots, &mut self.delayed_out[channel][..n]);
            }
            self.filled += n;
            if self.filled == hop {
                self.filled = 0;
                self.analyze();
            }
            self.emit(stems, done, n);
            done += n;
        }
    }

    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn reset(&mut self) {
        self.analyzers.iter_mut().for_each(Analyzer::reset);
        self.synthesizers.iter_mut().for_each(Synthesizer::reset);
        self.delayed.iter_mut().for_each(DelayLine::reset);
        self.spectra.fill(Complex::default());
        (self.frames, self.filled, self.read, self.waiting, self.failures) = (0, 0, 0, 0, 0);
        self.failure = None;
        let spec = self.model.spec();
        // Frame 0 ends at the first sample: its hops and the next ones' until n_fft lie before it.
        self.skip = spec.n_fft;
        self.silence = self.latency;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;

    /// Gives source 0 the mixture's magnitudes and source 1 none (or fails when asked to).
    struct AllToFirst {
        spec: SpectrogramSpec,
        runs: usize,
        fail: bool,
    }

    impl AllToFirst {
        fn new(bins: usize, sources: Vec<Stem>) -> Self {
            let spec =
                SpectrogramSpec { n_fft: 64, hop: 16, bins, sources, estimates: Estimates::Magnitudes { exponent: 2 } };
            Self { spec, runs: 0, fail: false }
        }
    }

    impl SpectrogramModel for AllToFirst {
        fn spec(&self) -> &SpectrogramSpec {
            &self.spec
        }

        fn run(&mut self, magnitude: &[f32], frames: usize, out: &mut [f32]) -> Result<(), InferenceError> {
            self.runs += 1;
            if self.fail {
                return Err(InferenceError("asked to fail".into()));
            }
            let plane = 2 * frames * self.spec.bins;
            out[..plane].copy_from_slice(magnitude);
            out[plane..].fill(0.0);
            Ok(())
        }
    }

    /// Runs `engine` over `input` (both channels) in blocks of changing sizes; `[source][channel]`.
    fn run<M: SpectrogramModel>(engine: &mut MaskedStft<M>, input: &[f32]) -> Vec<[Vec<f32>; 2]> {
        let len = input.len();
        let mut outs = vec![[vec![0.0; len], vec![0.0; len]]; engine.sources().len()];
        let (mut start, mut size) = (0, 1);
        while start < len {
            let end = (start + size).min(len);
            let mut stems: Vec<StereoOut<'_>> =
                outs.iter_mut().map(|[l, r]| [&mut l[start..end], &mut r[start..end]]).collect();
            engine.process(&input[start..end], &input[start..end], &mut stems);
            (start, size) = (end, size * 7 % 97 + 1);
        }
        outs
    }

    #[test]
    fn a_model_that_keeps_everything_in_one_source_is_a_pure_delay_for_any_chunking() {
        for chunking in [Chunking::reference(8), Chunking::live(8), Chunking { window: 12, emit: 3, lookahead: 5 }] {
            let model = AllToFirst::new(33, vec![Stem::Vocals, Stem::Accompaniment]);
            let mut engine = MaskedStft::new(model, chunking);
            let (hop, n_fft) = (16, 64);
            let latency = hop * (chunking.emit + chunking.lookahead - 1) + n_fft - 1;
            assert_eq!(engine.latency_samples(), latency, "{chunking:?}");
            assert_eq!(engine.sources(), [Stem::Vocals, Stem::Accompaniment]);
            let input = noise(3000, 5);
            let outs = run(&mut engine, &input);
            for t in 0..input.len() {
                let dry = if t >= latency { input[t - latency] } else { 0.0 };
                assert!((outs[0][0][t] - dry).abs() < 1e-4, "{chunking:?}: vocals at {t}: {} vs {dry}", outs[0][0][t]);
                assert!(outs[1][1][t].abs() < 1e-4, "{chunking:?}: accompaniment at {t}");
            }
        }
    }

    #[test]
    fn what_the_masks_leave_out_goes_to_the_complement_or_to_a_new_other() {
        // Bins above 20 of 33 are masked out: they reach the complement, so the stems still sum.
        for sources in [vec![Stem::Vocals, Stem::Accompaniment], vec![Stem::Vocals, Stem::Drums]] {
            let mut engine = MaskedStft::new(AllToFirst::new(20, sources.clone()), Chunking::live(8));
            let latency = engine.latency_samples();
            let outs = run(&mut engine, &noise(2000, 9));
            let input = noise(2000, 9);
            let complement = if sources.contains(&Stem::Accompaniment) { 1 } else { 2 };
            assert_eq!(engine.sources().len(), if complement == 2 { 3 } else { 2 });
            assert_eq!(engine.sources()[complement], if complement == 2 { Stem::Other } else { Stem::Accompaniment });
            let mut high = 0.0;
            for t in latency..input.len() {
                let sum: f32 = outs.iter().map(|s| s[0][t]).sum();
                assert!((sum - input[t - latency]).abs() < 1e-5, "stems at {t}");
                high += outs[complement][0][t].powi(2);
            }
            assert!(high > 1.0, "the band above the model's bins is in the complement ({high})");
        }
    }

    #[test]
    fn a_failed_chunk_leaves_its_frames_to_the_complement_and_is_counted() {
        let mut model = AllToFirst::new(33, vec![Stem::Vocals, Stem::Accompaniment]);
        model.fail = true;
        let mut engine = MaskedStft::new(model, Chunking::live(8));
        let latency = engine.latency_samples();
        let input = noise(1500, 2);
        let outs = run(&mut engine, &input);
        assert!(engine.failures() > 0);
        assert_eq!(engine.failures(), engine.model().runs);
        for t in latency..input.len() {
            assert_eq!(outs[0][0][t], 0.0);
            assert!((outs[1][0][t] - input[t - latency]).abs() < 1e-5);
        }
        engine.reset();
        assert_eq!(engine.failures(), 0);
    }

    #[test]
    fn ratio_masks_follow_spleeter() {
        let estimates = [3.0, 4.0];
        let kind = Estimates::Magnitudes { exponent: 2 };
        let vocals = ratio_mask(&estimates, kind, 2, 0, |s| s);
        assert!((vocals - (9.0 + 0.5e-10) / (25.0 + 1e-10)).abs() < 1e-7);
        assert!((ratio_mask(&[0.0, 0.0], kind, 2, 1, |s| s) - 0.5).abs() < 1e-6, "silence splits evenly");
    }
}
