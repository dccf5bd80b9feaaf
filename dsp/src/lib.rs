//! Demixer's signal processing, free of any plugin or GUI types: STFT, median filters, the HPSS
//! engine and its stem mapping, and the [`Separator`] trait that every engine implements.

pub mod hpss;
pub mod median;
pub mod render;
pub mod separator;
pub mod stem;
pub mod stft;

pub use separator::{Separator, StereoOut};
pub use stem::Stem;
