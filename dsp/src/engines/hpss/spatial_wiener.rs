//! Multichannel Wiener re-split of the drums and bass: the low bins that the two share are divided
//! between them by their stereo images as well as by their masks.
//!
//! The local Gaussian model of Duong, Vincent & Gribonval (2010), as Open-Unmix's `norbert` and
//! Demucs v2 apply it after their networks: source `j` in bin `f`, frame `t` has power `v_j(f,t)`
//! and a 2×2 spatial covariance `R_j(f)`, and its estimate is `W_j x` with
//! `W_j = v_j R_j (Σ_k v_k R_k)⁻¹`. Here only the drums and the bass take part, and the filter
//! applies to their joint estimate `(m_d + m_b)·x`: the two still add up to what the masks gave them,
//! so "other" and the vocals are untouched and the four stems still sum to the input. The powers are
//! `v_j = m_j · (|x_L|² + |x_R|²) / 2`; each `R_j` is a causal exponential average (time constant
//! [`TIME_CONSTANT_S`]) of `y_j y_jᴴ` over that of `(|y_L|² + |y_R|²) / 2`, `y_j = m_j·x`, as a
//! streaming engine must. On the development split of bench/songs.py this raised the drums by
//! 0.25 dB and the bass by 0.2 dB (`bench/wiener_proto.py mode=drums_bass`); the same re-split of
//! other and vocals lost 0.1 dB on both, and is not done.

use realfft::num_complex::Complex;

use super::masks::StemMasks;

/// Highest frequency re-split, in Hz: where kick and bass overlap. Above it the two rarely share a
/// bin, and each re-split bin costs a 2×2 filter per frame.
pub const MAX_HZ: f32 = 800.0;
/// Time constant of the spatial covariances' exponential average, in seconds.
pub const TIME_CONSTANT_S: f32 = 5.8;
/// Diagonal loading of each spatial covariance, relative to its trace: `R_j + ε·tr(R_j)/2·I`
/// keeps the mixture covariance invertible and `W_d + W_b = I`, so that sources with one stereo
/// image (a mono mixture) are split exactly as their masks split them.
const EPSILON: f32 = 1e-3;

/// Running spatial covariance of one source in one bin: `[|y_L|², |y_R|²]`, `y_L·conj(y_R)`, and the
/// running power it is normalised by.
#[derive(Clone, Copy, Default)]
struct Covariance {
    diagonal: [f32; 2],
    cross: Complex<f32>,
    power: f32,
}

impl Covariance {
    /// Adds `y = mask·x` with forgetting factor `decay`.
    fn update(&mut self, decay: f32, mask: f32, left: Complex<f32>, right: Complex<f32>) {
        let (l, r) = (left * mask, right * mask);
        let (ll, rr) = (l.norm_sqr(), r.norm_sqr());
        self.diagonal = [decay * self.diagonal[0] + ll, decay * self.diagonal[1] + rr];
        self.cross = self.cross * decay + l * r.conj();
        self.power = decay * self.power + 0.5 * (ll + rr);
        if self.power < 1e-30 {
            // Long silence: start afresh rather than decay into denormals.
            *self = Self::default();
        }
    }

    /// `v·R`, as `([a, c], b)` for the Hermitian matrix `[[a, b], [b*, c]]`.
    fn scaled(&self, v: f32) -> ([f32; 2], Complex<f32>) {
        if self.power < f32::MIN_POSITIVE {
            return ([0.0; 2], Complex::default());
        }
        let s = v / self.power;
        ([self.diagonal[0] * s, self.diagonal[1] * s], self.cross * s)
    }
}

/// The drums/bass re-split for the bins below a cut-off (above it the bass has no share); all
/// memory allocated in `new`.
pub struct DrumsBassWiener {
    decay: f32,
    /// `[drums, bass]` per bin.
    covariances: Vec<[Covariance; 2]>,
}

impl DrumsBassWiener {
    /// A re-split of the first `bins` bins, for frames `hop` samples apart at `sample_rate`.
    pub fn new(bins: usize, hop: usize, sample_rate: f32) -> Self {
        let frames = TIME_CONSTANT_S * sample_rate / hop as f32;
        Self { decay: (-1.0 / frames).exp(), covariances: vec![[Covariance::default(); 2]; bins] }
    }

