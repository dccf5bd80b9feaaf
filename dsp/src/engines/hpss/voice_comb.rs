//! A harmonic comb on the voice's pitch: the vocals keep the bins near the harmonics of the most
//! salient pitch of the voice-band tonal spectrum, and take part of the centred tonal content there
//! from "other".
//!
//! Pitch salience by harmonic summation (Klapuri 2006, "Multiple fundamental frequency estimation
//! by summing harmonic amplitudes", ISMIR; the melody salience of Salamon & Gómez 2012, IEEE TASLP
//! 20(6)): per frame, the f0 whose weighted harmonics `Σ_h α^(h−1)·P(h·f0)` carry most of `P`, the
//! power spectrum of the voice-band tonal content. Centre-panned content counts fully and the rest
//! with a smaller weight: a voice sampled in stereo (a choir patch) is not centred, yet its pitch is
//! usually the strongest; summing powers rather than magnitudes lets the strongest partials decide
//! (Salamon & Gómez use magnitude compression for the same trade-off). The voice is monophonic;
//! chords and pads panned to the centre are not, so off the comb the vocals mask gives way to
//! "other". The comb holds over the recent frames (reverb tails, note changes) and widens with
//! frequency (vibrato). Constants chosen on the development split of bench/songs.py
//! (`bench/salience_proto.py`).

use super::masks::{StemMasks, VOICE_BAND_HZ, smooth_step, voice_band};
use super::voicing::{Frame, HARMONICS, Voicing};
use crate::signal::median_network::LANES;

/// Range of the voice's fundamental, in Hz: from below a low male voice (about 100 Hz, less in a
/// scoop) to a soprano's top. It was 180 Hz, which tracked male voices an octave up; the development
/// splits score the same either way (bench/songs.py's sung-speech splits go down to 110 Hz).
const F0_HZ: (f32, f32) = (90.0, 2_400.0);
/// Candidate pitches per octave.
const STEPS_PER_OCTAVE: f32 = 48.0;
/// Weight ratio from one harmonic to the next in a candidate's sum ([`HARMONICS`] of them).
const HARMONIC_DECAY: f32 = 0.8;
/// Half-width of a comb tooth: at least this many Hz, or this fraction of the harmonic's frequency.
const TOOTH_HZ: f32 = 43.0;
const TOOTH_RELATIVE: f32 = 0.15;
/// How long a pitch keeps its comb, in ms (the current frame and those before it).
const HOLD_MS: f32 = 93.0;
/// Weight of tonal content that is not centre-panned in the salience spectrum, relative to
/// centred content (the vocals' centre gate `centre²` blends from this weight to 1).
const SIDE_WEIGHT: f32 = 0.3;
/// Share of "other" that goes to the vocals on the comb (above the voice band's fade-in).
const BOOST: f32 = 0.5;
/// On the comb the vocals also take the bass's share above the first frequency, fully above the
/// second: the bass reaches up to 1.5 kHz for the harmonics of a bright bass, the centred voice's
/// harmonics must not go with them.
const BASS_HANDOVER_HZ: (f32, f32) = (200.0, 300.0);

/// One term of a candidate's salience: `weight · S` interpolated at `bin + fraction`.
#[derive(Clone, Copy)]
struct Tap {
    bin: usize,
    fraction: f32,
    weight: f32,
}

/// Per-bin comb weights from the pitches of the last frames; all memory allocated in `new`.
pub struct VoiceComb {
    /// `HARMONICS` taps per candidate pitch.
    taps: Vec<Tap>,
    /// Best candidate of each recent frame (`None` before the stream starts), a ring.
    recent: Vec<Option<usize>>,
    newest: usize,
    tooth_bins: f32,
    /// Per bin: the comb weight in [0, 1] of the current frame.
    comb: Vec<f32>,
    /// Per bin: the share of "other" the comb hands to the vocals.
    boost: Vec<f32>,
    /// Per bin: the share of the bass the comb hands to the vocals ([`BASS_HANDOVER_HZ`]).
    handover: Vec<f32>,
    /// Per bin: the voice band's weight ([`voice_band`]), and the bins where it is not zero.
    voice: Vec<f32>,
    band: std::ops::Range<usize>,
    /// Per bin: the salience spectrum of the current frame (a power).
    power: Vec<f32>,
    /// Whether the comb's pitch is a voice ([`Voicing`]), and the current frame's verdict.
    voicing: Voicing,
    gate: f32,
}

