//! Never silence when a model is late: HPSS runs beside a model engine, on a worker of its own,
//! lined up with the model's latency, and plays wherever the model's stems did not arrive in time
//! (a late hop or segment, or the model's warm-up after a seek).
//!
//! The cover is causal HPSS at the low preset's settings, its window shortened until its latency
//! fits under the model's (a 5.8 ms streaming model gets a 256-sample window), then delayed
//! ([`Padded`]) to exactly the model stream's latency. Where the model's stems resume, the cover
//! fades out over [`FADE`] samples; where they stop, the cover takes over at once (what the model
//! would have played is not there to fade from).

use std::ops::Range;

use demixer_dsp::Padded;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, WorkerHandle};
use demixer_dsp::{Engine, EngineKind, Separator, StereoOut, Timing};

use crate::stems::{self, STEM_COUNT};

/// Samples over which the cover hands back to the model.
pub const FADE: usize = 64;
/// Seconds over which the share of covered samples is averaged (the panel's "last minute").
const SHARE_SECONDS: f32 = 60.0;

/// Causal HPSS whose latency is at most `latency` samples at `sample_rate`, if there is one.
fn quick_hpss(latency: usize, sample_rate: f32) -> Option<HpssSeparator> {
    let mut settings = Preset::Low.settings();
    settings.lookahead_ms = 0.0;
    while settings.window_ms * sample_rate / 1000.0 >= 64.0 {
        let config = HpssConfig::new(&settings, sample_rate).ok()?;
        if config.latency_samples() <= latency {
            return Some(HpssSeparator::new(config));
        }
        settings.window_ms /= 2.0;
    }
    None
}

/// The HPSS stream beside a model stream.
pub struct Cover {
    stream: RealtimeSide,
    _worker: WorkerHandle,
    /// The cover's stems for the block, `[stem][channel]`, a maximum block each.
    scratch: Vec<[Vec<f32>; 2]>,
    /// Samples of the hand-back fade still to do.
    fading: usize,
    /// Whether the last sample played came from the cover.
    covering: bool,
    /// Share of the samples of about the last minute that came from the cover.
    share: f32,
    sample_rate: f32,
}

impl Cover {
    /// A cover for a model stream of `latency` samples in total (engine and margin), with the same
    /// stream `config` and `sample_rate`; `None` where no HPSS fits under that latency. Not on the
    /// audio thread.
    pub fn start(latency: usize, config: StreamConfig, sample_rate: f32) -> Option<Cover> {
        let engine_latency = latency.checked_sub(config.margin)?;
        let hpss = quick_hpss(engine_latency, sample_rate)?;
        let extra = engine_latency - hpss.latency_samples();
        let separator: Box<dyn Separator> = Box::new(Padded::new(Box::new(hpss), extra));
        let engine = Engine::new(EngineKind::Hpss(Preset::Low), separator);
        let (stream, worker) =
            stream::spawn(vec![engine], EngineKind::Hpss(Preset::Low), config, stems::routing()).ok()?;
        debug_assert_eq!(stream.latency_samples(), latency);
        let scratch = (0..STEM_COUNT).map(|_| [vec![0.0; config.max_block], vec![0.0; config.max_block]]).collect();
        Some(Cover { stream, _worker: worker, scratch, fading: 0, covering: false, share: 0.0, sample_rate })
    }

    /// Starts the cover afresh, with the model stream (a reset, an engine switch). Real-time safe.
    pub fn restart(&mut self) {
        self.stream.restart(EngineKind::Hpss(Preset::Low));
        (self.fading, self.covering) = (0, false);
    }

    /// Whether the cover's worker has done all it can with what it was sent (tests wait on it).
    #[cfg(test)]
    pub fn caught_up(&self) -> bool {
        self.stream.settled()
    }

    /// Share of about the last minute's samples that the cover played, from 0 to 1.
    pub fn share(&self) -> f32 {
        self.share
    }

