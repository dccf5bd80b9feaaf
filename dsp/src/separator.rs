//! The interface every separation engine implements: HPSS and ONNX models.

use crate::stem::Stem;

/// Time constants after which a running average's weight on an input has fallen to e^-6.9, under
/// −60 dB (ln 1000 = 6.9): what [`Separator::history_samples`] counts as forgotten.
pub const FORGETS_AFTER: f32 = 6.9;

/// Output buffers of one stem: left and right channel, each as long as the input block.
pub type StereoOut<'a> = [&'a mut [f32]; 2];

/// A streaming stem separator.
///
/// The separator is a fixed delay line as far as timing goes: the sample that it writes at stream
/// position `t` of every stem belongs to input position `t - latency_samples()`, whatever block sizes
/// the caller uses. The stems sum to the delayed input wherever the engine is mask-based.
pub trait Separator: Send {
    /// The sources this engine produces, in the order `process` writes them.
    fn sources(&self) -> &[Stem];

    /// Exact delay, in samples, between the input and every output stem.
    fn latency_samples(&self) -> usize;

    /// Separates one stereo block.
    ///
    /// `stems` holds one [`StereoOut`] per entry of [`Separator::sources`], each channel exactly as
    /// long as `left` and `right`. Engines run on a worker thread, never the audio thread; the HPSS
    /// engine still neither allocates nor locks here, while model inference does both.
    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]);

    /// How far behind, in samples of input, the engine may fall while it works: engines that
    /// compute in bursts (a segment model runs once per stride) need this much extra time from the
    /// stream, which adds it to the latency. Zero for engines that keep pace block by block.
    fn burst_samples(&self) -> usize {
        0
    }

    /// How far back, in samples beyond its latency, the engine's output depends on its input: a
    /// change of the input at sample `t` can change the stems up to `t + latency + history`. For
    /// running averages that never quite forget, the span after which the input's weight has
    /// fallen under −60 dB ([`FORGETS_AFTER`] time constants). The loop cache drops the stems
    /// that far after an input that changed. Zero by default: an engine whose output at `t` needs
    /// no input before `t - latency`.
    fn history_samples(&self) -> usize {
        0
    }

    /// Forgets all past input, as after a seek: the next block is treated as the start of a stream.
    fn reset(&mut self);

    /// Why the engine's output since the last reset cannot be trusted, if it cannot: a model that
    /// failed on a stretch, or gave values that are not audio (NaN, infinities, absurd levels).
    /// Such a stretch never reaches the stems: its input goes to Other (or the model's
    /// complement), so the stems still sum to the input, and callers treat the engine as failed
    /// (the plugin's HPSS cover plays, the file tool writes no stems). Engines that cannot fail
    /// (HPSS) keep the default `None`.
    fn failure(&self) -> Option<&str> {
        None
    }
}
