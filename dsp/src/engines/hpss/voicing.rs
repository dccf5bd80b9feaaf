//! Voicing detection for the voice comb: how likely the comb's pitch is a voice rather than a lead
//! instrument or a chord panned to the centre, so that songs and passages without a voice keep
//! their melody and chords in "other".
//!
//! Two logistic regressions on per-frame measurements of the comb ([`Frame`]) and their running
//! means (about 1.2 s), in the spirit of Melodia's contour voicing (Salamon & Gómez 2012, "Melody
//! extraction from polyphonic music signals using pitch contour characteristics", IEEE TASLP 20(6)),
//! which keeps a pitch contour by its salience, pitch and vibrato statistics; here the statistics
//! feed classifiers, one per kind of voice: General MIDI voices (steady vowels) and sung speech
//! (consonants break the pitch track, glides move it), and a frame is voiced when either says so.
//! Weights fit by `bench/voicing_fit.py` on the "fit" and "vfit" splits of bench/songs.py's dataset
//! (label: the true vocals carry more of the comb's energy than the true "other"; the gate chosen on
//! the development splits); the features follow its definitions exactly. The fit saw the
//! normal preset at 44.1 kHz: the pitch jump and the rise are per frame, so at the low and high
//! presets' hops they read on another scale (both presets still gain on the development split).

/// Harmonics of the comb's pitch that a candidate's salience sums and a [`Frame`]'s profile holds.
pub(super) const HARMONICS: usize = 8;
/// Per-frame measurements (`Voicing::measures`).
const MEASURES: usize = 16;
/// Pitch stability: the share of the last frames (this many ms) whose pitch moved less than
/// `PITCH_STEP` octaves since the frame before.
const STABLE_MS: f32 = 70.0;
const PITCH_STEP: f32 = 0.05;
/// Time constant of the running means, in ms: the 100 frames of `bench/voicing_fit.py`'s
/// `RUNNING_FRAMES` at the normal preset's hop at 44.1 kHz (512 samples, 11.61 ms), where the
/// weights were fit; in ms so that every preset and rate averages over the same time.
pub(super) const RUNNING_MS: f32 = 1_161.0;
/// The comb's vocals are scaled by `clip((p − GATE_FROM) / (GATE_TO − GATE_FROM), 0, 1)`.
const GATE_FROM: f32 = 0.2;
const GATE_TO: f32 = 0.5;
/// One logistic regression: weights of the measures, then of their running means, and the bias.
struct Detector {
    weights: [f32; 2 * MEASURES],
    bias: f32,
}
/// The detectors, each fit by `python3 bench/voicing_fit.py --rust` on one kind of voice; a frame is
/// voiced when either says so (the larger probability counts). One regression fit on both kinds at
/// once lost 0.15–0.19 dB on the General MIDI development split and gained less on the sung one
/// (BENCHMARKS.md, "Sung speech").
#[rustfmt::skip]
#[allow(clippy::excessive_precision)]
const DETECTORS: [Detector; 2] = [
    // General MIDI voices (choir aahs, voice oohs, synth voice): the "fit" split, fit before the
    // comb's lowest pitch went from 180 to 90 Hz (refit on the 90 Hz features it lost 0.07 dB on
    // the development split, so these weights stay).
    Detector { weights: [
        -1.265992e-02, 1.137308e-02, -5.295844e-02, -1.857107e-01, -6.896619e-02, -5.171956e-02,
        -4.729228e-02, -5.605542e-02, 5.919002e-02, 2.158314e+00, 1.895811e+00, 9.356371e-01,
        1.150317e+00, 7.413454e-01, 9.928084e-02, -6.844130e-02, 6.709201e-01, -1.624898e-01,
        -9.788296e-02, -1.048407e-01, 6.344625e-01, -7.314912e-01, 1.401685e-01, -2.024660e-01,
        -2.512968e-01, 5.725319e+00, -3.303882e-01, -2.890459e+00, -1.224630e-01, -2.109834e+00,
        5.292815e+00, 2.467593e+01,
    ], bias: -5.045903e+00 },
    // Sung speech (bench/voice.py): the "vfit" split.
    Detector { weights: [
        3.307289e-01, 3.122112e-03, -2.819585e-01, -1.843958e-01, -4.805305e-02, 2.996468e-02,
        5.500122e-02, -3.278474e-02, -9.526671e-01, -3.600097e-01, 3.647672e+00, 1.948169e+00,
        1.336748e-01, 3.313609e-02, 1.736905e-01, -1.698382e-01, 8.388763e-01, 1.105469e-01,
        -7.584777e-01, -4.516607e-01, 2.569706e-01, 1.291157e-01, -1.863238e-01, 3.996163e-01,
        -3.932929e-01, 2.798136e+00, 1.621706e-01, -3.581070e+00, 2.782505e+00, -1.848936e+00,
        5.078256e+00, 3.097985e+01,
    ], bias: -4.378009e+00 },
];

