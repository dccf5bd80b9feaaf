//! HPSS parameters: musician-facing presets and settings in milliseconds and hertz, and the
//! configuration in frames and bins that they become at a given sample rate.

use crate::signal::median_network::MAX_KERNEL;

/// Sample rates the HPSS engine accepts, in Hz.
pub const SAMPLE_RATE_RANGE: std::ops::RangeInclusive<f32> = 8_000.0..=384_000.0;

/// Latency/quality trade-offs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Preset {
    /// Causal time median, short window: under 30 ms at any supported rate.
    Low,
    /// A few frames of look-ahead: under 100 ms. The default.
    #[default]
    Normal,
    /// Long window and look-ahead for the cleanest split: about 250 ms.
    HighQuality,
}

impl Preset {
    /// Every preset, from lowest latency to highest quality.
    pub const ALL: [Preset; 3] = [Preset::Low, Preset::Normal, Preset::HighQuality];

    /// Name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Low => "low",
            Preset::Normal => "normal",
            Preset::HighQuality => "high",
        }
    }

    /// What the plugin and its window call it.
    pub fn label(self) -> &'static str {
        match self {
            Preset::Low => "Low latency",
            Preset::Normal => "Normal",
            Preset::HighQuality => "High quality",
        }
    }

    /// Parses [`Preset::name`].
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// The settings this preset stands for (kernels and margins chosen on the development split of
    /// `bench/songs.py dataset` with `bench/hpss_model.py`).
    pub fn settings(self) -> HpssSettings {
        let base = HpssSettings::default();
        match self {
            Preset::Low => HpssSettings {
                window_ms: 23.2,
                lookahead_ms: 0.0,
                harmonic_ms: 64.0,
                percussive_hz: 650.0,
                margin_percussive: 2.0,
                ..base
            },
            Preset::Normal => base,
            Preset::HighQuality => HpssSettings {
                window_ms: 92.9,
                lookahead_ms: 140.0,
                harmonic_ms: 300.0,
                percussive_hz: 250.0,
                margin_percussive: 2.0,
                ..base
            },
        }
    }
}

/// HPSS settings in rate-independent units, so that 44.1, 48 and 96 kHz behave alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpssSettings {
    /// STFT window length; rounded down to a power of two in samples (5% tolerance). The hop is a quarter.
    pub window_ms: f32,
    /// How far the time median looks into the future (0 = causal).
    pub lookahead_ms: f32,
    /// Length of the time median that finds harmonic (steady) content.
    pub harmonic_ms: f32,
    /// Width of the frequency median that finds percussive (broadband) content.
    pub percussive_hz: f32,
    /// Exponent of the soft masks (2 = Wiener-like).
    pub power: f32,
    /// How much stronger harmonic content must be than percussive to count as harmonic (≥ 1).
    /// Shapes the harmonic/residual split of two-part HPSS ([`super::offline::hpss`]); the
    /// four-stem engine keeps harmonic and residual together as tonal content.
    pub margin_harmonic: f32,
    /// How much stronger percussive content must be than harmonic to count as percussive (≥ 1).
    pub margin_percussive: f32,
    /// Weight (≥ 0) of the low-frequency burst term (the kick) in the drums' power estimate of the
    /// four-stem engine (`StemMapper::drums` in masks.rs); 0 leaves drums plain HPSS.
    pub kick: f32,
    /// Whether the four-stem engine refines its masks by the fitted per-bin model
    /// (`MaskRefiner` in refine.rs); without it the stems are the hand-made rules' alone.
    pub refine: bool,
}

impl Default for HpssSettings {
    fn default() -> Self {
        Self {
            window_ms: 46.4,
            lookahead_ms: 35.0,
            harmonic_ms: 128.0,
            percussive_hz: 450.0,
            power: 2.0,
            margin_harmonic: 2.0,
            margin_percussive: 1.25,
            kick: 1.0,
            refine: true,
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The sample rate is outside [`SAMPLE_RATE_RANGE`].
    #[error(
        "unsupported sample rate {0} Hz (HPSS supports {low} to {high} Hz)",
        low = SAMPLE_RATE_RANGE.start(),
        high = SAMPLE_RATE_RANGE.end()
    )]
    SampleRate(f32),
    /// A parameter is out of range; the text says which and why.
    #[error("{0}")]
    Invalid(String),
}

/// HPSS configuration in samples, frames and bins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpssConfig {
    /// Sample rate in Hz.
    pub sample_rate: f32,
    /// STFT frame length in samples.
    pub fft_size: usize,
    /// STFT hop in samples.
    pub hop: usize,
    /// Time-median length in frames (odd).
    pub harmonic_frames: usize,
    /// Frequency-median length in bins (odd).
    pub percussive_bins: usize,
    /// Frames of look-ahead of the time median (≤ `harmonic_frames / 2`; that maximum centres it).
    pub lookahead_frames: usize,
    /// Soft-mask exponent.
    pub power: f32,
    /// Harmonic margin (≥ 1).
    pub margin_harmonic: f32,
    /// Percussive margin (≥ 1).
    pub margin_percussive: f32,
    /// Weight (≥ 0) of the kick term in the drums of the four-stem engine; see [`HpssSettings::kick`].
    pub kick: f32,
    /// Whether the four-stem engine refines its masks; see [`HpssSettings::refine`].
    pub refine: bool,
}

fn nearest_odd(x: f32) -> usize {
    let n = x.round().max(1.0) as usize;
    n | 1
}

