//! Loads the plugin through its CLAP entry point and drives it like a host: random block sizes,
//! parameter changes, a reset, hostile input, and state save/restore. The plugin is a debug build
//! with `assert_process_allocs`, so any allocation inside `process` aborts the test.

use std::collections::HashMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use clack_extensions::latency::PluginLatency;
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, StereoOut};

const SR: f64 = 44_100.0;
const MAX_BLOCK: u32 = 4096;
const PORTS: usize = 5; // Mix, Drums, Bass, Other, Vocals

struct Shared;
impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {}
}

struct Host;
impl HostHandlers for Host {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// Builds the plugin with `assert_process_allocs` (once per test run) and returns its library.
/// It gets a target directory of its own, so that this build neither waits for the `cargo test`
/// that runs us nor overwrites the workspace's plugin build.
fn plugin_library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let target = workspace.join("target/host-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "-p", "demixer", "--features", "assert_process_allocs", "--target-dir"])
            .arg(&target)
            .status()
            .expect("run cargo");
        assert!(status.success(), "building the plugin failed");
        target.join("debug/libdemixer.so")
    })
}

fn load() -> (PluginEntry, PluginInstance<Host>) {
    let entry = unsafe { PluginEntry::load(plugin_library()) }.expect("load the CLAP entry point");
    let factory = entry.get_plugin_factory().expect("plugin factory");
    let id = factory.plugin_descriptors().find_map(|d| d.id().filter(|id| id.to_bytes() == b"org.demixer.demixer"));
    let id: &CStr = id.expect("Demixer's descriptor");
    let host = HostInfo::new("demixer-tests", "Demixer", "https://example.org", "1.0").unwrap();
    let instance = PluginInstance::<Host>::new(|_| Shared, |_| (), &entry, id, &host).expect("instantiate");
    (entry, instance)
}

/// Parameter ids and default values (as sent over CLAP) by display name.
fn param_info(instance: &mut PluginInstance<Host>) -> HashMap<String, (ClapId, f64)> {
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

fn music(len: usize) -> [Vec<f32>; 2] {
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

/// Output of a run: five stereo ports, as long as the input.
type Ports = Vec<[Vec<f32>; 2]>;

/// A parameter change applied at the start of the block that contains `at`; `None` means back to
/// the default.
struct Change {
    at: usize,
    name: &'static str,
    value: Option<f64>,
}

/// Runs `input` through an activated, offline-rendering plugin in random block sizes, applying
/// `changes` and calling `reset` at sample `reset_at` (if any).
fn render(instance: &mut PluginInstance<Host>, input: &[Vec<f32>; 2], changes: &[Change], reset_at: Option<usize>) -> Ports {
    let params = param_info(instance);
    let config = PluginAudioConfiguration { sample_rate: SR, min_frames_count: 1, max_frames_count: MAX_BLOCK };
    let processor = instance.activate(|_, _| (), config).expect("activate");
    let mut processor = processor.start_processing().expect("start processing");
    let len = input[0].len();
    let mut outputs: Ports = (0..PORTS).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut input_ports = AudioPorts::with_capacity(2, 1);
    let mut output_ports = AudioPorts::with_capacity(2 * PORTS, PORTS);
    let mut seed = 12345u32;
    let mut start = 0;
    while start < len {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        let n = ((seed >> 16) as usize % MAX_BLOCK as usize + 1).min(len - start);
        if reset_at.is_some_and(|at| (start..start + n).contains(&at)) {
            processor.reset();
        }
        let events: Vec<ParamValueEvent> = changes
            .iter()
            .filter(|c| (start..start + n).contains(&c.at))
            .map(|c| {
                let (id, default) = params[c.name];
                ParamValueEvent::new(0, id, Pckn::match_all(), c.value.unwrap_or(default))
            })
            .collect();
        let mut ins: [Vec<f32>; 2] = [input[0][start..start + n].to_vec(), input[1][start..start + n].to_vec()];
        let mut outs: Vec<[Vec<f32>; 2]> = (0..PORTS).map(|_| [vec![0.0; n], vec![0.0; n]]).collect();
        let inputs = input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(ins.iter_mut().map(|c| InputChannel::constant(&mut c[..]))),
        }]);
        let mut output_buffers = output_ports.with_output_buffers(outs.iter_mut().map(|[l, r]| AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only([&mut l[..], &mut r[..]].into_iter()),
        }));
        let input_events = InputEvents::from_buffer(&events);
        let mut output_events_buffer = EventBuffer::new();
        let mut output_events = OutputEvents::from_buffer(&mut output_events_buffer);
        processor
            .process(&inputs, &mut output_buffers, &input_events, &mut output_events, None, None)
            .expect("process");
        for (all, part) in outputs.iter_mut().zip(&outs) {
            all[0][start..start + n].copy_from_slice(&part[0]);
            all[1][start..start + n].copy_from_slice(&part[1]);
        }
        start += n;
    }
    instance.deactivate(processor.stop_processing());
    outputs
}

