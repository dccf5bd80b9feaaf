//! The plugin at every sample rate and block size it supports, and its worker thread's lifetime
//! (a test binary of its own, so that no other test's threads are counted).

use clack_extensions::render::RenderMode;
use clack_host::prelude::*;
use demixer_host_tests::{Build, load, music, set_mode};

#[test]
fn every_rate_and_block_size_works_and_deactivation_stops_the_worker() {
    let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
    let (_entry, mut instance) = load(Build::Checked);
    set_mode(&mut instance, RenderMode::Offline);
    for sample_rate in [22_050.0, 48_000.0, 96_000.0, 192_000.0] {
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: 8192 };
        let input = music(3 * 8192);
        let blocks = [1usize, 8192, 7, 8192, 64];
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
        assert_eq!(threads(), before, "deactivation left the worker running at {sample_rate} Hz");
        assert!(ports.iter().flatten().flatten().all(|x| x.is_finite()));
        assert!(ports[1..].iter().any(|p| p[0].iter().any(|&x| x != 0.0)), "nothing separated at {sample_rate} Hz");
    }
}
