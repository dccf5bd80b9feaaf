//! What the engine saw per frame, recorded for fitting its constants offline
//! (`bench/mask_fit.py` through `dsp/examples/hpss_tap.rs`); built only with the `tap` feature,
//! which allocates on the audio thread (every frame is kept): never for a plugin or the file tool.

use realfft::num_complex::Complex;

use super::masks::StemMasks;

/// Values per bin of a recorded frame, in this order: the left and right spectra (re, im), the
/// time and frequency medians, the masks before the voice comb (drums, bass, vocals), the comb
/// weight, the frame's voicing gate, the masks after the comb (bass, vocals) and after the
/// refinement (drums, bass, vocals).
pub const COLUMNS: usize = 16;

/// Rows of [`COLUMNS`] values, one per bin of each recorded frame.
#[derive(Default)]
pub struct Tap {
    pub rows: Vec<f32>,
}

impl Tap {
    /// Appends one frame.
    pub fn record(
        &mut self,
        (left, right): (&[Complex<f32>], &[Complex<f32>]),
        harmonic: &[f32],
        percussive: &[f32],
        [before, after, refined]: [&[StemMasks]; 3],
        (comb, gate): (&[f32], f32),
    ) {
        for bin in 0..left.len() {
            let (b, a, r) = (before[bin], after[bin], refined[bin]);
            self.rows.extend_from_slice(&[
                left[bin].re,
                left[bin].im,
                right[bin].re,
                right[bin].im,
                harmonic[bin],
                percussive[bin],
                b.drums,
                b.bass,
                b.vocals,
                comb[bin],
                gate,
                a.bass,
                a.vocals,
                r.drums,
                r.bass,
                r.vocals,
            ]);
        }
    }
}
