//! Running separators on a worker thread behind lock-free rings, at a fixed, exact latency.
//!
//! The audio thread ([`RealtimeSide`]) writes its input into one SPSC ring and reads separated
//! stems from another; the worker thread (`worker.rs`) owns the engines. The stems come out
//! delayed by the engine's latency plus a fixed margin, the time the worker has to keep up. The
//! audio thread talks to the worker through atomics and rings only (requests carry a generation
//! number that the worker acknowledges), so it never locks, allocates or makes a system call in
//! real-time mode.
//!
//! A host's timeline position is a hint, not the truth: hosts at a play rate other than 1, hosts
//! whose position jitters, sticks at 0 or steps wrongly all exist. The engine runs on across
//! whatever the host reports, so the stems of a continuous stream never depend on it. The audio
//! thread only marks, with a seam (`runs.rs`), where the host's position moved other than by the block
//! (a candidate jump), where it moves by the block again after one (which confirms it), and where
//! it cannot be trusted (the transport stopped, or the host does not advance by the block). The
//! worker takes a confirmed jump as one only where the cache can verify it: the input after it
//! matches what was played at the new place before ([`crate::timeline::TimelineCache::verify`]).
//! There the input is cut into *runs*: the engine finishes the run it has (padded with silence,
//! as at the end of a file) and starts afresh on the next, so the output stays the stems of the
//! input exactly one latency earlier, across the jump. With a
//! [`crate::timeline::TimelineCache`], stems likely to be replayed (of a loop, of a stretch played
//! twice) are also kept by timeline position: a run that revisits them plays them from the cache
//! while the engine rests, and the engine starts again where the cache ends. In real time without
//! a cache nothing is cut. Offline (a bounce, an export) every confirmed jump is cut, so that a
//! render from there on is a file of its own whatever was rendered before; a host whose position
//! does not advance by the block never confirms one.
//!
//! When the worker is late the missing stretch is silence (reported as not separated) and the
//! same number of late frames is skipped when they arrive, so the alignment never drifts. In
//! offline mode the audio thread may wait for the worker instead, and the cache is neither read
//! nor filled, so a bounce is exact.

mod routing;
mod runs;
mod worker;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use crate::engine::{Engine, EngineKind};
use crate::separator::StereoOut;
use crate::stem::Stem;
use crate::timeline::CacheShared;
pub use routing::Routing;
use worker::Worker;

const CHANNELS: usize = 2;
/// The most sources one engine can write: every known stem once.
const MAX_SOURCES: usize = Stem::KNOWN.len();
/// How long the worker sleeps when it has nothing to do, while audio flows.
const POLL: Duration = Duration::from_millis(1);
/// Frames the worker separates at a time.
const CHUNK: usize = 1024;
/// Seams the audio thread can mark before the worker takes them (more than this within one
/// worker poll restart the stream).
const SEAMS: usize = 64;
/// Samples a host's position may stray from the stream's own count while it plays on: a
/// timeline in seconds rounded to samples is off by one either way.
const TOLERANCE: i64 = 2;
/// The least move of a host's position, after blocks that advanced by the block, that is marked
/// as a jump; a smaller one is a host drifting (a play rate near 1, a wrong step): its position
/// is not trusted from there.
const JUMP: i64 = 64;
/// The longest an offline render waits for the worker before giving up on a block.
const OFFLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sizes of the streaming machinery.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// Largest block the audio thread passes to [`RealtimeSide::process`].
    pub max_block: usize,
    /// Frames of delay, on top of the engine's latency, that the worker has to deliver a block.
    /// At least `max_block`.
    pub margin: usize,
}

impl StreamConfig {
    /// A margin of one maximum block plus `slack` of scheduling headroom at `sample_rate`.
    pub fn new(max_block: usize, sample_rate: f32, slack: Duration) -> Self {
        Self { max_block, margin: max_block + (slack.as_secs_f32() * sample_rate).ceil() as usize }
    }

