//! The plugin at every sample rate a host may ask for and at any block size, and its worker
//! thread's lifetime (a test binary of its own, so that no other test's threads are counted).

use clack_extensions::render::RenderMode;
use clack_host::prelude::*;
use demixer_host_tests::{Build, activate, latency, load, music, set_mode};

#[test]
fn every_rate_and_block_size_works_and_deactivation_stops_the_worker() {
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let names = || -> Vec<String> {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap();
        tasks.map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap_or_default()).collect()
    };
    let (_entry, mut instance) = load(Build::Checked);
    set_mode(&mut instance, RenderMode::Offline);
    // DXD (705.6, 768 kHz) and the validators' odd and low rates are resampled for HPSS; at 500 Hz
    // nothing can separate and the input plays through.
    for sample_rate in [500.0, 1_000.0, 1_234.567_8, 22_050.0, 48_000.0, 96_000.0, 192_000.0, 705_600.0, 768_000.0] {
        // Blocks of up to 8192 samples; at the lowest rates up to 1024, so that the latency (one
        // maximum block of margin) stays well inside the test signal.
        let max_block = if sample_rate < 8_000.0 { 1024 } else { 8192 };
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_block };
        let input = music((6 * max_block as usize).max((0.25 * sample_rate) as usize));
        let blocks = [1usize, max_block as usize, 7, max_block as usize, 64];
        let mut next = blocks.iter().copied().cycle();
        let before = threads();
        let ports = demixer_host_tests::render(
            &mut instance,
            config,
            &input,
            &[],
            None,
            || next.next().unwrap(),
            |_, _| {
                assert_eq!(threads(), before + 1, "one worker thread while active");
            },
        );
        // A joined thread leaves /proc/self/task a moment after `pthread_join` returns (the
        // kernel unhashes it after waking the joiner), so look until it has gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while threads() > before && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(threads(), before, "deactivation left the worker running at {sample_rate} Hz: {:?}", names());
        assert!(ports.iter().flatten().flatten().all(|x| x.is_finite()));
        let sounding = |port: usize| ports[port][0].iter().any(|&x| x != 0.0);
        let processor = activate(&mut instance, config);
        let reported = latency(&mut instance);
        instance.deactivate(processor);
        let mix_error =
            (reported..input[0].len()).map(|t| (ports[0][0][t] - input[0][t - reported]).abs()).fold(0.0, f32::max);
        assert!(mix_error < 1e-4, "the mix is the input at the reported latency at {sample_rate} Hz: {mix_error}");
        if sample_rate < 1_000.0 {
            assert!(!sounding(1) && sounding(3), "at {sample_rate} Hz the input plays through as Other");
        } else {
            assert!(sounding(1) && sounding(2), "nothing separated at {sample_rate} Hz");
        }
    }
}
