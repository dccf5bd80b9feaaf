//! The separation engines: the built-in HPSS ([`hpss`]), the ONNX models ([`onnx`]) and the
//! streamers that turn a model into a [`crate::separator::Separator`]: fixed segments with
//! overlap-add ([`segments`]), magnitude spectrograms with masks ([`spectrogram`]); and the dry
//! engine ([`dry`]) for where nothing else can run.

pub(crate) mod dry;
pub mod hpss;
pub mod onnx;
pub(crate) mod segments;
pub(crate) mod spectrogram;
