//! Streams with a timeline cache, driven like a host's transport: loops whose stems equal the
//! offline separation of the looped section, a model-like engine whose latency is longer than the
//! loop, jumps to cached and uncached places, changed input inside a loop, the memory budget,
//! offline rendering that cuts at every jump and never records or reads, and hosts whose position
//! does not advance by the block (a play rate, jitter, stuck at 0, a wrong step), whose stems
//! never depend on it.
//! After every block the test waits until the worker has done all it can
//! (`RealtimeSide::settled`), so real-time mode runs deterministically.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::music;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::separate_aligned;
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, WorkerHandle};
use demixer_dsp::timeline::{CacheShared, PAGE};
use demixer_dsp::{Engine, EngineKind, Routing, Separator, Stem, StereoOut, Timing};
use demixer_dsp::{InferenceError, OverlapAdd, SegmentModel};

const SR: f32 = 44_100.0;
const CONFIG: StreamConfig = StreamConfig { max_block: 512, margin: 1500 };
const BUDGET: u64 = 256 << 20;
/// Frames per block the host sends.
const BLOCK: usize = CONFIG.max_block - 89;

fn hpss() -> HpssSeparator {
    HpssSeparator::new(HpssConfig::preset(Preset::Normal, SR).unwrap())
}

/// A segment model whose two sources share each segment by its mean level (so every output
/// sample depends on the whole segment, as with a real model) and sum to the mix.
struct LevelModel {
    segment: usize,
    /// Segments run, shared with the test.
    runs: Arc<AtomicUsize>,
}

impl SegmentModel for LevelModel {
    fn segment_len(&self) -> usize {
        self.segment
    }

    fn sources(&self) -> &[Stem] {
        &Stem::ALL[..2]
    }

    fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let level = mix.iter().map(|x| x.abs()).sum::<f32>() / mix.len() as f32;
        let share = 1.0 / (1.0 + 10.0 * level);
        let (first, second) = out.split_at_mut(mix.len());
        for ((a, b), &x) in first.iter_mut().zip(second.iter_mut()).zip(mix) {
            (*a, *b) = (share * x, (1.0 - share) * x);
        }
        Ok(())
    }
}

/// An engine that counts the frames it is given.
struct Counted<S: Separator> {
    inner: S,
    frames: Arc<AtomicUsize>,
}

impl<S: Separator> Separator for Counted<S> {
    fn sources(&self) -> &[Stem] {
        self.inner.sources()
    }
    fn latency_samples(&self) -> usize {
        self.inner.latency_samples()
    }
    fn burst_samples(&self) -> usize {
        self.inner.burst_samples()
    }
    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        self.frames.fetch_add(left.len(), Ordering::Relaxed);
        self.inner.process(left, right, stems);
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
}

/// A stream with a cache of `budget` bytes around `separator`, and what came out of it.
struct Host {
    side: RealtimeSide,
    _worker: WorkerHandle,
    cache: Arc<CacheShared>,
    outputs: usize,
    /// `[output][channel]` as played.
    stems: Vec<[Vec<f32>; 2]>,
    /// Per played frame: whether it holds separated stems.
    separated: Vec<bool>,
    /// Every input frame sent, in order.
    sent: [Vec<f32>; 2],
}

impl Host {
    fn new(separator: Box<dyn Separator>, budget: u64) -> Self {
        let outputs = separator.sources().len();
        let routing = Routing::identity(separator.sources());
        let engine = Engine::new(EngineKind::SegmentModel, separator);
        let cache = CacheShared::new(budget);
        let (mut side, worker) =
            stream::spawn_cached(vec![engine], EngineKind::SegmentModel, CONFIG, routing, Some(cache.clone())).unwrap();
        // An empty offline block waits until the worker has taken up the stream.
        let mut none: Vec<StereoOut<'_>> = (0..outputs).map(|_| [&mut [][..], &mut [][..]]).collect();
        side.process(&[], &[], &mut none, Timing::Offline);
        Self {
            side,
            _worker: worker,
            cache,
            outputs,
            stems: (0..outputs).map(|_| [Vec::new(), Vec::new()]).collect(),
            separated: Vec::new(),
            sent: [Vec::new(), Vec::new()],
        }
    }

