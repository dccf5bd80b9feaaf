//! Short-time Fourier transform on `realfft`: a streaming analyser/synthesiser pair for the
//! real-time engines, and librosa-compatible centred `stft`/`istft` for offline work.
//!
//! Both use the periodic Hann window for analysis and synthesis. With a hop of a quarter window the
//! squared windows overlap-add to a constant, so analysis followed by synthesis reconstructs the
//! input exactly (delayed, in the streaming case).

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Periodic Hann window of length `n` (scipy's `get_window('hann', n)`, as librosa uses).
pub fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let phase = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (0.5 - 0.5 * phase.cos()) as f32
        })
        .collect()
}

/// Forward and inverse FFT plans of one size, shared by every channel and stem.
#[derive(Clone)]
pub struct FftPair {
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl FftPair {
    /// Plans transforms of `fft_size` real samples.
    pub fn new(fft_size: usize) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        Self { forward: planner.plan_fft_forward(fft_size), inverse: planner.plan_fft_inverse(fft_size) }
    }

    /// Number of frequency bins, `fft_size / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.forward.complex_len()
    }

    fn scratch_len(&self) -> usize {
        self.forward.get_scratch_len().max(self.inverse.get_scratch_len())
    }
}

/// Streaming analysis of one channel. The caller writes `hop` new samples into [`Analyzer::input`]
/// and then calls [`Analyzer::analyze`], which transforms the last `fft_size` samples.
pub struct Analyzer {
    fft: FftPair,
    window: Arc<[f32]>,
    frame: Vec<f32>,
    windowed: Vec<f32>,
    scratch: Vec<Complex<f32>>,
    hop: usize,
}

impl Analyzer {
    /// An analyser with frames of `fft.len` samples every `hop` samples.
    pub fn new(fft: FftPair, window: Arc<[f32]>, hop: usize) -> Self {
        let n = window.len();
        let scratch = vec![Complex::default(); fft.scratch_len()];
        Self { fft, window, frame: vec![0.0; n], windowed: vec![0.0; n], scratch, hop }
    }

    /// The slots for the next hop's samples (`hop` long; fill them before `analyze`).
    pub fn input(&mut self) -> &mut [f32] {
        let n = self.frame.len();
        &mut self.frame[n - self.hop..]
    }

    /// Transforms the current frame into `spectrum` (`bins` long) and shifts the frame by one hop.
    pub fn analyze(&mut self, spectrum: &mut [Complex<f32>]) {
        for ((w, x), h) in self.windowed.iter_mut().zip(&self.frame).zip(self.window.iter()) {
            *w = x * h;
        }
        self.fft
            .forward
            .process_with_scratch(&mut self.windowed, spectrum, &mut self.scratch)
            .expect("buffer sizes are fixed at construction");
        self.frame.copy_within(self.hop.., 0);
    }

    /// Forgets all input.
    pub fn reset(&mut self) {
        self.frame.fill(0.0);
    }
}

/// Streaming synthesis of one output signal by windowed overlap-add.
pub struct Synthesizer {
    fft: FftPair,
    /// The synthesis window with the inverse FFT's and the overlap's gain folded in.
    window: Vec<f32>,
    accumulator: Vec<f32>,
    frame: Vec<f32>,
    scratch: Vec<Complex<f32>>,
    hop: usize,
}

impl Synthesizer {
    /// A synthesiser matching an [`Analyzer`] with the same window and hop.
    pub fn new(fft: FftPair, window: Arc<[f32]>, hop: usize) -> Self {
        let n = window.len();
        let scratch = vec![Complex::default(); fft.scratch_len()];
        let scale = 1.0 / (n as f32 * overlap_gain(&window, hop));
        let window = window.iter().map(|w| w * scale).collect();
        Self { fft, window, accumulator: vec![0.0; n], frame: vec![0.0; n], scratch, hop }
    }

    /// Overlap-adds the inverse transform of `spectrum` (which it overwrites) and writes the `hop`
    /// samples that are now complete into `out`. Subnormal results are flushed to zero.
    pub fn synthesize(&mut self, spectrum: &mut [Complex<f32>], out: &mut [f32]) {
        // A real signal's DC and Nyquist bins are real; masks keep them so up to rounding.
        spectrum[0].im = 0.0;
        spectrum[spectrum.len() - 1].im = 0.0;
        self.fft
            .inverse
            .process_with_scratch(spectrum, &mut self.frame, &mut self.scratch)
            .expect("buffer sizes are fixed at construction");
        for ((acc, x), w) in self.accumulator.iter_mut().zip(&self.frame).zip(self.window.iter()) {
            *acc += x * w;
        }
        for (o, &a) in out.iter_mut().zip(&self.accumulator[..self.hop]) {
            *o = if a.abs() < f32::MIN_POSITIVE { 0.0 } else { a };
        }
        self.accumulator.copy_within(self.hop.., 0);
        let n = self.accumulator.len();
        self.accumulator[n - self.hop..].fill(0.0);
    }

