//! Demixer's signal processing, free of any plugin or GUI types: STFT, median filters, the HPSS
//! engine and its stem mapping, the [`Separator`] trait that every engine implements, and the
//! worker-thread streaming that puts an engine behind a real-time audio thread.

pub mod delay;
pub mod denormals;
pub mod hpss;
pub mod median;
pub mod median_network;
pub mod render;
pub mod separator;
pub mod stem;
pub mod stft;
pub mod stream;

pub use separator::{Separator, StereoOut};
pub use stem::Stem;
