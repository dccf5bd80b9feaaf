//! Separation for files: runs a streaming [`Separator`] over a signal and removes its latency, so
//! that stem sample `t` lines up with input sample `t`. [`Aligned`] takes the signal block by
//! block (memory bounded by the engine and one block, whatever the song's length);
//! [`separate_aligned`] takes it whole.

use crate::separator::{Separator, StereoOut};

/// Largest block fed to the engine at once; any size gives the same result.
pub const BLOCK: usize = 4096;

/// One block of aligned stems, `[source][channel]`, each as long as the input block it stands for.
pub type StemBlock<'a> = &'a [[Vec<f32>; 2]];

/// A separator whose output is handed on aligned with its input.
pub struct Aligned<'a> {
    engine: &'a mut dyn Separator,
    /// Output samples still to drop: the latency.
    skip: usize,
    /// `[source][channel]` scratch, [`BLOCK`] samples each.
    out: Vec<[Vec<f32>; 2]>,
    /// Zeros that flush the latency out at the end.
    silence: Vec<f32>,
}

impl<'a> Aligned<'a> {
    /// Starts `engine` afresh.
    pub fn new(engine: &'a mut dyn Separator) -> Self {
        engine.reset();
        let skip = engine.latency_samples();
        let out = engine.sources().iter().map(|_| [vec![0.0; BLOCK], vec![0.0; BLOCK]]).collect();
        Self { engine, skip, out, silence: vec![0.0; BLOCK] }
    }

    /// Separates the next stretch of input and passes the aligned stems that are ready to `sink`
    /// (in blocks; in all, as many samples as were pushed, once [`Aligned::finish`] ran).
    pub fn push(&mut self, left: &[f32], right: &[f32], sink: &mut dyn FnMut(StemBlock<'_>)) {
        assert_eq!(left.len(), right.len(), "channels must have equal lengths");
        for (left, right) in left.chunks(BLOCK).zip(right.chunks(BLOCK)) {
            self.run(left, right, sink);
        }
    }

    /// Feeds silence until every pushed sample has come out.
    pub fn finish(mut self, sink: &mut dyn FnMut(StemBlock<'_>)) {
        let mut owed = self.engine.latency_samples();
        let silence = std::mem::take(&mut self.silence);
        while owed > 0 {
            let n = owed.min(BLOCK);
            self.run(&silence[..n], &silence[..n], sink);
            owed -= n;
        }
    }

    fn run(&mut self, left: &[f32], right: &[f32], sink: &mut dyn FnMut(StemBlock<'_>)) {
        let n = left.len();
        let mut outs: Vec<StereoOut<'_>> = self.out.iter_mut().map(|[l, r]| [&mut l[..n], &mut r[..n]]).collect();
        self.engine.process(left, right, &mut outs);
        let dropped = self.skip.min(n);
        self.skip -= dropped;
        if dropped == n {
            return;
        }
        if dropped == 0 && n == BLOCK {
            return sink(&self.out);
        }
        let ready: Vec<[Vec<f32>; 2]> =
            self.out.iter().map(|[l, r]| [l[dropped..n].to_vec(), r[dropped..n].to_vec()]).collect();
        sink(&ready);
    }
}

/// Separates `left`/`right` with `engine` and returns `[stem][channel]` signals exactly as long as
/// the input and aligned with it. `progress` is called with the number of input samples done so far.
pub fn separate_aligned(
    engine: &mut dyn Separator,
    left: &[f32],
    right: &[f32],
    progress: &mut dyn FnMut(usize),
) -> Vec<[Vec<f32>; 2]> {
    let mut stems: Vec<[Vec<f32>; 2]> =
        engine.sources().iter().map(|_| [Vec::with_capacity(left.len()), Vec::with_capacity(left.len())]).collect();
    let mut keep = |block: StemBlock<'_>| {
        for (all, [l, r]) in stems.iter_mut().zip(block) {
            all[0].extend_from_slice(l);
            all[1].extend_from_slice(r);
        }
    };
    let mut aligned = Aligned::new(engine);
    for (start, (l, r)) in (0..).step_by(BLOCK).zip(left.chunks(BLOCK).zip(right.chunks(BLOCK))) {
        aligned.push(l, r, &mut keep);
        progress(start + l.len());
    }
    aligned.finish(&mut keep);
    stems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::hpss::{HpssConfig, HpssSeparator, Preset};

    #[test]
    fn aligned_stems_sum_to_the_input_over_its_whole_length() {
        let len = 30_000;
        let left: Vec<f32> = (0..len).map(|i| (i as f32 * 0.01).sin() * 0.5).collect();
        let right: Vec<f32> = (0..len).map(|i| if i % 5000 < 50 { 0.8 } else { 0.0 }).collect();
        let mut engine = HpssSeparator::new(HpssConfig::preset(Preset::Normal, 44_100.0).unwrap());
        let mut last = 0;
        let stems = separate_aligned(&mut engine, &left, &right, &mut |done| last = done);
        assert_eq!(last, len);
        for (ch, input) in [&left, &right].into_iter().enumerate() {
            for t in 0..len {
                let sum: f32 = stems.iter().map(|s| s[ch][t]).sum();
                assert!((sum - input[t]).abs() < 1e-4, "channel {ch}, sample {t}");
            }
            assert!(stems.iter().all(|s| s[ch].len() == len));
        }
    }

    #[test]
    fn pushing_in_odd_pieces_gives_the_whole_signal_result() {
        let len = 20_000;
        let left: Vec<f32> = (0..len).map(|i| (i as f32 * 0.013).sin() * 0.4).collect();
        let right: Vec<f32> = (0..len).map(|i| (i as f32 * 0.007).cos() * 0.3).collect();
        let mut engine = HpssSeparator::new(HpssConfig::preset(Preset::Low, 44_100.0).unwrap());
        let whole = separate_aligned(&mut engine, &left, &right, &mut |_| {});
        let mut pieces: Vec<[Vec<f32>; 2]> = whole.iter().map(|_| [Vec::new(), Vec::new()]).collect();
        let mut keep = |block: StemBlock<'_>| {
            for (all, [l, r]) in pieces.iter_mut().zip(block) {
                all[0].extend_from_slice(l);
                all[1].extend_from_slice(r);
            }
        };
        let mut aligned = Aligned::new(&mut engine);
        let mut start = 0;
        for size in [1, 999, 5000, 37].into_iter().cycle() {
            let end = (start + size).min(len);
            aligned.push(&left[start..end], &right[start..end], &mut keep);
            start = end;
            if start == len {
                break;
            }
        }
        aligned.finish(&mut keep);
        assert!(pieces == whole, "pieces differ from the whole-signal result");
    }
}
