//! The engine registry: a typed description of every engine Demixer can run ([`EngineSpec`]) and
//! one [`build`] that turns it into a running [`Engine`] at a sample rate, for the plugin and the
//! command-line tool alike.
//!
//! A new engine kind is one module that implements [`crate::separator::Separator`], one [`EngineKind`]
//! variant with its label, and one arm in [`build`] (for a model file, in [`crate::engines::onnx::load`],
//! which tells model kinds apart by their contract).

use std::ops::RangeInclusive;

use crate::compose::resampled::{ResampleError, Resampled};
use crate::engine::{Engine, EngineKind};
use crate::engines::dry::Dry;
use crate::engines::hpss::SAMPLE_RATE_RANGE;
use crate::engines::hpss::{ConfigError, HpssConfig, HpssSeparator, Preset};
use crate::engines::onnx::{self, OnnxConfig, OnnxError};

/// Host rates, in Hz, at which HPSS runs: inside its own range directly, elsewhere resampled by a
/// whole factor into it (from 1 kHz up to DXD's 705.6 and 768 kHz and twice that).
pub const HPSS_HOST_RATES: RangeInclusive<f32> = 1_000.0..=1_536_000.0;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSpec {
    /// The built-in median-filter HPSS engine at a latency preset.
    Hpss(Preset),
    /// An ONNX model file or bag manifest; its contract decides the [`EngineKind`].
    Model(OnnxConfig),
    /// No separation (`engines/dry.rs`).
    Dry,
}

impl EngineSpec {
    /// Short, for a "loading" line: the preset's label or the model's file name.
    pub fn name(&self) -> String {
        match self {
            EngineSpec::Hpss(preset) => EngineKind::Hpss(*preset).label(),
            EngineSpec::Model(config) => config.model.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            EngineSpec::Dry => EngineKind::Dry.label(),
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The HPSS engine cannot run at this rate or with these settings.
    #[error(transparent)]
    Hpss(#[from] ConfigError),
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] OnnxError),
    /// The engine's rate cannot be reached from the host's.
    #[error(transparent)]
    Resample(#[from] ResampleError),
}

/// Builds the engine `spec` describes for a stream at `sample_rate` Hz. HPSS builds in
/// milliseconds; a model takes seconds (call it off the audio thread).
///
/// # Errors
/// [`EngineError::Hpss`] for a rate outside [`HPSS_HOST_RATES`]; [`EngineError::Model`] for
/// anything between the model path and its warm-up inference.
pub fn build(spec: &EngineSpec, sample_rate: f32) -> Result<Engine, EngineError> {
    match spec {
        EngineSpec::Hpss(preset) => hpss(*preset, sample_rate),
        EngineSpec::Model(config) => Ok(onnx::load(config, sample_rate.round() as usize)?),
        EngineSpec::Dry => Ok(Engine::new(EngineKind::Dry, Box::new(Dry))),
    }
}

/// HPSS at `preset` for a host at `sample_rate`: directly inside [`SAMPLE_RATE_RANGE`], else
/// resampled to [`hpss_rate`].
fn hpss(preset: Preset, sample_rate: f32) -> Result<Engine, EngineError> {
    let kind = EngineKind::Hpss(preset);
    if SAMPLE_RATE_RANGE.contains(&sample_rate) {
        let separator = HpssSeparator::new(HpssConfig::preset(preset, sample_rate)?);
        return Ok(Engine::new(kind, Box::new(separator)));
    }
    let host = sample_rate.round() as usize;
    let engine_rate = hpss_rate(sample_rate).ok_or(ConfigError::SampleRate(sample_rate))?;
    let separator = HpssSeparator::new(HpssConfig::preset(preset, engine_rate as f32)?);
    let mut engine = Engine::new(kind, Box::new(Resampled::new(Box::new(separator), host, engine_rate)?));
    engine.notes.push(format!("HPSS runs at {engine_rate} Hz, resampled from and back to {host} Hz"));
    Ok(engine)
}

/// The rate HPSS runs at for a host rate in [`HPSS_HOST_RATES`] but outside its own range: the
/// (rounded) host rate times or divided by the smallest whole factor that brings it inside, so
/// that the resampling ratio is a whole number. Above 384 kHz only rates with such a divisor up
/// to 16 qualify (every rate hosts use does); `None` for the rest.
pub fn hpss_rate(sample_rate: f32) -> Option<usize> {
    if !HPSS_HOST_RATES.contains(&sample_rate) {
        return None;
    }
    let host = sample_rate.round() as usize;
    let (low, high) = (*SAMPLE_RATE_RANGE.start() as usize, *SAMPLE_RATE_RANGE.end() as usize);
    if host < low {
        return Some(host * low.div_ceil(host));
    }
    let factor = (1..=16).find(|&factor| host.is_multiple_of(factor) && host / factor <= high)?;
    Some(host / factor).filter(|&rate| rate >= low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpss_reaches_dxd_and_low_rates_by_whole_factors() {
        assert_eq!(hpss_rate(768_000.0), Some(384_000));
        assert_eq!(hpss_rate(705_600.0), Some(352_800));
        assert_eq!(hpss_rate(1_536_000.0), Some(384_000));
        assert_eq!(hpss_rate(1_000.0), Some(8_000));
        assert_eq!(hpss_rate(1_234.567_8), Some(1_235 * 7));
        assert_eq!(hpss_rate(999.0), None);
        assert_eq!(hpss_rate(2_000_000.0), None);
        for rate in [1_000.0, 1_234.567_8, 5_000.0, 400_000.0, 705_600.0, 768_000.0] {
            let engine = build(&EngineSpec::Hpss(Preset::Low), rate).unwrap();
            assert!(engine.notes.iter().any(|n| n.contains("resampled")), "{rate}: {:?}", engine.notes);
        }
        let refused = build(&EngineSpec::Hpss(Preset::Normal), 500.0).unwrap_err();
        assert!(refused.to_string().contains("unsupported sample rate 500"), "{refused}");
    }
}
