//! Running separators on a worker thread behind lock-free rings, at a fixed, exact latency.
//!
//! The audio thread ([`RealtimeSide`]) writes its input into one SPSC ring and reads separated
//! stems from another; the worker thread owns the engines. The stems come out delayed by the
//! engine's latency plus a fixed margin, the time the worker has to keep up. The audio thread talks
//! to the worker through atomics only (requests carry a generation number that the worker
//! acknowledges), so it never locks, allocates or makes a system call in real-time mode.
//!
//! When the worker is late the missing stretch is silence (reported as not separated) and the
//! same number of late frames is skipped when they arrive, so the alignment never drifts. In
//! offline mode the audio thread may wait for the worker instead, so a bounce is exact.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use crate::engine::{Engine, EngineKind};
use crate::{Stem, StereoOut};

const CHANNELS: usize = 2;
/// The most sources one engine can write: every known stem once.
const MAX_SOURCES: usize = Stem::KNOWN.len();
/// How long the worker sleeps when it has nothing to do, while audio flows.
const POLL: Duration = Duration::from_millis(1);
/// After this long without input (transport stopped, host not processing) the worker sleeps
/// [`IDLE_POLL`] at a time: idle instances cost next to nothing, and the audio thread still never
/// wakes it (no system call there). The first blocks after audio resumes may then be up to
/// [`IDLE_POLL`] late (the mix plays them dry).
const IDLE_AFTER: Duration = Duration::from_millis(250);
/// How long an idle worker sleeps between looks at its input.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// Frames the worker separates at a time.
const CHUNK: usize = 1024;
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

/// Where the sources of a stream's engines go: each [`Stem`] into one of the stream's stereo
/// outputs (summed with the other stems routed there), or nowhere. The caller decides: the plugin
/// folds a six-stem model's guitar and piano into its Other port, a file tool writes every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    outputs: usize,
    targets: [Option<usize>; MAX_SOURCES],
}

impl Routing {
    /// `outputs` stereo outputs; `target` names the output each stem goes to (`None`: dropped).
    ///
    /// # Panics
    /// If `target` names an output at or beyond `outputs`.
    pub fn new(outputs: usize, target: impl Fn(Stem) -> Option<usize>) -> Self {
        let targets = Stem::KNOWN.map(|stem| {
            let output = target(stem);
            assert!(output.is_none_or(|o| o < outputs), "{stem} routed to output {output:?} of {outputs}");
            output
        });
        Self { outputs, targets }
    }

    /// One output per entry of `sources`, in that order; other stems are dropped.
    pub fn identity(sources: &[Stem]) -> Self {
        Self::new(sources.len(), |stem| sources.iter().position(|&s| s == stem))
    }

    /// Number of stereo outputs.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The output `stem` goes to, if any.
    pub fn target(&self, stem: Stem) -> Option<usize> {
        self.targets[stem.index()]
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
}

impl Status {
    /// Blocks in which the worker was late and the stems went silent.
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// Frames the worker has separated and delivered since the stream began.
    pub fn separated_frames(&self) -> u64 {
        self.separated_frames.load(Ordering::Acquire)
    }

