//! What the mixer shows besides the parameters and meters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use atomic_float::AtomicF32;
use parking_lot::Mutex;

/// Engine figures (atomics, stored by the audio thread) and texts (set off the audio thread).
#[derive(Default)]
pub struct MixerStatus {
    /// Reported latency in samples.
    pub latency_samples: AtomicU32,
    /// Sample rate in Hz.
    pub sample_rate: AtomicF32,
    /// Blocks in which the worker was late.
    pub underruns: AtomicU64,
    /// Seconds of audio the worker separates per second of its time.
    pub realtime_factor: AtomicF32,
    /// While a model plays: the share (0 to 1) of about the last minute that HPSS covered because
    /// the model was late; negative when no model plays.
    pub cover_share: AtomicF32,
    /// The running stream's loop cache, as the window sees it (set off the audio thread when a
    /// stream starts): the window reads its figures and clears it directly, as it reads the
    /// meters, without the audio thread in between.
    pub loop_cache: Mutex<Option<Arc<dyn LoopCacheView>>>,
    /// The last problem, in plain words, or empty.
    pub last_error: Mutex<String>,
    /// What each engine of the running stream is, in the stream's order.
    pub engine_names: Mutex<Vec<String>>,
    /// Position in `engine_names` of the engine running now.
    pub running_engine: AtomicU32,
    /// The model's state in plain words: loading, loaded (with remarks), or why not.
    pub model_state: Mutex<ModelState>,
}

/// A loop cache as the window needs it: what it holds, and "Clear". Every method is callable
/// from any thread (atomics behind it).
pub trait LoopCacheView: Send + Sync {
    /// Seconds of the song whose stems are cached.
    fn cached_seconds(&self) -> f32;
    /// Bytes the cache takes.
    fn used_bytes(&self) -> u64;
    /// Drops everything cached.
    fn clear(&self);
}

/// What the model panel says about the model engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelState {
    /// One line for people.
    pub text: String,
    /// Whether it is a problem (shown in red) rather than information.
    pub problem: bool,
}

impl MixerStatus {
    /// Sets the model panel's line.
    pub fn set_model_state(&self, text: impl Into<String>, problem: bool) {
        *self.model_state.lock() = ModelState { text: text.into(), problem };
    }

    /// The running engine's description.
    pub fn running_engine_name(&self) -> String {
        let names = self.engine_names.lock();
        names.get(self.running_engine.load(Ordering::Relaxed) as usize).cloned().unwrap_or_default()
    }

    /// Latency in milliseconds, or 0 before activation.
    pub fn latency_ms(&self) -> f32 {
        let sample_rate = self.sample_rate.load(Ordering::Relaxed);
        if sample_rate > 0.0 { self.latency_samples.load(Ordering::Relaxed) as f32 * 1000.0 / sample_rate } else { 0.0 }
    }
}
