//! What exists while the plugin is active: the stream to the worker thread and its engines, the
//! dry delay, the mixer and scratch buffers, all sized at activation. The audio thread drives it
//! in named steps: [`Running::prepare`] (seek, engine switch, latency), [`Running::process`]
//! (separate and mix) and [`Running::publish`].

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use demixer_dsp::DelayLine;
use demixer_dsp::hpss::Preset;
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, WorkerHandle};
use demixer_dsp::timeline::CacheShared;
use demixer_dsp::{Engine, EngineError, EngineKind, EngineSpec, StereoOut, Timing};
use demixer_state::{LoopCacheView, MixerStatus};
use nice_plug::prelude::*;
use nice_plug::util::permit_alloc;

use crate::cover::Cover;
use crate::mixer::{BlockLevels, MixBuffers, MixSettings, Mixer, effective_gains};
use crate::model_choice::{FileIdentity, Model, ModelKey};
use crate::model_loader::Shared;
use crate::params::{DemixerParams, EngineChoice};
use crate::stems::{self, STEM_COUNT};

/// Scheduling headroom the worker gets on top of one maximum block.
const WORKER_SLACK: Duration = Duration::from_millis(5);

/// The largest block the stream is sized for; longer host blocks are processed in pieces.
const MAX_BLOCK: usize = 1 << 16;

/// The host's configuration for one activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Counts activations, so that a stream built for an earlier one is never used.
    pub activation: u64,
    /// Host sample rate in Hz.
    pub sample_rate: f32,
    /// Largest block the host sends.
    pub max_block: usize,
    /// Real time or offline rendering.
    pub timing: Timing,
    /// Whether the main input is mono (its one channel feeds both sides).
    pub mono_input: bool,
}

impl Setup {
    /// The setup for the host's layout and buffer configuration.
    pub fn new(activation: u64, layout: &AudioIOLayout, config: &BufferConfig) -> Self {
        Self {
            activation,
            sample_rate: config.sample_rate,
            // A host's zero would stall `Running::process`; larger blocks are split there.
            max_block: (config.max_buffer_size as usize).clamp(1, MAX_BLOCK),
            timing: if config.process_mode == ProcessMode::Offline { Timing::Offline } else { Timing::Realtime },
            mono_input: layout.main_input_channels.map(NonZeroU32::get) == Some(1),
        }
    }
}

/// How to treat the block being processed: as the host says for this very block where it says
/// (a VST3 host may switch to offline per `process()` call, without `setupProcessing`: Ardour's
/// exports; read through nice-plug DEMIXER PATCH 3), else as at activation.
fn block_timing(activation: Timing) -> Timing {
    match nice_plug::wrapper::block_process_mode() {
        Some(ProcessMode::Offline) => Timing::Offline,
        Some(ProcessMode::Realtime | ProcessMode::Buffered) => Timing::Realtime,
        None => activation,
    }
}

/// Why a stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An engine could not be built (HPSS at this rate, or the model).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The worker thread did not start.
    #[error("Demixer cannot start its worker thread: {0}")]
    Worker(#[from] std::io::Error),
}

/// The host's transport at the start of a block, as far as seeking and looping go.
#[derive(Debug, Clone, Copy, Default)]
pub struct Playhead {
    /// Whether the transport plays.
    pub playing: bool,
    /// Timeline position in samples, when the host says.
    pub position: Option<i64>,
    /// The loop (cycle) range in samples, while the host loops and says.
    pub loop_range: Option<(i64, i64)>,
}

/// The stream, its engines and the audio thread's buffers.
pub struct Running {
    setup: Setup,
    stream: RealtimeSide,
    /// Stops the worker when dropped; hands back the engines in [`Running::into_model`].
    worker: WorkerHandle,
    /// The model engine's key and kind, when the stream has one.
    model: Option<(ModelKey, EngineKind, Option<FileIdentity>)>,
    /// Why HPSS cannot run here, when the stream plays the input through instead.
    no_hpss: Option<String>,
    /// HPSS lined up with the model, for where the model is late ([`crate::cover`]).
    cover: Option<Cover>,
    /// The input, delayed like the stems.
    dry: [DelayLine; 2],
    mixer: Mixer,
    /// Scratch: the block's input (right = left for a mono input).
    input: [Vec<f32>; 2],
    /// Scratch: the delayed input.
    dry_out: [Vec<f32>; 2],
    /// Scratch, two maximum blocks each, standing in for the channels a mono main output or stem
    /// port lacks: the main output's, then each port's.
    spare: Vec<Vec<f32>>,
    /// The latency last reported to the host.
    reported_latency: u32,
    /// The loop cache's budget and figures (the cache itself lives on the worker).
    cache: Arc<CacheShared>,
    /// The host's timeline position of the block being processed.
    position: Option<i64>,
}