    /// Updates the covariances with the frame `left`, `right` (at least [`Self::bins`] bins each)
    /// and the drums and bass masks of `masks`, and writes each re-split bin's
    /// drums filter: the drums are `filters[bin] · [x_L, x_R]ᵀ` (rows: output channel), and the bass
    /// is `(m_d + m_b)·x` minus the drums.
    /// Inlined so that it compiles with the caller's target features (the engine's AVX2 frame).
    #[inline(always)]
    pub fn update(
        &mut self,
        left: &[Complex<f32>],
        right: &[Complex<f32>],
        masks: &[StemMasks],
        filters: &mut [[[Complex<f32>; 2]; 2]],
    ) {
        let decay = self.decay;
        for (bin, (covariance, filter)) in self.covariances.iter_mut().zip(filters.iter_mut()).enumerate() {
            let (l, r, StemMasks { drums, bass, .. }) = (left[bin], right[bin], masks[bin]);
            covariance[0].update(decay, drums, l, r);
            covariance[1].update(decay, bass, l, r);
            let power = 0.5 * (l.norm_sqr() + r.norm_sqr());
            let joint = drums + bass;
            // v_j R_j with R_j loaded (its trace is 2, so the loading is ε·v_j).
            let loaded = |(diagonal, cross): ([f32; 2], Complex<f32>), v: f32| {
                ([diagonal[0] + EPSILON * v, diagonal[1] + EPSILON * v], cross)
            };
            let (vd, vb) = (drums * power, bass * power);
            let ((dd, db), (bd, bb)) = (loaded(covariance[0].scaled(vd), vd), loaded(covariance[1].scaled(vb), vb));
            // C = v_d R_d + v_b R_b = [[a, b], [b*, c]].
            let (a, c, b) = (dd[0] + bd[0], dd[1] + bd[1], db + bb);
            let det = a * c - b.norm_sqr();
            if !(det > f32::MIN_POSITIVE && det.is_finite()) {
                // Nothing to go on: the masks' own split.
                let (d, zero) = (Complex::new(drums, 0.0), Complex::default());
                *filter = [[d, zero], [zero, d]];
                continue;
            }
            // C⁻¹ = [[c, −b], [−b*, a]] / det; W_d = v_d R_d C⁻¹, times the joint mask.
            let inv = [[Complex::new(c, 0.0), -b], [-b.conj(), Complex::new(a, 0.0)]];
            let rd = [[Complex::new(dd[0], 0.0), db], [db.conj(), Complex::new(dd[1], 0.0)]];
            let scale = joint / det;
            for (row, out) in rd.iter().zip(filter.iter_mut()) {
                for (col, w) in out.iter_mut().enumerate() {
                    *w = (row[0] * inv[0][col] + row[1] * inv[1][col]) * scale;
                }
            }
        }
    }

    /// Forgets the covariances.
    pub fn reset(&mut self) {
        self.covariances.fill([Covariance::default(); 2]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_for(
        wiener: &mut DrumsBassWiener,
        frames: &[(Complex<f32>, Complex<f32>, StemMasks)],
    ) -> [[Complex<f32>; 2]; 2] {
        let mut filters = vec![[[Complex::default(); 2]; 2]; 1];
        for &(l, r, m) in frames {
            wiener.update(&[l], &[r], &[m], &mut filters);
        }
        filters[0]
    }

    #[test]
    fn sources_at_different_positions_are_told_apart() {
        // Drums hard left, bass centred, each alone half the time, then both at once with masks
        // that cannot tell them apart: the filter gives the drums the left channel's excess.
        let mut wiener = DrumsBassWiener::new(1, 512, 44_100.0);
        let one = Complex::new(1.0, 0.0);
        let mut frames = Vec::new();
        for _ in 0..200 {
            frames.push((one, Complex::default(), StemMasks::with_other(1.0, 0.0, 0.0)));
            frames.push((one, one, StemMasks::with_other(0.0, 1.0, 0.0)));
        }
        frames.push((one * 2.0, one, StemMasks::with_other(0.5, 0.5, 0.0)));
        let f = filter_for(&mut wiener, &frames);
        let (l, r) = (one * 2.0, one);
        let drums = [f[0][0] * l + f[0][1] * r, f[1][0] * l + f[1][1] * r];
        assert!((drums[0].re - 1.0).abs() < 0.05 && drums[1].norm() < 0.05, "{drums:?}");
    }

    #[test]
    fn without_bass_the_drums_keep_their_mask_and_silence_stays_silent() {
        let mut wiener = DrumsBassWiener::new(1, 512, 44_100.0);
        let (l, r) = (Complex::new(0.3, -0.2), Complex::new(0.1, 0.25));
        let f = filter_for(&mut wiener, &[(l, r, StemMasks::with_other(0.6, 0.0, 0.0)); 10]);
        let drums = [f[0][0] * l + f[0][1] * r, f[1][0] * l + f[1][1] * r];
        assert!((drums[0] - l * 0.6).norm() < 1e-3 && (drums[1] - r * 0.6).norm() < 1e-3, "{drums:?}");
        let mut quiet = DrumsBassWiener::new(1, 512, 44_100.0);
        let f =
            filter_for(&mut quiet, &[(Complex::default(), Complex::default(), StemMasks::with_other(0.0, 0.0, 0.0))]);
        assert!(f.iter().flatten().all(|w| w.norm() == 0.0));
    }
}
