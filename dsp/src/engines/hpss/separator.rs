//! The streaming four-stem HPSS engine.

use std::sync::Arc;

use realfft::num_complex::Complex;

use super::bass_width::BassWidth;
use super::config::HpssConfig;
use super::masks::{MaskPower, Power, Squared, StemMapper, StemMasks, centre_measure};
use super::refine::{FrameMeasures, MaskRefiner};
use super::spatial_wiener::{self, DrumsBassWiener};
use super::voice_comb::VoiceComb;
use super::{bass_width, voicing};
use crate::separator::{FORGETS_AFTER, Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::signal::denormals::clean;
use crate::signal::median_network::{LANES, MedianNetwork, NetworkMedianFilter};
use crate::signal::stft::{Analyzer, FftPair, Synthesizer, hann};
use crate::stem::Stem;

const CHANNELS: usize = 2;
const STEMS: usize = Stem::ALL.len();
/// Stems synthesised from their masks. `Other` is the delayed input minus these: the same signal
/// (its mask is one minus theirs), for three inverse transforms per channel instead of four.
const SYNTHESISED: [Stem; 3] = [Stem::Drums, Stem::Bass, Stem::Vocals];

/// Real-time HPSS separator: drums from the percussive part and the low-frequency bursts that do
/// not hold (the kick), bass, vocals and other from the harmonic and residual parts by frequency
/// and stereo position (see `StemMapper` in masks.rs).
///
/// Each frame's time median spans `harmonic_frames` frames ending `lookahead_frames` after it, so
/// the latency is one frame plus the look-ahead ([`HpssConfig::latency_samples`]). Output is
/// sample-exact whatever the block sizes: the engine behaves as if fed one sample at a time.
pub struct HpssSeparator {
    config: HpssConfig,
    mapper: StemMapper,
    /// How far the bass spreads off the centre, for the bass's share above its lowest octaves.
    bass_width: BassWidth,
    voice_comb: VoiceComb,
    /// The masks before the comb and each bin's centre measure, for the refinement.
    before_comb: Vec<StemMasks>,
    centre: Vec<f32>,
    refiner: MaskRefiner,
    /// Re-splits the drums and bass in the bins they share by their stereo images.
    wiener: DrumsBassWiener,
    /// The drums' 2×2 filter per re-split bin ([`DrumsBassWiener::update`]).
    drums_filters: Vec<[[Complex<f32>; 2]; 2]>,
    analyzers: [Analyzer; CHANNELS],
    synthesizers: Vec<Synthesizer>,
    /// Spectra of the last `lookahead_frames + 1` frames, both channels: `[frame][channel][bin]`.
    spectra: Vec<Complex<f32>>,
    /// Mid magnitudes of the last `harmonic_frames` frames: `[frame][bin]`, each frame padded with
    /// zeros to whole groups of [`LANES`] bins.
    magnitudes: Vec<f32>,
    /// Medians over the `harmonic_frames` frames, eight bins at a time.
    time_median: MedianNetwork,
    /// Index of the newest frame in `magnitudes`.
    newest: usize,
    /// Index of the newest frame in `spectra`; the next one holds the frame to output.
    newest_spectrum: usize,
    harmonic: Vec<f32>,
    percussive: Vec<f32>,
    /// Magnitude of the output frame's low bins above their sustained level (see [`Self::bursts`]).
    burst: Vec<f32>,
    frequency_median: NetworkMedianFilter,
    masks: Vec<StemMasks>,
    stem_spectrum: Vec<Complex<f32>>,
    /// The input delayed by the latency, per channel, from which `Other` is derived.
    delayed_input: [DelayLine; CHANNELS],
    /// The hop of finished output per synthesised stem and channel: `[stem][channel][sample]`.
    ready: Vec<f32>,
    /// Samples of the current hop received so far.
    fill: usize,
    /// What the engine saw per frame, for fitting its constants (`bench/mask_fit.py`).
    #[cfg(feature = "tap")]
    tap: super::tap::Tap,
}

impl HpssSeparator {
    /// Builds an engine; all memory is allocated here.
    pub fn new(config: HpssConfig) -> Self {
        config.validate().expect("HpssConfig::new validates its configurations");
        let (n, hop, bins) = (config.fft_size, config.hop, config.bins());
        let fft = FftPair::new(n);
        let window: Arc<[f32]> = hann(n).into();
        let analyzer = || Analyzer::new(fft.clone(), window.clone(), hop);
        let mapper = StemMapper::new(bins, n, config.sample_rate, config.kick);
        let (bass_bins, kick_bins) = (mapper.bass_bins(), mapper.kick_bins());
        let resplit_bins = bass_bins.min((spatial_wiener::MAX_HZ * n as f32 / config.sample_rate).ceil() as usize);
        Self {
            mapper,
            bass_width: BassWidth::new(n, hop, config.sample_rate),
            voice_comb: VoiceComb::new(bins, n, hop, config.sample_rate),
            before_comb: vec![StemMasks::default(); bins],
            centre: vec![0.0; bins],
            refiner: MaskRefiner::new(bins, n, config.sample_rate),
            wiener: DrumsBassWiener::new(resplit_bins, hop, config.sample_rate),
            drums_filters: vec![[[Complex::default(); 2]; 2]; resplit_bins],
            analyzers: [analyzer(), analyzer()],
            synthesizers: (0..SYNTHESISED.len() * CHANNELS)
                .map(|_| Synthesizer::new(fft.clone(), window.clone(), hop))
                .collect(),
            delayed_input: std::array::from_fn(|_| DelayLine::new(config.latency_samples(), config.latency_samples())),
            spectra: vec![Complex::default(); (config.lookahead_frames + 1) * CHANNELS * bins],
            magnitudes: vec![0.0; config.harmonic_frames * bins.next_multiple_of(LANES)],
            time_median: MedianNetwork::new(config.harmonic_frames),
            newest: 0,
            newest_spectrum: 0,
            harmonic: vec![0.0; bins.next_multiple_of(LANES)],
            percussive: vec![0.0; bins],
            burst: vec![0.0; kick_bins],
            frequency_median: NetworkMedianFilter::new(config.percussive_bins, bins),
            masks: vec![StemMasks::default(); bins],
            stem_spectrum: vec![Complex::default(); bins],
            ready: vec![0.0; SYNTHESISED.len() * CHANNELS * hop],
            fill: 0,
            #[cfg(feature = "tap")]
            tap: super::tap::Tap::default(),
            config,
        }
    }

    /// Where the ready hop of `SYNTHESISED[k]` on `channel` lies in `ready`.
    fn ready_range(&self, k: usize, channel: usize) -> std::ops::Range<usize> {
        let start = (k * CHANNELS + channel) * self.config.hop;
        start..start + self.config.hop
    }

    /// Step 4: fills `burst` for the frame `target` in `magnitudes`: the magnitude of each low bin above its
    /// sustained level, `sqrt(max(M² − S², 0))`, where `S` is the larger of the time median and the
    /// smallest magnitude from the frame through the look-ahead (a note holds, a kick decays; the
    /// temporal-envelope cue needs look-ahead, so a causal preset uses the median alone).
    #[inline(always)]
    fn bursts(&mut self, target: usize) {
        let (history, lookahead) = (self.config.harmonic_frames, self.config.lookahead_frames);
        let stride = self.config.bins().next_multiple_of(LANES);
        let kick_bins = self.burst.len();
        let frame = |j: usize| &self.magnitudes[j * stride..j * stride + kick_bins];
        self.burst.copy_from_slice(frame(target));
        for (bin, burst) in self.burst.iter_mut().enumerate() {
            let held = (1..=lookahead).fold(*burst, |held, j| held.min(frame((target + j) % history)[bin]));
            let sustained = if lookahead > 0 { self.harmonic[bin].max(held) } else { self.harmonic[bin] };
            *burst = (*burst * *burst - sustained * sustained).max(0.0).sqrt();
        }
    }

    /// Steps 3 and 5: fills `masks` for the frame in spectrum slot `slot` from `harmonic`,
    /// `percussive` and `burst`: the drums' share (soft masks with margins), then bass, vocals and
    /// other by frequency and stereo position ([`StemMapper`]).
    #[inline(always)]
    fn stem_masks(&mut self, slot: usize, power: impl MaskPower) {
        let bins = self.config.bins();
        let c = &self.config;
        let split_zeros = c.margin_harmonic == 1.0 && c.margin_percussive == 1.0;
        let (left, right) = slot_spectra(&self.spectra, bins, slot);
        let bass_width = self.bass_width.update(left, right);
        for (bin, (masks, centre)) in self.masks.iter_mut().zip(&mut self.centre).enumerate() {
            let (h, p) = (self.harmonic[bin], self.percussive[bin]);
            let burst = self.burst.get(bin).copied().unwrap_or(0.0);
            let drums = self.mapper.drums(bin, p, h * c.margin_percussive, burst, power, split_zeros);
            *centre = centre_measure(left[bin], right[bin]);
            *masks = self.mapper.masks(bin, drums, *centre, bass_width);
        }
    }

    /// Step 6: narrows the vocals to the harmonic comb of the voice's pitch in the frame `target`
    /// of `magnitudes`, scaled by how likely that pitch is a voice ([`VoiceComb`]).
    #[inline(always)]
    fn voice_comb(&mut self, target: usize) {
        let magnitudes = &self.magnitudes[magnitudes_range(self.config.bins(), target)];
        self.voice_comb.update(&self.masks, magnitudes);
        self.before_comb.copy_from_slice(&self.masks);
        self.voice_comb.apply(&mut self.masks);
    }

    /// Step 7: the fitted refinement of the masks of the frame `target` of `magnitudes`
    /// ([`MaskRefiner`]).
    #[inline(always)]
    fn refine(&mut self, target: usize) {
        let bins = self.config.bins();
        let (comb, gate) = self.voice_comb.comb_and_gate();
        let frame = FrameMeasures {
            centre: &self.centre,
            magnitudes: &self.magnitudes[magnitudes_range(bins, target)],
            harmonic: &self.harmonic[..bins],
            percussive: &self.percussive,
            before_comb: &self.before_comb,
            comb,
            gate,
        };
        self.refiner.apply(&mut self.masks, &frame);
    }

    /// Analyses the hop just completed and synthesises the frame `lookahead_frames` before it,
    /// compiled for AVX2 where the CPU has it (the median and mask loops vectorise twice as wide).
    fn process_frame(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports both features, checked just above.
            return unsafe { self.process_frame_avx2() };
        }
        self.process_frame_portable();
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn process_frame_avx2(&mut self) {
        self.process_frame_portable();
    }

    /// One frame, in the steps of docs/hpss.md: analysis, medians, kick bursts, stem masks, the
    /// voice comb, the fitted refinement, the drums/bass re-split, synthesis.
    #[inline(always)]
    fn process_frame_portable(&mut self) {
        let newest_slot = self.analyse();
        // Step 2: the time median of every bin (tonal), the frequency median of the output frame
        // (percussive).
        self.time_medians();
        // The frame to output now is `lookahead_frames` older than the newest.
        let history = self.config.harmonic_frames;
        let target = (self.newest + history - self.config.lookahead_frames) % history;
        let target_slot = (newest_slot + 1) % (self.config.lookahead_frames + 1);
        let bins = self.config.bins();
        self.frequency_median.apply(&self.magnitudes[magnitudes_range(bins, target)], &mut self.percussive);
        self.bursts(target);
        if self.config.power == 2.0 {
            self.stem_masks(target_slot, Squared);
        } else {
            self.stem_masks(target_slot, Power(self.config.power));
        }
        self.voice_comb(target);
        #[cfg(feature = "tap")]
        let after_comb = self.masks.clone();
        if self.config.refine {
            self.refine(target);
        }
        #[cfg(feature = "tap")]
        self.tap.record(
            slot_spectra(&self.spectra, bins, target_slot),
            &self.harmonic[..bins],
            &self.percussive,
            [&self.before_comb, &after_comb, &self.masks],
            self.voice_comb.comb_and_gate(),
        );
        // Step 8: the drums/bass re-split's filters.
        let (left, right) = slot_spectra(&self.spectra, bins, target_slot);
        self.wiener.update(left, right, &self.masks, &mut self.drums_filters);
        self.synthesise(target_slot);
    }

    /// Step 1: analyses the hop just completed into the next slot of both rings (the spectra and
    /// the mid magnitudes `sqrt((|L|² + |R|²) / 2)`, replacing the oldest); returns its spectrum
    /// slot.
    #[inline(always)]
    fn analyse(&mut self) -> usize {
        let bins = self.config.bins();
        self.newest = (self.newest + 1) % self.config.harmonic_frames;
        self.newest_spectrum = (self.newest_spectrum + 1) % (self.config.lookahead_frames + 1);
        let slot = self.newest_spectrum;
        let newest_spectra = &mut self.spectra[slot * CHANNELS * bins..(slot + 1) * CHANNELS * bins];
        let (left, right) = newest_spectra.split_at_mut(bins);
        self.analyzers[0].analyze(left);
        self.analyzers[1].analyze(right);
        let magnitudes = &mut self.magnitudes[magnitudes_range(bins, self.newest)];
        for ((m, l), r) in magnitudes.iter_mut().zip(&*left).zip(&*right) {
            *m = ((l.norm_sqr() + r.norm_sqr()) * 0.5).sqrt();
        }
        slot
    }

    /// Step 2, in time: `harmonic`, the median over the last `harmonic_frames` magnitudes of each
    /// bin, eight bins at a time.
    #[inline(always)]
    fn time_medians(&mut self) {
        let stride = self.config.bins().next_multiple_of(LANES);
        let all = &self.magnitudes;
        for (group, harmonic) in self.harmonic.chunks_exact_mut(LANES).enumerate() {
            let at = group * LANES;
            let frame = |j: usize| all[j * stride + at..j * stride + at + LANES].try_into().expect("eight lanes");
            harmonic.copy_from_slice(&self.time_median.median(frame));
        }
    }

    /// Step 9: drums, bass and vocals of the frame in spectrum slot `slot`, each channel by its
    /// masked spectrum (drums and bass re-split where the Wiener filter reaches), inverse FFT and
    /// overlap-add into `ready`.
    #[inline(always)]
    fn synthesise(&mut self, slot: usize) {
        let (left, right) = slot_spectra(&self.spectra, self.config.bins(), slot);
        for (k, stem) in SYNTHESISED.into_iter().enumerate() {
            for (channel, spectrum) in [left, right].into_iter().enumerate() {
                let out = &mut self.stem_spectrum;
                match stem {
                    Stem::Drums => mask_spectrum(out, spectrum, &self.masks, |m| m.drums),
                    Stem::Bass => mask_spectrum(out, spectrum, &self.masks, |m| m.bass),
                    // The third of `SYNTHESISED`: the vocals.
                    _ => mask_spectrum(out, spectrum, &self.masks, |m| m.vocals),
                }
                if matches!(stem, Stem::Drums | Stem::Bass) {
                    let filters = &self.drums_filters;
                    resplit_drums_bass(stem, channel, [left, right], &self.masks, filters, &mut self.stem_spectrum);
                }
                let range = self.ready_range(k, channel);
                self.synthesizers[k * CHANNELS + channel].synthesize(&mut self.stem_spectrum, &mut self.ready[range]);
            }
        }
    }
}

/// `out = x · mask(m)` bin by bin: one loop per stem, so that each vectorises.
#[inline(always)]
fn mask_spectrum(out: &mut [Complex<f32>], x: &[Complex<f32>], masks: &[StemMasks], mask: impl Fn(&StemMasks) -> f32) {
    for ((out, x), m) in out.iter_mut().zip(x).zip(masks) {
        *out = x * mask(m);
    }
}

/// Where frame `frame` of `bins` bins lies in the magnitudes ring (frames padded to whole groups of
/// [`LANES`]).
#[inline(always)]
fn magnitudes_range(bins: usize, frame: usize) -> std::ops::Range<usize> {
    let start = frame * bins.next_multiple_of(LANES);
    start..start + bins
}

/// Both channels' spectra (`bins` bins each) in slot `slot` of the spectra ring.
#[inline(always)]
fn slot_spectra(spectra: &[Complex<f32>], bins: usize, slot: usize) -> (&[Complex<f32>], &[Complex<f32>]) {
    spectra[slot * CHANNELS * bins..(slot + 1) * CHANNELS * bins].split_at(bins)
}

/// Overwrites the re-split bins of `out` (the drums or bass spectrum of `channel`) with the Wiener
/// re-split ([`DrumsBassWiener::update`]): drums = the drums filter applied to both channels of the
/// mixture `x`, bass = `(m_d + m_b)·x` of the channel minus the drums.
#[inline(always)]
fn resplit_drums_bass(
    stem: Stem,
    channel: usize,
    x: [&[Complex<f32>]; CHANNELS],
    masks: &[StemMasks],
    filters: &[[[Complex<f32>; 2]; 2]],
    out: &mut [Complex<f32>],
) {
    for (bin, (out, filter)) in out.iter_mut().zip(filters).enumerate() {
        let drums = filter[channel][0] * x[0][bin] + filter[channel][1] * x[1][bin];
        let joint = masks[bin].drums + masks[bin].bass;
        *out = if stem == Stem::Drums { drums } else { x[channel][bin] * joint - drums };
    }
}

#[cfg(feature = "tap")]
impl HpssSeparator {
    /// The frames recorded so far ([`super::tap::Tap`]), emptied.
    pub fn take_tap(&mut self) -> Vec<f32> {
        std::mem::take(&mut self.tap.rows)
    }
}

impl Separator for HpssSeparator {
    fn sources(&self) -> &[Stem] {
        &Stem::ALL
    }

    fn latency_samples(&self) -> usize {
        self.config.latency_samples()
    }

    /// The time median's frames behind the latency, or the longest running average (the
    /// drums/bass re-split's covariances) until it forgets, whichever is longer.
    fn history_samples(&self) -> usize {
        let medians = self.config.harmonic_frames * self.config.hop + self.config.fft_size;
        let averages = [spatial_wiener::TIME_CONSTANT_S, bass_width::TIME_CONSTANT_S, voicing::RUNNING_MS / 1000.0];
        let longest = averages.into_iter().fold(0.0, f32::max);
        medians.max((FORGETS_AFTER * longest * self.config.sample_rate).ceil() as usize)
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        assert_eq!(left.len(), right.len(), "channels must have equal lengths");
        assert_eq!(stems.len(), STEMS, "one output per source");
        let hop = self.config.hop;
        let mut pos = 0;
        while pos < left.len() {
            // Behaves as if fed sample by sample: each input sample yields one output sample, and
            // the sample completing a hop is output from the frame it completes.
            let take = (hop - self.fill).min(left.len() - pos);
            for (analyzer, input) in self.analyzers.iter_mut().zip([left, right]) {
                let slots = &mut analyzer.input()[self.fill..self.fill + take];
                for (s, &x) in slots.iter_mut().zip(&input[pos..pos + take]) {
                    *s = clean(x);
                }
            }
            let completes = self.fill + take == hop;
            let from_old = if completes { take - 1 } else { take };
            for (k, stem) in SYNTHESISED.into_iter().enumerate() {
                for (channel, out) in stems[stem.index()].iter_mut().enumerate() {
                    let ready = &self.ready[self.ready_range(k, channel)];
                    out[pos..pos + from_old].copy_from_slice(&ready[self.fill + 1..self.fill + 1 + from_old]);
                }
            }
            if completes {
                self.process_frame();
                for (k, stem) in SYNTHESISED.into_iter().enumerate() {
                    for (channel, out) in stems[stem.index()].iter_mut().enumerate() {
                        out[pos + take - 1] = self.ready[self.ready_range(k, channel).start];
                    }
                }
                self.fill = 0;
            } else {
                self.fill += take;
            }
            pos += take;
        }
        // Other = delayed input − the synthesised stems.
        let [drums, bass, other, vocals] = stems else { unreachable!("checked above") };
        for (channel, input) in [left, right].into_iter().enumerate() {
            let out = &mut *other[channel];
            self.delayed_input[channel].process(input, out);
            for ((o, d), (b, v)) in
                out.iter_mut().zip(&*drums[channel]).zip(bass[channel].iter().zip(&*vocals[channel]))
            {
                *o = clean(*o - d - b - v);
            }
        }
    }

    fn reset(&mut self) {
        self.analyzers.iter_mut().for_each(Analyzer::reset);
        self.synthesizers.iter_mut().for_each(Synthesizer::reset);
        self.delayed_input.iter_mut().for_each(DelayLine::reset);
        self.spectra.fill(Complex::default());
        self.magnitudes.fill(0.0);
        self.bass_width.reset();
        self.voice_comb.reset();
        self.wiener.reset();
        self.ready.fill(0.0);
        self.fill = 0;
    }
}
