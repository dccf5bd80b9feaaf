//! Demixer's signal processing, free of any plugin or GUI types: STFT, median filters, the HPSS
//! engine and its stem mapping, the ONNX engine (Demucs-family models with overlap-add and
//! resampling), the [`Separator`] trait that every engine implements, and the worker-thread
//! streaming that puts an engine behind a real-time audio thread.

pub mod delay;
pub mod denormals;
pub mod hpss;
pub mod median;
pub mod median_network;
pub mod onnx;
pub mod render;
pub mod resampled;
pub mod segments;
pub mod separator;
pub mod stem;
pub mod stft;
pub mod stream;

pub use separator::{Separator, StereoOut};
pub use stem::Stem;
