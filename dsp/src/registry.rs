//! The engine registry: a typed description of every engine Demixer can run ([`EngineSpec`]) and
//! one [`build`] that turns it into a running [`Engine`] at a sample rate, for the plugin and the
//! command-line tool alike.
//!
//! A new engine kind is one module that implements [`crate::Separator`], one [`EngineKind`]
//! variant with its label, and one arm in [`build`] (for a model file, in [`crate::onnx::load`],
//! which tells model kinds apart by their contract).

use crate::engine::{Engine, EngineKind};
use crate::hpss::{ConfigError, HpssConfig, HpssSeparator, Preset};
use crate::onnx::{self, OnnxConfig, OnnxError};

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSpec {
    /// The built-in median-filter HPSS engine at a latency preset.
    Hpss(Preset),
    /// An ONNX model file or bag manifest; its contract decides the [`EngineKind`].
    Model(OnnxConfig),
}

impl EngineSpec {
    /// Short, for a "loading" line: the preset's label or the model's file name.
    pub fn name(&self) -> String {
        match self {
            EngineSpec::Hpss(preset) => EngineKind::Hpss(*preset).label(),
            EngineSpec::Model(config) => config.model.file_name().unwrap_or_default().to_string_lossy().into_owned(),
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
}

/// Builds the engine `spec` describes for a stream at `sample_rate` Hz. HPSS builds in
/// milliseconds; a model takes seconds (call it off the audio thread).
///
/// # Errors
/// [`EngineError::Hpss`] for a rate HPSS does not support; [`EngineError::Model`] for anything
/// between the model path and its warm-up inference.
pub fn build(spec: &EngineSpec, sample_rate: f32) -> Result<Engine, EngineError> {
    match spec {
        EngineSpec::Hpss(preset) => {
            let separator = HpssSeparator::new(HpssConfig::preset(*preset, sample_rate)?);
            Ok(Engine::new(EngineKind::Hpss(*preset), Box::new(separator)))
        }
        EngineSpec::Model(config) => Ok(onnx::load(config, sample_rate.round() as usize)?),
    }
}
