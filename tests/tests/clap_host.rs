//! Loads the plugin through its CLAP entry point and drives it like a host: random block sizes,
//! parameter changes, a reset, hostile input, and state save/restore. The plugin is a debug build
//! with `assert_process_allocs`, so any allocation inside `process` aborts the test.

use std::collections::HashMap;

use clack_extensions::params::PluginParams;
use clack_extensions::render::RenderMode;
use clack_extensions::state::PluginState;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, StereoOut};
use demixer_host_tests::{
    Build, Change, DEFAULT_CONFIG, Host, MAX_BLOCK, PORTS, Ports, Processing, SR, activate_until_settled, latency,
    latency_changes, load, music, param_info, restart_requested, set_mode,
};

/// Renders in pseudo-random block sizes from 1 to MAX_BLOCK.
fn render(
    instance: &mut PluginInstance<Host>,
    input: &[Vec<f32>; 2],
    changes: &[Change],
    reset_at: Option<usize>,
) -> Ports {
    let mut seed = 12345u32;
    let random_block = move || {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        (seed >> 16) as usize % MAX_BLOCK as usize + 1
    };
    demixer_host_tests::render(instance, DEFAULT_CONFIG, input, changes, reset_at, random_block, |_, _| {})
}

fn max_error(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn delayed(x: &[f32], by: usize) -> Vec<f32> {
    (0..x.len()).map(|t| if t >= by { x[t - by] } else { 0.0 }).collect()
}

#[test]
fn stems_match_the_engine_and_sum_to_the_delayed_input_at_the_reported_latency() {
    let (_entry, mut instance) = load(Build::Checked);
    let latency = set_mode(&mut instance, RenderMode::Offline);
    let input = music(5 * SR as usize);
    let ports = render(&mut instance, &input, &[], None);

    // The engine alone, fed the same input: from the reported latency on, the stems are it,
    // delayed by the plugin's margin. Before it they are silent: that stretch stands for input
    // before the stream began (the engine's warm-up, skipped), where a masked STFT can spread up
    // to one window of the first frames' output.
    let mut engine = HpssSeparator::new(HpssConfig::preset(Preset::Normal, SR as f32).unwrap());
    let margin = latency - engine.latency_samples();
    let len = input[0].len();
    let mut direct: Vec<[Vec<f32>; 2]> = (0..4).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut outs: Vec<StereoOut<'_>> = direct.iter_mut().map(|[l, r]| [&mut l[..], &mut r[..]]).collect();
    engine.process(&input[0], &input[1], &mut outs);
    for (stem, (port, want)) in ports[1..].iter().zip(&direct).enumerate() {
        for ch in 0..2 {
            let error = max_error(&port[ch][latency..], &delayed(&want[ch], margin)[latency..]);
            assert!(error < 1e-6, "stem {stem} channel {ch} differs from the engine by {error}");
            assert!(port[ch][..latency].iter().all(|&x| x == 0.0), "stem {stem} sounds before the latency");
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
    let (_entry, mut instance) = load(Build::Checked);
    let latency = set_mode(&mut instance, RenderMode::Realtime);
    let input = music(3 * SR as usize);
    let ports = render(&mut instance, &input, &[], None);
    for ch in 0..2 {
        assert!(max_error(&ports[0][ch], &delayed(&input[ch], latency)) < 1e-4);
    }
}

#[test]
fn mixer_parameters_reset_and_hostile_input_behave() {
    let (_entry, mut instance) = load(Build::Checked);
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
    for (ch, input) in input.iter().enumerate() {
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
            assert!((stem(0, ch, t) - input[t - latency]).abs() < 1e-4, "after reset at {t}");
        }
        for t in settled(5 * second)..until(6 * second) {
            assert!((stem(0, ch, t) - input[t - latency]).abs() < 1e-6, "bypass passes the input at {t}");
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
    let (_entry, mut instance) = load(Build::Checked);
    let params = param_info(&mut instance);
    let settings = [
        ("Drums Gain", 0.5),
        ("Bass Mute", 1.0),
        ("Other Solo", 1.0),
        ("Vocals Gain", 0.25),
        ("Preset", 2.0),
        ("Engine", 1.0),
        ("Stem Outputs Post-Fader", 1.0),
        ("Bypass", 1.0),
    ];
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

    let (_entry2, mut fresh) = load(Build::Checked);
    assert_ne!(values(&mut fresh), saved_values, "a fresh instance starts at the defaults");
    let handle = fresh.plugin_handle();
    let ext: PluginState = handle.get_extension().unwrap();
    ext.load(&handle, &mut &state[..]).unwrap();
    assert_eq!(values(&mut fresh), saved_values);
}

/// A preset change while processing changes the latency: the plugin asks for a restart and
/// reports the new latency inside `activate`, never through `latency.changed()` elsewhere (the
/// host asserts that in `activate` and `Processing::stop`).
#[test]
fn a_latency_change_while_processing_follows_the_clap_protocol() {
    let (_entry, mut instance) = load(Build::Checked);
    let normal = set_mode(&mut instance, RenderMode::Realtime);
    let params = param_info(&mut instance);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let input = music(SR as usize / 4);
    let block = [&input[0][..512], &input[1][..512]];
    processing.block(block, &[]);
    assert!(!restart_requested(&mut instance));
    let low = ParamValueEvent::new(0, params["Preset"].0, Pckn::match_all(), 0.0);
    processing.block(block, &[low]);
    assert!(restart_requested(&mut instance), "a new latency asks for a restart");
    assert_eq!(latency(&mut instance), normal, "the host's latency stays until the restart");
    processing.block(block, &[]);
    processing.stop(&mut instance);
    let changes = latency_changes(&mut instance);
    let (processor, activations) = activate_until_settled(&mut instance, DEFAULT_CONFIG);
    let reported = latency(&mut instance);
    instance.deactivate(processor);
    assert!(reported < normal, "the low preset's latency {reported} is reported (normal: {normal})");
    assert_eq!(latency_changes(&mut instance), changes + 1, "once, inside activate");
    assert!(activations <= 2, "{activations} activations");
}

/// Hosts show parameter values as text and store or type text: every value's text must parse
/// back to a value that shows the same text.
#[test]
fn every_parameter_value_survives_a_text_round_trip() {
    let (_entry, mut instance) = load(Build::Checked);
    let info = param_info(&mut instance);
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().unwrap();
    let text = |id, value| {
        let mut buffer = [0u8; 256];
        let text = params.value_to_text(&handle, id, value, &mut buffer).unwrap();
        String::from_utf8_lossy(text).trim_end_matches('\0').to_owned()
    };
    // Evenly over the range and, for gains, right where the text stops saying "-inf" (found by
    // bisection): nice-plug's own formatters show "-100.0" there, which parses back to silence.
    let even: Vec<f64> = (0..=400).map(|s| s as f64 / 400.0).collect();
    for (name, (id, _)) in &info {
        let mut values = even.clone();
        if text(*id, 0.0).starts_with("-inf") {
            let (mut silent, mut audible) = (0.0, 1.0);
            for _ in 0..60 {
                let middle = (silent + audible) / 2.0;
                if text(*id, middle).starts_with("-inf") { silent = middle } else { audible = middle }
            }
            values.extend((0..8).map(|k| audible + k as f64 * 1e-7));
        }
        for &value in &values {
            let shown = text(*id, value);
            let parsed = std::ffi::CString::new(shown.clone()).unwrap();
            let back = params.text_to_value(&handle, *id, &parsed).unwrap_or_else(|| panic!("{name}: '{shown}'"));
            assert_eq!(text(*id, back), shown, "{name}: {value} shows '{shown}', which parses to {back}");
        }
    }
}
