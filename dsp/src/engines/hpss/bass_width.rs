//! How far the bass spreads off the centre of the stereo image, from the lowest octaves, where
//! tonal content is the bass wherever it is panned. A bass mixed in the centre keeps the centre
//! gate of [`StemMapper::masks`](super::masks::StemMapper::masks) above those octaves; a stereo
//! bass patch (a synth bass with detuned or chorused voices, a sampled bass recorded in stereo) is
//! just as uncorrelated between the channels in its harmonics as in its fundamentals, and there the
//! centre gate alone would leave its harmonics in "other". Constants chosen on the development
//! splits of bench/songs.py (the release engine, BENCHMARKS.md).

use super::masks::centre_measure;
use realfft::num_complex::Complex;

/// Band whose stereo image stands for the bass's, in Hz.
const BAND_HZ: (f32, f32) = (40.0, 150.0);
/// Time constant of the running power-weighted means, in seconds.
pub(super) const TIME_CONSTANT_S: f32 = 1.0;

/// Running stereo width of the lowest band; no allocation.
pub struct BassWidth {
    band: std::ops::Range<usize>,
    /// Per-frame decay of the running means.
    decay: f32,
    /// Running means of `centre · power` and of `power` over the band.
    centred: f32,
    power: f32,
}

impl BassWidth {
    /// For an `fft_size`-point transform at `sample_rate` Hz, one frame per `hop` samples.
    pub fn new(fft_size: usize, hop: usize, sample_rate: f32) -> Self {
        let bin = |hz: f32| (hz * fft_size as f32 / sample_rate).round() as usize;
        Self {
            band: bin(BAND_HZ.0)..bin(BAND_HZ.1).min(fft_size / 2 + 1),
            decay: (-(hop as f32) / (TIME_CONSTANT_S * sample_rate)).exp(),
            centred: 0.0,
            power: 0.0,
        }
    }

    /// Adds a frame (`left`, `right`: its spectra, `fft_size / 2 + 1` bins each) and returns the
    /// bass's off-centre share in [0, 1]: 1 − the power-weighted running mean of
    /// [`centre_measure`] over [`BAND_HZ`]. 0 for a centred bass and before any low content.
    pub fn update(&mut self, left: &[Complex<f32>], right: &[Complex<f32>]) -> f32 {
        let (mut centred, mut power) = (0.0, 0.0);
        for (&l, &r) in left[self.band.clone()].iter().zip(&right[self.band.clone()]) {
            let p = l.norm_sqr() + r.norm_sqr();
            centred += centre_measure(l, r) * p;
            power += p;
        }
        self.centred = self.decay * self.centred + (1.0 - self.decay) * centred;
        self.power = self.decay * self.power + (1.0 - self.decay) * power;
        if self.power < f32::MIN_POSITIVE {
            return 0.0;
        }
        (1.0 - self.centred / self.power).clamp(0.0, 1.0)
    }

    /// Forgets the running means.
    pub fn reset(&mut self) {
        self.centred = 0.0;
        self.power = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(width: &mut BassWidth, left: &[Complex<f32>], right: &[Complex<f32>], count: usize) -> f32 {
        (0..count).map(|_| width.update(left, right)).last().unwrap_or(f32::NAN)
    }

    #[test]
    fn centred_bass_is_narrow_and_uncorrelated_bass_is_wide() {
        let (n, hop, sr) = (2048, 512, 44_100.0);
        let mut width = BassWidth::new(n, hop, sr);
        let silence = vec![Complex::default(); n / 2 + 1];
        assert_eq!(width.update(&silence, &silence), 0.0, "no low content: centred");
        let tone: Vec<Complex<f32>> =
            (0..n / 2 + 1).map(|b| Complex::new(if b == 3 { 1.0 } else { 0.0 }, 0.0)).collect();
        assert!(frames(&mut width, &tone, &tone, 200) < 1e-3, "identical channels");
        // The same partial in quadrature between the channels: no correlation, as a stereo patch.
        let quadrature: Vec<Complex<f32>> = tone.iter().map(|c| Complex::new(0.0, c.re)).collect();
        let wide = frames(&mut width, &tone, &quadrature, 1000);
        assert!(wide > 0.99, "uncorrelated channels: {wide}");
        width.reset();
        assert_eq!(width.update(&silence, &silence), 0.0);
    }
}
