//! Soft masks (Fitzgerald's median-filtered HPSS with Driedger's margins) and the mapping of
//! harmonic, percussive and residual content onto the four stems.

/// Raising to the mask power. The usual power 2 gets its own type so that loops over bins
/// monomorphise to a multiply instead of a `powf` call.
pub trait MaskPower: Copy {
    /// `x` raised to the power.
    fn pow(self, x: f32) -> f32;
}

/// Power 2.
#[derive(Clone, Copy)]
pub struct Squared;

impl MaskPower for Squared {
    fn pow(self, x: f32) -> f32 {
        x * x
    }
}

/// Any positive power.
#[derive(Clone, Copy)]
pub struct Power(pub f32);

impl MaskPower for Power {
    fn pow(self, x: f32) -> f32 {
        x.powf(self.0)
    }
}

/// `x^p / (x^p + reference^p)`, as `librosa.util.softmask`: where both are (near) zero the mask is
/// 0.5 if `split_zeros`, else 0.
#[inline(always)]
pub fn softmask(x: f32, reference: f32, power: impl MaskPower, split_zeros: bool) -> f32 {
    let z = x.max(reference);
    if z < f32::MIN_POSITIVE {
        return if split_zeros { 0.5 } else { 0.0 };
    }
    let (a, b) = (power.pow(x / z), power.pow(reference / z));
    a / (a + b)
}

/// Raised-cosine step on a log-frequency axis: 0 at or below `from_hz`, 1 at or above `to_hz`.
pub(crate) fn smooth_step(hz: f32, from_hz: f32, to_hz: f32) -> f32 {
    if hz <= from_hz {
        return 0.0;
    }
    if hz >= to_hz {
        return 1.0;
    }
    let t = (hz / from_hz).ln() / (to_hz / from_hz).ln();
    0.5 - 0.5 * (std::f32::consts::PI * t).cos()
}

/// Crossover below which tonal content may belong to the bass: none of it above the second
/// frequency. Between [`BASS_ALWAYS_HZ`] and the second frequency only centre-panned content does
/// (bass is mixed in the centre; chords and pads in the low mids usually are not), or as much
/// off-centre content as the bass itself spreads off the centre ([`BassWidth`](super::bass_width::BassWidth)).
/// Chosen on the development splits of bench/songs.py (`bench/hpss_model.py`, then the release
/// engine: the crossover up to 1.5 kHz with the stricter `centre⁸` gate keeps the harmonics of a
/// bright bass without taking the centred voice).
const BASS_CROSSOVER_HZ: (f32, f32) = (250.0, 1_500.0);
/// Below the first frequency all tonal content is bass, wherever it is panned; above the second
/// the centre decides. Chosen with the centre gate on the development split (commit 90e6789,
/// BENCHMARKS.md "HPSS methods": "bass above 200 Hz only where centre-panned"): below 100 Hz
/// almost nothing but the bass and the kick sounds, and stereo synths and reverb there are still
/// bass to a listener.
const BASS_ALWAYS_HZ: (f32, f32) = (100.0, 200.0);
/// Voice band: fades in between the first two frequencies and out between the last two. The
/// singing voice's energy lies between a low voice's fundamental (~100-150 Hz) and its sibilants
/// (5-10 kHz); set by hand with the first engine (commit bfba1f1) and kept since: the voice
/// comb's own pitch range (`voice_comb::F0_HZ`) reaches lower; the band's fade-in
/// only weights the centred share.
pub(crate) const VOICE_BAND_HZ: [f32; 4] = [150.0, 280.0, 5_000.0, 9_000.0];
/// Weight in [0, 1] of the voice band ([`VOICE_BAND_HZ`]) at `hz`.
pub(crate) fn voice_band(hz: f32) -> f32 {
    let [a, b, c, d] = VOICE_BAND_HZ;
    smooth_step(hz, a, b) * (1.0 - smooth_step(hz, c, d))
}
/// Band in which short low-frequency bursts (the kick drum) go to the drums: fully below the first
/// frequency, not above the second. A kick's body lies at 50-150 Hz with its click higher up;
/// 120-250 Hz at first (commit 90e6789), 150-300 Hz chosen on the development split with the
/// normal preset's margins (commit 226c31a: mean 4.14 -> 4.34 dB with them).
const KICK_BAND_HZ: (f32, f32) = (150.0, 300.0);

/// Per-bin weights that split a frame into drums, bass, vocals and other.
pub struct StemMapper {
    /// Share of centred tonal content that is bass.
    bass: Vec<f32>,
    /// Share of tonal content that is bass whatever its panning (≤ `bass`).
    bass_always: Vec<f32>,
    voice: Vec<f32>,
    /// Weight of the low-frequency burst (kick) power in the drums' power estimate.
    kick: Vec<f32>,
}