    /// Seconds of audio separated per second the worker spent separating.
    pub fn realtime_factor(&self, sample_rate: f32) -> f32 {
        let busy = self.busy_nanos.load(Ordering::Relaxed) as f32 * 1e-9;
        let audio = self.separated_frames.load(Ordering::Relaxed) as f32 / sample_rate;
        if busy > 0.0 { audio / busy } else { 0.0 }
    }
}

enum Message {
    /// Offline mode: input is waiting.
    Wake,
    Shutdown,
}

/// Starts a worker thread that owns `engines` (at most one of each [`EngineKind`]) and runs
/// `initial`; every engine's sources reach the stream's outputs through `routing`. Returns the
/// audio thread's end and the handle that stops the worker.
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
    assert!(config.margin >= config.max_block, "the margin must cover a maximum block");
    assert!(routing.outputs() > 0, "a stream needs an output");
    let kinds: Vec<EngineKind> = engines.iter().map(|e| e.kind).collect();
    assert!((1..kinds.len()).all(|i| !kinds[..i].contains(&kinds[i])), "one engine per kind: {kinds:?}");
    let initial = kinds.iter().position(|&k| k == initial).expect("the initial engine is among the engines");
    let latencies: Vec<usize> = engines.iter().map(|e| e.separator.latency_samples()).collect();
    let margins: Vec<usize> = engines.iter().map(|e| config.margin + e.separator.burst_samples()).collect();
    let routes = engines.iter().map(|e| e.sources().iter().map(|&s| routing.target(s)).collect()).collect();
    let max_burst = engines.iter().map(|e| e.separator.burst_samples()).max().unwrap_or(0);
    let ring_frames = config.ring_frames(latencies.iter().copied().max().unwrap_or(0), max_burst);
    let out_frame = routing.outputs() * CHANNELS;
    let (input_producer, input_consumer) = HeapRb::<f32>::new(ring_frames * CHANNELS).split();
    let (output_producer, output_consumer) = HeapRb::<f32>::new(ring_frames * out_frame).split();
    let (control, messages) = bounded(4);
    let (progress_sender, progress) = bounded(1);
    let status = Arc::new(Status::default());
    status.requested_engine.store(initial, Ordering::Relaxed);
    let worker = Worker {
        engines,
        routes,
        out_frame,
        active: initial,
        input: input_consumer,
        output: output_producer,
        messages,
        progress: progress_sender,
        status: status.clone(),
        interleaved_in: vec![0.0; CHUNK * CHANNELS],
        interleaved_out: vec![0.0; CHUNK * out_frame],
        planar_in: [vec![0.0; CHUNK], vec![0.0; CHUNK]],
        planar_out: std::array::from_fn(|_| [vec![0.0; CHUNK], vec![0.0; CHUNK]]),
    };
    let thread = std::thread::Builder::new().name("demixer-worker".into()).spawn(move || worker.run())?;
    let mut side = RealtimeSide {
        input: input_producer,
        output: output_consumer,
        control: control.clone(),
        progress,
        status,
        kinds,
        latencies,
        margins,
        config,
        out_frame,
        engine: initial,
        generation: 0,
        waiting: false,
        silence_owed: 0,
        debt: 0,
        sent: 0,
        interleaved_in: vec![0.0; config.max_block * CHANNELS],
        interleaved_out: vec![0.0; config.max_block * out_frame],
    };
    side.restart_slot(initial);
    Ok((side, WorkerHandle { control, thread: Some(thread) }))
}

/// Stops and joins the worker thread when dropped.
pub struct WorkerHandle {
    control: Sender<Message>,
    thread: Option<JoinHandle<Vec<Engine>>>,
}

impl WorkerHandle {
    /// Stops the worker and hands back its engines (to keep a loaded model for the next stream).
    pub fn stop(mut self) -> Vec<Engine> {
        self.join()
    }

    fn join(&mut self) -> Vec<Engine> {
        // The worker polls its messages at least every POLL; a full queue still ends with the
        // channel disconnecting when `control` and the realtime side are gone.
        let _ = self.control.send_timeout(Message::Shutdown, Duration::from_secs(1));
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
    engine: usize,
    generation: u64,
    /// A restart is requested and not yet acknowledged: input is not sent, output is silence.
    waiting: bool,
    /// Frames of silence still to output before the worker's stream begins.
    silence_owed: usize,
    /// Frames to skip when they arrive: delivered too late, or the engine's warm-up.
    debt: usize,
    /// Frames handed to the worker since the stream began.
    sent: u64,
    interleaved_in: Vec<f32>,
    interleaved_out: Vec<f32>,
}

impl RealtimeSide {
    /// Total delay between input and stems, in samples: the engine's latency plus the margin
    /// (and the engine's bursts, see [`crate::Separator::burst_samples`]).
    pub fn latency_samples(&self) -> usize {
        self.latencies[self.engine] + self.margins[self.engine]
    }

    /// The kind of engine running (or starting).
    pub fn engine(&self) -> EngineKind {
        self.kinds[self.engine]
    }

    /// The running engine's position in the list given to [`spawn`], for labels.
    pub fn engine_position(&self) -> usize {
        self.engine
    }

    /// Frames handed to the worker since the stream began (with [`Status::separated_frames`]:
    /// whether the worker has caught up).
    pub fn frames_sent(&self) -> u64 {
        self.sent
    }

    /// The worker's published state.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    /// Flushes everything and restarts the stream with the engine of `kind`: after a seek, or to
    /// switch engines (the latency may change). Real-time safe. Returns `false`, and changes
    /// nothing, when the stream has no engine of that kind.
    ///
    /// The engine's first `latency` frames after a restart are its warm-up (they stand for input
    /// before the restart, which it never saw): they are skipped and count as not separated.
    pub fn restart(&mut self, kind: EngineKind) -> bool {
        let Some(engine) = self.kinds.iter().position(|&k| k == kind) else { return false };
        self.restart_slot(engine);
        true
    }

    fn restart_slot(&mut self, engine: usize) {
        self.engine = engine;
        self.generation += 1;
        self.status.requested_engine.store(engine, Ordering::Relaxed);
        self.status.requested_generation.store(self.generation, Ordering::Release);
        self.waiting = true;
        let warm_up = self.latencies[engine];
        self.silence_owed = self.margins[engine] + warm_up;
        self.debt = warm_up;
    }

