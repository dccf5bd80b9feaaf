//! A minimal CLAP host on `clack-host` for the workspace-level tests and benchmarks: it builds the
//! plugin, loads it through its CLAP entry point and runs blocks through it; [`vst3`] drives its
//! VST3 entry points.

pub mod vst3;

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;

/// Sample rate the tests run at.
pub const SR: f64 = 44_100.0;
/// Largest block the host sends.
pub const MAX_BLOCK: u32 = 4096;
/// The audio configuration the tests activate with.
pub const DEFAULT_CONFIG: PluginAudioConfiguration =
    PluginAudioConfiguration { sample_rate: SR, min_frames_count: 1, max_frames_count: MAX_BLOCK };
/// Output ports: Mix, Drums, Bass, Other, Vocals.
pub const PORTS: usize = 5;

/// What the host has seen of the plugin's requests, shared across threads. The host is strict
/// about the CLAP latency protocol: `clap_host_latency::changed()` is only allowed inside
/// `clap_plugin::activate` (a latency change while active goes through `request_restart`).
#[derive(Default)]
pub struct Shared {
    /// The plugin asked to be deactivated and activated again.
    restart_requested: AtomicBool,
    /// The host is inside `activate`.
    activating: AtomicBool,
    /// `latency.changed()` calls inside `activate`.
    latency_changes: AtomicU32,
    /// `latency.changed()` calls outside `activate`: protocol violations.
    latency_violations: AtomicU32,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

/// The host's main-thread handler: receives the latency extension's calls.
pub struct MainThread<'a> {
    shared: &'a Shared,
}

impl<'a> MainThreadHandler<'a> for MainThread<'a> {}

impl HostLatencyImpl for MainThread<'_> {
    fn changed(&self) {
        let counter = if self.shared.activating.load(Ordering::SeqCst) {
            &self.shared.latency_changes
        } else {
            &self.shared.latency_violations
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// The host's handler types.
pub struct Host;
impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread<'a>;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostLatency>();
    }
}

/// Activates `instance` as a host does, noting that `latency.changed()` is allowed meanwhile.
///
/// # Panics
/// If the plugin refuses, or called `latency.changed()` outside `activate` before.
pub fn activate(
    instance: &mut PluginInstance<Host>,
    config: PluginAudioConfiguration,
) -> StoppedPluginAudioProcessor<Host> {
    assert_latency_protocol(instance);
    instance.access_shared_handler(|shared| {
        shared.activating.store(true, Ordering::SeqCst);
        shared.restart_requested.store(false, Ordering::SeqCst);
    });
    let processor = instance.activate(|_, _| (), config);
    instance.access_shared_handler(|shared| shared.activating.store(false, Ordering::SeqCst));
    processor.expect("activate")
}

/// Activates `instance` and, as a host does on `request_restart`, deactivates and activates it
/// again while the plugin asks. Returns the processor and how many activations it took.
///
/// nice-plug 0.4.2 needs two for a latency change: the first activation sets the new latency (its
/// `set_latency_samples` finds the plugin active and asks for a restart), the second calls
/// `latency.changed()` inside `activate`. Both follow the CLAP rule.
///
/// # Panics
/// If the plugin still asks after three activations.
pub fn activate_until_settled(
    instance: &mut PluginInstance<Host>,
    config: PluginAudioConfiguration,
) -> (StoppedPluginAudioProcessor<Host>, usize) {
    let mut processor = activate(instance, config);
    let mut activations = 1;
    while restart_requested(instance) {
        assert!(activations < 3, "the plugin keeps asking for restarts");
        instance.deactivate(processor);
        processor = activate(instance, config);
        activations += 1;
    }
    (processor, activations)
}

/// Whether the plugin asked for a restart since the last activation.
pub fn restart_requested(instance: &mut PluginInstance<Host>) -> bool {
    instance.access_shared_handler(|shared| shared.restart_requested.load(Ordering::SeqCst))
}

/// How often the plugin told the host, inside `activate`, that its latency changed.
pub fn latency_changes(instance: &mut PluginInstance<Host>) -> u32 {
    instance.access_shared_handler(|shared| shared.latency_changes.load(Ordering::SeqCst))
}

/// Asserts that the plugin never called `latency.changed()` outside `activate`.
pub fn assert_latency_protocol(instance: &mut PluginInstance<Host>) {
    let violations = instance.access_shared_handler(|shared| shared.latency_violations.load(Ordering::SeqCst));
    assert_eq!(violations, 0, "clap_host_latency::changed() called outside clap_plugin::activate");
}