    fn latency(&self) -> usize {
        self.side.latency_samples()
    }

    /// Plays `input[range]` starting at timeline `position` (`None`: transport stopped), in
    /// blocks of [`BLOCK`], waiting after each for the worker to settle.
    fn play(&mut self, input: &[Vec<f32>; 2], range: std::ops::Range<usize>, position: Option<i64>, timing: Timing) {
        self.play_as(input, range, timing, |offset, _| position.map(|p| p + offset as i64));
    }

    /// [`Host::play`], the host reporting `position(offset, index)` for block `index`, which
    /// starts `offset` frames into `range`.
    fn play_as(
        &mut self,
        input: &[Vec<f32>; 2],
        range: std::ops::Range<usize>,
        timing: Timing,
        position: impl Fn(usize, usize) -> Option<i64>,
    ) {
        let mut start = range.start;
        for index in 0.. {
            if start >= range.end {
                break;
            }
            let n = (range.end - start).min(BLOCK);
            let mut block: Vec<[Vec<f32>; 2]> = (0..self.outputs).map(|_| [vec![0.0; n], vec![0.0; n]]).collect();
            let mut outs: Vec<StereoOut<'_>> = block.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
            let at = position(start - range.start, index);
            let (l, r) = (&input[0][start..start + n], &input[1][start..start + n]);
            let separated = self.side.process_at(l, r, &mut outs, timing, at);
            for (all, part) in self.stems.iter_mut().zip(&block) {
                all[0].extend_from_slice(&part[0]);
                all[1].extend_from_slice(&part[1]);
            }
            self.separated.extend((0..n).map(|t| separated.contains(&t)));
            self.sent[0].extend_from_slice(l);
            self.sent[1].extend_from_slice(r);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !self.side.settled() {
                assert!(Instant::now() < deadline, "the worker stopped");
                std::thread::yield_now();
            }
            start += n;
        }
    }

    /// The played stems of frame `t` for input frame `t - latency`.
    fn frame(&self, output: usize, channel: usize, t: usize) -> f32 {
        self.stems[output][channel][t]
    }
}

/// The offline separation of `input[range]` as a file of its own.
fn offline(separator: &mut dyn Separator, input: &[Vec<f32>; 2], range: std::ops::Range<usize>) -> Vec<[Vec<f32>; 2]> {
    separate_aligned(separator, &input[0][range.clone()], &input[1][range], &mut |_| {})
}

/// Loops `section` of `input` at timeline `position`, `passes` times, and checks that every
/// frame played after the latency is separated and equals the offline separation of the section
/// (to 1e-6 of full scale: the cache is exact). Returns the host.
fn assert_loop_plays_the_offline_separation(separator: Box<dyn Separator>, reference: &mut dyn Separator) -> Host {
    let input = music(SR, 3.0);
    let section = 20_000..20_000 + 9000;
    let mut host = Host::new(separator, BUDGET);
    let passes = 4;
    for _ in 0..passes {
        host.play(&input, section.clone(), Some(1_000_000), Timing::Realtime);
    }
    let want = offline(reference, &input, section.clone());
    let latency = host.latency();
    let len = section.len();
    assert!(host.separated[latency..].iter().all(|&s| s), "a dry stretch after the latency");
    for t in latency..passes * len {
        let offset = (t - latency) % len;
        for (output, stem) in want.iter().enumerate() {
            for (channel, signal) in stem.iter().enumerate() {
                let (got, expected) = (host.frame(output, channel, t), signal[offset]);
                assert!((got - expected).abs() < 1e-6, "output {output} at {t} (offset {offset}): {got} != {expected}");
            }
        }
    }
    host
}

