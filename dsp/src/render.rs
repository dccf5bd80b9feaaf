//! Whole-signal separation for files: runs a streaming [`Separator`] over a complete signal and
//! removes its latency, so that stem sample `t` lines up with input sample `t`.

use crate::{Separator, StereoOut};

/// Block size used to feed the engine; any size gives the same result.
const BLOCK: usize = 4096;

/// Separates `left`/`right` with `engine` and returns `[stem][channel]` signals exactly as long as
/// the input and aligned with it. `progress` is called with the number of input samples done so far.
pub fn separate_aligned(
    engine: &mut dyn Separator,
    left: &[f32],
    right: &[f32],
    progress: &mut dyn FnMut(usize),
) -> Vec<[Vec<f32>; 2]> {
    assert_eq!(left.len(), right.len(), "channels must have equal lengths");
    engine.reset();
    let (len, latency) = (left.len(), engine.latency_samples());
    let total = len + latency;
    let mut stems: Vec<[Vec<f32>; 2]> = engine.sources().iter().map(|_| [vec![0.0; total], vec![0.0; total]]).collect();
    // The input followed by silence that flushes the latency out of the engine.
    let padded = |x: &[f32]| {
        let mut v = Vec::with_capacity(total);
        v.extend_from_slice(x);
        v.resize(total, 0.0);
        v
    };
    let (left, right) = (padded(left), padded(right));
    for start in (0..total).step_by(BLOCK) {
        let end = (start + BLOCK).min(total);
        let mut outs: Vec<StereoOut<'_>> =
            stems.iter_mut().map(|[a, b]| [&mut a[start..end], &mut b[start..end]]).collect();
        engine.process(&left[start..end], &right[start..end], &mut outs);
        progress(end.min(len));
    }
    for channels in &mut stems {
        for channel in channels.iter_mut() {
            channel.drain(..latency);
        }
    }
    stems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpss::{HpssConfig, HpssSeparator, Preset};

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
}
