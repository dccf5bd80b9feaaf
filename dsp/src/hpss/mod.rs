//! Harmonic/percussive/residual separation by median filtering (Fitzgerald 2010, Driedger 2014)
//! mapped onto four stems.

pub mod bass_width;
pub mod config;
pub mod masks;
pub mod offline;
pub mod separator;
pub mod spatial_wiener;
pub mod voice_comb;
mod voicing;

pub use config::{ConfigError, HpssConfig, HpssSettings, Preset};
pub use separator::HpssSeparator;