impl VoiceComb {
    /// A comb for `bins` bins of an `fft_size`-point transform at `sample_rate`, hop `hop` samples.
    pub fn new(bins: usize, fft_size: usize, hop: usize, sample_rate: f32) -> Self {
        let bin_hz = sample_rate / fft_size as f32;
        let candidates = ((F0_HZ.1 / F0_HZ.0).log2() * STEPS_PER_OCTAVE) as usize + 1;
        let taps = (0..candidates)
            .flat_map(|c| {
                let f0 = F0_HZ.0 * (c as f32 / STEPS_PER_OCTAVE).exp2();
                (1..=HARMONICS).map(move |h| {
                    let position = h as f32 * f0 / bin_hz;
                    let valid = position < (bins - 1) as f32;
                    let position = position.min((bins - 2) as f32);
                    let weight = if valid { HARMONIC_DECAY.powi(h as i32 - 1) } else { 0.0 };
                    Tap { bin: position as usize, fraction: position.fract(), weight }
                })
            })
            .collect();
        let hold = (HOLD_MS * 1e-3 * sample_rate / hop as f32).round() as usize;
        Self {
            taps,
            recent: vec![None; hold + 1],
            newest: 0,
            tooth_bins: TOOTH_HZ / bin_hz,
            comb: vec![0.0; bins],
            // No boost below the voice band's fade-in.
            boost: (0..bins)
                .map(|b| BOOST * smooth_step(b as f32 * bin_hz, VOICE_BAND_HZ[0], VOICE_BAND_HZ[1]))
                .collect(),
            handover: (0..bins)
                .map(|b| smooth_step(b as f32 * bin_hz, BASS_HANDOVER_HZ.0, BASS_HANDOVER_HZ.1))
                .collect(),
            voice: (0..bins).map(|b| voice_band(b as f32 * bin_hz)).collect(),
            band: (VOICE_BAND_HZ[0] / bin_hz).floor() as usize
                ..((VOICE_BAND_HZ[3] / bin_hz).ceil() as usize + 1).min(bins),
            power: vec![0.0; bins],
            voicing: Voicing::new(hop, sample_rate),
            gate: 1.0,
        }
    }

    /// The candidate pitch with the largest harmonic sum over `power`, and that sum.
    #[inline(always)]
    fn most_salient(&self) -> (usize, f32) {
        let p = &self.power;
        let salience = |taps: &[Tap]| -> f32 {
            taps.iter().map(|t| t.weight * (p[t.bin] * (1.0 - t.fraction) + p[t.bin + 1] * t.fraction)).sum()
        };
        let mut best = (0, f32::NEG_INFINITY);
        for (c, taps) in self.taps.chunks_exact(HARMONICS).enumerate() {
            let s = salience(taps);
            if s > best.1 {
                best = (c, s);
            }
        }
        best
    }

    /// Adds a frame and recomputes the comb: per bin the largest triangular tooth
    /// `1 − |bin − h·f0| / width` over the held pitches. `masks` are the frame's stem masks
    /// before the comb (vocals = voice-band tonal content times
    /// `centre²`, other = the rest of the tonal content) and `magnitudes` its magnitude spectrum.
    /// The salience spectrum is `(M · (w·voice·(other + vocals) + (1 − w)·vocals))²`, `w` =
    /// [`SIDE_WEIGHT`]: voice-band tonal content weighted `w + (1 − w)·centre²`.
    /// Inlined so that it compiles with the caller's target features (the engine's AVX2 frame).
    #[inline(always)]
    pub fn update(&mut self, masks: &[StemMasks], magnitudes: &[f32]) {
        for (((p, m), &magnitude), &voice) in self.power.iter_mut().zip(masks).zip(magnitudes).zip(&self.voice) {
            let (other, vocals) = (m.other, m.vocals);
            let candidate = magnitude * (SIDE_WEIGHT * voice * (other + vocals) + (1.0 - SIDE_WEIGHT) * vocals);
            *p = candidate * candidate;
        }
        self.newest = (self.newest + 1) % self.recent.len();
        let (best, salience) = self.most_salient();
        self.recent[self.newest] = Some(best);
        self.comb.fill(0.0);
        let last = self.comb.len() as f32 - 1.0;
        for (i, &candidate) in self.recent.iter().enumerate() {
            // Each held pitch once: a held note fills the ring with the same candidate.
            let Some(candidate) = candidate.filter(|c| !self.recent[..i].contains(&Some(*c))) else {
                continue;
            };
            for tap in &self.taps[candidate * HARMONICS..(candidate + 1) * HARMONICS] {
                if tap.weight == 0.0 {
                    continue;
                }
                let centre = tap.bin as f32 + tap.fraction;
                let width = self.tooth_bins.max(TOOTH_RELATIVE * centre);
                let (from, to) =
                    ((centre - width).ceil().max(0.0) as usize, (centre + width).floor().min(last) as usize);
                // A plain slice loop (no division) so that it vectorises.
                let (start, slope) = (from as f32 - centre, 1.0 / width);
                for (k, comb) in self.comb[from..=to].iter_mut().enumerate() {
                    *comb = comb.max(1.0 - (start + k as f32).abs() * slope);
                }
            }
        }
        let frame = self.measure(best, salience, masks, magnitudes);
        self.gate = self.voicing.gate(&frame);
    }