impl HpssConfig {
    /// Converts `settings` to a configuration at `sample_rate`.
    pub fn new(settings: &HpssSettings, sample_rate: f32) -> Result<Self, ConfigError> {
        if !SAMPLE_RATE_RANGE.contains(&sample_rate) {
            return Err(ConfigError::SampleRate(sample_rate));
        }
        let samples = |ms: f32| ms * sample_rate / 1000.0;
        // The largest power of two within 5% of the requested length, so latency stays in budget.
        let fft_size = 1usize << (samples(settings.window_ms) * 1.05).max(64.0).log2().floor() as u32;
        let hop = fft_size / 4;
        let harmonic_frames = nearest_odd(samples(settings.harmonic_ms) / hop as f32).max(3);
        let lookahead_frames =
            ((samples(settings.lookahead_ms) / hop as f32).round().max(0.0) as usize).min(harmonic_frames / 2);
        let bin_hz = sample_rate / fft_size as f32;
        let config = Self {
            sample_rate,
            fft_size,
            hop,
            harmonic_frames,
            percussive_bins: nearest_odd(settings.percussive_hz / bin_hz).max(3),
            lookahead_frames,
            power: settings.power,
            margin_harmonic: settings.margin_harmonic,
            margin_percussive: settings.margin_percussive,
            kick: settings.kick,
            refine: settings.refine,
        };
        config.validate()?;
        Ok(config)
    }

    /// The configuration of a preset at `sample_rate`.
    pub fn preset(preset: Preset, sample_rate: f32) -> Result<Self, ConfigError> {
        Self::new(&preset.settings(), sample_rate)
    }

    /// Checks the invariants the engines rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |why: String| Err(ConfigError::Invalid(why));
        if !SAMPLE_RATE_RANGE.contains(&self.sample_rate) {
            return Err(ConfigError::SampleRate(self.sample_rate));
        }
        if !self.fft_size.is_power_of_two() || self.fft_size < 64 || self.hop * 4 != self.fft_size {
            return invalid(format!("FFT size {} must be a power of two ≥ 64 with hop = size / 4", self.fft_size));
        }
        if self.harmonic_frames.is_multiple_of(2) || self.percussive_bins.is_multiple_of(2) {
            return invalid("median kernels must have odd lengths".into());
        }
        if self.percussive_bins.max(self.harmonic_frames) > MAX_KERNEL {
            return invalid(format!(
                "median kernels of {} frames and {} bins exceed the maximum of {MAX_KERNEL}",
                self.harmonic_frames, self.percussive_bins
            ));
        }
        if self.percussive_bins > self.bins() {
            return invalid(format!("percussive kernel of {} bins exceeds {} bins", self.percussive_bins, self.bins()));
        }
        if self.lookahead_frames > self.harmonic_frames / 2 {
            return invalid(format!(
                "look-ahead of {} frames exceeds half the {}-frame time median",
                self.lookahead_frames, self.harmonic_frames
            ));
        }
        if !(self.power.is_finite() && self.power > 0.0) {
            return invalid(format!("mask power {} must be positive", self.power));
        }
        if !(self.margin_harmonic >= 1.0 && self.margin_percussive >= 1.0) {
            return invalid("margins must be at least 1".into());
        }
        if !(self.kick.is_finite() && self.kick >= 0.0) {
            return invalid(format!("kick weight {} must be zero or positive", self.kick));
        }
        Ok(())
    }

    /// Number of frequency bins per frame.
    pub fn bins(&self) -> usize {
        self.fft_size / 2 + 1
    }

    /// Delay of the streaming engine in samples: the frame length plus the look-ahead.
    pub fn latency_samples(&self) -> usize {
        self.fft_size - 1 + self.lookahead_frames * self.hop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATES: [f32; 7] = [22_050.0, 32_000.0, 44_100.0, 48_000.0, 88_200.0, 96_000.0, 192_000.0];

    fn latency_ms(preset: Preset, sr: f32) -> f32 {
        HpssConfig::preset(preset, sr).unwrap().latency_samples() as f32 * 1000.0 / sr
    }

    #[test]
    fn preset_latencies_stay_in_their_budgets_at_every_rate() {
        for sr in RATES {
            assert!(latency_ms(Preset::Low, sr) < 30.0, "low at {sr}");
            assert!(latency_ms(Preset::Normal, sr) < 100.0, "normal at {sr}");
            assert!(latency_ms(Preset::HighQuality, sr) < 260.0, "high at {sr}");
            assert!(latency_ms(Preset::Low, sr) < latency_ms(Preset::Normal, sr));
            assert!(latency_ms(Preset::Normal, sr) < latency_ms(Preset::HighQuality, sr));
        }
    }

    #[test]
    fn kernels_follow_time_and_frequency_not_samples() {
        let a = HpssConfig::preset(Preset::Normal, 48_000.0).unwrap();
        let b = HpssConfig::preset(Preset::Normal, 96_000.0).unwrap();
        assert_eq!(b.fft_size, 2 * a.fft_size);
        assert_eq!(a.harmonic_frames, b.harmonic_frames);
        assert_eq!(a.percussive_bins, b.percussive_bins);
        assert_eq!(a.lookahead_frames, b.lookahead_frames);
    }

    #[test]
    fn low_preset_is_causal() {
        assert_eq!(HpssConfig::preset(Preset::Low, 44_100.0).unwrap().lookahead_frames, 0);
    }

    #[test]
    fn rejects_unsupported_rates_and_bad_parameters() {
        assert_eq!(HpssConfig::preset(Preset::Normal, 4_000.0), Err(ConfigError::SampleRate(4_000.0)));
        let mut c = HpssConfig::preset(Preset::Normal, 44_100.0).unwrap();
        c.lookahead_frames = c.harmonic_frames;
        assert!(matches!(c.validate(), Err(ConfigError::Invalid(_))));
    }
}