impl Running {
    /// Builds the stream for `setup`: the HPSS engine of every preset (or, at a rate HPSS cannot
    /// reach, the dry engine, see [`Running::problem`]), then `model` if given, starting with the
    /// model or else the preset's HPSS engine. Publishes the engines' names in `status`. Not on
    /// the audio thread.
    pub fn start(
        setup: Setup,
        params: &DemixerParams,
        status: &Arc<MixerStatus>,
        shared: &Arc<Shared>,
        model: Option<Model>,
    ) -> Result<Self, StartError> {
        let hpss = Preset::ALL
            .into_iter()
            .map(|preset| demixer_dsp::build(&EngineSpec::Hpss(preset), setup.sample_rate))
            .collect::<Result<Vec<Engine>, _>>();
        let (mut engines, no_hpss) = match hpss {
            Ok(engines) => (engines, None),
            Err(e) => (vec![demixer_dsp::build(&EngineSpec::Dry, setup.sample_rate)?], Some(e.to_string())),
        };
        let model = model.map(|Model { key, engine, file }| {
            let kind = engine.kind;
            engines.push(engine);
            (key, kind, file)
        });
        let preset = EngineKind::Hpss(params.preset.value().preset());
        let fallback = if no_hpss.is_some() { EngineKind::Dry } else { preset };
        let initial = model.as_ref().map_or(fallback, |(_, kind, _)| *kind);
        let max_latency = engines.iter().map(|e| e.separator.latency_samples() + e.separator.burst_samples()).max();
        *status.engine_names.lock() = engines.iter().map(|e| e.name.clone()).collect();
        let max_block = setup.max_block;
        let config = StreamConfig::new(max_block, setup.sample_rate, WORKER_SLACK);
        let cache = CacheShared::new(cache_budget(params));
        let view = LoopCache { shared: Arc::clone(&cache), sample_rate: setup.sample_rate };
        *status.loop_cache.lock() = Some(Arc::new(view));
        let routing = stems::routing();
        let (stream, worker) = stream::spawn_cached(engines, initial, config, routing, Some(cache.clone()))?;
        let latency = stream.latency_samples();
        if let Some((key, ..)) = &model {
            // A model whose output is not audio (NaN, absurd levels) or that fails is treated as
            // failed: the stream stops playing it, the cover plays, and the panel says why.
            let (status, shared, name) = (Arc::clone(status), Arc::clone(shared), key.spec.name());
            stream.status().on_failure(Box::new(move |why| shared.failed_playing(&status, &name, why)));
        }
        let cover = match (&model, &no_hpss) {
            (Some(_), None) => Cover::start(latency, config, setup.sample_rate),
            _ => None,
        };
        Ok(Self {
            setup,
            stream,
            worker,
            model,
            no_hpss,
            cover,
            dry: std::array::from_fn(|_| DelayLine::new(latency, max_latency.unwrap_or(0) + config.margin)),
            mixer: Mixer::new(effective_gains(&params.strip_values())),
            input: [vec![0.0; max_block], vec![0.0; max_block]],
            dry_out: [vec![0.0; max_block], vec![0.0; max_block]],
            spare: vec![vec![0.0; 2 * max_block]; STEM_COUNT + 1],
            reported_latency: latency as u32,
            cache,
            position: None,
        })
    }

    /// The activation this was built for.
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// The latency last reported to the host, in samples.
    pub fn reported_latency(&self) -> u32 {
        self.reported_latency
    }

    /// Takes over what `old` reported to the host, so that the next [`Running::prepare`] reports
    /// this stream's latency if it differs.
    pub fn replaces(&mut self, old: &Running) {
        self.reported_latency = old.reported_latency;
    }