/// Sets the render mode and returns the latency the plugin reports once activated.
fn set_mode(instance: &mut PluginInstance<Host>, mode: RenderMode) -> usize {
    let handle = instance.plugin_handle();
    let render: PluginRender = handle.get_extension().expect("render extension");
    render.set(&handle, mode).expect("render mode");
    let config = PluginAudioConfiguration { sample_rate: SR, min_frames_count: 1, max_frames_count: MAX_BLOCK };
    let processor = instance.activate(|_, _| (), config).unwrap();
    let handle = instance.plugin_handle();
    let latency: PluginLatency = handle.get_extension().expect("latency extension");
    let samples = latency.get(&handle) as usize;
    instance.deactivate(processor);
    samples
}

fn max_error(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn delayed(x: &[f32], by: usize) -> Vec<f32> {
    (0..x.len()).map(|t| if t >= by { x[t - by] } else { 0.0 }).collect()
}

#[test]
fn stems_match_the_engine_and_sum_to_the_delayed_input_at_the_reported_latency() {
    let (_entry, mut instance) = load();
    let latency = set_mode(&mut instance, RenderMode::Offline);
    let input = music(5 * SR as usize);
    let ports = render(&mut instance, &input, &[], None);

    // The engine alone, fed the same input: the stems are it, delayed by the plugin's margin.
    let mut engine = HpssSeparator::new(HpssConfig::preset(Preset::Normal, SR as f32).unwrap());
    let margin = latency - engine.latency_samples();
    let len = input[0].len();
    let mut direct: Vec<[Vec<f32>; 2]> = (0..4).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut outs: Vec<StereoOut<'_>> = direct.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
    engine.process(&input[0], &input[1], &mut outs);
    for (stem, (port, want)) in ports[1..].iter().zip(&direct).enumerate() {
        for ch in 0..2 {
            let error = max_error(&port[ch], &delayed(&want[ch], margin));
            assert!(error < 1e-6, "stem {stem} channel {ch} differs from the engine by {error}");
        }
    }
    for ch in 0..2 {
        let sum: Vec<f32> = (0..len).map(|t| ports[1..].iter().map(|p| p[ch][t]).sum()).collect();
        let expected = delayed(&input[ch], latency);
        assert!(max_error(&sum, &expected) < 1e-4, "stems do not sum to the delayed input");
        assert!(max_error(&ports[0][ch], &expected) < 1e-4, "the mix is not the delayed input");
    }
}

#[test]
fn in_real_time_the_mix_is_the_delayed_input_whether_or_not_the_worker_keeps_up() {
    // This host runs far faster than real time, so the worker falls behind: the plugin must
    // neither wait nor allocate, and the mix stays the input at the reported latency.
    let (_entry, mut instance) = load();
    let latency = set_mode(&mut instance, RenderMode::Realtime);
    let input = music(3 * SR as usize);
    let ports = render(&mut instance, &input, &[], None);
    for ch in 0..2 {
        assert!(max_error(&ports[0][ch], &delayed(&input[ch], latency)) < 1e-4);
    }
}

#[test]
fn mixer_parameters_reset_and_hostile_input_behave() {
    let (_entry, mut instance) = load();
    let latency = set_mode(&mut instance, RenderMode::Offline);
    let second = SR as usize;
    let mut input = music(8 * second);
    // Hostile input in the last second: NaN, infinities, subnormals.
    for (i, x) in input[0][7 * second..].iter_mut().enumerate() {
        *x = [f32::NAN, f32::INFINITY, 1e-40, -1e-39][i % 4];
    }
    let changes = [
        Change { at: second, name: "Vocals Solo", value: Some(1.0) },
        Change { at: 2 * second, name: "Vocals Solo", value: None },
        Change { at: 2 * second, name: "Drums Mute", value: Some(1.0) },
        // Float parameters travel normalised over CLAP: 1.0 is the top of the fader, +12 dB.
        Change { at: 2 * second, name: "Bass Gain", value: Some(1.0) },
        Change { at: 3 * second, name: "Drums Mute", value: None },
        Change { at: 3 * second, name: "Bass Gain", value: None },
        Change { at: 5 * second, name: "Bypass", value: Some(1.0) },
        Change { at: 6 * second, name: "Bypass", value: None },
    ];
    let ports = render(&mut instance, &input, &changes, Some(4 * second));
    // A change applies at the start of the block holding its sample, up to MAX_BLOCK earlier;
    // gain ramps take 20 ms. So a setting holds from `settled(from)` to `until(to)`.
    let settled = |from: usize| from + second / 20;
    let until = |to: usize| to - MAX_BLOCK as usize;
    let loudest = 10f32.powf(12.0 / 20.0);
    let stem = |p: usize, ch: usize, t: usize| ports[p][ch][t];
    for ch in 0..2 {
        for t in settled(second)..until(2 * second) {
            assert!((stem(0, ch, t) - stem(4, ch, t)).abs() < 1e-5, "solo: mix is the vocals at {t}");
        }
        for t in settled(2 * second)..until(3 * second) {
            let want = loudest * stem(2, ch, t) + stem(3, ch, t) + stem(4, ch, t);
            assert!((stem(0, ch, t) - want).abs() < 1e-4, "mute and gain at {t}");
        }
        // After the reset the stream starts over: silence while it refills, then aligned again.
        let restarted = 4 * second + latency;
        for t in restarted..until(5 * second) {
            assert!((stem(0, ch, t) - input[ch][t - latency]).abs() < 1e-4, "after reset at {t}");
        }
        for t in settled(5 * second)..until(6 * second) {
            assert!((stem(0, ch, t) - input[ch][t - latency]).abs() < 1e-6, "bypass passes the input at {t}");
            assert!((1..PORTS).all(|p| stem(p, ch, t) == 0.0), "bypass silences the stems at {t}");
        }
    }
    for (p, port) in ports.iter().enumerate() {
        for x in port.iter().flatten() {
            assert!(x.is_finite() && (*x == 0.0 || x.is_normal()), "port {p} produced {x}");
        }
    }
}

#[test]
fn state_round_trips_every_parameter() {
    let (_entry, mut instance) = load();
    let params = param_info(&mut instance);
    let settings = [("Drums Gain", 0.5), ("Bass Mute", 1.0), ("Other Solo", 1.0), ("Vocals Gain", 0.25), ("Preset", 2.0), ("Engine", 1.0), ("Stem Outputs Post-Fader", 1.0), ("Bypass", 1.0)];
    let events: Vec<ParamValueEvent> =
        settings.iter().map(|(name, v)| ParamValueEvent::new(0, params[*name].0, Pckn::match_all(), *v)).collect();
    {
        let mut handle = instance.inactive_plugin_handle().unwrap();
        let params: PluginParams = handle.get_extension().unwrap();
        let mut out = EventBuffer::new();
        params.flush(&mut handle, &InputEvents::from_buffer(&events), &mut OutputEvents::from_buffer(&mut out));
    }
    let values = |instance: &mut PluginInstance<Host>| -> HashMap<String, f64> {
        let info = param_info(instance);
        let handle = instance.plugin_handle();
        let params: PluginParams = handle.get_extension().unwrap();
        info.iter().map(|(name, (id, _))| (name.clone(), params.get_value(&handle, *id).unwrap())).collect()
    };
    let saved_values = values(&mut instance);
    for (name, value) in settings {
        assert!((saved_values[name] - value).abs() < 1e-6, "{name} was not set");
    }
    let mut state = Vec::new();
    let handle = instance.plugin_handle();
    let ext: PluginState = handle.get_extension().unwrap();
    ext.save(&handle, &mut state).unwrap();

    let (_entry2, mut fresh) = load();
    assert_ne!(values(&mut fresh), saved_values, "a fresh instance starts at the defaults");
    let handle = fresh.plugin_handle();
    let ext: PluginState = handle.get_extension().unwrap();
    ext.load(&handle, &mut &state[..]).unwrap();
    assert_eq!(values(&mut fresh), saved_values);
}
