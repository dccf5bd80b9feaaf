//! The in-plugin mixer: per-stem gain, mute and solo, the remix on the main output, and the
//! pre/post-fader stem outputs. Runs on the audio thread; allocation-free.
//!
//! The main output is the delayed input plus each stem times its change of gain,
//! `dry + Σ (gain − 1) · stem`: at unity it is exactly the delayed input whatever the stems hold
//! (a stream fed a host's wrong positions, a late worker, a model whose stems miss part of the
//! input), and where the stems sum to the input it is `Σ gain · stem`.

use std::ops::Range;

use demixer_dsp::clean;
use demixer_state::MeterWriter;
use nice_plug::prelude::{Smoother, SmoothingStyle};

use crate::stems::STEM_COUNT as STEMS;
/// Gain changes (including mute and solo) ramp over this long, so that they do not click.
const RAMP_MS: f32 = 20.0;

/// One stem's strip settings, read from the parameters once per block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strip {
    /// Linear gain.
    pub gain: f32,
    /// Muted.
    pub mute: bool,
    /// Soloed.
    pub solo: bool,
}

/// The gain each stem should have: mute wins; when any stem is soloed, only soloed stems sound.
pub fn effective_gains(strips: &[Strip; STEMS]) -> [f32; STEMS] {
    let any_solo = strips.iter().any(|s| s.solo);
    strips.map(|s| if s.mute || (any_solo && !s.solo) { 0.0 } else { s.gain })
}

/// Meters: one per stem, then the main output.
pub const METERS: usize = STEMS + 1;

/// Peaks and sums of squares over a block, for the meters: the stems as heard (after their gains),
/// then the main output.
#[derive(Default, Clone, Copy)]
pub struct BlockLevels {
    peak: [f32; METERS],
    sum_of_squares: [f32; METERS],
    frames: usize,
}

impl BlockLevels {
    fn add(&mut self, meter: usize, x: f32) {
        self.peak[meter] = self.peak[meter].max(x.abs());
        self.sum_of_squares[meter] += x * x;
    }

    /// Publishes peak and RMS (over both channels) to the meters, [`METERS`] of them.
    pub fn publish(&self, meters: &MeterWriter) {
        let samples = (2 * self.frames).max(1) as f32;
        for (i, (peak, sum_of_squares)) in self.peak.iter().zip(&self.sum_of_squares).enumerate() {
            meters.store(i, *peak, (sum_of_squares / samples).sqrt());
        }
    }
}

/// The mixer's state: one gain ramp per stem.
pub struct Mixer {
    gains: [Smoother<f32>; STEMS],
    /// Where each ramp is heading; a new target restarts its ramp.
    targets: [f32; STEMS],
}

/// What the parameters say for a block: the gains the stems head for, whether the stem outputs
/// carry them, bypass; and the sample rate the gain ramps run at.
#[derive(Debug, Clone, Copy)]
pub struct MixSettings {
    /// Host sample rate in Hz.
    pub sample_rate: f32,
    /// Each stem's gain after mute and solo ([`effective_gains`]).
    pub targets: [f32; STEMS],
    /// The stem outputs carry the gains too.
    pub post_fader: bool,
    /// The host's bypass: the delayed input on the main output, silent stems.
    pub bypass: bool,
}

