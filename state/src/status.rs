//! What the mixer shows besides the parameters and meters.

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
    /// Seconds of the timeline whose stems the loop cache holds.
    pub cached_seconds: AtomicF32,
    /// Bytes the loop cache takes.
    pub cache_bytes: AtomicU64,
    /// Incremented by the window's "Clear" button; the audio thread passes it on to the cache.
    pub cache_clear_requests: AtomicU64,
    /// The last problem, in plain words, or empty.
    pub last_error: Mutex<String>,
    /// What each engine of the running stream is, in the stream's order.
    pub engine_names: Mutex<Vec<String>>,
    /// Position in `engine_names` of the engine running now.
    pub running_engine: AtomicU32,
    /// The model's state in plain words: loading, loaded (with remarks), or why not.
    pub model_state: Mutex<ModelState>,
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