    /// Ring capacity: room for the largest margin (with an engine's bursts), the engine's warm-up
    /// and blocks in flight.
    fn ring_frames(&self, max_latency: usize, max_burst: usize) -> usize {
        2 * (self.max_block + self.margin + max_burst) + CHUNK + max_latency
    }
}

/// State the worker publishes and the audio thread requests through, all atomics.
#[derive(Default)]
pub struct Status {
    requested_generation: AtomicU64,
    requested_engine: AtomicUsize,
    acked_generation: AtomicU64,
    underruns: AtomicU64,
    separated_frames: AtomicU64,
    busy_nanos: AtomicU64,
    /// `generation << 40 | frames`: the worker had taken `frames` frames of input since the
    /// restart of `generation` and could do nothing more without further input.
    settled: AtomicU64,
    /// Set by [`WorkerHandle`] to stop the worker; unlike a message it cannot be lost to a full
    /// queue.
    shutdown: AtomicBool,
    /// One bit per engine (in [`spawn`]'s order) that reported a failure
    /// ([`crate::separator::Separator::failure`]): its stems are not played again in this stream.
    failed: AtomicU64,
    /// The first failure, in the engine's words, and who wants to hear of it (set off the audio
    /// thread; the worker calls it).
    failure: std::sync::Mutex<(Option<String>, Option<FailureListener>)>,
}

/// Called, on the worker thread, with the first failure of a stream's engine.
pub type FailureListener = Box<dyn Fn(&str) + Send>;

impl Status {
    /// Blocks in which the worker was late and the stems went silent.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// The first failure of an engine of this stream, if one failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// Calls `listener` (on the worker thread) with the first failure of an engine of this stream,
    /// or now if one failed already. Not on the audio thread.
    pub fn on_failure(&self, listener: FailureListener) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = &failure.0 {
            listener(why);
        }
        failure.1 = Some(listener);
    }

    /// Records that engine `engine` failed, `why` (the worker thread).
    fn report_failure(&self, engine: usize, why: &str) {
        self.failed.fetch_or(1 << engine, Ordering::Release);
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.0.is_none() {
            failure.0 = Some(why.to_string());
            if let Some(listener) = &failure.1 {
                listener(why);
            }
        }
    }

    fn has_failed(&self, engine: usize) -> bool {
        self.failed.load(Ordering::Acquire) & (1 << engine) != 0
    }

    /// Seconds of audio separated per second the worker spent separating.
    pub fn realtime_factor(&self, sample_rate: f32) -> f32 {
        let busy = self.busy_nanos.load(Ordering::Relaxed) as f32 * 1e-9;
        let audio = self.separated_frames.load(Ordering::Relaxed) as f32 / sample_rate;
        if busy > 0.0 { audio / busy } else { 0.0 }
    }
}

/// What the audio thread says of the host's timeline at a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    /// The host's position moved by at least [`JUMP`] samples, to this one (in samples), after
    /// blocks that advanced by the block or a stopped transport; or the stream began here. A
    /// candidate jump: confirmed when the next mark is [`Mark::Continue`].
    Jump(i64),
    /// The host's position went on by the block exactly after moving otherwise: positions count
    /// from this one (in samples) again. Never a jump; confirmed like one.
    Anchor(i64),
    /// The position goes on by the block from the last mark (it confirms a jump or an anchor), or
    /// only the timing changed.
    Continue,
    /// No position from here on: the transport stopped, or the host does not advance by the
    /// block.
    Unanchor,
}

/// A mark at a frame of the input.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Seam {
    /// The frame, counted from the stream's (re)start.
    at: u64,
    mark: Mark,
    /// Whether stems from here on may play from the cache (real time; never offline).
    cached: bool,
}

/// How the host's position behaved at the last block.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Where the block before ended (within [`TOLERANCE`] while anchored).
    Steady,
    /// Somewhere else.
    Moved,
    /// No position: the transport is stopped.
    Stopped,
}