#[test]
fn a_looped_section_plays_its_offline_separation_from_the_first_repeat_and_from_the_cache_after() {
    let frames = Arc::new(AtomicUsize::new(0));
    let engine = Counted { inner: hpss(), frames: frames.clone() };
    let host = assert_loop_plays_the_offline_separation(Box::new(engine), &mut hpss());
    // The engine separated the first pass and flushed it at the jump back (verified against the
    // record of the first pass), then the second, whose stems it kept (a loop); the cache served
    // the other two.
    let pass = 9000 + hpss().latency_samples();
    assert_eq!(frames.load(Ordering::Relaxed), 2 * pass, "the engine rests while the cache plays");
    assert_eq!(host.cache.cached_frames(), 9000);
}

#[test]
fn a_model_whose_latency_exceeds_the_loop_plays_the_loop_separated_from_the_second_pass() {
    let runs = Arc::new(AtomicUsize::new(0));
    let model = OverlapAdd::new(LevelModel { segment: 16_384, runs: runs.clone() }).unwrap();
    assert!(model.latency_samples() > 9000, "the model's latency is longer than the loop");
    let mut reference = OverlapAdd::new(LevelModel { segment: 16_384, runs: Arc::new(AtomicUsize::new(0)) }).unwrap();
    let before = runs.load(Ordering::Relaxed);
    assert_loop_plays_the_offline_separation(Box::new(model), &mut reference);
    let segments_of_one_pass = runs.load(Ordering::Relaxed) - before;
    assert!(segments_of_one_pass <= 3, "the model ran {segments_of_one_pass} segments: it should run one pass only");
}

#[test]
fn a_verified_jump_back_restarts_the_engine_and_a_second_one_plays_its_stems_from_the_cache() {
    let input = music(SR, 3.0);
    let frames = Arc::new(AtomicUsize::new(0));
    let mut host = Host::new(Box::new(Counted { inner: hpss(), frames: frames.clone() }), BUDGET);
    let latency = host.latency();
    host.play(&input, 0..40_000, Some(0), Timing::Realtime);
    // A place never played: nothing to verify the jump against, so the engine runs on across it.
    host.play(&input, 80_000..100_000, Some(80_000), Timing::Realtime);
    let first_back = host.separated.len();
    // Back into the first stretch: verified, the engine starts afresh there.
    host.play(&input, 10_000..60_000, Some(10_000), Timing::Realtime);
    let second_back = host.separated.len();
    let engine_before = frames.load(Ordering::Relaxed);
    // Again: 10 000..40 000 was played twice, unchanged, and its stems were kept.
    host.play(&input, 10_000..60_000, Some(10_000), Timing::Realtime);
    assert!(host.separated[latency..].iter().all(|&s| s), "a dry stretch after a jump");
    let separation = |frames: std::ops::Range<usize>| {
        let sent = [host.sent[0][frames.clone()].to_vec(), host.sent[1][frames].to_vec()];
        offline(&mut hpss(), &sent, 0..sent[0].len())
    };
    // Up to the verified jump the engine ran on, across the unverified one: the stems are the
    // separation of the input as sent, one file. From the jump to the next, a file of its own.
    for (stretch, first) in [(0..first_back, 0), (first_back..second_back, first_back)] {
        let want = separation(stretch.clone());
        for t in stretch.start + latency..stretch.end {
            assert_eq!(host.stems[1][0][t], want[1][0][t - latency - first], "at {t}");
        }
    }
    // The third visit replays the second one's stems exactly, and the engine starts again only
    // where the cache ended: it separated 20 000 frames (and its flush), not the 30 000 cached.
    for t in second_back + latency..second_back + latency + 30_000 {
        let earlier = t - second_back + first_back;
        for stem in &host.stems {
            assert_eq!(stem[0][t], stem[0][earlier], "at {t}");
        }
    }
    let engine_after = frames.load(Ordering::Relaxed) - engine_before;
    assert!(engine_after < 20_000 + 2 * latency, "the engine separated {engine_after} frames");
    // Everywhere, the stems sum to the input one latency earlier.
    assert_sums_to_input(&host);
}