    /// Why the stream cannot separate without a model, if it cannot: the rate is beyond HPSS's
    /// reach, and the input plays through.
    pub fn problem(&self) -> Option<String> {
        self.no_hpss.as_ref().map(|why| format!("{why}: the input plays through unseparated"))
    }

    /// The engine the parameters ask for, among those the stream has (the dry engine where HPSS
    /// cannot run).
    fn wanted(&self, params: &DemixerParams) -> EngineKind {
        match (params.engine.value(), &self.model) {
            (EngineChoice::Auto | EngineChoice::Onnx, Some((_, kind, _))) => *kind,
            _ if self.no_hpss.is_some() => EngineKind::Dry,
            _ => EngineKind::Hpss(params.preset.value().preset()),
        }
    }

    /// Starts the running engine afresh, as after a host reset (the loop cache stays: its
    /// fingerprints keep it honest).
    pub fn reset(&mut self) {
        self.restart(self.stream.engine());
    }

    /// Starts `engine` afresh (a reset, a switch) with the dry path matching its latency.
    fn restart(&mut self, engine: EngineKind) {
        self.stream.restart(engine);
        if let Some(cover) = &mut self.cover {
            cover.restart();
        }
        let latency = self.stream.latency_samples();
        self.dry.iter_mut().for_each(|d| d.set_delay(latency));
    }

    /// First step of a block: notes where the block lies on the host's timeline (a jump there is
    /// handled by the stream, which plays on across it: see [`demixer_dsp::stream`]), restarts
    /// the stream to switch to the engine the parameters want, and passes the cache size and
    /// the host's loop on.
    /// Returns the latency to report to the host when it changed. Real-time safe.
    pub fn prepare(&mut self, params: &DemixerParams, playhead: Playhead) -> Option<u32> {
        let wanted = self.wanted(params);
        if wanted != self.stream.engine() {
            self.restart(wanted);
        }
        self.position = playhead.position.filter(|_| playhead.playing);
        self.cache.set_budget(cache_budget(params));
        self.cache.set_host_loop(playhead.loop_range.filter(|_| playhead.playing).map(|(start, end)| start..end));
        let latency = self.stream.latency_samples() as u32;
        (latency != self.reported_latency).then(|| {
            self.reported_latency = latency;
            latency
        })
    }