    fn available_frames(&self) -> usize {
        self.output.occupied_len() / self.out_frame
    }

    /// Feeds one block (at most `max_block` frames) and writes the stems for it into `stems`, one
    /// [`StereoOut`] per output of the stream's [`Routing`]. Returns the range of the block that
    /// holds separated audio; outside it the stems are silence (start-up, restart, or a late
    /// worker).
    pub fn process(
        &mut self,
        left: &[f32],
        right: &[f32],
        stems: &mut [StereoOut<'_>],
        timing: Timing,
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
            self.restart_slot(self.engine);
            return 0..0;
        }
        for (frame, (&l, &r)) in self.interleaved_in.chunks_exact_mut(CHANNELS).zip(left.iter().zip(right)) {
            frame.copy_from_slice(&[l, r]);
        }
        self.input.push_slice(&self.interleaved_in[..n * CHANNELS]);
        self.sent += n as u64;

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
        head..head + got
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

struct Worker {
    engines: Vec<Engine>,
    /// Per engine, per source: the output it is added into.
    routes: Vec<Vec<Option<usize>>>,
    /// Samples per output frame.
    out_frame: usize,
    active: usize,
    input: HeapCons<f32>,
    output: HeapProd<f32>,
    messages: Receiver<Message>,
    progress: Sender<()>,
    status: Arc<Status>,
    interleaved_in: Vec<f32>,
    interleaved_out: Vec<f32>,
    planar_in: [Vec<f32>; CHANNELS],
    planar_out: [[Vec<f32>; CHANNELS]; MAX_SOURCES],
}

impl Worker {
    /// Serves the stream until shut down, then returns the engines.
    fn run(mut self) -> Vec<Engine> {
        crate::denormals::flush_to_zero();
        let mut acked = 0;
        let mut last_work = Instant::now();
        loop {
            let wait = if last_work.elapsed() > IDLE_AFTER { IDLE_POLL } else { POLL };
            match self.messages.recv_timeout(wait) {
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => return self.engines,
                Ok(Message::Wake) | Err(RecvTimeoutError::Timeout) => {}
            }
            let requested = self.status.requested_generation.load(Ordering::Acquire);
            if requested != acked {
                self.active = self.status.requested_engine.load(Ordering::Relaxed);
                self.input.clear();
                self.engines[self.active].separator.reset();
                acked = requested;
                self.status.acked_generation.store(acked, Ordering::Release);
                last_work = Instant::now();
            }
            if self.pump(acked) {
                last_work = Instant::now();
            }
        }
    }

    /// Separates whatever input is waiting, chunk by chunk, until a restart is requested. Returns
    /// whether there was any.
    fn pump(&mut self, acked: u64) -> bool {
        let mut worked = false;
        while self.status.requested_generation.load(Ordering::Acquire) == acked {
            let out_frame = self.out_frame;
            let frames = (self.input.occupied_len() / CHANNELS).min(self.output.vacant_len() / out_frame).min(CHUNK);
            if frames == 0 {
                return worked;
            }
            worked = true;
            self.input.pop_slice(&mut self.interleaved_in[..frames * CHANNELS]);
            for (t, frame) in self.interleaved_in[..frames * CHANNELS].chunks_exact(CHANNELS).enumerate() {
                self.planar_in[0][t] = frame[0];
                self.planar_in[1][t] = frame[1];
            }
            let started = Instant::now();
            let route = &self.routes[self.active];
            let mut outs: [StereoOut<'_>; MAX_SOURCES] =
                self.planar_out.each_mut().map(|[l, r]| [&mut l[..frames], &mut r[..frames]]);
            let separator = &mut self.engines[self.active].separator;
            separator.process(&self.planar_in[0][..frames], &self.planar_in[1][..frames], &mut outs[..route.len()]);
            self.status.busy_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let interleaved = &mut self.interleaved_out[..frames * out_frame];
            interleaved.fill(0.0);
            for (frame, t) in interleaved.chunks_exact_mut(out_frame).zip(0..) {
                for ([l, r], output) in self.planar_out.iter().zip(route) {
                    if let Some(output) = output {
                        frame[output * CHANNELS] += l[t];
                        frame[output * CHANNELS + 1] += r[t];
                    }
                }
            }
            self.output.push_slice(interleaved);
            // Counted once delivered, so that a count that has caught up means output is there.
            self.status.separated_frames.fetch_add(frames as u64, Ordering::Release);
            let _ = self.progress.try_send(());
        }
        worked
    }
}
