//! Harmonic/percussive/residual separation by median filtering (Fitzgerald 2010, Driedger 2014)
//! mapped onto four stems.

mod bass_width;
mod config;
mod masks;
pub mod offline;
mod refine;
mod separator;
mod spatial_wiener;
#[cfg(feature = "tap")]
mod tap;
mod voice_comb;
mod voicing;

pub use config::{ConfigError, HpssConfig, HpssSettings, Preset, SAMPLE_RATE_RANGE};
pub use separator::HpssSeparator;
#[cfg(feature = "tap")]
pub use tap::COLUMNS as TAP_COLUMNS;