/// What the comb measured in one frame.
pub(super) struct Frame {
    /// Salience-spectrum power at each harmonic of the salient pitch (0 above the Nyquist
    /// frequency).
    pub profile: [f32; HARMONICS],
    /// The salient pitch, in Hz.
    pub f0_hz: f32,
    /// The salient pitch's harmonic sum over the whole salience spectrum's power.
    pub share: f32,
    /// Powers (sums over bins): voice-band tonal content on the comb, its centred part (the
    /// vocals' centre² gate), all voice-band tonal content, and the whole voice band.
    pub on_comb: f32,
    pub centred_on_comb: f32,
    pub tonal: f32,
    pub band: f32,
}

/// The running state of the detector; all memory allocated in `new`.
pub(super) struct Voicing {
    /// Per-frame decay of the running means.
    decay: f32,
    running: Option<[f32; MEASURES]>,
    /// Whether each of the last frames kept its pitch, a ring.
    steady: Vec<bool>,
    newest: usize,
    /// The previous frame's pitch (octaves re 440 Hz) and comb power.
    previous: Option<(f32, f32)>,
}

impl Voicing {
    /// A detector for frames `hop` samples apart at `sample_rate`.
    pub fn new(hop: usize, sample_rate: f32) -> Self {
        let hop_ms = 1e3 * hop as f32 / sample_rate;
        Self {
            decay: (-hop_ms / RUNNING_MS).exp(),
            running: None,
            steady: vec![false; ((STABLE_MS / hop_ms).round() as usize).max(1)],
            newest: 0,
            previous: None,
        }
    }

    /// The share of the comb's vocals to keep for this frame, in [0, 1].
    pub fn gate(&mut self, frame: &Frame) -> f32 {
        let now = self.measures(frame);
        let running = match &mut self.running {
            Some(running) => {
                for (r, &x) in running.iter_mut().zip(&now) {
                    *r = self.decay * *r + (1.0 - self.decay) * x;
                }
                *running
            }
            None => *self.running.insert(now),
        };
        let dot = |w: &[f32], x: &[f32; MEASURES]| w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>();
        let logit = DETECTORS
            .iter()
            .map(|d| {
                let (weights_now, weights_running) = d.weights.split_at(MEASURES);
                d.bias + dot(weights_now, &now) + dot(weights_running, &running)
            })
            .fold(f32::NEG_INFINITY, f32::max);
        let p = 1.0 / (1.0 + (-logit).exp());
        ((p - GATE_FROM) / (GATE_TO - GATE_FROM)).clamp(0.0, 1.0)
    }

