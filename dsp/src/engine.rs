//! The engine registry: a typed description of every engine Demixer can run ([`EngineSpec`]) and
//! one [`build`] that turns it into a running [`Engine`] at a sample rate, for the plugin and the
//! command-line tool alike.
//!
//! A new engine kind is one module that implements [`Separator`], one [`EngineKind`] variant with
//! its label, and one arm in [`build`] (or, for a model file, in [`crate::onnx::load`], which tells
//! model kinds apart by their contract).

use std::fmt;

use crate::hpss::{ConfigError, HpssConfig, HpssSeparator, Preset};
use crate::onnx::{self, OnnxConfig, OnnxError, Provider};
use crate::{Separator, Stem};

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

/// What kind of engine runs: how the plugin and the window tell engines apart. A stream holds at
/// most one engine of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// HPSS at a preset (Fitzgerald 2010, Driedger 2014; [`crate::hpss`]).
    Hpss(Preset),
    /// A model that separates fixed segments, streamed with Demucs' overlap-add
    /// ([`crate::segments`]): HT-Demucs and the Demucs family.
    SegmentModel,
}

impl EngineKind {
    /// Whether this kind needs a model file.
    pub fn is_model(self) -> bool {
        !matches!(self, EngineKind::Hpss(_))
    }

    /// What people call it, for status lines and menus.
    pub fn label(self) -> String {
        match self {
            EngineKind::Hpss(preset) => format!("HPSS, {} preset, CPU", preset.label()),
            EngineKind::SegmentModel => "Segment model (ONNX)".into(),
        }
    }
}

/// A running engine and what it is.
pub struct Engine {
    /// Its kind.
    pub kind: EngineKind,
    /// The streaming separator, at the rate it was built for.
    pub separator: Box<dyn Separator>,
    /// Where it computes.
    pub provider: Provider,
    /// Short, for a status line: the kind and, for models, the file(s) and the device.
    pub name: String,
    /// One line for people: for models the file, sources, segment, device and runtime.
    pub description: String,
    /// Remarks worth showing (CUDA not available, resampling).
    pub notes: Vec<String>,
}

impl Engine {
    /// An engine of `kind` around any separator, described by its kind's label.
    pub fn new(kind: EngineKind, separator: Box<dyn Separator>) -> Self {
        let name = kind.label();
        Self { kind, separator, provider: Provider::Cpu, description: name.clone(), name, notes: Vec::new() }
    }

    /// The sources it writes, in order.
    pub fn sources(&self) -> &[Stem] {
        self.separator.sources()
    }

    /// The description followed by the notes, for one line of text.
    pub fn description_with_notes(&self) -> String {
        std::iter::once(self.description.as_str())
            .chain(self.notes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("kind", &self.kind).field("name", &self.name).finish_non_exhaustive()
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