fn assert_sums_to_input(host: &Host) {
    let latency = host.latency();
    for t in latency..host.separated.len() {
        for channel in 0..2 {
            let sum: f32 = (0..host.outputs).map(|o| host.frame(o, channel, t)).sum();
            let input = host.sent[channel][t - latency];
            assert!((sum - input).abs() < 1e-4, "at {t}, channel {channel}: stems sum to {sum}, input was {input}");
        }
    }
}

#[test]
fn changed_input_inside_a_loop_never_plays_stale_stems() {
    let input = music(SR, 3.0);
    let mut changed = input.clone();
    for channel in &mut changed {
        for (t, x) in channel[24_000..26_000].iter_mut().enumerate() {
            *x = 0.4 * (t as f32 * 0.05).sin();
        }
    }
    let section = 20_000..29_000;
    let mut host = Host::new(Box::new(hpss()), BUDGET);
    for pass in 0..5 {
        let source = if pass < 2 { &input } else { &changed };
        host.play(source, section.clone(), Some(0), Timing::Realtime);
    }
    assert!(host.separated[host.latency()..].iter().all(|&s| s), "a dry stretch");
    // Stale stems would sum to the old input where it changed.
    assert_sums_to_input(&host);
    // From the pass after the change on, the loop replays the same stems.
    let len = section.len();
    let latency = host.latency();
    for t in 3 * len + latency..4 * len {
        assert_eq!(host.stems[0][0][t], host.stems[0][0][t + len], "passes 4 and 5 differ at {t}");
    }
}

#[test]
fn the_cache_stays_within_its_budget_keeping_the_latest_stems() {
    let input = music(SR, 3.0);
    let probe = 3 * (PAGE * (4 * 2 * 4 + 2) + 4096) as u64;
    let mut host = Host::new(Box::new(hpss()), probe);
    for _ in 0..2 {
        host.play(&input, 0..40_000, Some(0), Timing::Realtime);
        assert!(host.cache.used_bytes() <= probe, "{} bytes used of {probe}", host.cache.used_bytes());
        assert!(host.cache.cached_frames() <= 3 * PAGE as u64);
    }
    assert!(host.cache.cached_frames() > 0);
    assert_sums_to_input(&host);
    // Once the last run is flushed (the transport stopped), a clear empties the cache.
    host.play(&input, 0..1000, None, Timing::Realtime);
    host.cache.clear();
    host.play(&input, 0..1000, None, Timing::Realtime);
    assert_eq!((host.cache.cached_frames(), host.cache.used_bytes()), (0, 0), "cleared");
}

#[test]
fn offline_rendering_cuts_at_every_jump_and_never_records_or_plays_cached_stems() {
    let input = music(SR, 1.0);
    let frames = Arc::new(AtomicUsize::new(0));
    let mut host = Host::new(Box::new(Counted { inner: hpss(), frames: frames.clone() }), BUDGET);
    for _ in 0..3 {
        host.play(&input, 0..10_000, Some(0), Timing::Offline);
    }
    let flush = hpss().latency_samples();
    assert!(frames.load(Ordering::Relaxed) >= 2 * (10_000 + flush), "every offline pass is separated afresh");
    assert_eq!(host.cache.used_bytes(), 0, "nothing recorded or kept");
    // Each pass is the separation of the section as a file, whatever was rendered before.
    let want = offline(&mut hpss(), &input, 0..10_000);
    let latency = host.latency();
    for t in latency..30_000 {
        assert_eq!(host.stems[1][1][t], want[1][1][(t - latency) % 10_000], "at {t}");
    }
}