    /// Separates the block of `len` frames in `main` (the input, replaced by the mix) into the
    /// stem `ports` and mixes them with the parameters' gains, mute, solo, routing and bypass.
    /// Each of `main` and the ports has one or two channels (a mono port gets the left channel;
    /// with a mono input both sides are equal); a channel shorter than `len` is one the host left
    /// out (a disabled bus, fewer channels than the layout, a null pointer): a missing input
    /// channel is the other one (or silence), a missing output channel is not written. Real-time
    /// safe; offline it waits for the worker. Returns the levels for the meters.
    pub fn process(
        &mut self,
        params: &DemixerParams,
        len: usize,
        main: &mut [&mut [f32]],
        ports: &mut [&mut [&mut [f32]]; STEM_COUNT],
    ) -> BlockLevels {
        let settings = MixSettings {
            sample_rate: self.setup.sample_rate,
            targets: effective_gains(&params.strip_values()),
            post_fader: params.aux_post_fader.value(),
            bypass: params.bypass.value(),
        };
        let mut levels = BlockLevels::default();
        let mut start = 0;
        while start < len {
            let end = (start + self.setup.max_block).min(len);
            self.load_input(main, start..end);
            let n = end - start;
            let (spare_main, spare_stems) = self.spare.split_first_mut().expect("one spare per port and main");
            let mut spares = spare_stems.iter_mut();
            let mut ports = ports.iter_mut();
            let mut stems: [StereoOut<'_>; STEM_COUNT] = std::array::from_fn(|_| {
                let (port, spare) = ports.next().zip(spares.next()).expect("one spare per port");
                stereo(port, spare, start..end)
            });
            let [in_l, in_r] = &self.input;
            let stream = &mut self.stream;
            let timing = block_timing(self.setup.timing);
            let position = self.position.map(|p| p + start as i64);
            let mut separate = || stream.process_at(&in_l[..n], &in_r[..n], &mut stems, timing, position);
            // Offline, waiting for the worker may allocate (the channel registers this thread once);
            // CLAP and VST3 allow that in offline rendering. Real-time processing never waits.
            let mut separated = if timing == Timing::Offline { permit_alloc(separate) } else { separate() };
            let model_plays = self.model.as_ref().is_some_and(|(_, kind, _)| *kind == stream.engine());
            if let Some(cover) = self.cover.as_mut().filter(|_| model_plays) {
                let mut fill = || cover.fill(&in_l[..n], &in_r[..n], position, timing, &mut stems, separated.clone());
                separated = if timing == Timing::Offline { permit_alloc(fill) } else { fill() };
            }
            let [dry_l, dry_r] = &self.dry_out;
            let dry = [&dry_l[..n], &dry_r[..n]];
            let buffers = MixBuffers { stems, separated, dry, main: stereo(main, spare_main, start..end) };
            self.mixer.process(&settings, buffers, &mut levels);
            start = end;
        }
        levels
    }

    /// Copies `range` of the main input (one or two channels, either perhaps missing) into the
    /// scratch input and its delayed copy.
    fn load_input(&mut self, main: &[&mut [f32]], range: std::ops::Range<usize>) {
        let n = range.len();
        let present = |channel: usize| main.get(channel).filter(|c| c.len() >= range.end).map(|c| &c[range.clone()]);
        let left = present(0).or_else(|| present(1));
        let right = if self.setup.mono_input { left } else { present(1).or(left) };
        for (input, source) in self.input.iter_mut().zip([left, right]) {
            match source {
                Some(source) => input[..n].copy_from_slice(source),
                None => input[..n].fill(0.0),
            }
        }
        for ((dry, input), out) in self.dry.iter_mut().zip(&self.input).zip(&mut self.dry_out) {
            dry.process(&input[..n], &mut out[..n]);
        }
    }

    /// Last step of a block: what the window shows about the stream.
    pub fn publish(&mut self, status: &MixerStatus) {
        let worker = self.stream.status();
        status.underruns.store(worker.underruns(), Ordering::Relaxed);
        status.realtime_factor.store(worker.realtime_factor(self.setup.sample_rate), Ordering::Relaxed);
        status.running_engine.store(self.stream.engine_slot() as u32, Ordering::Relaxed);
        let model_plays = self.model.as_ref().is_some_and(|(_, kind, _)| *kind == self.stream.engine());
        let share = self.cover.as_ref().filter(|_| model_plays).map_or(-1.0, Cover::share);
        status.cover_share.store(share, Ordering::Relaxed);
    }

    /// Stops the worker (joining it: not on the audio thread) and returns the model engine, if any.
    pub fn into_model(self) -> Option<Model> {
        let (key, kind, file) = self.model?;
        let engine = self.worker.stop().into_iter().find(|engine| engine.kind == kind)?;
        Some(Model { key, engine, file })
    }
}

/// A stream's loop cache as the window sees it (its figures are atomics the worker publishes).
struct LoopCache {
    shared: Arc<CacheShared>,
    sample_rate: f32,
}

impl LoopCacheView for LoopCache {
    fn cached_seconds(&self) -> f32 {
        self.shared.cached_frames() as f32 / self.sample_rate
    }

    fn used_bytes(&self) -> u64 {
        self.shared.used_bytes()
    }

    fn clear(&self) {
        self.shared.clear();
    }
}

/// The loop cache's budget in bytes, from its parameter in MB.
fn cache_budget(params: &DemixerParams) -> u64 {
    params.cache_megabytes.value().max(0) as u64 * (1 << 20)
}

