//! Loops and jumps through the plugin's CLAP entry point, with a host whose transport loops a
//! 4 s section and which calls `process` as an audio interface would, in real time
//! ([`RealtimeClock`]: the clock a DAW plays by, not a synchronisation). The plugin is a release
//! build with `assert_process_allocs`, so any allocation inside `process` aborts the test.
//!
//! From the second pass on (HPSS: from the first repeat on) the stems equal the offline
//! separation of the looped section to −80 dB, with no dry stretch, even for a segment model
//! whose latency is longer than the loop; changed input inside the loop never plays stale stems;
//! several instances loop at once. The tests run one at a time, so that each plays as in a DAW
//! and not beside five others.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clack_extensions::render::RenderMode;
use clack_host::prelude::*;
use demixer_dsp::Separator;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::onnx::{self, OnnxConfig};
use demixer_dsp::separate_aligned;
use demixer_host_tests::{
    Build, DEFAULT_CONFIG, Host, PORTS, Ports, Processing, RealtimeClock, SR, activate, activate_until_settled,
    choose_model, latency, load, music, restart_requested,
};

/// The tests run one at a time: each needs its worker to keep pace in real time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The loop's length: 4 s.
const LOOP: usize = 4 * SR as usize;
/// Where the loop starts on the timeline.
const LOOP_START: i64 = 10 * SR as i64;
const BLOCK: usize = 512;

/// `section` played `passes` times, looping at [`LOOP_START`], in real time; returns the ports and
/// the latency.
fn play_loop(instance: &mut PluginInstance<Host>, passes: &[&[Vec<f32>; 2]]) -> (Ports, usize) {
    let mut processing = Processing::start(instance, DEFAULT_CONFIG);
    // Cycle mode, as a DAW reports it.
    processing.loop_range = Some((LOOP_START, LOOP_START + LOOP as i64));
    let reported = latency(instance);
    let mut ports: Ports = (0..PORTS).map(|_| [Vec::new(), Vec::new()]).collect();
    let mut clock = RealtimeClock::start();
    for section in passes {
        for start in (0..LOOP).step_by(BLOCK) {
            let end = (start + BLOCK).min(LOOP);
            clock.wait(end - start);
            let input = [&section[0][start..end], &section[1][start..end]];
            let out = processing.block_at(input, &[], Some(LOOP_START + start as i64));
            assert!(out.iter().flatten().flatten().all(|x| x.is_finite()));
            for (all, part) in ports.iter_mut().zip(&out) {
                all[0].extend_from_slice(&part[0]);
                all[1].extend_from_slice(&part[1]);
            }
        }
    }
    processing.stop(instance);
    (ports, reported)
}

/// Error energy over signal energy, in dB, of the stem ports against `want` (the section's
/// offline separation) at output frames `frames`, each the stems of the input `latency` earlier.
fn error_db(ports: &Ports, want: &[[Vec<f32>; 2]], latency: usize, frames: std::ops::Range<usize>) -> f64 {
    let (mut error, mut signal) = (0.0f64, 0.0f64);
    for t in frames {
        let offset = (t - latency) % LOOP;
        for (port, stem) in ports[1..].iter().zip(want) {
            for channel in 0..2 {
                let (got, expected) = (port[channel][t] as f64, stem[channel][offset] as f64);
                error += (got - expected).powi(2);
                signal += expected.powi(2);
            }
        }
    }
    10.0 * (error / signal).log10()
}

/// The longest stretch within `frames` where every stem port is silent though the input one
/// latency earlier was not: where the mix plays the dry input.
fn longest_dry(ports: &Ports, sent: &[Vec<f32>; 2], latency: usize, frames: std::ops::Range<usize>) -> usize {
    let (mut longest, mut current) = (0, 0);
    for t in frames {
        let silent = ports[1..].iter().all(|port| port[0][t] == 0.0 && port[1][t] == 0.0);
        current = if silent && sent[0][t - latency] != 0.0 { current + 1 } else { 0 };
        longest = longest.max(current);
    }
    longest
}

fn section(seed: f32) -> [Vec<f32>; 2] {
    let song = music(LOOP + 3 * SR as usize);
    let skip = (seed as f64 * SR) as usize;
    [song[0][skip..skip + LOOP].to_vec(), song[1][skip..skip + LOOP].to_vec()]
}