    /// Separates the block (`left`, `right`, at host timeline `position`, so that the cover
    /// plays on across jumps as the model stream does) and fills what the model left out of
    /// `stems` (the model's stems are in `separated`) with the cover's; returns the range that now
    /// holds stems. Real-time safe: in real time the cover never waits; in an offline render it
    /// waits for its worker as the model stream does, so a bounce is exact there too.
    pub fn fill(
        &mut self,
        left: &[f32],
        right: &[f32],
        position: Option<i64>,
        timing: Timing,
        stems: &mut [StereoOut<'_>; STEM_COUNT],
        separated: Range<usize>,
    ) -> Range<usize> {
        let n = left.len();
        let mut cover: [StereoOut<'_>; STEM_COUNT] = {
            let mut scratch = self.scratch.iter_mut();
            std::array::from_fn(|_| {
                let [l, r] = scratch.next().expect("one scratch per stem");
                [&mut l[..n], &mut r[..n]]
            })
        };
        let covered = self.stream.process_at(left, right, &mut cover, timing, position);
        // Where the model's stems stop inside this block, fade over to the cover before the gap.
        let stops = separated.end < n && covered.contains(&separated.end);
        if stops && separated.len() >= FADE && covered.start <= separated.end - FADE {
            let fade = separated.end - FADE..separated.end;
            for (stem, from) in stems.iter_mut().zip(&cover) {
                for (out, c) in stem.iter_mut().zip(from) {
                    crossfade(&mut out[fade.clone()], &c[fade.clone()]);
                }
            }
        }
        let mut count = 0;
        for t in 0..n {
            if separated.contains(&t) {
                if self.covering {
                    (self.covering, self.fading) = (false, FADE);
                }
                // Back from the cover over FADE samples, across blocks if need be: the cover's
                // weight falls step by step.
                if self.fading > 0 && covered.contains(&t) {
                    let w = cover_weight(self.fading, FADE);
                    for (stem, from) in stems.iter_mut().zip(&cover) {
                        for (out, c) in stem.iter_mut().zip(from) {
                            out[t] = (1.0 - w) * out[t] + w * c[t];
                        }
                    }
                }
                self.fading = self.fading.saturating_sub(1);
            } else if covered.contains(&t) {
                // Only where the stems would otherwise be silent.
                for (stem, from) in stems.iter_mut().zip(&cover) {
                    for (out, c) in stem.iter_mut().zip(from) {
                        out[t] = c[t];
                    }
                }
                (self.covering, self.fading) = (true, 0);
                count += 1;
            }
        }
        let block = n as f32 / (SHARE_SECONDS * self.sample_rate);
        self.share += (count as f32 / n.max(1) as f32 - self.share) * block.min(1.0);
        union_or_longer(separated, covered)
    }
}

/// The cover's weight at `step` (1 to `len`) of a `len`-sample linear fade: `step / (len + 1)`.
/// Equal-gain ramps: the two are estimates of the same stems, highly correlated.
fn cover_weight(step: usize, len: usize) -> f32 {
    step as f32 / (len + 1) as f32
}

/// Fades `model` (in place) over to `cover` across its whole length.
fn crossfade(model: &mut [f32], cover: &[f32]) {
    let len = model.len();
    for (i, (m, c)) in model.iter_mut().zip(cover).enumerate() {
        let w = cover_weight(i + 1, len);
        *m = (1.0 - w) * *m + w * c;
    }
}

/// The union of two ranges where they touch or overlap, else the longer one (the mixer takes one
/// stretch of stems per block; outside it the stems are silent and the mix is the dry input).
fn union_or_longer(a: Range<usize>, b: Range<usize>) -> Range<usize> {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b,
        (_, true) => a,
        _ if a.start <= b.end && b.start <= a.end => a.start.min(b.start)..a.end.max(b.end),
        _ if b.len() > a.len() => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stretch_of_stems_is_the_union_or_else_the_longer_part() {
        assert_eq!(union_or_longer(0..0, 100..512), 100..512);
        assert_eq!(union_or_longer(0..300, 300..512), 0..512);
        assert_eq!(union_or_longer(0..100, 200..512), 200..512);
        assert_eq!(union_or_longer(0..400, 450..512), 0..400);
        assert_eq!(union_or_longer(0..0, 0..0), 0..0);
    }

    #[test]
    fn a_fade_goes_from_one_to_the_other() {
        let mut model = vec![1.0; 4];
        crossfade(&mut model, &[0.0; 4]);
        let expected = [0.8, 0.6, 0.4, 0.2];
        assert!(model.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{model:?}");
        // Back to the model: the cover's weight steps down from FADE, the model's rises.
        let back: Vec<f32> = (1..=4).rev().map(|step| 1.0 - cover_weight(step, 4)).collect();
        assert!(back.iter().zip(expected.iter().rev()).all(|(a, b)| (a - b).abs() < 1e-6), "{back:?}");
    }
}