    /// [`Frame`] as the regression's inputs: the harmonic profile (log10 of each harmonic's share),
    /// the pitch (octaves re 440 Hz), the salience share, the comb's centred share, the comb's share
    /// of the tonal content (monophony), the tonal share of the voice band, pitch stability, the
    /// pitch jump (octaves, at most 1) and the rise of the comb's power (log10).
    fn measures(&mut self, f: &Frame) -> [f32; MEASURES] {
        let profile_total: f32 = f.profile.iter().sum::<f32>() + 1e-20;
        let pitch = (f.f0_hz / 440.0).log2();
        let on_comb = f.on_comb + 1e-12;
        let (previous_pitch, previous_on_comb) = self.previous.unwrap_or((pitch, on_comb));
        self.previous = Some((pitch, on_comb));
        let jump = (pitch - previous_pitch).abs();
        self.newest = (self.newest + 1) % self.steady.len();
        self.steady[self.newest] = jump < PITCH_STEP;
        let stable = self.steady.iter().filter(|&&s| s).count() as f32 / self.steady.len() as f32;
        let mut out = [0.0; MEASURES];
        for (o, &p) in out.iter_mut().zip(&f.profile) {
            *o = (p / profile_total + 1e-6).log10();
        }
        out[HARMONICS..].copy_from_slice(&[
            pitch,
            f.share,
            (f.centred_on_comb + 1e-12) / on_comb,
            on_comb / (f.tonal + 1e-12),
            (f.tonal + 1e-12) / (f.band + 1e-12),
            stable,
            jump.min(1.0),
            (on_comb / previous_on_comb).log10(),
        ]);
        // Powers overflow on absurdly loud input (|x| ≳ 1e16): such a frame must not poison the
        // running means.
        out.map(|x| if x.is_finite() { x } else { 0.0 })
    }

    /// Forgets the past frames.
    pub fn reset(&mut self) {
        self.running = None;
        self.steady.fill(false);
        self.previous = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose comb holds `on_comb` of the voice band's tonal power, `centred` of it centred,
    /// with the salient pitch carrying `share` of the salience spectrum.
    fn frame(f0_hz: f32, share: f32, on_comb: f32, centred: f32) -> Frame {
        Frame {
            profile: std::array::from_fn(|h| 0.7f32.powi(h as i32)),
            f0_hz,
            share,
            on_comb,
            centred_on_comb: centred * on_comb,
            tonal: 1.0,
            band: 1.2,
        }
    }

    /// The gate after two seconds of the same frame, at the normal preset's hop.
    fn settled(f: &Frame) -> f32 {
        let mut voicing = Voicing::new(512, 44_100.0);
        (0..172).map(|_| voicing.gate(f)).last().expect("frames")
    }

    #[test]
    fn a_held_centred_monophonic_pitch_passes_and_a_spread_off_centre_one_does_not() {
        let voice = settled(&frame(440.0, 0.8, 0.9, 0.9));
        let chords = settled(&frame(440.0, 0.1, 0.2, 0.1));
        assert!(voice > 0.9 && chords < 0.1, "voice {voice}, chords {chords}");
    }

    #[test]
    fn silence_and_overflowing_frames_give_a_finite_gate_and_reset_forgets_the_past() {
        let silent = Frame { profile: [0.0; HARMONICS], ..frame(180.0, 0.0, 0.0, 0.0) };
        let silent = Frame { tonal: 0.0, band: 0.0, ..silent };
        let overflow = Frame { on_comb: f32::INFINITY, band: f32::INFINITY, ..frame(300.0, f32::NAN, 0.5, 0.5) };
        // Frames whose gate lies inside (0, 1), so that any state left over would show.
        let voice: Vec<Frame> = (0..40).map(|_| frame(440.0, 0.4, 0.5, 0.5)).collect();
        let fresh: Vec<f32> = {
            let mut voicing = Voicing::new(512, 44_100.0);
            voice.iter().map(|f| voicing.gate(f)).collect()
        };
        assert!(fresh.iter().any(|g| 0.0 < *g && *g < 1.0), "{fresh:?}");
        let mut voicing = Voicing::new(512, 44_100.0);
        for f in [&silent, &overflow, &silent] {
            let g = voicing.gate(f);
            assert!((0.0..=1.0).contains(&g), "{g}");
        }
        assert!(voice.iter().all(|f| voicing.gate(f).is_finite()), "an overflowing frame poisoned the state");
        voicing.reset();
        let after: Vec<f32> = voice.iter().map(|f| voicing.gate(f)).collect();
        assert_eq!(after, fresh);
    }
}