fn offline(engine: &mut dyn Separator, input: &[Vec<f32>; 2]) -> Vec<[Vec<f32>; 2]> {
    separate_aligned(engine, &input[0], &input[1], &mut |_| {})
}

fn hpss() -> HpssSeparator {
    HpssSeparator::new(HpssConfig::preset(Preset::Normal, SR as f32).unwrap())
}

/// Several passes played back to back, as the host sent them.
fn sent(passes: &[&[Vec<f32>; 2]]) -> [Vec<f32>; 2] {
    [passes.iter().flat_map(|p| p[0].clone()).collect(), passes.iter().flat_map(|p| p[1].clone()).collect()]
}

#[test]
fn with_hpss_a_loop_plays_the_offline_separation_of_the_section_from_the_first_repeat() {
    let _serial = serial();
    let input = section(0.0);
    let (_entry, mut instance) = load(Build::CheckedRelease);
    let passes = [&input; 3];
    let (ports, latency) = play_loop(&mut instance, &passes);
    let want = offline(&mut hpss(), &input);
    let frames = LOOP..3 * LOOP;
    let db = error_db(&ports, &want, latency, frames.clone());
    let dry = longest_dry(&ports, &sent(&passes), latency, frames);
    eprintln!("HPSS loop from the first repeat: {db:.1} dB from the offline separation, longest dry stretch {dry}");
    assert!(db <= -80.0, "{db:.1} dB");
    assert_eq!(dry, 0, "a dry stretch after the latency");
}

#[test]
fn a_model_whose_latency_exceeds_the_loop_plays_it_separated_from_the_second_pass() {
    let _serial = serial();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/long_segment.onnx");
    let (_entry, mut instance) = load(Build::CheckedRelease);
    choose_model(&mut instance, &model.to_string_lossy(), "");
    let hpss_latency = demixer_host_tests::set_mode(&mut instance, RenderMode::Realtime);
    // In real time the model loads while HPSS plays, then asks for a restart to report its latency.
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let deadline = Instant::now() + Duration::from_secs(120);
    let silence = vec![0.0; BLOCK];
    let mut clock = RealtimeClock::start();
    while !restart_requested(&mut instance) {
        assert!(Instant::now() < deadline, "the model never loaded");
        clock.wait(BLOCK);
        processing.block([&silence, &silence], &[]);
    }
    processing.stop(&mut instance);
    let (processor, _) = activate_until_settled(&mut instance, DEFAULT_CONFIG);
    instance.deactivate(processor);
    let input = section(1.0);
    let passes = [&input; 5];
    let (ports, latency) = play_loop(&mut instance, &passes);
    assert!(latency > LOOP && latency != hpss_latency, "the model plays, with a latency ({latency}) beyond the loop");

    let config = OnnxConfig { model, ..Default::default() };
    let want = offline(&mut *onnx::load(&config, SR as usize).unwrap().separator, &input);
    let frames = LOOP + latency..5 * LOOP;
    let db = error_db(&ports, &want, latency, frames.clone());
    let dry = longest_dry(&ports, &sent(&passes), latency, frames);
    eprintln!(
        "model loop (latency {latency}) from the second pass: {db:.1} dB from offline, longest dry stretch {dry}"
    );
    assert!(db <= -80.0, "{db:.1} dB");
    assert_eq!(dry, 0);
}

#[test]
fn changed_input_inside_the_loop_never_plays_stale_stems() {
    let _serial = serial();
    let input = section(0.5);
    let mut changed = input.clone();
    for channel in &mut changed {
        for (t, x) in channel[SR as usize..2 * SR as usize].iter_mut().enumerate() {
            *x = 0.3 * (t as f32 * 0.031).sin();
        }
    }
    let (_entry, mut instance) = load(Build::CheckedRelease);
    let passes = [&input, &input, &changed, &changed];
    let (ports, latency) = play_loop(&mut instance, &passes);
    let sent = sent(&passes);
    // Stale stems (the first take's) would not sum to the input that was played.
    for t in latency..4 * LOOP {
        for channel in 0..2 {
            let sum: f32 = ports[1..].iter().map(|port| port[channel][t]).sum();
            let played = sent[channel][t - latency];
            assert!((sum - played).abs() < 1e-4, "at {t}: stems sum to {sum}, the input was {played}");
        }
    }
    assert_eq!(longest_dry(&ports, &sent, latency, latency..4 * LOOP), 0, "a dry stretch");
}