/// How the plugin under test is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    /// Debug, with `assert_process_allocs`: any allocation inside `process` aborts.
    Checked,
    /// Release, as shipped: for timing.
    Release,
    /// Release with `assert_process_allocs`: for tests that play in real time (a debug build's
    /// HPSS runs at about real time, too slow to keep up).
    CheckedRelease,
}

/// Builds the plugin (once per process and build) and returns its library. The builds get a
/// target directory of their own, so that they neither wait for the `cargo test` that runs us
/// nor overwrite the workspace's plugin build.
pub fn plugin_library(build: Build) -> &'static Path {
    static LIBRARIES: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    LIBRARIES[build as usize].get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target =
            workspace.join(if build == Build::CheckedRelease { "target/host-tests-rt" } else { "target/host-tests" });
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.current_dir(workspace).args(["build", "-p", "demixer", "--target-dir"]).arg(&target);
        let profile = match build {
            Build::Checked => {
                command.args(["--features", "assert_process_allocs"]);
                "debug"
            }
            Build::Release => {
                command.arg("--release");
                "release"
            }
            Build::CheckedRelease => {
                command.args(["--release", "--features", "assert_process_allocs"]);
                "release"
            }
        };
        assert!(command.status().expect("run cargo").success(), "building the plugin failed");
        target.join(profile).join("libdemixer.so")
    })
}

/// Loads the plugin and creates an instance (keep the entry alive as long as the instance).
pub fn load(build: Build) -> (PluginEntry, PluginInstance<Host>) {
    let entry = unsafe { PluginEntry::load(plugin_library(build)) }.expect("load the CLAP entry point");
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let id = factory.plugin_descriptors().find_map(|d| d.id().filter(|id| id.to_bytes() == b"org.demixer.demixer"));
    let id: &CStr = id.expect("Demixer's descriptor");
    let host = HostInfo::new("demixer-tests", "Demixer", "https://example.org", "1.0").unwrap();
    let instance =
        PluginInstance::<Host>::new(|_| Shared::default(), |shared| MainThread { shared }, &entry, id, &host)
            .expect("instantiate");
    (entry, instance)
}

/// Parameter ids and default values (as sent over CLAP) by display name.
pub fn param_info(instance: &mut PluginInstance<Host>) -> HashMap<String, (ClapId, f64)> {
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().expect("params extension");
    let mut buffer = ParamInfoBuffer::new();
    (0..params.count(&handle))
        .map(|i| {
            let info = params.get_info(&handle, i, &mut buffer).unwrap();
            (String::from_utf8_lossy(info.name).into_owned(), (info.id, info.default_value))
        })
        .collect()
}

/// Sets the render mode and returns the latency the plugin reports once activated.
pub fn set_mode(instance: &mut PluginInstance<Host>, mode: RenderMode) -> usize {
    let handle = instance.plugin_handle();
    let render: PluginRender = handle.get_extension().expect("render extension");
    render.set(&handle, mode).expect("render mode");
    let processor = activate(instance, DEFAULT_CONFIG);
    let samples = latency(instance);
    instance.deactivate(processor);
    samples
}

/// Output of a run: five stereo ports, as long as the input.
pub type Ports = Vec<[Vec<f32>; 2]>;

/// A parameter change applied at the start of the block that contains `at`; `None` means back to
/// the default.
pub struct Change {
    /// Sample at which it applies.
    pub at: usize,
    /// Parameter display name.
    pub name: &'static str,
    /// New value as sent over CLAP, `None` for the default.
    pub value: Option<f64>,
}

/// An activated, processing instance and the host's buffers.
pub struct Processing {
    processor: StartedPluginAudioProcessor<Host>,
    input_ports: AudioPorts,
    output_ports: AudioPorts,
    /// The sample rate activated with: the unit of the positions sent.
    sample_rate: f64,
    /// The loop range the transport reports while playing (start and end in samples), as a DAW
    /// in cycle mode does; `None`: not looping.
    pub loop_range: Option<(i64, i64)>,
    /// How long the last `process` call took.
    pub last_duration: std::time::Duration,
}

impl Processing {
    /// Activates `instance` with `config` and starts processing.
    pub fn start(instance: &mut PluginInstance<Host>, config: PluginAudioConfiguration) -> Self {
        let processor = activate(instance, config);
        Self {
            processor: processor.start_processing().expect("start processing"),
            input_ports: AudioPorts::with_capacity(2, 1),
            output_ports: AudioPorts::with_capacity(2 * PORTS, PORTS),
            sample_rate: config.sample_rate,
            loop_range: None,
            last_duration: std::time::Duration::ZERO,
        }
    }

