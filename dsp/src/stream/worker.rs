//! The worker thread's side of a stream: takes the input and its [`Seam`]s, decides which
//! marked jumps are real (see the [`super`] docs), runs the engine run by run, keeps stems by
//! timeline position, and hands the audio thread one stem frame per input frame, in order.
//!
//! A marked jump is resolved once the next mark has come (a [`super::Mark::Continue`] confirms it)
//! and, where the cache could verify it, [`VERIFY`] frames of input after it: until then the engine
//! is not fed past it and no frame that could depend on it is emitted (the margin covers the
//! wait: one block, and the 5 ms of slack for the verification's frames).
//!
//! Two cursors walk the input, counted in frames since the stream's (re)start: `fed`, the next
//! frame for the engine, and `emitted`, the next frame whose stems go to the audio thread. A frame
//! is emitted from the engine when the engine has separated it, else from the cache once the
//! input its stems looked ahead at (one engine latency) has arrived unchanged. The engine starts
//! lazily, afresh, at the first frame the cache cannot serve (the start of a run, the end of a
//! cached stretch), and rests (is parked) while the cache covers what lies ahead. At the end of a
//! run the engine is flushed with one latency of silence, so every frame of the run gets stems.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ringbuf::traits::{Consumer, Observer, Producer};
use ringbuf::{HeapCons, HeapProd};

use super::runs::{Next, Outcome, Runs};
use super::{CHANNELS, CHUNK, MAX_SOURCES, Message, POLL, Routing, Seam, Status};
use crate::engine::Engine;
use crate::separator::StereoOut;
use crate::timeline::{CacheShared, TimelineCache, VERIFY, fingerprint};

/// After this long without input (transport stopped, host not processing) the worker sleeps
/// [`IDLE_POLL`] at a time: idle instances cost next to nothing, and the audio thread still never
/// wakes it (no system call there). The first blocks after audio resumes may then be up to
/// [`IDLE_POLL`] late (the mix plays them dry).
const IDLE_AFTER: Duration = Duration::from_millis(250);
/// How long an idle worker sleeps between looks at its input.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The worker's ends of the stream's rings.
pub(super) struct Rings {
    pub input: HeapCons<f32>,
    pub seams: HeapCons<Seam>,
    pub output: HeapProd<f32>,
}

/// The recent input, by frame: samples and fingerprints, in a ring.
struct History {
    samples: Vec<f32>,
    prints: Vec<u16>,
}

impl History {
    fn frames(&self) -> usize {
        self.prints.len()
    }

    fn push(&mut self, at: u64, left: f32, right: f32) {
        let i = (at % self.frames() as u64) as usize;
        self.samples[2 * i] = left;
        self.samples[2 * i + 1] = right;
        self.prints[i] = fingerprint(left, right);
    }

    fn frame(&self, at: u64) -> (f32, f32) {
        let i = (at % self.frames() as u64) as usize;
        (self.samples[2 * i], self.samples[2 * i + 1])
    }

    fn print(&self, at: u64) -> u16 {
        self.prints[(at % self.frames() as u64) as usize]
    }

    /// The fingerprints of `frames`, written into the start of `out`.
    fn prints_into<'a>(&self, frames: Range<u64>, out: &'a mut [u16]) -> &'a [u16] {
        let out = &mut out[..(frames.end - frames.start) as usize];
        for (print, t) in out.iter_mut().zip(frames) {
            *print = self.print(t);
        }
        out
    }
}

/// Where the engine is.
#[derive(Debug, Clone, Copy)]
enum EngineRun {
    /// Not running: the cache serves, or nothing needs it yet.
    Parked,
    /// Separating from frame `start` on, until the input jumps.
    Running {
        start: u64,
        /// The next frame to feed.
        fed: u64,
        /// Outputs still to drop: the engine's warm-up after its reset.
        skip: usize,
        /// The frame the engine's next kept output belongs to.
        next_out: u64,
    },
}