#[test]
fn several_instances_loop_at_once_each_with_its_own_stems() {
    let _serial = serial();
    let results: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                scope.spawn(move || {
                    let input = section(0.3 * i as f32);
                    let (_entry, mut instance) = load(Build::CheckedRelease);
                    let (ports, latency) = play_loop(&mut instance, &[&input; 2]);
                    error_db(&ports, &offline(&mut hpss(), &input), latency, LOOP..2 * LOOP)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("three instances at once, from the first repeat: {results:?} dB");
    assert!(results.iter().all(|&db| db <= -80.0), "{results:?}");
}

#[test]
fn an_offline_bounce_of_a_loop_matches_the_offline_separation_on_both_passes() {
    let _serial = serial();
    // A bounce is the engine's output for each pass (fresh at the loop start, as a file): the same
    // as the loop's offline separation. That the cache is never read offline is the dsp test
    // `offline_rendering_cuts_at_every_jump_and_never_records_or_plays_cached_stems`.
    let input = section(0.2);
    let (_entry, mut instance) = load(Build::CheckedRelease);
    let handle = instance.plugin_handle();
    let render: clack_extensions::render::PluginRender = handle.get_extension().unwrap();
    render.set(&handle, RenderMode::Offline).unwrap();
    let processor = activate(&mut instance, DEFAULT_CONFIG);
    instance.deactivate(processor);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let reported = latency(&mut instance);
    let mut ports: Ports = (0..PORTS).map(|_| [Vec::new(), Vec::new()]).collect();
    for _ in 0..2 {
        for start in (0..LOOP).step_by(BLOCK) {
            let end = (start + BLOCK).min(LOOP);
            let out = processing.block_at([&input[0][start..end], &input[1][start..end]], &[], Some(start as i64));
            for (all, part) in ports.iter_mut().zip(&out) {
                all[0].extend_from_slice(&part[0]);
                all[1].extend_from_slice(&part[1]);
            }
        }
    }
    processing.stop(&mut instance);
    let db = error_db(&ports, &offline(&mut hpss(), &input), reported, reported..2 * LOOP);
    assert!(db <= -80.0, "{db:.1} dB");
}

#[test]
fn jumps_play_on_without_a_dry_stretch_and_a_verified_jump_back_starts_the_engine_afresh() {
    let _serial = serial();
    let song = music(12 * SR as usize);
    let (_entry, mut instance) = load(Build::CheckedRelease);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let latency = latency(&mut instance);
    let second = SR as usize;
    // Timeline stretches played in turn: from 0, an uncached place, back into the first stretch.
    let plan = [(0, 3 * second), (8 * second, 10 * second), (second, 3 * second + second / 2)];
    let mut ports: Ports = (0..PORTS).map(|_| [Vec::new(), Vec::new()]).collect();
    let mut sent: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    let mut jumps = Vec::new();
    let mut clock = RealtimeClock::start();
    for (from, to) in plan {
        jumps.push(sent[0].len());
        for start in (from..to).step_by(BLOCK) {
            let end = (start + BLOCK).min(to);
            clock.wait(end - start);
            let out = processing.block_at([&song[0][start..end], &song[1][start..end]], &[], Some(start as i64));
            for (all, part) in ports.iter_mut().zip(&out) {
                all[0].extend_from_slice(&part[0]);
                all[1].extend_from_slice(&part[1]);
            }
            sent[0].extend_from_slice(&song[0][start..end]);
            sent[1].extend_from_slice(&song[1][start..end]);
        }
    }
    processing.stop(&mut instance);
    let end = sent[0].len();
    for (name, &jump) in ["uncached", "cached"].iter().zip(&jumps[1..]) {
        let dry = longest_dry(&ports, &sent, latency, jump..end.min(jump + 2 * latency));
        eprintln!("jump to an {name} place: the new place's stems start {latency} samples after it, dry stretch {dry}");
        assert_eq!(dry, 0, "{name}");
    }
    // Back in the first stretch (the jump verified against what was played there), the engine
    // started afresh: the stems are the separation of the input from there on, as a file.
    let back = jumps[2];
    let rest = [sent[0][back..].to_vec(), sent[1][back..].to_vec()];
    let want = offline(&mut hpss(), &rest);
    let db = error_db(&ports, &want, latency + back, back + latency..end);
    eprintln!("after the jump back: {db:.1} dB from the separation of the input from there on");
    assert!(db <= -80.0, "{db:.1} dB");
}