    /// Processes one block with `events` and returns the five stereo output ports.
    pub fn block(&mut self, input: [&[f32]; 2], events: &[ParamValueEvent]) -> Ports {
        self.block_at(input, events, None)
    }

    /// Processes one block with `events`, the transport playing at timeline `position` (in
    /// samples at the activation's rate, sent as CLAP's seconds timeline) or stopped (`None`),
    /// and returns the five stereo output ports.
    pub fn block_at(&mut self, input: [&[f32]; 2], events: &[ParamValueEvent], position: Option<i64>) -> Ports {
        self.block_given(input, events, position, &[2; PORTS])
    }

    /// [`Processing::block_at`], giving the plugin as many output ports as `given` has, port `i`
    /// with `given[i]` of its channels (0: none), as a host that disables or narrows buses does.
    /// What the plugin was not given comes back silent.
    pub fn block_given(
        &mut self,
        input: [&[f32]; 2],
        events: &[ParamValueEvent],
        position: Option<i64>,
        given: &[usize],
    ) -> Ports {
        let n = input[0].len();
        let mut ins: [Vec<f32>; 2] = input.map(<[f32]>::to_vec);
        let mut outs: Ports = (0..PORTS).map(|_| [vec![0.0; n], vec![0.0; n]]).collect();
        let inputs = self.input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(ins.iter_mut().map(|c| InputChannel::constant(&mut c[..]))),
        }]);
        let mut output_buffers =
            self.output_ports.with_output_buffers(outs.iter_mut().zip(given).map(|([l, r], &channels)| {
                AudioPortBuffer {
                    latency: 0,
                    channels: AudioPortBufferType::f32_output_only([&mut l[..], &mut r[..]].into_iter().take(channels)),
                }
            }));
        let input_events = InputEvents::from_buffer(&events);
        let mut output_events_buffer = EventBuffer::new();
        let mut output_events = OutputEvents::from_buffer(&mut output_events_buffer);
        let started = std::time::Instant::now();
        self.processor
            .process(
                &inputs,
                &mut output_buffers,
                &input_events,
                &mut output_events,
                None,
                transport(position, self.loop_range, self.sample_rate).as_ref(),
            )
            .expect("process");
        self.last_duration = started.elapsed();
        outs
    }

    /// Tells the plugin to forget the past, as after a seek.
    pub fn reset(&mut self) {
        self.processor.reset();
    }

    /// Stops processing and deactivates; asserts the CLAP latency protocol was kept.
    pub fn stop(self, instance: &mut PluginInstance<Host>) {
        instance.deactivate(self.processor.stop_processing());
        assert_latency_protocol(instance);
    }
}

/// A playing transport at `position` samples at `sample_rate` (looping over `loop_range` when
/// given), or a stopped one.
fn transport(
    position: Option<i64>,
    loop_range: Option<(i64, i64)>,
    sample_rate: f64,
) -> Option<clack_host::events::event_types::TransportEvent> {
    use clack_host::events::event_types::{TransportEvent, TransportFlags};
    use clack_host::utils::{BeatTime, SecondsTime};
    let flags = TransportFlags::HAS_SECONDS_TIMELINE | TransportFlags::HAS_TEMPO;
    Some(TransportEvent {
        header: clack_host::events::EventHeader::new_core(0, clack_host::events::EventFlags::empty()),
        flags: match (position, loop_range) {
            (None, _) => flags,
            (Some(_), None) => flags | TransportFlags::IS_PLAYING,
            (Some(_), Some(_)) => flags | TransportFlags::IS_PLAYING | TransportFlags::IS_LOOP_ACTIVE,
        },
        song_pos_beats: BeatTime::from_int(0),
        song_pos_seconds: SecondsTime::from_float(position.unwrap_or(0) as f64 / sample_rate),
        tempo: 120.0,
        tempo_inc: 0.0,
        loop_start_beats: BeatTime::from_int(0),
        loop_end_beats: BeatTime::from_int(0),
        loop_start_seconds: SecondsTime::from_float(loop_range.map_or(0, |(start, _)| start) as f64 / sample_rate),
        loop_end_seconds: SecondsTime::from_float(loop_range.map_or(0, |(_, end)| end) as f64 / sample_rate),
        bar_start: BeatTime::from_int(0),
        bar_number: 0,
        time_signature_numerator: 4,
        time_signature_denominator: 4,
    })
}

