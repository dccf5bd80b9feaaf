//! Demixer's signal processing, free of any plugin or GUI types.
//!
//! - [`Separator`]: the interface every engine implements (a fixed-latency streaming split of a
//!   stereo block into stems), and [`Stem`], what it splits into.
//! - The engines: the built-in HPSS ([`hpss`]), ONNX models of three kinds ([`onnx`]: segment,
//!   streaming and spectrogram models), and the streamers and compositions around them
//!   ([`OverlapAdd`], [`MaskedStft`], [`Resampled`], [`Padded`], [`Completed`]).
//! - The registry: [`EngineSpec`] → [`build`] → [`Engine`], for the plugin and the file tool
//!   alike.
//! - [`stream`]: an engine on a worker thread behind lock-free rings, at an exact latency, for a
//!   real-time audio thread; [`timeline`]: the loop cache of stems by song position.
//! - [`separate_aligned`] and [`Aligned`]: an engine run over a file with its latency removed.
//!
//! Inside: `signal/` holds the primitives (STFT, median filters, delay line, denormals),
//! `engines/` the engines, `compose/` the wrappers; the modules are private, and this list of
//! re-exports is the crate's surface.
#![warn(missing_docs)]

mod compose;
mod engine;
mod engines;
mod registry;
mod render;
mod separator;
mod signal;
mod stem;
pub mod stream;
#[cfg(test)]
mod testing;
pub mod timeline;

pub use compose::completed::Completed;
pub use compose::padded::Padded;
pub use compose::resampled::{ResampleError, Resampled};
pub use engine::{Engine, EngineKind};
pub use engines::segments::{InferenceError, OverlapAdd, SegmentModel, SegmentTooShort, check_output};
pub use engines::spectrogram::{Chunking, Estimates, MaskedStft, SpectrogramModel, SpectrogramSpec};
pub use engines::{hpss, onnx};
pub use registry::{EngineError, EngineSpec, HPSS_HOST_RATES, build, hpss_rate};
pub use render::{Aligned, StemBlock, separate_aligned};
pub use separator::{Separator, StereoOut};
pub use signal::delay::DelayLine;
pub use signal::denormals::{MAX_SAMPLE, clean, flush_to_zero};
pub use stem::Stem;
pub use stream::{Routing, Timing};