enum Message {
    /// Input is waiting (offline mode), or [`Status::shutdown`] is set.
    Wake,
}

/// Starts a worker thread that owns `engines` (at most one of each [`EngineKind`]) and runs
/// `initial`; every engine's sources reach the stream's outputs through `routing`. Returns the
/// audio thread's end and the handle that stops the worker. Stems are not kept by timeline
/// position (see [`spawn_cached`]).
///
/// # Errors
/// The operating system's error when the thread cannot start.
///
/// # Panics
/// If `engines` is empty, holds two engines of one kind, does not hold `initial`, or the margin
/// is shorter than a maximum block.
pub fn spawn(
    engines: Vec<Engine>,
    initial: EngineKind,
    config: StreamConfig,
    routing: Routing,
) -> std::io::Result<(RealtimeSide, WorkerHandle)> {
    spawn_cached(engines, initial, config, routing, None)
}

/// [`spawn`], keeping the running engine's stems by timeline position in a
/// [`crate::timeline::TimelineCache`] within `cache`'s budget (see the module docs). The cache
/// holds one engine's stems: a switch of engine clears it.
///
/// # Errors
/// The operating system's error when the thread cannot start.
///
/// # Panics
/// As [`spawn`].
pub fn spawn_cached(
    engines: Vec<Engine>,
    initial: EngineKind,
    config: StreamConfig,
    routing: Routing,
    cache: Option<Arc<CacheShared>>,
) -> std::io::Result<(RealtimeSide, WorkerHandle)> {
    assert!(config.margin >= config.max_block, "the margin must cover a maximum block");
    assert!(routing.outputs() > 0, "a stream needs an output");
    let kinds: Vec<EngineKind> = engines.iter().map(|e| e.kind).collect();
    assert!((1..kinds.len()).all(|i| !kinds[..i].contains(&kinds[i])), "one engine per kind: {kinds:?}");
    let initial = kinds.iter().position(|&k| k == initial).expect("the initial engine is among the engines");
    let latencies: Vec<usize> = engines.iter().map(|e| e.separator.latency_samples()).collect();
    let margins: Vec<usize> = engines.iter().map(|e| config.margin + e.separator.burst_samples()).collect();
    let max_burst = engines.iter().map(|e| e.separator.burst_samples()).max().unwrap_or(0);
    let ring_frames = config.ring_frames(latencies.iter().copied().max().unwrap_or(0), max_burst);
    let out_frame = routing.outputs() * CHANNELS;
    let (input_producer, input_consumer) = HeapRb::<f32>::new(ring_frames * CHANNELS).split();
    let (output_producer, output_consumer) = HeapRb::<f32>::new(ring_frames * out_frame).split();
    let (seam_producer, seam_consumer) = HeapRb::<Seam>::new(SEAMS).split();
    let (control, messages) = bounded(4);
    let (progress_sender, progress) = bounded(1);
    let status = Arc::new(Status::default());
    status.requested_engine.store(initial, Ordering::Relaxed);
    let worker = Worker::new(
        engines,
        &routing,
        initial,
        ring_frames,
        worker::Rings { input: input_consumer, seams: seam_consumer, output: output_producer },
        messages,
        progress_sender,
        status.clone(),
        cache,
    );
    let thread = std::thread::Builder::new().name("demixer-worker".into()).spawn(move || worker.run())?;
    let mut side = RealtimeSide {
        input: input_producer,
        seams: seam_producer,
        output: output_consumer,
        control: control.clone(),
        progress,
        status,
        kinds,
        latencies,
        margins,
        config,
        out_frame,
        slot: initial,
        generation: 0,
        waiting: false,
        silence_owed: 0,
        debt: 0,
        since_restart: 0,
        run: None,
        expected: None,
        anchored: false,
        jump_pending: false,
        last: Step::Stopped,
        interleaved_in: vec![0.0; config.max_block * CHANNELS],
        interleaved_out: vec![0.0; config.max_block * out_frame],
    };
    // The worker starts on generation 0 with the initial engine: the first block is sent at once.
    side.silence_owed = side.latency_samples();
    let status = Arc::clone(&side.status);
    Ok((side, WorkerHandle { control, status, thread: Some(thread) }))
}