    /// What [`Voicing`] needs to know about the frame whose salient pitch is `best`. Kept out of
    /// line: inlined into the engine's AVX2 frame it stops the comb's tooth loop from vectorising.
    #[inline(never)]
    fn measure(&self, best: usize, salience: f32, masks: &[StemMasks], magnitudes: &[f32]) -> Frame {
        let p = &self.power;
        let taps = &self.taps[best * HARMONICS..(best + 1) * HARMONICS];
        let profile: [f32; HARMONICS] = std::array::from_fn(|h| {
            let t = taps[h];
            if t.weight == 0.0 { 0.0 } else { p[t.bin] * (1.0 - t.fraction) + p[t.bin + 1] * t.fraction }
        });
        // Outside the voice band every term is zero. Eight partial sums per term, so that the
        // additions do not wait on each other.
        let band = self.band.clone();
        let mut sums = [[0.0f32; LANES]; 5];
        let bins = masks[band.clone()].iter().zip(&magnitudes[band.clone()]).zip(&self.voice[band.clone()]);
        for (i, (((m, &magnitude), &voice), (&comb, &p))) in
            bins.zip(self.comb[band.clone()].iter().zip(&p[band])).enumerate()
        {
            let (other, vocals) = (m.other, m.vocals);
            let power = magnitude * magnitude;
            let tonal = voice * (other + vocals) * power;
            for (sum, term) in sums.iter_mut().zip([comb * tonal, comb * vocals * power, tonal, voice * power, p]) {
                sum[i % LANES] += term;
            }
        }
        let [on_comb, centred_on_comb, tonal, band, total] = sums.map(|lanes| lanes.iter().sum::<f32>());
        Frame {
            profile,
            f0_hz: F0_HZ.0 * (best as f32 / STEPS_PER_OCTAVE).exp2(),
            share: salience / (total + 1e-20),
            on_comb,
            centred_on_comb,
            tonal,
            band,
        }
    }

    /// Reshapes the stem masks of the current frame: the vocals become
    /// `gate · comb · (vocals + boost · other + handover · bass)`, `gate` the voicing verdict in
    /// [0, 1]; the bass keeps the rest of its share and "other" the rest, so the four still sum
    /// to one.
    pub fn apply(&self, masks: &mut [StemMasks]) {
        let bins = masks.iter_mut().zip(&self.comb).zip(self.boost.iter().zip(&self.handover));
        for ((m, &comb), (&boost, &handover)) in bins {
            let StemMasks { drums, bass, other, vocals } = *m;
            let on_comb = self.gate * comb;
            let from_bass = on_comb * handover * bass;
            let (bass, voice) = (bass - from_bass, on_comb * (vocals + boost * other) + from_bass);
            *m = StemMasks::with_other(drums, bass, voice);
        }
    }

    /// The current frame's comb weights per bin and its voicing gate.
    pub fn comb_and_gate(&self) -> (&[f32], f32) {
        (&self.comb, self.gate)
    }

    /// Forgets the held pitches.
    pub fn reset(&mut self) {
        self.recent.fill(None);
        self.voicing.reset();
        self.gate = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comb_follows_a_harmonic_tone_and_masks_still_sum_to_one() {
        let (bins, n, sr) = (1025, 2048, 44_100.0);
        let mut comb = VoiceComb::new(bins, n, 512, sr);
        let bin_hz = sr / n as f32;
        let f0 = 440.0;
        let tone = |bin: usize| {
            let hz = bin as f32 * bin_hz;
            (1..=6).map(|h| (1.0 - (hz - h as f32 * f0).abs() / bin_hz).max(0.0)).sum::<f32>()
        };
        let magnitudes: Vec<f32> = (0..bins).map(tone).collect();
        // Centred tonal content: all of it vocals in the voice band.
        let centred: Vec<StemMasks> = comb.voice.iter().map(|&v| StemMasks::with_other(0.0, 0.0, v)).collect();
        comb.update(&centred, &magnitudes);
        let bin_of = |hz: f32| (hz / bin_hz).round() as usize;
        assert!(comb.comb[bin_of(880.0)] > 0.9 && comb.comb[bin_of(1320.0)] > 0.9);
        assert_eq!(comb.comb[bin_of(660.0)], 0.0, "between harmonics");
        let mut masks = vec![StemMasks { drums: 0.1, bass: 0.2, other: 0.3, vocals: 0.4 }; bins];
        comb.apply(&mut masks);
        assert!(masks.iter().all(|m| (m.sum() - 1.0).abs() < 1e-6 && m.all_in_unit_range()));
        assert_eq!(masks[bin_of(660.0)].vocals, 0.0);
        assert!(masks[bin_of(880.0)].vocals > 0.4);
        assert_eq!(masks[bin_of(660.0)].bass, 0.2, "the bass keeps its share off the comb");
        assert!(masks[bin_of(880.0)].bass < 0.03, "and hands it to the voice on the comb");
    }
}
