//! The worker-thread stream: exact latency for any block sizes, silence (not drift) when the
//! worker is late, restarts that leave nothing stale, engine switches.

mod common;

use std::sync::{Arc, Condvar, Mutex};

use common::{Lcg, music, separate};
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, WorkerHandle};
use demixer_dsp::{Engine, EngineKind, Routing, Separator, Stem, StereoOut, Timing};

const SR: f32 = 44_100.0;
const CONFIG: StreamConfig = StreamConfig { max_block: 1024, margin: 1500 };

fn hpss(preset: Preset) -> HpssSeparator {
    HpssSeparator::new(HpssConfig::preset(preset, SR).unwrap())
}

/// A stream of HPSS-kind engines (each labelled with a preset), starting with the first.
fn spawn(engines: Vec<(Preset, Box<dyn Separator>)>) -> (RealtimeSide, WorkerHandle) {
    let initial = EngineKind::Hpss(engines[0].0);
    let engines = engines.into_iter().map(|(preset, separator)| Engine::new(EngineKind::Hpss(preset), separator));
    stream::spawn(engines.collect(), initial, CONFIG, Routing::identity(&Stem::ALL)).unwrap()
}

/// Output of a stream run: `[stem][channel]` plus, per block, its range and the separated part.
struct Run {
    stems: Vec<[Vec<f32>; 2]>,
    separated: Vec<std::ops::Range<usize>>,
}

/// Feeds `input[from..to]` in random block sizes, appending to `run`.
fn feed(
    side: &mut RealtimeSide,
    input: &[Vec<f32>; 2],
    from: usize,
    to: usize,
    timing: Timing,
    seed: u32,
    run: &mut Run,
) {
    let mut rng = Lcg(seed);
    let mut start = from;
    while start < to {
        let n =
            (((rng.next() + 1.0) * 0.5 * CONFIG.max_block as f32) as usize).clamp(1, CONFIG.max_block).min(to - start);
        let mut block: Vec<[Vec<f32>; 2]> = (0..4).map(|_| [vec![0.0; n], vec![0.0; n]]).collect();
        let mut outs: Vec<StereoOut<'_>> = block.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
        let range = side.process(&input[0][start..start + n], &input[1][start..start + n], &mut outs, timing);
        run.separated.push(start + range.start..start + range.end);
        for (all, part) in run.stems.iter_mut().zip(&block) {
            all[0].extend_from_slice(&part[0]);
            all[1].extend_from_slice(&part[1]);
        }
        start += n;
    }
}

fn new_run() -> Run {
    Run { stems: (0..4).map(|_| [Vec::new(), Vec::new()]).collect(), separated: Vec::new() }
}

/// Asserts that every separated sample equals `direct` (the engine run alone) `margin` earlier,
/// counting from stream position `origin`, and that everything else is silence.
fn assert_aligned(run: &Run, direct: &[[Vec<f32>; 2]], origin: usize) {
    let separated = |t: usize| run.separated.iter().any(|r| r.contains(&t));
    for (stem, (got, want)) in run.stems.iter().zip(direct).enumerate() {
        for ch in 0..2 {
            for t in origin..got[ch].len() {
                let expected = if separated(t) { want[ch][t - origin - CONFIG.margin] } else { 0.0 };
                assert_eq!(got[ch][t], expected, "stem {stem}, channel {ch}, sample {t}");
            }
        }
    }
}

#[test]
fn offline_stream_is_the_engine_delayed_by_the_margin_for_any_blocks() {
    let input = music(SR, 3.0);
    let direct = separate(&mut hpss(Preset::Normal), &input, 512);
    let (mut side, _worker) = spawn(vec![(Preset::Normal, Box::new(hpss(Preset::Normal)))]);
    assert_eq!(side.latency_samples(), hpss(Preset::Normal).latency_samples() + CONFIG.margin);
    let mut run = new_run();
    feed(&mut side, &input, 0, input[0].len(), Timing::Offline, 1, &mut run);
    let separated: usize = run.separated.iter().map(|r| r.len()).sum();
    let warm_up = hpss(Preset::Normal).latency_samples();
    assert_eq!(separated, input[0].len() - CONFIG.margin - warm_up, "offline rendering separates all but the warm-up");
    assert_aligned(&run, &direct, 0);
    assert_eq!(side.status().underruns(), 0);
}

/// An engine that blocks until its gate opens: a worker that is late on purpose.
struct Gated {
    engine: HpssSeparator,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Separator for Gated {
    fn sources(&self) -> &[Stem] {
        self.engine.sources()
    }
    fn latency_samples(&self) -> usize {
        self.engine.latency_samples()
    }
    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let (open, changed) = &*self.gate;
        let _open = changed.wait_while(open.lock().unwrap(), |open| !*open).unwrap();
        self.engine.process(left, right, stems);
    }
    fn reset(&mut self) {
        self.engine.reset();
    }
}

