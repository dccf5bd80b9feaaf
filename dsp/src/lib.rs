//! Demixer's signal processing, free of any plugin or GUI types: STFT, median filters, the HPSS
//! engine and its stem mapping, the ONNX engine (Demucs-family models with overlap-add and
//! resampling), the [`Separator`] trait that every engine implements, the engine registry
//! ([`registry`]: [`EngineSpec`] → [`build`] → [`Engine`]) and the worker-thread streaming that puts
//! an engine behind a real-time audio thread ([`stream`]).
#![warn(missing_docs)]

pub mod completed;
pub mod delay;
pub mod denormals;
pub mod dry;
pub mod engine;
pub mod hpss;
mod median;
mod median_network;
pub mod onnx;
pub mod padded;
pub mod registry;
pub mod render;
pub mod resampled;
pub mod segments;
mod separator;
pub mod spectrogram;
mod stem;
mod stft;
pub mod stream;
pub mod timeline;

pub use engine::{Engine, EngineKind};
pub use registry::{EngineError, EngineSpec, build};
pub use separator::{Separator, StereoOut};
pub use stem::Stem;
pub use stream::{Routing, Timing};