pub(super) struct Worker {
    engines: Vec<Engine>,
    /// Per engine, per source: the output it is added into.
    routes: Vec<Vec<Option<usize>>>,
    /// Samples per output frame.
    out_frame: usize,
    active: usize,
    rings: Rings,
    messages: Receiver<Message>,
    progress: Sender<()>,
    status: Arc<Status>,
    cache_shared: Option<Arc<CacheShared>>,
    cache: Option<TimelineCache>,
    /// The engine the cache holds stems of.
    cache_engine: usize,
    generation: u64,
    history: History,
    /// Runs from the one being emitted on, by first frame.
    runs: Runs,
    arrived: u64,
    /// Frames up to here have been checked against the cache and recorded (none of a run whose
    /// jump is unresolved).
    observed: u64,
    emitted: u64,
    engine: EngineRun,
    /// Stems the engine has separated and that are not emitted yet, interleaved frames from
    /// `pending_first` on.
    pending: VecDeque<f32>,
    pending_first: u64,
    planar_in: [Vec<f32>; CHANNELS],
    planar_out: [[Vec<f32>; CHANNELS]; MAX_SOURCES],
    interleaved: Vec<f32>,
    prints: Vec<u16>,
    frame: Vec<f32>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        engines: Vec<Engine>,
        routing: &Routing,
        active: usize,
        history_frames: usize,
        rings: Rings,
        messages: Receiver<Message>,
        progress: Sender<()>,
        status: Arc<Status>,
        cache_shared: Option<Arc<CacheShared>>,
    ) -> Self {
        let routes = engines.iter().map(|e| e.sources().iter().map(|&s| routing.target(s)).collect()).collect();
        let out_frame = routing.outputs() * CHANNELS;
        let mut worker = Self {
            engines,
            routes,
            out_frame,
            active,
            rings,
            messages,
            progress,
            status,
            cache_shared,
            cache: None,
            cache_engine: usize::MAX,
            generation: 0,
            history: History { samples: vec![0.0; 2 * history_frames], prints: vec![0; history_frames] },
            runs: Runs::default(),
            arrived: 0,
            observed: 0,
            emitted: 0,
            engine: EngineRun::Parked,
            pending: VecDeque::new(),
            pending_first: 0,
            planar_in: [vec![0.0; CHUNK], vec![0.0; CHUNK]],
            planar_out: std::array::from_fn(|_| [vec![0.0; CHUNK], vec![0.0; CHUNK]]),
            interleaved: vec![0.0; CHUNK * out_frame],
            prints: vec![0; history_frames],
            frame: vec![0.0; out_frame],
        };
        worker.take_up_engine();
        worker
    }

    /// Serves the stream until shut down, then returns the engines.
    pub(super) fn run(mut self) -> Vec<Engine> {
        crate::signal::denormals::flush_to_zero();
        let mut last_work = Instant::now();
        loop {
            let wait = if last_work.elapsed() > IDLE_AFTER { IDLE_POLL } else { POLL };
            let message = self.messages.recv_timeout(wait);
            if self.status.shutdown.load(Ordering::Acquire) || matches!(message, Err(RecvTimeoutError::Disconnected)) {
                return self.engines;
            }
            let requested = self.status.requested_generation.load(Ordering::Acquire);
            if requested != self.generation {
                self.restart(requested);
                last_work = Instant::now();
            }
            if self.pump() {
                last_work = Instant::now();
            }
        }
    }

    /// Starts over for `generation`, with the engine it asks for.
    fn restart(&mut self, generation: u64) {
        self.active = self.status.requested_engine.load(Ordering::Relaxed);
        self.rings.input.clear();
        self.rings.seams.clear();
        self.runs.clear();
        (self.arrived, self.observed, self.emitted, self.engine) = (0, 0, 0, EngineRun::Parked);
        self.pending.clear();
        self.take_up_engine();
        self.generation = generation;
        self.status.acked_generation.store(generation, Ordering::Release);
    }

    /// Prepares the cache for the active engine: a new, empty one if it held another engine's.
    fn take_up_engine(&mut self) {
        if self.cache_engine != self.active {
            let separator = &self.engines[self.active].separator;
            // A changed input frame drops the cached stems as far as the engine's output depends
            // on it.
            let reach = separator.latency_samples() + separator.burst_samples() + separator.history_samples();
            self.cache = self.cache_shared.clone().map(|shared| TimelineCache::new(self.out_frame, reach, shared));
            if let Some(cache) = &mut self.cache {
                cache.clear();
            }
            self.cache_engine = self.active;
        }
    }

    /// Does whatever the input allows until a restart is requested or nothing is left. Returns
    /// whether there was anything.
    fn pump(&mut self) -> bool {
        let mut worked = false;
        while self.status.requested_generation.load(Ordering::Acquire) == self.generation
            && !self.status.shutdown.load(Ordering::Acquire)
        {
            if let Some(cache) = &mut self.cache {
                cache.maintain();
            }
            let mut progressed = self.arrive();
            progressed |= self.resolve();
            progressed |= self.observe();
            progressed |= self.feed();
            progressed |= self.emit();
            if !progressed {
                self.status.settled.store(self.generation << 40 | self.arrived, Ordering::Release);
                return worked;
            }
            worked = true;
        }
        worked
    }

    fn latency(&self) -> u64 {
        self.engines[self.active].separator.latency_samples() as u64
    }

    /// Takes the waiting input (as much as the history holds beside what is not yet fed or
    /// emitted) and its seams. Returns whether there was any.
    fn arrive(&mut self) -> bool {
        let waiting = self.rings.input.occupied_len() / CHANNELS;
        // Seams come before their frames: all of those for the waiting input are here now.
        while let Some(seam) = self.rings.seams.try_pop() {
            self.runs.push(seam);
        }
        let oldest = match self.engine {
            EngineRun::Running { fed, next_out, .. } => self.emitted.min(fed).min(next_out),
            EngineRun::Parked => self.emitted,
        };
        let room = self.history.frames() as u64 - (self.arrived - oldest);
        let n = (waiting as u64).min(room).min(CHUNK as u64) as usize;
        if n == 0 {
            return false;
        }
        let samples = &mut self.interleaved[..n * CHANNELS];
        self.rings.input.pop_slice(samples);
        for (t, frame) in samples.chunks_exact(CHANNELS).enumerate() {
            self.history.push(self.arrived + t as u64, frame[0], frame[1]);
        }
        self.arrived += n as u64;
        true
    }

    /// Resolves the marked jumps (and anchors, never cut) that can be: a jump the next mark does
    /// not confirm is dropped. Offline a confirmed jump is cut (a render from there is a file of its own, whatever was
    /// rendered before). In real time it is cut where the cache verifies it, else the positions
    /// count from it and the engine runs on; without a cache that can verify, a real-time jump is
    /// kept at once. Returns whether it resolved any.
    fn resolve(&mut self) -> bool {
        let mut resolved = false;
        while let Some(jump) = self.runs.first_jump() {
            let verifiable = self.cache.as_ref().is_some_and(TimelineCache::enabled);
            let outcome = match jump.next {
                _ if jump.cached && !verifiable => Outcome::Kept(jump.hint),
                Next::Unknown => return resolved,
                Next::Cancels => Outcome::Cancelled,
                Next::Confirms(_) if !jump.cuttable => Outcome::Kept(jump.hint),
                Next::Confirms(_) if !jump.cached => Outcome::Cut(jump.hint),
                Next::Confirms(stretch_end) => {
                    let end = stretch_end.map_or(jump.at + VERIFY as u64, |end| end.min(jump.at + VERIFY as u64));
                    if end > self.arrived {
                        return resolved;
                    }
                    let prints = self.history.prints_into(jump.at..end, &mut self.prints);
                    let cache = self.cache.as_mut().expect("verifiable");
                    match cache.verify(jump.hint, prints) {
                        Some(position) => {
                            // A jump back from the end of a stretch into it: a loop.
                            if let Some(last) = jump.at.checked_sub(1)
                                && let Some(end) = self.runs.run_of(last).position_of(last)
                                && let Some(start) = self.runs.stretch_start(last)
                                && (start..=end).contains(&position)
                            {
                                cache.loop_region(position..end + 1);
                            }
                            Outcome::Cut(position)
                        }
                        None => Outcome::Kept(jump.hint),
                    }
                }
            };
            self.runs.settle(jump, outcome);
            resolved = true;
        }
        resolved
    }

    /// Checks the arrived input up to the first unresolved jump against the cache and records it
    /// (real-time runs with a position only). Returns whether there was any.
    fn observe(&mut self) -> bool {
        let until = self.runs.unresolved_from().map_or(self.arrived, |jump| jump.min(self.arrived));
        if until <= self.observed {
            return false;
        }
        let Some(cache) = &mut self.cache else {
            self.observed = until;
            return false;
        };
        for (frames, run) in self.runs.pieces(self.observed..until) {
            if let Some(position) = run.position_of(frames.start).filter(|_| run.cached) {
                cache.observe(position, self.history.prints_into(frames, &mut self.prints));
            }
        }
        self.observed = until;
        true
    }

    /// Feeds the engine up to a chunk of input, or flushes it at the end of its run. Returns
    /// whether it did.
    fn feed(&mut self) -> bool {
        let EngineRun::Running { start, fed, .. } = self.engine else { return false };
        let boundary = self.runs.boundary_after(start);
        match boundary {
            // A jump to resolve first.
            Some((at, true)) if at == fed => return false,
            Some((at, false)) if at == fed => {
                self.flush();
                self.engine = EngineRun::Parked;
                return true;
            }
            _ => {}
        }
        // Stems wait for the output ring; so many waiting is enough.
        if self.pending.len() >= self.history.frames() * self.out_frame {
            return false;
        }
        let until = boundary.map_or(self.arrived, |(end, _)| end.min(self.arrived));
        let n = (until - fed).min(CHUNK as u64) as usize;
        if n == 0 {
            return false;
        }
        for t in 0..n {
            let (l, r) = self.history.frame(fed + t as u64);
            self.planar_in[0][t] = l;
            self.planar_in[1][t] = r;
        }
        self.separate(n);
        if let EngineRun::Running { fed, .. } = &mut self.engine {
            *fed += n as u64;
        }
        true
    }

    /// Feeds the engine one latency of silence, so that the last frames of its run come out.
    fn flush(&mut self) {
        let mut owed = self.latency() as usize;
        while owed > 0 {
            let n = owed.min(CHUNK);
            self.planar_in.iter_mut().for_each(|channel| channel[..n].fill(0.0));
            self.separate(n);
            owed -= n;
        }
    }

    /// Runs the engine on the first `n` frames of `planar_in` and keeps what it outputs: routed
    /// into `pending`, and into the cache by timeline position.
    fn separate(&mut self, n: usize) {
        let started = Instant::now();
        let route = &self.routes[self.active];
        let mut outs: [StereoOut<'_>; MAX_SOURCES] =
            self.planar_out.each_mut().map(|[l, r]| [&mut l[..n], &mut r[..n]]);
        let separator = &mut self.engines[self.active].separator;
        separator.process(&self.planar_in[0][..n], &self.planar_in[1][..n], &mut outs[..route.len()]);
        self.status.busy_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some(why) = separator.failure().filter(|_| !self.status.has_failed(self.active)) {
            self.status.report_failure(self.active, why);
        }
        let EngineRun::Running { skip, next_out, .. } = &mut self.engine else { unreachable!("the engine runs") };
        let dropped = (*skip).min(n);
        *skip -= dropped;
        let kept = n - dropped;
        let first = *next_out;
        *next_out += kept as u64;
        if kept == 0 {
            return;
        }
        let out_frame = self.out_frame;
        let interleaved = &mut self.interleaved[..kept * out_frame];
        interleaved.fill(0.0);
        for (frame, t) in interleaved.chunks_exact_mut(out_frame).zip(dropped..) {
            for ([l, r], output) in self.planar_out.iter().zip(route) {
                if let Some(output) = output {
                    frame[output * CHANNELS] += l[t];
                    frame[output * CHANNELS + 1] += r[t];
                }
            }
        }
        if self.pending.is_empty() {
            self.pending_first = first;
        }
        self.pending.extend(interleaved.iter());
        self.store(first, kept);
    }

    /// Stores the `n` frames of separated stems in `interleaved`, which belong to frames from
    /// `first` on, in the cache by timeline position.
    fn store(&mut self, first: u64, n: usize) {
        let Some(cache) = &mut self.cache else { return };
        for (frames, run) in self.runs.pieces(first..first + n as u64) {
            if let Some(position) = run.position_of(frames.start).filter(|_| run.cached) {
                let from = (frames.start - first) as usize * self.out_frame;
                let until = (frames.end - first) as usize * self.out_frame;
                let prints = self.history.prints_into(frames, &mut self.prints);
                cache.write(position, &self.interleaved[from..until], prints);
            }
        }
    }

    /// Hands the audio thread the stems of as many frames as are ready, in order. Returns
    /// whether it handed any, or started the engine.
    fn emit(&mut self) -> bool {
        let mut progressed = false;
        let out_frame = self.out_frame;
        while self.emitted < self.arrived && self.rings.output.vacant_len() >= out_frame {
            let at = self.emitted;
            // Separated stems for frames the cache already served are not needed any more.
            while self.pending_first < at && !self.pending.is_empty() {
                self.pending.drain(..out_frame);
                self.pending_first += 1;
            }
            if self.pending_first == at && !self.pending.is_empty() {
                for (slot, sample) in self.frame.iter_mut().zip(self.pending.drain(..out_frame)) {
                    *slot = sample;
                }
                self.pending_first += 1;
            } else if let Some(ready) = self.cached(at) {
                if !ready {
                    break;
                }
            } else if matches!(self.engine, EngineRun::Parked) {
                self.start_engine(at);
                progressed = true;
                break;
            } else {
                break;
            }
            self.rings.output.push_slice(&self.frame);
            self.emitted += 1;
            self.status.separated_frames.fetch_add(1, Ordering::Release);
            progressed = true;
        }
        if progressed {
            let _ = self.progress.try_send(());
            if self.emitted < self.arrived {
                self.park_if_covered(self.emitted);
            }
        }
        self.forget_runs();
        progressed
    }

    /// Drops the runs that lie wholly behind every cursor.
    fn forget_runs(&mut self) {
        let oldest = match self.engine {
            EngineRun::Running { start, .. } => self.emitted.min(start),
            EngineRun::Parked => self.emitted,
        };
        self.runs.forget_before(oldest.min(self.observed));
    }

    /// Whether the cache holds stems for frame `at` that may play: `None` when it holds none (or
    /// the run may not play cached stems), `Some(false)` while the input they looked ahead at has
    /// not all arrived, `Some(true)` with the stems in `frame`.
    fn cached(&mut self, at: u64) -> Option<bool> {
        let run = *self.runs.run_of(at);
        if run.jump.is_some() {
            return Some(false);
        }
        let position = run.position_of(at).filter(|_| run.cached)?;
        let ahead = at + self.latency() + 1;
        let cache = self.cache.as_mut()?;
        if cache.covered(position, 1) == 0 {
            return None;
        }
        // The stems looked one latency ahead, within their run: that input must have been
        // checked against them.
        let until = match self.runs.boundary_after(at) {
            Some((jump, true)) if jump < ahead => return Some(false),
            Some((cut, false)) => cut.min(ahead),
            _ => ahead,
        };
        if until > self.observed {
            return Some(false);
        }
        cache.read(position, self.history.print(at), &mut self.frame).then_some(true)
    }

    /// Parks the engine where the cache covers what it would separate next, from frame `at` on
    /// (beyond what the engine has separated: stems cached earlier).
    fn park_if_covered(&mut self, at: u64) {
        let EngineRun::Running { start, .. } = self.engine else { return };
        let run = self.runs.run_of(at);
        let same_run = self.runs.boundary_after(at) == self.runs.boundary_after(start);
        let Some(position) = run.position_of(at).filter(|_| run.cached && same_run && run.jump.is_none()) else {
            return;
        };
        let separator = &self.engines[self.active].separator;
        let ahead = separator.latency_samples() + separator.burst_samples() + CHUNK;
        if self.cache.as_ref().is_some_and(|cache| cache.covered(position, ahead) == ahead) {
            self.engine = EngineRun::Parked;
            self.pending.clear();
        }
    }

    /// Starts the engine afresh at frame `at`.
    fn start_engine(&mut self, at: u64) {
        self.engines[self.active].separator.reset();
        let skip = self.latency() as usize;
        self.engine = EngineRun::Running { start: at, fed: at, skip, next_out: at };
        self.pending.clear();
        self.pending_first = at;
    }
}