impl StemMapper {
    /// Weights for `bins` bins of an `fft_size`-point transform at `sample_rate`; `kick` (≥ 0)
    /// scales the kick term of [`StemMapper::drums`] (0 turns it off).
    pub fn new(bins: usize, fft_size: usize, sample_rate: f32, kick: f32) -> Self {
        let hz = |b: usize| b as f32 * sample_rate / fft_size as f32;
        let below = |b: usize, (from, to): (f32, f32)| 1.0 - smooth_step(hz(b), from, to);
        Self {
            bass: (0..bins).map(|b| below(b, BASS_CROSSOVER_HZ)).collect(),
            bass_always: (0..bins).map(|b| below(b, BASS_ALWAYS_HZ)).collect(),
            voice: (0..bins).map(|k| voice_band(hz(k))).collect(),
            kick: (0..bins).map(|b| kick * below(b, KICK_BAND_HZ)).collect(),
        }
    }

    /// Number of low bins in which tonal content may be bass (the rest have no bass share).
    pub fn bass_bins(&self) -> usize {
        self.bass.iter().rposition(|&w| w > 0.0).map_or(0, |last| last + 1)
    }

    /// Number of low bins whose drums estimate includes the kick term (the rest have weight 0).
    pub fn kick_bins(&self) -> usize {
        self.kick.iter().rposition(|&w| w > 0.0).map_or(0, |last| last + 1)
    }

    /// The drums' share of `bin`: a Wiener-style ratio of power estimates,
    /// `(P^p + w·E^p) / (P^p + w·E^p + H'^p)` with `P` the percussive (frequency-median) magnitude,
    /// `H'` the harmonic (time-median) magnitude times the percussive margin, `E` the burst
    /// magnitude (the part of the bin above its sustained level: a kick, a low-frequency burst that
    /// does not hold), `w` the kick-band weight and `p` the mask power. Outside the kick band this
    /// is [`softmask`]`(P, H', p)` (Fitzgerald 2010; Driedger 2014's margin). Where all are (near)
    /// zero the share is 0.5 if `split_zeros`, else 0, as [`softmask`].
    #[inline(always)]
    pub fn drums(
        &self,
        bin: usize,
        percussive: f32,
        harmonic: f32,
        burst: f32,
        power: impl MaskPower,
        split_zeros: bool,
    ) -> f32 {
        let kick = self.kick[bin];
        let burst = if kick > 0.0 { burst } else { 0.0 };
        let z = percussive.max(harmonic).max(burst);
        // `total` is at least min(kick, 1) · 1 when z is not (near) zero: no 0/0.
        let drums = if z < f32::MIN_POSITIVE { 0.0 } else { power.pow(percussive / z) + kick * power.pow(burst / z) };
        let total = if z < f32::MIN_POSITIVE { 0.0 } else { drums + power.pow(harmonic / z) };
        if total < f32::MIN_POSITIVE {
            return if split_zeros { 0.5 } else { 0.0 };
        }
        drums / total
    }

    /// Masks of the four stems at `bin`; they sum to one.
    ///
    /// `percussive` is the drums' share ([`StemMapper::drums`]); everything else (harmonic and
    /// residual) is tonal. `centre` in [0, 1] says how centre-panned the bin is (1 = identical in
    /// both channels): its square gates the vocals; above [`BASS_ALWAYS_HZ`] the bass takes
    /// `c + (1 − c)·bass_width` of the tonal content, `c = centre⁸` and `bass_width` in [0, 1] how
    /// far the bass spreads off the centre ([`BassWidth`](super::bass_width::BassWidth)).
    #[inline(always)]
    pub fn masks(&self, bin: usize, percussive: f32, centre: f32, bass_width: f32) -> StemMasks {
        let drums = percussive;
        let tonal = 1.0 - percussive;
        let centre2 = centre * centre;
        let centre8 = (centre2 * centre2) * (centre2 * centre2);
        let (always, up_to) = (self.bass_always[bin], self.bass[bin]);
        let gate = centre8 + (1.0 - centre8) * bass_width;
        let bass = tonal * (always + (up_to - always).max(0.0) * gate);
        let vocals = (tonal - bass) * self.voice[bin] * centre2;
        StemMasks::with_other(drums, bass, vocals)
    }
}

/// The four stems' masks of one bin, each in [0, 1]; they sum to one (other is what the rest
/// leave).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StemMasks {
    pub drums: f32,
    pub bass: f32,
    pub other: f32,
    pub vocals: f32,
}

impl StemMasks {
    /// Drums, bass and vocals as given, other `max(1 − drums − bass − vocals, 0)`.
    #[inline(always)]
    pub fn with_other(drums: f32, bass: f32, vocals: f32) -> Self {
        Self { drums, bass, other: (1.0 - drums - bass - vocals).max(0.0), vocals }
    }

    #[cfg(test)]
    pub fn sum(&self) -> f32 {
        self.drums + self.bass + self.other + self.vocals
    }

    #[cfg(test)]
    pub fn all_in_unit_range(&self) -> bool {
        [self.drums, self.bass, self.other, self.vocals].iter().all(|x| (0.0..=1.0).contains(x))
    }
}