/// `range` of a port's channels as a stereo pair: its two channels, where the host left one out
/// (or the port is mono: the right side is dropped, it equals the left) part of `spare` instead.
fn stereo<'a>(port: &'a mut [&mut [f32]], spare: &'a mut [f32], range: std::ops::Range<usize>) -> StereoOut<'a> {
    let n = range.len();
    let (spare_left, spare_right) = spare.split_at_mut(spare.len() / 2);
    let mut channels = port.iter_mut();
    let mut channel = |spare: &'a mut [f32]| match channels.next() {
        Some(channel) if channel.len() >= range.end => &mut channel[range.clone()],
        _ => &mut spare[..n],
    };
    let left = channel(spare_left);
    [left, channel(spare_right)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 44_100.0;

    fn running(timing: Timing, params: &DemixerParams) -> Running {
        let setup = Setup { activation: 1, sample_rate: SR, max_block: 512, timing, mono_input: false };
        Running::start(setup, params, &Arc::default(), &Arc::default(), None).unwrap()
    }

    /// Runs `input` through `running` in blocks of `block`, returning the main output and stems.
    fn render(
        running: &mut Running,
        params: &DemixerParams,
        input: &[Vec<f32>; 2],
        block: usize,
        after_block: &mut dyn FnMut(&Running, usize),
    ) -> Vec<[Vec<f32>; 2]> {
        let len = input[0].len();
        let mut out: Vec<[Vec<f32>; 2]> = (0..=STEM_COUNT).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
        let (main, stem_outs) = out.split_at_mut(1);
        let [main_l, main_r] = &mut main[0];
        main_l.copy_from_slice(&input[0]);
        main_r.copy_from_slice(&input[1]);
        for start in (0..len).step_by(block) {
            let end = (start + block).min(len);
            let mut main = [&mut main_l[start..end], &mut main_r[start..end]];
            let mut ports = stem_outs.iter_mut();
            let mut channels: [[&mut [f32]; 2]; STEM_COUNT] = std::array::from_fn(|_| {
                let [l, r] = ports.next().unwrap();
                [&mut l[start..end], &mut r[start..end]]
            });
            let mut stems = channels.each_mut().map(|pair| &mut pair[..]);
            running.prepare(params, Playhead::default());
            running.process(params, end - start, &mut main, &mut stems);
            after_block(running, end);
        }
        out
    }

    fn chord(len: usize) -> [Vec<f32>; 2] {
        let tone = |f: f32, i: usize| (std::f32::consts::TAU * f * i as f32 / SR).sin();
        [
            (0..len).map(|i| 0.3 * tone(110.0, i) + 0.2 * tone(660.0, i)).collect(),
            (0..len).map(|i| 0.25 * tone(220.0, i)).collect(),
        ]
    }

    #[test]
    fn offline_the_mix_is_the_input_at_the_reported_latency_and_the_stems_sum_to_it() {
        let params = DemixerParams::default();
        let mut running = running(Timing::Offline, &params);
        let latency = running.reported_latency() as usize;
        let input = chord(3 * latency + 5000);
        let out = render(&mut running, &params, &input, 333, &mut |_, _| {});
        for ch in 0..2 {
            for t in latency..input[0].len() {
                let sum: f32 = out[1..].iter().map(|stem| stem[ch][t]).sum();
                assert!((out[0][ch][t] - input[ch][t - latency]).abs() < 1e-4, "mix at {t}");
                assert!((sum - out[0][ch][t]).abs() < 1e-4, "stems at {t}");
            }
        }
        assert!(out[2][0][latency..].iter().any(|x| x.abs() > 0.05), "the bass stem carries the 110 Hz tone");
    }

    #[test]
    fn a_preset_change_restarts_with_the_new_latency_reported_once() {
        let params = DemixerParams::default();
        let mut running = running(Timing::Realtime, &params);
        let normal = running.reported_latency();
        assert_eq!(running.prepare(&params, Playhead::default()), None);
        let preset = EnumParam::new("Preset", crate::params::PresetChoice::Low);
        let low_params = DemixerParams { preset, ..DemixerParams::default() };
        let low = running.prepare(&low_params, Playhead::default()).expect("a new latency to report");
        assert!(low < normal);
        assert_eq!(running.prepare(&low_params, Playhead::default()), None, "reported once");
    }

    #[test]
    fn a_jump_of_the_playhead_plays_on_with_the_stems_of_the_input_one_latency_earlier() {
        let params = DemixerParams::default();
        let mut running = running(Timing::Offline, &params);
        let latency = running.reported_latency() as usize;
        let input = chord(4 * latency);
        let (jump, block) = (2 * latency + 7, 512);
        // Played from timeline 0, then from 100 000 on at `jump`.
        let mut out: Vec<[Vec<f32>; 2]> = (0..STEM_COUNT + 1).map(|_| [Vec::new(), Vec::new()]).collect();
        let mut start = 0;
        while start < input[0].len() {
            let end = (start + block).min(input[0].len()).min(if start < jump { jump } else { usize::MAX });
            let position = if start < jump { start as i64 } else { 100_000 + (start - jump) as i64 };
            running.prepare(&params, Playhead { playing: true, position: Some(position), loop_range: None });
            let mut buffers: Vec<[Vec<f32>; 2]> = (0..=STEM_COUNT)
                .map(|i| {
                    if i == 0 {
                        [input[0][start..end].to_vec(), input[1][start..end].to_vec()]
                    } else {
                        [vec![0.0; end - start], vec![0.0; end - start]]
                    }
                })
                .collect();
            let (main, ports) = buffers.split_at_mut(1);
            let [l, r] = &mut main[0];
            let mut main = [&mut l[..], &mut r[..]];
            let mut channels: Vec<[&mut [f32]; 2]> = ports.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
            let mut ports: [&mut [&mut [f32]]; STEM_COUNT] = {
                let mut it = channels.iter_mut();
                std::array::from_fn(|_| &mut it.next().unwrap()[..])
            };
            running.process(&params, end - start, &mut main, &mut ports);
            for (all, part) in out.iter_mut().zip(&buffers) {
                all[0].extend_from_slice(&part[0]);
                all[1].extend_from_slice(&part[1]);
            }
            start = end;
        }
        // No dry stretch at the jump: the stems go on summing to the input one latency earlier.
        for t in latency..input[0].len() {
            let sum: f32 = out[1..].iter().map(|stem| stem[0][t]).sum();
            assert!((sum - input[0][t - latency]).abs() < 1e-4, "stems at {t}: {sum}");
        }
    }

    use demixer_dsp::Stem;

    /// A model engine that never delivers: its worker waits in its first block until `gate` closes.
    struct Stalled {
        gate: crossbeam_channel::Receiver<()>,
    }

    impl demixer_dsp::Separator for Stalled {
        fn sources(&self) -> &[Stem] {
            &Stem::ALL
        }

        fn latency_samples(&self) -> usize {
            4096
        }

        fn process(&mut self, _: &[f32], _: &[f32], stems: &mut [StereoOut<'_>]) {
            let _ = self.gate.recv();
            stems.iter_mut().flat_map(|s| s.iter_mut()).for_each(|c| c.fill(0.0));
        }

        fn reset(&mut self) {}
    }

    #[test]
    fn where_the_model_is_late_hpss_covers_and_the_panel_says_how_much() {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let params = DemixerParams::default();
        let status: Arc<MixerStatus> = Arc::default();
        let engine = Engine::new(EngineKind::SegmentModel, Box::new(Stalled { gate }));
        let model = Model { key: ModelKey { spec: EngineSpec::Dry, sample_rate: SR }, engine, file: None };
        let setup =
            Setup { activation: 1, sample_rate: SR, max_block: 512, timing: Timing::Realtime, mono_input: false };
        let mut running = Running::start(setup, &params, &status, &Arc::default(), Some(model)).unwrap();
        let latency = running.reported_latency() as usize;
        let input = chord(2 * latency + SR as usize);
        // The cover's worker keeps up with each block (as it does in real time: it costs little).
        let out = render(&mut running, &params, &input, 512, &mut |running, _| {
            let cover = running.cover.as_ref().expect("a cover beside the model");
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while !cover.caught_up() {
                assert!(std::time::Instant::now() < deadline, "the cover's worker stopped");
                std::thread::yield_now();
            }
        });
        running.publish(&status);
        drop(release);
        drop(running);
        // After the cover's warm-up the stems are HPSS's, summing to the delayed input, although
        // the model never delivered a sample.
        let settled = 2 * latency;
        for channel in 0..2 {
            let worst = (settled..input[0].len())
                .map(|t| (out[1..].iter().map(|s| s[channel][t]).sum::<f32>() - input[channel][t - latency]).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "channel {channel}: the covered stems miss the delayed input by {worst}");
            assert!(out[1][channel][settled..].iter().any(|x| x.abs() > 1e-3), "the stems are not silent");
        }
        let share = status.cover_share.load(Ordering::Relaxed);
        let covered_seconds = (input[0].len() - latency) as f32 / SR;
        assert!(share > 0.5 * covered_seconds / 60.0 && share < covered_seconds / 60.0, "share {share}");
    }
}
