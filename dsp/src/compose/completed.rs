//! Models with fewer sources than the four stems, completed by HPSS: a two-stem model's
//! accompaniment (Spleeter's "vocals / accompaniment") is split by the HPSS engine into drums,
//! bass and other, while the model's own sources are delayed by HPSS's latency so that every
//! stem lines up. A composition of engines, like [`crate::compose::resampled::Resampled`] and
//! [`crate::compose::padded::Padded`].
//!
//! The part split is the model's *complement*: its `accompaniment` source, or, for a model that
//! names neither drums nor bass, its Other (what the model left over). HPSS's drums, bass and other
//! of it go to those stems; its vocals go to Vocals only where the model has none (the model's
//! decision on what is voice stands), else to Other. So the stems still sum to what the model's
//! sources sum to.

use crate::separator::{Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::stem::Stem;

/// The model's source that HPSS splits further, if it needs completing: the accompaniment, or
/// Other where the model has neither drums nor bass.
pub fn complement(sources: &[Stem]) -> Option<usize> {
    let has = |stem| sources.contains(&stem);
    let lacking = !has(Stem::Drums) && !has(Stem::Bass);
    sources.iter().position(|&s| s == Stem::Accompaniment || (lacking && s == Stem::Other))
}

/// `inner`, with its complement split by `hpss` (a four-stem engine in [`Stem::ALL`] order).
pub struct Completed {
    inner: Box<dyn Separator>,
    hpss: Box<dyn Separator>,
    /// The complement's index among `inner`'s sources.
    complement: usize,
    /// The four stems, then `inner`'s other sources (a five-stem model's piano).
    sources: Vec<Stem>,
    /// Per inner source: its output, and its delay lines (left, right) by HPSS's latency.
    direct: Vec<(usize, [DelayLine; 2])>,
    /// Per HPSS stem: its output.
    split: [usize; 4],
    /// Scratch: `inner`'s stems, HPSS's stems, one delayed lane.
    inner_out: Vec<[Vec<f32>; 2]>,
    hpss_out: Vec<[Vec<f32>; 2]>,
    lane: Vec<f32>,
}

impl Completed {
    /// Completes `inner` with `hpss` where `complement` finds a part to split; else returns
    /// `inner` as it is.
    ///
    /// # Panics
    /// If `hpss` does not output the four stems.
    pub fn wrap(inner: Box<dyn Separator>, hpss: Box<dyn Separator>) -> Box<dyn Separator> {
        assert_eq!(hpss.sources(), Stem::ALL, "HPSS outputs the four stems");
        let Some(complement) = complement(inner.sources()) else { return inner };
        let mut sources = Stem::ALL.to_vec();
        let delay = hpss.latency_samples();
        let direct = inner
            .sources()
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != complement)
            .map(|(_, &stem)| {
                (stem.position_or_push(&mut sources), std::array::from_fn(|_| DelayLine::new(delay, delay)))
            })
            .collect();
        let model_has_vocals = inner.sources().contains(&Stem::Vocals);
        let split = Stem::ALL.map(|stem| match stem {
            Stem::Vocals if model_has_vocals => Stem::Other.position_or_push(&mut sources),
            stem => stem.position_or_push(&mut sources),
        });
        let inner_out = inner.sources().iter().map(|_| [Vec::new(), Vec::new()]).collect();
        let hpss_out = Stem::ALL.iter().map(|_| [Vec::new(), Vec::new()]).collect();
        Box::new(Self { inner, hpss, complement, sources, direct, split, inner_out, hpss_out, lane: Vec::new() })
    }
}

fn lanes(buffers: &mut [[Vec<f32>; 2]], n: usize) -> Vec<StereoOut<'_>> {
    buffers
        .iter_mut()
        .map(|[l, r]| {
            l.resize(n, 0.0);
            r.resize(n, 0.0);
            [&mut l[..n], &mut r[..n]]
        })
        .collect()
}

impl Separator for Completed {
    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn latency_samples(&self) -> usize {
        self.inner.latency_samples() + self.hpss.latency_samples()
    }

    fn burst_samples(&self) -> usize {
        self.inner.burst_samples().max(self.hpss.burst_samples())
    }