/// How a host reports the position of block `index`, which starts `offset` frames in.
type Transport = fn(usize, usize) -> Option<i64>;

/// Hosts whose position does not advance by the block.
fn weird_transports() -> [(&'static str, Transport); 7] {
    [
        ("play rate 0.5", |offset, _| Some((offset as f64 * 0.5).round() as i64)),
        ("play rate 0.75", |offset, _| Some((offset as f64 * 0.75).round() as i64)),
        ("play rate 0.9", |offset, _| Some((offset as f64 * 0.9).round() as i64)),
        ("jitter of a sample", |offset, index| Some(offset as i64 + ((index * 7) % 3) as i64 - 1)),
        ("stuck at 0", |_, _| Some(0)),
        ("a sample too far each block", |offset, index| Some((offset + index) as i64)),
        ("play rate 1.001", |offset, _| Some((offset as f64 * 1.001).round() as i64)),
    ]
}

#[test]
fn a_host_whose_position_does_not_advance_by_the_block_never_cuts_a_run() {
    let input = music(SR, 1.0);
    for timing in [Timing::Realtime, Timing::Offline] {
        let mut stopped = Host::new(Box::new(hpss()), BUDGET);
        stopped.play(&input, 0..input[0].len(), None, timing);
        for (name, transport) in weird_transports() {
            let frames = Arc::new(AtomicUsize::new(0));
            let mut host = Host::new(Box::new(Counted { inner: hpss(), frames: frames.clone() }), BUDGET);
            host.play_as(&input, 0..input[0].len(), timing, transport);
            let latency = host.latency();
            assert!(host.separated[latency..].iter().all(|&s| s), "{name}, {timing:?}: a dry stretch");
            assert!(host.stems == stopped.stems, "{name}, {timing:?}: the stems differ from the transport stopped");
            assert_eq!(frames.load(Ordering::Relaxed), input[0].len(), "{name}, {timing:?}: the engine was flushed");
            assert_eq!(host.cache.cached_frames(), 0, "{name}, {timing:?}: stems were kept");
        }
    }
}

#[test]
fn a_loop_whose_positions_jitter_by_a_sample_still_plays_from_the_cache() {
    let input = music(SR, 3.0);
    let section = 20_000..29_000;
    let frames = Arc::new(AtomicUsize::new(0));
    let mut host = Host::new(Box::new(Counted { inner: hpss(), frames: frames.clone() }), BUDGET);
    for pass in 0..4 {
        host.play_as(&input, section.clone(), Timing::Realtime, |offset, index| {
            Some(1_000_000 + offset as i64 + ((pass + index * 5) % 3) as i64 - 1)
        });
    }
    let want = offline(&mut hpss(), &input, section.clone());
    let latency = host.latency();
    for t in latency..4 * section.len() {
        assert_eq!(host.stems[2][0][t], want[2][0][(t - latency) % section.len()], "at {t}");
    }
    let pass = section.len() + hpss().latency_samples();
    assert_eq!(frames.load(Ordering::Relaxed), 2 * pass, "the cache played the last two passes");
}

#[test]
fn ordinary_playback_keeps_only_the_record_of_the_input() {
    // Played once through, nothing is likely to be replayed: no stems are kept, only the record
    // that verifies a jump back (a fingerprint every 16 frames, about 0.4 MB a minute).
    let input = music(SR, 3.0);
    let mut host = Host::new(Box::new(hpss()), BUDGET);
    host.play(&input, 0..input[0].len(), Some(0), Timing::Realtime);
    assert_eq!(host.cache.cached_frames(), 0, "stems were kept");
    let minutes = input[0].len() as f64 / SR as f64 / 60.0;
    let per_minute = host.cache.used_bytes() as f64 / minutes / 1e6;
    assert!(host.cache.used_bytes() > 0 && per_minute < 0.5, "{per_minute:.2} MB a minute");
}