/// An audio interface's clock: [`RealtimeClock::wait`] returns when the next block is due, so
/// that the plugin runs exactly as fast as in a DAW playing in real time.
pub struct RealtimeClock {
    start: std::time::Instant,
    frames: u64,
}

impl RealtimeClock {
    /// Starts the clock now.
    pub fn start() -> Self {
        Self { start: std::time::Instant::now(), frames: 0 }
    }

    /// Waits until the block of `frames` after everything counted so far is due.
    pub fn wait(&mut self, frames: usize) {
        let due = self.start + std::time::Duration::from_secs_f64(self.frames as f64 / SR);
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
        self.frames += frames as u64;
    }
}

/// The latency the plugin reports now.
pub fn latency(instance: &mut PluginInstance<Host>) -> usize {
    let handle = instance.plugin_handle();
    let latency: PluginLatency = handle.get_extension().expect("latency extension");
    latency.get(&handle) as usize
}

/// Runs `input` through the plugin (activating it with `config` for the run) in blocks of
/// `block_size()` samples, applying `changes`, calling `reset` at sample `reset_at` (if any), and
/// passing the duration of each `process` call to `timed`.
#[allow(clippy::too_many_arguments)]
pub fn render(
    instance: &mut PluginInstance<Host>,
    config: PluginAudioConfiguration,
    input: &[Vec<f32>; 2],
    changes: &[Change],
    reset_at: Option<usize>,
    mut block_size: impl FnMut() -> usize,
    mut timed: impl FnMut(usize, std::time::Duration),
) -> Ports {
    let params = param_info(instance);
    let mut processing = Processing::start(instance, config);
    let len = input[0].len();
    let mut outputs: Ports = (0..PORTS).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut start = 0;
    while start < len {
        let n = block_size().min(config.max_frames_count as usize).min(len - start);
        if reset_at.is_some_and(|at| (start..start + n).contains(&at)) {
            processing.reset();
        }
        let events: Vec<ParamValueEvent> = changes
            .iter()
            .filter(|c| (start..start + n).contains(&c.at))
            .map(|c| {
                let (id, default) = params[c.name];
                ParamValueEvent::new(0, id, Pckn::match_all(), c.value.unwrap_or(default))
            })
            .collect();
        let outs = processing.block([&input[0][start..start + n], &input[1][start..start + n]], &events);
        timed(n, processing.last_duration);
        for (all, part) in outputs.iter_mut().zip(&outs) {
            all[0][start..start + n].copy_from_slice(&part[0]);
            all[1][start..start + n].copy_from_slice(&part[1]);
        }
        start += n;
    }
    processing.stop(instance);
    outputs
}

/// Stereo test music at [`SR`]: a tone, a bass line, a vibrato voice and noise hits.
pub fn music(len: usize) -> [Vec<f32>; 2] {
    let mut noise = 7u32;
    let mut next = move || {
        noise = noise.wrapping_mul(1664525).wrapping_add(1013904223);
        (noise >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    };
    let (mut l, mut r) = (vec![0.0; len], vec![0.0; len]);
    for i in 0..len {
        let t = i as f32 / SR as f32;
        let tau = std::f32::consts::TAU;
        let hit = next() * (-(t % 0.25) * 40.0).exp();
        let tone = (tau * 220.0 * t).sin() * 0.2 + (tau * 55.0 * t).sin() * 0.3;
        let voice = (tau * 440.0 * (1.0 + 0.01 * (tau * 5.0 * t).sin()) * t).sin() * 0.15;
        l[i] = tone + voice + 0.2 * hit;
        r[i] = 0.5 * tone + voice + 0.2 * hit;
    }
    [l, r]
}

/// Points the instance's saved model settings at `model` (a library name or a file) with the
/// SHA-256 `sha256` (empty for a file), through a state round trip as a host restoring a project
/// would. nice-plug's CLAP state is a little-endian u64 length, then JSON.
pub fn choose_model(instance: &mut PluginInstance<Host>, model: &str, sha256: &str) {
    use clack_extensions::state::PluginState;
    let handle = instance.plugin_handle();
    let state: PluginState = handle.get_extension().unwrap();
    let mut saved = Vec::new();
    state.save(&handle, &mut saved).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&saved[8..]).unwrap();
    let settings =
        serde_json::json!({ "model": model, "sha256": sha256, "runtime": "", "device": "cpu", "threads": 1 });
    json["fields"]["model"] = serde_json::Value::String(settings.to_string());
    let body = serde_json::to_vec(&json).unwrap();
    let restored = [&(body.len() as u64).to_le_bytes()[..], &body].concat();
    state.load(&handle, &mut &restored[..]).unwrap();
}
