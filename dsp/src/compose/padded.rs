//! An engine made later on purpose: every stem of an inner engine delayed by a fixed number of
//! samples, so that two engines of different latencies line up (the plugin's HPSS cover beside a
//! model, see `plugin/src/cover.rs`).

use crate::separator::{Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::stem::Stem;

/// `inner` with `extra` samples of latency added to every stem.
pub struct Padded {
    inner: Box<dyn Separator>,
    extra: usize,
    /// One line per source and channel.
    lines: Vec<DelayLine>,
    /// Scratch for one lane of a block.
    lane: Vec<f32>,
}

impl Padded {
    /// Delays every stem of `inner` by `extra` samples (allocates `extra` samples per lane).
    pub fn new(inner: Box<dyn Separator>, extra: usize) -> Self {
        let lanes = 2 * inner.sources().len();
        Self { lines: (0..lanes).map(|_| DelayLine::new(extra, extra)).collect(), inner, extra, lane: Vec::new() }
    }
}

impl Separator for Padded {
    fn sources(&self) -> &[Stem] {
        self.inner.sources()
    }

    fn latency_samples(&self) -> usize {
        self.inner.latency_samples() + self.extra
    }

    fn burst_samples(&self) -> usize {
        self.inner.burst_samples()
    }

    fn history_samples(&self) -> usize {
        self.inner.history_samples()
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        self.inner.process(left, right, stems);
        self.lane.resize(left.len(), 0.0);
        for (line, out) in self.lines.iter_mut().zip(stems.iter_mut().flat_map(|s| s.iter_mut())) {
            self.lane.copy_from_slice(out);
            line.process(&self.lane, out);
        }
    }

    fn failure(&self) -> Option<&str> {
        self.inner.failure()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.lines.iter_mut().for_each(DelayLine::reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::dry::Dry;

    #[test]
    fn every_stem_comes_later_by_the_padding() {
        let mut padded = Padded::new(Box::new(Dry), 5);
        assert_eq!(padded.latency_samples(), 5);
        let input: Vec<f32> = (1..=12).map(|x| x as f32).collect();
        let (mut left, mut right) = (vec![0.0; 12], vec![0.0; 12]);
        for range in [0..7, 7..12] {
            let mut stems = [[&mut left[range.clone()], &mut right[range.clone()]]];
            padded.process(&input[range.clone()], &input[range.clone()], &mut stems);
        }
        assert_eq!(left[..5], [0.0; 5]);
        assert_eq!(left[5..], input[..7]);
        assert_eq!(right, left);
    }
}