/// Stops and joins the worker thread when dropped.
pub struct WorkerHandle {
    control: Sender<Message>,
    status: Arc<Status>,
    thread: Option<JoinHandle<Vec<Engine>>>,
}

impl WorkerHandle {
    /// Stops the worker and hands back its engines (to keep a loaded model for the next stream).
    pub fn stop(mut self) -> Vec<Engine> {
        self.join()
    }

    fn join(&mut self) -> Vec<Engine> {
        // The worker looks at the flag after every message and at least every IDLE_POLL; the wake
        // only makes it look at once (a full queue means it has messages to read anyway). A
        // shutdown message instead could be lost to a full queue while the worker was busy,
        // and the join would then wait forever (it once hung the plugin_threads test).
        self.status.shutdown.store(true, Ordering::Release);
        let _ = self.control.try_send(Message::Wake);
        self.thread.take().and_then(|thread| thread.join().ok()).unwrap_or_default()
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.join();
    }
}

/// Whether the audio thread may wait for the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Never wait: late stems are silence.
    Realtime,
    /// Offline rendering: wait for the worker (bounded), so the result is exact.
    Offline,
}

/// The audio thread's end of the stream.
pub struct RealtimeSide {
    input: HeapProd<f32>,
    seams: HeapProd<Seam>,
    output: HeapCons<f32>,
    control: Sender<Message>,
    progress: Receiver<()>,
    status: Arc<Status>,
    /// Per engine, in the order given to [`spawn`]: its kind, latency, and the configured margin
    /// plus its bursts.
    kinds: Vec<EngineKind>,
    latencies: Vec<usize>,
    margins: Vec<usize>,
    config: StreamConfig,
    /// Samples per output frame: every output's left and right.
    out_frame: usize,
    /// The running engine's position in `kinds`.
    slot: usize,
    generation: u64,
    /// A restart is requested and not yet acknowledged: input is not sent, output is silence.
    waiting: bool,
    /// Frames of silence still to output before the worker's stream begins.
    silence_owed: usize,
    /// Frames to skip when they arrive: delivered too late.
    debt: usize,
    /// Frames handed to the worker since the last restart.
    since_restart: u64,
    /// Whether stems may play from the cache now (the timing of the last block). `None` before
    /// the first frame since the (re)start.
    run: Option<bool>,
    /// The timeline position the next block has if the host plays on: the anchor's position
    /// counted on by the frames since, or while not anchored, the last block's plus its length.
    expected: Option<i64>,
    /// Whether the stream counts positions from a host's position (a jump marked, not undone).
    anchored: bool,
    /// A jump was marked at the last block: this one confirms it or not.
    jump_pending: bool,
    /// How the host's position behaved at the last block.
    last: Step,
    interleaved_in: Vec<f32>,
    interleaved_out: Vec<f32>,
}

impl RealtimeSide {
    /// Total delay between input and stems, in samples: the engine's latency plus the margin
    /// (and the engine's bursts, see [`crate::separator::Separator::burst_samples`]).
    pub fn latency_samples(&self) -> usize {
        self.latencies[self.slot] + self.margins[self.slot]
    }

    /// The kind of engine running (or starting).
    pub fn engine(&self) -> EngineKind {
        self.kinds[self.slot]
    }

    /// The running engine's position in the list given to [`spawn`], for labels.
    pub fn engine_slot(&self) -> usize {
        self.slot
    }

