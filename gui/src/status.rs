//! State the audio thread publishes for the editor: levels and engine figures, all atomics. The
//! audio thread only stores; the editor only loads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use atomic_float::AtomicF32;

/// Meters: the four stems, then the main output.
pub const METERS: usize = 5;

/// Peak and RMS of the last block of one signal, linear.
#[derive(Default)]
pub struct Level {
    peak: AtomicF32,
    rms: AtomicF32,
}

impl Level {
    /// Publishes a block's peak and RMS.
    pub fn store(&self, peak: f32, rms: f32) {
        self.peak.store(peak, Ordering::Relaxed);
        self.rms.store(rms, Ordering::Relaxed);
    }

    /// The last block's (peak, RMS).
    pub fn load(&self) -> (f32, f32) {
        (self.peak.load(Ordering::Relaxed), self.rms.load(Ordering::Relaxed))
    }
}

/// Everything the mixer shows that is not a parameter.
#[derive(Default)]
pub struct MixerStatus {
    /// Output levels, in [`METERS`] order.
    pub levels: [Level; METERS],
    /// Reported latency in samples.
    pub latency_samples: AtomicU32,
    /// Sample rate in Hz.
    pub sample_rate: AtomicF32,
    /// Blocks in which the worker was late.
    pub underruns: AtomicU64,
    /// Seconds of audio the worker separates per second of its time.
    pub realtime_factor: AtomicF32,
    /// The last problem, in plain words, or empty (never set on the audio thread).
    pub last_error: Mutex<String>,
    /// What each engine of the running stream is, by index (set off the audio thread).
    pub engine_names: Mutex<Vec<String>>,
    /// Index into `engine_names` of the engine running now.
    pub running_engine: AtomicU32,
    /// The ONNX engine's state in plain words: loading, loaded (with remarks), or why not.
    pub model_state: Mutex<ModelState>,
}

/// What the model panel says about the ONNX engine.
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
        *self.model_state.lock().unwrap_or_else(|p| p.into_inner()) = ModelState { text: text.into(), problem };
    }

    /// The running engine's description.
    pub fn running_engine_name(&self) -> String {
        let names = self.engine_names.lock().unwrap_or_else(|p| p.into_inner());
        names.get(self.running_engine.load(Ordering::Relaxed) as usize).cloned().unwrap_or_default()
    }

    /// Latency in milliseconds, or 0 before activation.
    pub fn latency_ms(&self) -> f32 {
        let sample_rate = self.sample_rate.load(Ordering::Relaxed);
        if sample_rate > 0.0 { self.latency_samples.load(Ordering::Relaxed) as f32 * 1000.0 / sample_rate } else { 0.0 }
    }
}