/// How centre-panned a stereo bin is: `2·Re(L·R*) / (|L|² + |R|²)`, clamped to [0, 1].
/// 1 for identical channels, 0 for one silent channel or opposite phases.
#[inline(always)]
pub fn centre_measure(l: realfft::num_complex::Complex<f32>, r: realfft::num_complex::Complex<f32>) -> f32 {
    let energy = l.norm_sqr() + r.norm_sqr();
    if energy < f32::MIN_POSITIVE {
        return 0.0;
    }
    (2.0 * (l.re * r.re + l.im * r.im) / energy).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::num_complex::Complex;

    #[test]
    fn softmask_matches_librosa_definition() {
        assert_eq!(softmask(0.0, 0.0, Squared, true), 0.5);
        assert_eq!(softmask(0.0, 0.0, Squared, false), 0.0);
        assert!((softmask(3.0, 1.0, Squared, false) - 0.9).abs() < 1e-6);
        assert!((softmask(3.0, 1.0, Power(2.0), false) - 0.9).abs() < 1e-6);
        assert!((softmask(3.0, 1.0, Power(1.0), false) - 0.75).abs() < 1e-6);
    }

    #[test]
    fn stem_masks_sum_to_one_and_follow_frequency() {
        let m = StemMapper::new(1025, 2048, 44_100.0, 1.0);
        for bin in 0..1025 {
            for p in [0.0, 0.3, 1.0] {
                for c in [0.0, 0.5, 1.0] {
                    let masks = m.masks(bin, p, c, c);
                    assert!((masks.sum() - 1.0).abs() < 1e-6);
                    assert!(masks.all_in_unit_range());
                }
            }
        }
        let bin_of = |hz: f32| (hz * 2048.0 / 44_100.0) as usize;
        assert_eq!(m.masks(bin_of(60.0), 0.0, 1.0, 0.0).bass, 1.0, "low tonal content is bass");
        assert!(m.masks(bin_of(2000.0), 0.0, 1.0, 0.0).vocals > 0.99, "centred voice band is vocals");
        assert!(m.masks(bin_of(2000.0), 0.0, 0.0, 1.0).other > 0.99, "side voice band is other");
    }

    #[test]
    fn low_bursts_go_to_drums_and_elsewhere_drums_is_the_softmask() {
        let m = StemMapper::new(1025, 2048, 44_100.0, 1.0);
        let bin_of = |hz: f32| (hz * 2048.0 / 44_100.0) as usize;
        assert!(m.kick_bins() > bin_of(250.0) && m.kick_bins() <= bin_of(300.0) + 1);
        // A kick: no broadband percussive estimate, a burst well above the sustained level.
        assert!(m.drums(bin_of(60.0), 0.0, 1.0, 3.0, Squared, false) > 0.89);
        assert_eq!(m.drums(bin_of(60.0), 0.0, 1.0, 0.0, Squared, false), 0.0);
        for (p, h) in [(3.0, 1.0), (0.5, 2.0), (0.0, 0.0)] {
            let drums = m.drums(bin_of(2_000.0), p, h, 5.0, Squared, false);
            assert!((drums - softmask(p, h, Squared, false)).abs() < 1e-6);
        }
        assert_eq!(m.drums(bin_of(60.0), 0.0, 0.0, 0.0, Squared, true), 0.5);
        let off = StemMapper::new(1025, 2048, 44_100.0, 0.0);
        assert_eq!(off.kick_bins(), 0);
        assert_eq!(off.drums(bin_of(60.0), 0.0, 1.0, 3.0, Squared, false), 0.0);
    }

    #[test]
    fn bass_above_its_always_band_is_the_centre_or_as_wide_as_the_bass() {
        let m = StemMapper::new(1025, 2048, 44_100.0, 1.0);
        let bin_of = |hz: f32| (hz * 2048.0 / 44_100.0) as usize;
        assert!(m.masks(bin_of(300.0), 0.0, 1.0, 0.0).bass > 0.8, "centred low mids are bass");
        assert!(m.masks(bin_of(300.0), 0.0, 0.5, 0.0).bass < 0.01, "panned low mids are not");
        assert!(m.masks(bin_of(300.0), 0.0, 0.5, 1.0).bass > 0.8, "unless the bass itself is that wide");
        let half = m.masks(bin_of(300.0), 0.0, 0.0, 0.5).bass;
        assert!((half - 0.5 * m.masks(bin_of(300.0), 0.0, 1.0, 0.0).bass).abs() < 1e-6, "{half}");
        assert_eq!(m.masks(bin_of(60.0), 0.0, 0.0, 0.0).bass, 1.0, "the lowest are bass wherever they are");
        assert_eq!(m.masks(bin_of(2000.0), 0.0, 1.0, 1.0).bass, 0.0, "no bass above the crossover");
    }

    #[test]
    fn centre_measure_tells_centre_from_sides() {
        let x = Complex::new(0.3, -0.4);
        assert!((centre_measure(x, x) - 1.0).abs() < 1e-6);
        assert_eq!(centre_measure(x, Complex::default()), 0.0);
        assert_eq!(centre_measure(x, -x), 0.0);
    }
}