    /// The worker's published state.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Flushes everything and restarts the stream with the engine of `kind`: after a seek, or to
    /// switch engines (the latency may change). Real-time safe. Returns `false`, and changes
    /// nothing, when the stream has no engine of that kind.
    ///
    /// The first `latency` frames after a restart stand for input before it, which the new
    /// stream never saw: they are silence and count as not separated. (A jump of the timeline is
    /// not a restart: see [`RealtimeSide::process_at`].)
    pub fn restart(&mut self, kind: EngineKind) -> bool {
        let Some(engine) = self.kinds.iter().position(|&k| k == kind) else { return false };
        // A stream that has been sent nothing since it (re)started has nothing to forget (hosts
        // reset right after activating).
        let fresh = engine == self.slot && self.since_restart == 0 && !self.waiting;
        if !fresh {
            self.restart_slot(engine);
        }
        true
    }

    fn restart_slot(&mut self, engine: usize) {
        self.slot = engine;
        self.generation += 1;
        self.status.requested_engine.store(engine, Ordering::Relaxed);
        self.status.requested_generation.store(self.generation, Ordering::Release);
        self.waiting = true;
        self.silence_owed = self.latencies[engine] + self.margins[engine];
        self.debt = 0;
        self.since_restart = 0;
        (self.run, self.expected, self.anchored, self.jump_pending) = (None, None, false, false);
    }

    /// Whether the worker has done all it can with the input sent so far (tests wait on this
    /// instead of sleeping).
    pub fn settled(&self) -> bool {
        self.status.settled.load(Ordering::Acquire) == self.generation << 40 | self.since_restart
    }

    fn available_frames(&self) -> usize {
        self.output.occupied_len() / self.out_frame
    }