/// What the host gave for one stretch of a block: the stems (written in place when post-fader),
/// the stretch of them that holds separated audio, the input delayed by the latency, and the main
/// output.
pub struct MixBuffers<'a> {
    /// The separated stems, `[stem][channel]`.
    pub stems: [[&'a mut [f32]; 2]; STEMS],
    /// Where `stems` hold separated audio; elsewhere they are silent (start-up, a late worker).
    pub separated: Range<usize>,
    /// The input delayed by the plugin's latency.
    pub dry: [&'a [f32]; 2],
    /// The main output.
    pub main: [&'a mut [f32]; 2],
}

impl Mixer {
    /// A mixer at `gains` with no ramp in progress.
    pub fn new(gains: [f32; STEMS]) -> Self {
        let smoothers = gains.map(|g| {
            let smoother = Smoother::new(SmoothingStyle::Linear(RAMP_MS));
            smoother.reset(g);
            smoother
        });
        Self { gains: smoothers, targets: gains }
    }

    /// Mixes one stretch. Inside `buffers.separated` the main output is the delayed input plus
    /// each stem times its gain minus one (see the module docs); outside it (start-up, a late
    /// worker) and when bypassed it is the delayed input. Stem outputs are silent when bypassed or
    /// outside `separated`, and carry the gains when post-fader. Adds what the meters show to
    /// `levels`.
    pub fn process(&mut self, settings: &MixSettings, buffers: MixBuffers<'_>, levels: &mut BlockLevels) {
        let MixSettings { sample_rate, targets, post_fader, bypass } = *settings;
        for ((smoother, current), target) in self.gains.iter().zip(&mut self.targets).zip(targets) {
            if *current != target {
                smoother.set_target(sample_rate, target);
                *current = target;
            }
        }
        let MixBuffers { mut stems, separated, dry, main } = buffers;
        let [main_l, main_r] = main;
        for t in 0..main_l.len() {
            let gains = std::array::from_fn::<f32, STEMS, _>(|s| self.gains[s].next());
            let live = separated.contains(&t) && !bypass;
            let mut change = [0.0f32; 2];
            for (meter, (stem, gain)) in stems.iter_mut().zip(gains).enumerate() {
                for (ch, out) in stem.iter_mut().enumerate() {
                    let x = if live { out[t] } else { 0.0 };
                    let heard = x * gain;
                    change[ch] += x * (gain - 1.0);
                    levels.add(meter, heard);
                    out[t] = clean(if post_fader { heard } else { x });
                }
            }
            let [l, r] = [dry[0][t] + change[0], dry[1][t] + change[1]];
            main_l[t] = clean(l);
            main_r[t] = clean(r);
            levels.add(STEMS, main_l[t]);
            levels.add(STEMS, main_r[t]);
            levels.frames += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(gain: f32, mute: bool, solo: bool) -> Strip {
        Strip { gain, mute, solo }
    }

    #[test]
    fn mute_wins_and_solo_isolates() {
        let plain =
            [strip(1.0, false, false), strip(0.5, false, false), strip(2.0, false, false), strip(1.0, false, false)];
        assert_eq!(effective_gains(&plain), [1.0, 0.5, 2.0, 1.0]);
        let mut soloed = plain;
        soloed[3].solo = true;
        soloed[1].solo = true;
        assert_eq!(effective_gains(&soloed), [0.0, 0.5, 0.0, 1.0]);
        soloed[1].mute = true;
        assert_eq!(effective_gains(&soloed), [0.0, 0.0, 0.0, 1.0]);
    }

    fn run(
        targets: [f32; STEMS],
        post_fader: bool,
        bypass: bool,
        separated: Range<usize>,
    ) -> ([Vec<f32>; 2], Vec<[Vec<f32>; 2]>) {
        let n = 8;
        let mut stems: Vec<[Vec<f32>; 2]> =
            (0..STEMS).map(|s| [vec![s as f32 + 1.0; n], vec![-(s as f32) - 1.0; n]]).collect();
        // The stems sum to the input (10, -10) but for a residual of 90 the engine missed.
        let dry = [vec![100.0; n], vec![-100.0; n]];
        let mut main = [vec![0.0; n], vec![0.0; n]];
        let mut mixer = Mixer::new(targets);
        {
            let mut it = stems.iter_mut();
            let mut next = || {
                let [l, r] = it.next().unwrap();
                [&mut l[..], &mut r[..]]
            };
            let buffers = MixBuffers {
                stems: std::array::from_fn(|_| next()),
                separated,
                dry: [&dry[0], &dry[1]],
                main: {
                    let [l, r] = &mut main;
                    [&mut l[..], &mut r[..]]
                },
            };
            let settings = MixSettings { sample_rate: 48_000.0, targets, post_fader, bypass };
            mixer.process(&settings, buffers, &mut BlockLevels::default());
        }
        (main, stems)
    }

    #[test]
    fn main_is_the_weighted_sum_with_the_residual_and_aux_follows_the_fader_setting() {
        let (main, stems) = run([1.0, 0.0, 2.0, 0.5], false, false, 0..8);
        assert!(main[0].iter().all(|&x| x == 1.0 + 6.0 + 2.0 + 90.0));
        assert!(main[1].iter().all(|&x| x == -9.0 - 90.0));
        let (main, _) = run([1.0; 4], false, false, 0..8);
        assert!(main[0].iter().all(|&x| x == 100.0), "at unity, exactly the delayed input");
        assert!(stems[1][0].iter().all(|&x| x == 2.0), "pre-fader stems are untouched");
        let (_, stems) = run([1.0, 0.0, 2.0, 0.5], true, false, 0..8);
        assert!(stems[1][0].iter().all(|&x| x == 0.0) && stems[2][0].iter().all(|&x| x == 6.0), "post-fader");
    }

    #[test]
    fn outside_the_separated_range_and_in_bypass_the_main_output_is_the_dry_signal() {
        let (main, stems) = run([0.0, 1.0, 1.0, 1.0], false, false, 2..5);
        assert_eq!(main[0], [100.0, 100.0, 99.0, 99.0, 99.0, 100.0, 100.0, 100.0]);
        assert_eq!(stems[0][0], [0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        let (main, stems) = run([1.0; 4], false, true, 0..8);
        assert!(main[1].iter().all(|&x| x == -100.0));
        assert!(stems.iter().all(|[l, r]| l.iter().chain(r).all(|&x| x == 0.0)));
    }

    #[test]
    fn a_gain_change_ramps_over_twenty_milliseconds_and_then_holds() {
        let n = 2000;
        let mut stems: Vec<[Vec<f32>; 2]> = (0..STEMS).map(|_| [vec![1.0; n], vec![1.0; n]]).collect();
        let dry = [vec![4.0; n], vec![4.0; n]];
        let mut main = [vec![0.0; n], vec![0.0; n]];
        let mut mixer = Mixer::new([1.0; STEMS]);
        let mut it = stems.iter_mut();
        let mut next = || {
            let [l, r] = it.next().unwrap();
            [&mut l[..], &mut r[..]]
        };
        let [main_l, main_r] = &mut main;
        let buffers = MixBuffers {
            stems: std::array::from_fn(|_| next()),
            separated: 0..n,
            dry: [&dry[0], &dry[1]],
            main: [&mut main_l[..], &mut main_r[..]],
        };
        let settings =
            MixSettings { sample_rate: 48_000.0, targets: [0.0, 1.0, 1.0, 1.0], post_fader: false, bypass: false };
        mixer.process(&settings, buffers, &mut BlockLevels::default());
        let ramp = (48_000.0 * RAMP_MS / 1000.0) as usize;
        assert!(main[0][ramp / 2] > 3.0 && main[0][ramp / 2] < 4.0, "halfway through the ramp");
        assert!(main[0][ramp + 1..].iter().all(|&x| x == 3.0), "the ramp ends at the target");
    }
}