    /// Forgets all pending output.
    pub fn reset(&mut self) {
        self.accumulator.fill(0.0);
    }
}

/// The constant that the squared window sums to when shifted by multiples of `hop`.
fn overlap_gain(window: &[f32], hop: usize) -> f32 {
    (0..hop).map(|i| window.iter().skip(i).step_by(hop).map(|w| w * w).sum::<f32>()).sum::<f32>() / hop as f32
}

/// Centred STFT as `librosa.stft(y, n_fft, hop_length, window='hann', center=True,
/// pad_mode='constant')`: frame `t` is centred on sample `t * hop`. Returns `1 + len / hop` frames.
pub fn stft_centered(signal: &[f32], fft_size: usize, hop: usize) -> Vec<Vec<Complex<f32>>> {
    let fft = FftPair::new(fft_size);
    let window = hann(fft_size);
    let half = fft_size / 2;
    let mut padded = vec![0.0; signal.len() + fft_size];
    padded[half..half + signal.len()].copy_from_slice(signal);
    let mut scratch = vec![Complex::default(); fft.scratch_len()];
    let mut windowed = vec![0.0; fft_size];
    (0..1 + signal.len() / hop)
        .map(|t| {
            for ((w, x), h) in windowed.iter_mut().zip(&padded[t * hop..]).zip(&window) {
                *w = x * h;
            }
            let mut spectrum = vec![Complex::default(); fft.bins()];
            fft.forward.process_with_scratch(&mut windowed, &mut spectrum, &mut scratch).unwrap();
            spectrum
        })
        .collect()
}

/// Inverse of [`stft_centered`], as `librosa.istft(..., center=True, length=len)`: windowed
/// overlap-add normalised by the window's summed square.
pub fn istft_centered(frames: &[Vec<Complex<f32>>], fft_size: usize, hop: usize, len: usize) -> Vec<f32> {
    let fft = FftPair::new(fft_size);
    let window = hann(fft_size);
    let total = fft_size + hop * frames.len().saturating_sub(1);
    let mut out = vec![0.0f32; total];
    let mut norm = vec![0.0f32; total];
    let mut scratch = vec![Complex::default(); fft.scratch_len()];
    let mut time = vec![0.0; fft_size];
    for (t, frame) in frames.iter().enumerate() {
        let mut spectrum = frame.clone();
        spectrum[0].im = 0.0;
        spectrum[fft.bins() - 1].im = 0.0;
        fft.inverse.process_with_scratch(&mut spectrum, &mut time, &mut scratch).unwrap();
        for (i, (&x, &w)) in time.iter().zip(&window).enumerate() {
            out[t * hop + i] += x * w / fft_size as f32;
            norm[t * hop + i] += w * w;
        }
    }
    let half = fft_size / 2;
    (0..len)
        .map(|i| {
            let j = i + half;
            match (out.get(j), norm.get(j)) {
                (Some(&y), Some(&n)) if n > f32::MIN_POSITIVE => y / n,
                (Some(&y), Some(_)) => y,
                _ => 0.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;

    #[test]
    fn streaming_analysis_synthesis_is_a_pure_delay() {
        let (n, hop) = (256, 64);
        let fft = FftPair::new(n);
        let window: Arc<[f32]> = hann(n).into();
        let mut analyzer = Analyzer::new(fft.clone(), window.clone(), hop);
        let mut synth = Synthesizer::new(fft.clone(), window, hop);
        let input = noise(hop * 40, 7);
        let mut output = vec![0.0; input.len()];
        let mut spectrum = vec![Complex::default(); fft.bins()];
        for (inp, out) in input.chunks(hop).zip(output.chunks_mut(hop)) {
            analyzer.input().copy_from_slice(inp);
            analyzer.analyze(&mut spectrum);
            synth.synthesize(&mut spectrum, out);
        }
        // Frame k ends at input sample (k+1)*hop - 1 and its first hop samples are final then:
        // output block k holds input samples (k+1)*hop - n ..
        let delay = n - hop;
        let err = (delay..input.len()).map(|i| (output[i] - input[i - delay]).abs()).fold(0.0, f32::max);
        assert!(err < 1e-5, "reconstruction error {err}");
    }

    #[test]
    fn centred_stft_round_trips() {
        let input = noise(5000, 3);
        let frames = stft_centered(&input, 512, 128);
        assert_eq!(frames.len(), 1 + 5000 / 128);
        let output = istft_centered(&frames, 512, 128, input.len());
        let err = input.iter().zip(&output).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 1e-5, "reconstruction error {err}");
    }
}
