//! State shared between Demixer's audio path and its mixer window, with no audio or GUI types:
//! the meters ([`meters`]), the engine status ([`MixerStatus`]) and the model settings saved with
//! a project ([`ModelSettings`]). The audio thread only stores atomics; everything behind a lock
//! is written off the audio thread.
#![warn(missing_docs)]

mod meters;
mod model_settings;
mod status;

pub use meters::{Level, MeterReader, MeterWriter, meters};
pub use model_settings::{DEVICES, ModelSettings};
pub use status::{LoopCacheView, MixerStatus, ModelState};