    /// HPSS sees the model's output, which looks back the model's history.
    fn history_samples(&self) -> usize {
        self.inner.history_samples() + self.inner.latency_samples() + self.hpss.history_samples()
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let n = left.len();
        self.inner.process(left, right, &mut lanes(&mut self.inner_out, n));
        let [acc_l, acc_r] = &self.inner_out[self.complement];
        self.hpss.process(&acc_l[..n], &acc_r[..n], &mut lanes(&mut self.hpss_out, n));
        stems.iter_mut().flat_map(|s| s.iter_mut()).for_each(|c| c.fill(0.0));
        self.lane.resize(n, 0.0);
        let inner_sources = (0..self.inner_out.len()).filter(|&i| i != self.complement);
        for (i, (output, lines)) in inner_sources.zip(self.direct.iter_mut()) {
            for (channel, line) in lines.iter_mut().enumerate() {
                line.process(&self.inner_out[i][channel][..n], &mut self.lane);
                stems[*output][channel].iter_mut().zip(&self.lane).for_each(|(o, x)| *o += x);
            }
        }
        for (split, &output) in self.hpss_out.iter().zip(&self.split) {
            for (channel, samples) in split.iter().enumerate() {
                stems[output][channel].iter_mut().zip(&samples[..n]).for_each(|(o, x)| *o += x);
            }
        }
    }

    fn failure(&self) -> Option<&str> {
        self.inner.failure()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.hpss.reset();
        self.direct.iter_mut().flat_map(|(_, lines)| lines.iter_mut()).for_each(DelayLine::reset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::padded::Padded;

    fn hpss(stem: usize) -> Box<dyn Separator> {
        Box::new(Padded::new(Box::new(AllInto { stem }), 3))
    }

    /// A two-stem "model": `gain` of the input as vocals, the rest as accompaniment.
    struct TwoStems {
        gain: f32,
    }

    impl Separator for TwoStems {
        fn sources(&self) -> &[Stem] {
            &[Stem::Vocals, Stem::Accompaniment]
        }
        fn latency_samples(&self) -> usize {
            0
        }
        fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
            for (channel, input) in [left, right].into_iter().enumerate() {
                for (t, &x) in input.iter().enumerate() {
                    stems[0][channel][t] = self.gain * x;
                    stems[1][channel][t] = (1.0 - self.gain) * x;
                }
            }
        }
        fn reset(&mut self) {}
    }

    /// A four-stem "HPSS" that puts everything into `stem` (delayed by [`Padded`] in the tests).
    struct AllInto {
        stem: usize,
    }

    impl Separator for AllInto {
        fn sources(&self) -> &[Stem] {
            &Stem::ALL
        }
        fn latency_samples(&self) -> usize {
            0
        }
        fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
            for (s, stem) in stems.iter_mut().enumerate() {
                for (channel, input) in [left, right].into_iter().enumerate() {
                    stem[channel].fill(0.0);
                    if s == self.stem {
                        stem[channel].copy_from_slice(input);
                    }
                }
            }
        }
        fn reset(&mut self) {}
    }

    #[test]
    fn the_complement_is_the_accompaniment_or_a_leftover_other() {
        assert_eq!(complement(&[Stem::Vocals, Stem::Accompaniment]), Some(1));
        assert_eq!(complement(&[Stem::Vocals, Stem::Other]), Some(1));
        assert_eq!(complement(&Stem::ALL), None);
        assert_eq!(complement(&[Stem::Vocals, Stem::Drums, Stem::Bass, Stem::Other, Stem::Piano]), None);
    }

    #[test]
    fn the_model_s_vocals_stand_and_its_accompaniment_is_split_in_line() {
        let mut engine = Completed::wrap(Box::new(TwoStems { gain: 0.25 }), hpss(0));
        assert_eq!(engine.sources(), Stem::ALL);
        assert_eq!(engine.latency_samples(), 3);
        let input: Vec<f32> = (1..=10).map(|x| x as f32).collect();
        let mut outs = vec![[vec![0.0; 10], vec![0.0; 10]]; 4];
        let mut stems: Vec<StereoOut<'_>> = outs.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
        engine.process(&input, &input, &mut stems);
        for t in 3..10 {
            assert_eq!(outs[3][0][t], 0.25 * input[t - 3], "vocals, delayed by HPSS's latency");
            assert_eq!(outs[0][1][t], 0.75 * input[t - 3], "drums: HPSS's share of the accompaniment");
            assert_eq!(outs[1][0][t] + outs[2][0][t], 0.0);
        }
        // HPSS's vocals of the accompaniment go to Other where the model has vocals.
        let mut engine = Completed::wrap(Box::new(TwoStems { gain: 0.5 }), hpss(3));
        let mut outs = vec![[vec![0.0; 10], vec![0.0; 10]]; 4];
        let mut stems: Vec<StereoOut<'_>> = outs.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
        engine.process(&input, &input, &mut stems);
        assert_eq!(outs[2][0][5], 0.5 * input[2]);
        assert_eq!(outs[3][0][5], 0.5 * input[2]);
    }
}
