//! Hosts that give the plugin less than its layout: JUCE's hosts (Pedalboard, pedalboard#321)
//! deactivate the auxiliary buses; others give no buffers for a port (DPF#389), fewer channels
//! than the layout, a null channel pointer, or call with zero samples. Whatever the host gives,
//! the plugin processes: the main output is the input at the reported latency, and the mixer's
//! gains apply to it. (nice-plug 0.4.2 skipped `process()` unless every channel of every bus was
//! there, and read past the host's bus array: DEMIXER PATCH 4 in third_party/nice-plug.) The
//! plugin is a debug build with `assert_process_allocs`, in offline mode, so the worker is exact.

use clack_extensions::render::RenderMode;
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;
use demixer_host_tests::vst3::{Given, OUTPUTS, instance, process_all, set_up_and_activate};
use demixer_host_tests::{Build, DEFAULT_CONFIG, PORTS, Ports, Processing, latency, load, music, param_info, set_mode};
use vst3::Steinberg::Vst::ProcessModes_::kOffline;
use vst3::Steinberg::Vst::{IAudioProcessor, IAudioProcessorTrait, IComponentTrait, ProcessModes};
use vst3::Steinberg::{IPluginBaseTrait, kResultOk};

/// How far `got` is from `input` delayed by `latency`, from the latency on.
fn error_from_delayed(got: &[f32], input: &[f32], latency: usize) -> f32 {
    (latency..input.len()).map(|t| (got[t] - input[t - latency]).abs()).fold(0.0, f32::max)
}

/// Runs `input` through a fresh VST3 instance (offline) whose output buses are `given`; returns
/// the outputs and the reported latency.
fn vst3_run(input: &[Vec<f32>; 2], given: &[Given], empty_calls: bool) -> (Vec<[Vec<f32>; 2]>, usize) {
    let (_library, component) = instance(Build::Checked);
    let processor: vst3::ComPtr<IAudioProcessor> = component.cast().expect("an audio processor");
    set_up_and_activate(&component, &processor, kOffline as ProcessModes);
    let latency = unsafe { processor.getLatencySamples() } as usize;
    assert_eq!(unsafe { processor.setProcessing(1) }, kResultOk);
    let outputs = process_all(&processor, kOffline as ProcessModes, input, given, empty_calls);
    unsafe {
        assert_eq!(processor.setProcessing(0), kResultOk);
        assert_eq!(component.setActive(0), kResultOk);
        assert_eq!(component.terminate(), kResultOk);
    }
    (outputs, latency)
}

#[test]
fn vst3_without_stem_buses_the_main_output_is_the_input_at_the_reported_latency() {
    let input = music(20_000);
    let mut disabled = vec![Given::Stereo];
    disabled.extend([Given::Nothing; OUTPUTS - 1]);
    // Buses deactivated (no channels), and buses left out altogether (`numOutputs` 1).
    for given in [&disabled[..], &[Given::Stereo]] {
        let (outputs, latency) = vst3_run(&input, given, false);
        for channel in 0..2 {
            let error = error_from_delayed(&outputs[0][channel], &input[channel], latency);
            assert_eq!(error, 0.0, "{given:?}: channel {channel} is not the input at the reported latency");
        }
    }
}

#[test]
fn vst3_buses_with_channels_missing_or_null_and_empty_calls_are_processed() {
    let input = music(20_000);
    let (full, latency) = vst3_run(&input, &[Given::Stereo; OUTPUTS], false);
    let (with_empty_calls, _) = vst3_run(&input, &[Given::Stereo; OUTPUTS], true);
    assert!(with_empty_calls == full, "zero-length calls changed the output");
    // The main bus with its left channel only: the plugin hears that channel, on both sides.
    let given = [Given::Left, Given::NullRight, Given::Left, Given::Nothing, Given::Stereo];
    let (outputs, _) = vst3_run(&input, &given, false);
    assert_eq!(error_from_delayed(&outputs[0][0], &input[0], latency), 0.0, "the main output's one channel");
    assert!(outputs.iter().flatten().flatten().all(|x| x.is_finite()));
    let sounds = |output: usize, channel: usize| outputs[output][channel].iter().any(|&x| x != 0.0);
    assert!(sounds(1, 0) && sounds(2, 0) && sounds(4, 0) && sounds(4, 1), "the stems given are written");
    let drums_left: Vec<f32> = (0..input[0].len()).map(|t| outputs[1][0][t]).collect();
    let alone = {
        let mono = [input[0].clone(), input[0].clone()];
        vst3_run(&mono, &[Given::Stereo; OUTPUTS], false).0
    };
    assert!(drums_left == alone[1][0], "the drums of the left channel, as if the input were mono");
}

/// Runs `input` through a fresh CLAP instance (offline) given output ports `given` (channels
/// per port), applying `events` in the first block; returns the ports and the latency.
fn clap_run(input: &[Vec<f32>; 2], given: &[usize], events: &[(&str, f64)]) -> (Ports, usize) {
    let (_entry, mut instance) = load(Build::Checked);
    set_mode(&mut instance, RenderMode::Offline);
    let params = param_info(&mut instance);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let latency = latency(&mut instance);
    let events: Vec<ParamValueEvent> =
        events.iter().map(|&(name, value)| ParamValueEvent::new(0, params[name].0, Pckn::match_all(), value)).collect();
    let mut ports: Ports = (0..PORTS).map(|_| [Vec::new(), Vec::new()]).collect();
    for (index, start) in (0..input[0].len()).step_by(512).enumerate() {
        let end = (start + 512).min(input[0].len());
        let block = [&input[0][start..end], &input[1][start..end]];
        let out = processing.block_given(block, if index == 0 { &events } else { &[] }, None, given);
        for (all, part) in ports.iter_mut().zip(&out) {
            all[0].extend_from_slice(&part[0]);
            all[1].extend_from_slice(&part[1]);
        }
    }
    processing.stop(&mut instance);
    (ports, latency)
}

#[test]
fn clap_without_stem_ports_the_mix_is_the_delayed_input_and_the_mixer_still_works() {
    let input = music(20_000);
    let mutes = ["Drums Mute", "Bass Mute", "Other Mute", "Vocals Mute"].map(|name| (name, 1.0));
    for given in [&[2][..], &[2, 0, 0, 0, 0], &[1, 2, 2, 2, 2]] {
        let (ports, latency) = clap_run(&input, given, &[]);
        for channel in 0..given[0] {
            let error = error_from_delayed(&ports[0][channel], &input[channel], latency);
            assert_eq!(error, 0.0, "{given:?}: channel {channel} is not the input at the reported latency");
        }
        // Every stem muted: the mix is the input less its stems, silence.
        let (ports, latency) = clap_run(&input, given, &mutes);
        let loudest = ports[0][0][latency..].iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(loudest < 1e-4, "{given:?}: muting every stem left {loudest} on the main output");
    }
}