#[test]
fn a_late_worker_gives_silence_then_the_stream_continues_aligned() {
    let input = music(SR, 2.0);
    let direct = separate(&mut hpss(Preset::Normal), &input, 512);
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let engine = Gated { engine: hpss(Preset::Normal), gate: gate.clone() };
    let (mut side, _worker) = spawn(vec![(Preset::Normal, Box::new(engine))]);
    // An empty offline block waits until the worker has taken up the stream.
    assert!(
        side.process(
            &[],
            &[],
            &mut [[&mut [][..], &mut [][..]], [&mut [], &mut []], [&mut [], &mut []], [&mut [], &mut []]],
            Timing::Offline
        )
        .is_empty()
    );
    let mut run = new_run();
    // Blocks while the worker cannot deliver: start-up silence (margin and warm-up), then two
    // late blocks.
    let start_up = CONFIG.margin + hpss(Preset::Normal).latency_samples();
    let late = (start_up / CONFIG.max_block + 2) * CONFIG.max_block;
    let mut start = 0;
    while start < late {
        let n = CONFIG.max_block;
        let mut block: Vec<[Vec<f32>; 2]> = (0..4).map(|_| [vec![1.0; n], vec![1.0; n]]).collect();
        let mut outs: Vec<StereoOut<'_>> = block.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
        let range = side.process(&input[0][start..start + n], &input[1][start..start + n], &mut outs, Timing::Realtime);
        assert!(range.is_empty(), "nothing can be separated yet");
        assert!(block.iter().all(|[l, r]| l.iter().chain(r).all(|&x| x == 0.0)), "late stems are silence");
        run.separated.push(start..start);
        for (all, part) in run.stems.iter_mut().zip(&block) {
            all[0].extend_from_slice(&part[0]);
            all[1].extend_from_slice(&part[1]);
        }
        start += n;
    }
    assert_eq!(side.status().underruns(), 2);
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    feed(&mut side, &input, late, input[0].len(), Timing::Offline, 2, &mut run);
    assert!(!run.separated.last().unwrap().is_empty(), "separation resumed");
    assert_aligned(&run, &direct, 0);
}

#[test]
fn restart_leaves_nothing_stale_and_can_switch_engines() {
    let noise: [Vec<f32>; 2] = {
        let mut rng = Lcg(9);
        [(0..44_100).map(|_| rng.next()).collect(), (0..44_100).map(|_| rng.next()).collect()]
    };
    let (mut side, _worker) =
        spawn(vec![(Preset::Normal, Box::new(hpss(Preset::Normal))), (Preset::Low, Box::new(hpss(Preset::Low)))]);
    let mut before = new_run();
    feed(&mut side, &noise, 0, noise[0].len(), Timing::Offline, 3, &mut before);

    // Restart on the same engine, then silence in: nothing of the noise may come out.
    assert!(side.restart(EngineKind::Hpss(Preset::Normal)));
    let silence = [vec![0.0; 30_000], vec![0.0; 30_000]];
    let mut after = new_run();
    feed(&mut side, &silence, 0, silence[0].len(), Timing::Offline, 4, &mut after);
    assert!(after.stems.iter().all(|[l, r]| l.iter().chain(r).all(|&x| x == 0.0)), "stale audio after restart");

    // Switch to the low-latency engine: new latency, and the stream is that engine's, aligned.
    assert!(!side.restart(EngineKind::SegmentModel), "no such engine: nothing changes");
    assert_eq!(side.engine(), EngineKind::Hpss(Preset::Normal));
    assert!(side.restart(EngineKind::Hpss(Preset::Low)));
    assert_eq!(side.engine(), EngineKind::Hpss(Preset::Low));
    assert_eq!(side.latency_samples(), hpss(Preset::Low).latency_samples() + CONFIG.margin);
    let input = music(SR, 1.0);
    let direct = separate(&mut hpss(Preset::Low), &input, 700);
    let mut switched = new_run();
    feed(&mut side, &input, 0, input[0].len(), Timing::Offline, 5, &mut switched);
    assert_aligned(&switched, &direct, 0);
}

/// An engine that passes its input through as drums and fails once `after` samples have gone by.
struct FailsAfter {
    after: usize,
    seen: usize,
    failure: Option<String>,
}

impl Separator for FailsAfter {
    fn sources(&self) -> &[Stem] {
        &Stem::ALL
    }

    fn latency_samples(&self) -> usize {
        0
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        stems.iter_mut().flat_map(|s| s.iter_mut()).for_each(|c| c.fill(0.0));
        stems[0][0].copy_from_slice(left);
        stems[0][1].copy_from_slice(right);
        self.seen += left.len();
        if self.seen > self.after {
            self.failure.get_or_insert_with(|| "the model output NaN".into());
        }
    }

    fn reset(&mut self) {}

    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
}

#[test]
fn an_engine_that_fails_is_not_played_again_and_its_failure_is_told_once() {
    let failing = FailsAfter { after: SR as usize, seen: 0, failure: None };
    let (mut side, _worker) =
        spawn(vec![(Preset::Normal, Box::new(failing)), (Preset::Low, Box::new(hpss(Preset::Low)))]);
    let told = Arc::new(Mutex::new(Vec::new()));
    let listener = Arc::clone(&told);
    side.status().on_failure(Box::new(move |why| listener.lock().unwrap().push(why.to_string())));
    let input = music(SR, 3.0);
    let mut run = new_run();
    feed(&mut side, &input, 0, input[0].len(), Timing::Offline, 5, &mut run);
    let last_separated = run.separated.iter().filter(|r| !r.is_empty()).map(|r| r.end).max().unwrap();
    assert!(last_separated > SR as usize / 2, "the engine played until it failed");
    assert!(last_separated < SR as usize + 2 * CONFIG.margin, "and not after: {last_separated}");
    assert!(run.stems[0][0][last_separated..].iter().all(|&x| x == 0.0), "a failed engine's stems are silent");
    assert_eq!(*told.lock().unwrap(), ["the model output NaN"]);
    assert_eq!(side.status().failure().as_deref(), Some("the model output NaN"));
    // The other engine of the stream still plays.
    assert!(side.restart(EngineKind::Hpss(Preset::Low)));
    let mut run = new_run();
    feed(&mut side, &input, 0, input[0].len(), Timing::Offline, 6, &mut run);
    assert!(run.separated.iter().any(|r| !r.is_empty()), "HPSS plays after the failed engine");
}
