//! A built engine ([`Engine`]) and the kinds there are ([`EngineKind`]); [`crate::registry`]
//! builds them.

use std::fmt;

use crate::engines::hpss::Preset;
use crate::engines::onnx::Provider;
use crate::separator::Separator;
use crate::stem::Stem;

/// What kind of engine runs: how the plugin and the window tell engines apart. A stream holds at
/// most one engine of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// HPSS at a preset (Fitzgerald 2010, Driedger 2014; [`crate::engines::hpss`]).
    Hpss(Preset),
    /// A model that separates fixed segments, streamed with Demucs' overlap-add
    /// ([`crate::OverlapAdd`]): HT-Demucs and the Demucs family.
    SegmentModel,
    /// A stateful model run once per hop (`onnx/streaming.rs`): HS-TasNet-style
    /// streaming separators with milliseconds of latency.
    StreamingModel,
    /// A model that separates magnitude spectrograms ([`crate::MaskedStft`]): Deezer's Spleeter.
    SpectrogramModel,
    /// No separation: the input as Other (`engines/dry.rs`), where nothing else can run.
    Dry,
}

impl EngineKind {
    /// Whether this kind needs a model file.
    pub fn is_model(self) -> bool {
        matches!(self, EngineKind::SegmentModel | EngineKind::StreamingModel | EngineKind::SpectrogramModel)
    }

    /// What people call it, for status lines and menus.
    pub fn label(self) -> String {
        match self {
            EngineKind::Hpss(preset) => format!("HPSS, {} preset, CPU", preset.label()),
            EngineKind::SegmentModel => "Segment model (ONNX)".into(),
            EngineKind::StreamingModel => "Streaming model (ONNX)".into(),
            EngineKind::SpectrogramModel => "Spectrogram model (ONNX)".into(),
            EngineKind::Dry => "No separation (the input plays through)".into(),
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