    /// [`RealtimeSide::process_at`] without a timeline (nothing is cached).
    pub fn process(
        &mut self,
        left: &[f32],
        right: &[f32],
        stems: &mut [StereoOut<'_>],
        timing: Timing,
    ) -> Range<usize> {
        self.process_at(left, right, stems, timing, None)
    }

    /// Feeds one block (at most `max_block` frames) that starts at host timeline `position` (in
    /// samples; `None` while the transport is stopped or the host does not say) and writes the
    /// stems for it into `stems`, one [`StereoOut`] per output of the stream's [`Routing`].
    /// Returns the range of the block that holds separated audio; outside it the stems are
    /// silence (start-up, restart, a late worker, or an engine that failed: see
    /// [`Status::failure`]). The position is a hint: a block whose position is not where the last
    /// one ended may begin a new run, where the worker can verify the jump (see the module docs).
    /// Real-time safe.
    pub fn process_at(
        &mut self,
        left: &[f32],
        right: &[f32],
        stems: &mut [StereoOut<'_>],
        timing: Timing,
        position: Option<i64>,
    ) -> Range<usize> {
        let n = left.len();
        assert!(n <= self.config.max_block && right.len() == n, "block larger than max_block");
        assert_eq!(stems.len() * CHANNELS, self.out_frame, "one stereo output per routed output");
        for out in stems.iter_mut().flat_map(|s| s.iter_mut()) {
            out.fill(0.0);
        }
        if self.waiting && timing == Timing::Offline {
            self.wait_until(|side| side.status.acked_generation.load(Ordering::Acquire) == side.generation);
        }
        if self.waiting && self.status.acked_generation.load(Ordering::Acquire) == self.generation {
            // Everything still in the ring predates the restart.
            self.output.clear();
            self.waiting = false;
        }
        if self.waiting {
            return 0..0;
        }
        if self.input.vacant_len() < n * CHANNELS {
            // The worker has stopped keeping up entirely: start over rather than drift.
            self.restart_slot(self.slot);
            return 0..0;
        }
        if n == 0 {
            return 0..0;
        }
        let cached = timing == Timing::Realtime;
        if let Some(mark) = self.mark(position, n, cached) {
            if self.seams.try_push(Seam { at: self.since_restart, mark, cached }).is_err() {
                // Marks faster than the worker polls: start over.
                self.restart_slot(self.slot);
                return 0..0;
            }
            self.run = Some(cached);
        }
        for (frame, (&l, &r)) in self.interleaved_in.chunks_exact_mut(CHANNELS).zip(left.iter().zip(right)) {
            frame.copy_from_slice(&[l, r]);
        }
        self.input.push_slice(&self.interleaved_in[..n * CHANNELS]);
        self.since_restart += n as u64;

        let head = self.silence_owed.min(n);
        self.silence_owed -= head;
        let wanted = n - head;
        if wanted > 0 && timing == Timing::Offline {
            let frames = wanted + self.debt;
            self.wait_until(|side| side.available_frames() >= frames);
        }
        let skipped = self.debt.min(self.available_frames());
        let out_frame = self.out_frame;
        self.output.skip(skipped * out_frame);
        self.debt -= skipped;
        let got = self.available_frames().min(wanted);
        self.output.pop_slice(&mut self.interleaved_out[..got * out_frame]);
        for (t, frame) in self.interleaved_out[..got * out_frame].chunks_exact(out_frame).enumerate() {
            for (stem, out) in stems.iter_mut().enumerate() {
                out[0][head + t] = frame[stem * CHANNELS];
                out[1][head + t] = frame[stem * CHANNELS + 1];
            }
        }
        if got < wanted {
            self.debt += wanted - got;
            self.status.underruns.fetch_add(1, Ordering::Relaxed);
        }
        if self.status.has_failed(self.slot) {
            // A failed engine's stems are not audio to play: the caller covers for it.
            stems.iter_mut().flat_map(|s| s.iter_mut()).for_each(|out| out.fill(0.0));
            return 0..0;
        }
        head..head + got
    }

    /// What to mark at a block of `n` frames at host `position` with timing `cached`, if
    /// anything; updates what the audio thread knows of the host's timeline.
    fn mark(&mut self, position: Option<i64>, n: usize, cached: bool) -> Option<Mark> {
        let tolerance = if self.anchored { TOLERANCE } else { 0 };
        let deviation = position.zip(self.expected).map(|(p, e)| (p - e).abs());
        let steady = deviation.is_some_and(|d| d <= tolerance);
        // A move of a few samples beyond the tolerance is a host drifting, not a jump.
        let moved = deviation.is_none_or(|d| d >= JUMP);
        let timing_changed = self.run.is_some_and(|run| run != cached);
        let mark = match position {
            _ if self.run.is_none() => Some(position.map_or(Mark::Unanchor, Mark::Jump)),
            Some(_) if steady && (self.jump_pending || timing_changed) => Some(Mark::Continue),
            // Steady again, by the block exactly, after moving otherwise: count from here anew.
            Some(p) if steady && !self.anchored => Some(Mark::Anchor(p)),
            Some(_) if steady => None,
            Some(p) if moved && self.last != Step::Moved => Some(Mark::Jump(p)),
            _ if self.anchored => Some(Mark::Unanchor),
            _ => timing_changed.then_some(Mark::Continue),
        };
        match mark {
            Some(Mark::Jump(p) | Mark::Anchor(p)) => {
                (self.anchored, self.jump_pending, self.expected) = (true, true, Some(p));
            }
            Some(Mark::Unanchor) => (self.anchored, self.jump_pending) = (false, false),
            _ => self.jump_pending = false,
        }
        if !self.anchored {
            self.expected = position;
        }
        self.expected = self.expected.map(|e| e + n as i64);
        self.last = match position {
            None => Step::Stopped,
            Some(_) if steady => Step::Steady,
            Some(_) => Step::Moved,
        };
        mark
    }

    /// Offline only: wakes the worker and waits until `done` holds, or [`OFFLINE_TIMEOUT`].
    fn wait_until(&mut self, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + OFFLINE_TIMEOUT;
        while !done(self) {
            let _ = self.control.try_send(Message::Wake);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let _ = self.progress.recv_timeout(left.min(POLL * 10));
        }
    }
}
