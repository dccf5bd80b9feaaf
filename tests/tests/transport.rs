//! Hosts whose timeline does not advance by exactly one block: REAPER at a play rate other than 1
//! (the position moves by the rate times the block), Audacity's VST3 position stuck at 0
//! (audacity#12144), a position that jitters by a sample either way (a seconds timeline rounded
//! to samples), and one that steps a sample too far every block. A position is a hint: the stems
//! of a continuous stream never depend on it, and the main output is the delayed input at unity
//! whatever the host reports. The plugin is a release build with `assert_process_allocs`; the
//! real-time test calls `process` at an audio interface's pace ([`RealtimeClock`]).

use clack_extensions::render::RenderMode;
use demixer_host_tests::{
    Build, DEFAULT_CONFIG, PORTS, Ports, Processing, RealtimeClock, SR, latency, load, music, set_mode,
};

const BLOCK: usize = 512;

/// How a host reports the timeline position of each block.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    /// Stopped: no position.
    Stopped,
    /// Advances by exactly the block, as it should.
    Steady,
    /// Advances by the block times this rate (REAPER's play rate).
    Rate(f64),
    /// The block's start, off by -1, 0 or +1 sample at random.
    Jitter,
    /// Always 0 (Audacity's VST3 host).
    Stuck,
    /// Advances by one sample more than the block.
    OffByOne,
}

impl Transport {
    const WEIRD: [Transport; 7] = [
        Transport::Rate(0.5),
        Transport::Rate(0.75),
        Transport::Rate(0.9),
        Transport::Rate(1.001),
        Transport::Jitter,
        Transport::Stuck,
        Transport::OffByOne,
    ];

    /// The position the host reports for block `index`, which starts at input frame `start`.
    fn position(self, index: usize, start: usize) -> Option<i64> {
        let start = start as i64;
        match self {
            Transport::Stopped => None,
            Transport::Steady => Some(start),
            Transport::Rate(rate) => Some((start as f64 * rate).round() as i64),
            Transport::Jitter => {
                let noise = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61;
                Some(start + noise as i64 % 3 - 1)
            }
            Transport::Stuck => Some(0),
            Transport::OffByOne => Some(start + index as i64),
        }
    }
}

/// Plays `input` through a new instance in `mode`, in blocks of [`BLOCK`], the host reporting
/// `transport`; in real time at an audio interface's pace. Returns the ports and the latency.
fn play(input: &[Vec<f32>; 2], transport: Transport, mode: RenderMode) -> (Ports, usize) {
    let (_entry, mut instance) = load(Build::CheckedRelease);
    set_mode(&mut instance, mode);
    let mut processing = Processing::start(&mut instance, DEFAULT_CONFIG);
    let reported = latency(&mut instance);
    let mut ports: Ports = (0..PORTS).map(|_| [Vec::new(), Vec::new()]).collect();
    let mut clock = RealtimeClock::start();
    for (index, start) in (0..input[0].len()).step_by(BLOCK).enumerate() {
        let end = (start + BLOCK).min(input[0].len());
        if mode == RenderMode::Realtime {
            clock.wait(end - start);
        }
        let block = [&input[0][start..end], &input[1][start..end]];
        let out = processing.block_at(block, &[], transport.position(index, start));
        for (all, part) in ports.iter_mut().zip(&out) {
            all[0].extend_from_slice(&part[0]);
            all[1].extend_from_slice(&part[1]);
        }
    }
    processing.stop(&mut instance);
    (ports, reported)
}

/// The main output against the input `latency` earlier, from the latency on: the error's energy
/// over the input's in dB, and how many blocks hold any error.
fn mix_error(ports: &Ports, input: &[Vec<f32>; 2], latency: usize) -> (f64, usize) {
    let (mut error, mut signal, mut blocks) = (0.0f64, 0.0f64, 0);
    for block in (latency..input[0].len()).step_by(BLOCK) {
        let end = (block + BLOCK).min(input[0].len());
        let mut wrong = false;
        for channel in 0..2 {
            for t in block..end {
                let (got, want) = (ports[0][channel][t] as f64, input[channel][t - latency] as f64);
                error += (got - want).powi(2);
                signal += want.powi(2);
                wrong |= got != want;
            }
        }
        blocks += usize::from(wrong);
    }
    (10.0 * (error / signal).log10(), blocks)
}

/// Each stem port's share of the stems' energy from frame `from` on.
fn shares(ports: &Ports, from: usize) -> Vec<f64> {
    let energy: Vec<f64> =
        ports[1..].iter().map(|stem| stem.iter().flat_map(|c| &c[from..]).map(|&x| (x as f64).powi(2)).sum()).collect();
    let total: f64 = energy.iter().sum();
    energy.iter().map(|e| e / total).collect()
}

#[test]
fn in_real_time_the_mix_is_the_delayed_input_and_the_stems_are_the_songs_whatever_the_position() {
    let input = music(3 * SR as usize);
    let runs: Vec<(Transport, Ports, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = [Transport::Steady]
            .into_iter()
            .chain(Transport::WEIRD)
            .map(|transport| {
                let input = &input;
                scope.spawn(move || {
                    let (ports, latency) = play(input, transport, RenderMode::Realtime);
                    (transport, ports, latency)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (_, steady, latency) = &runs[0];
    let settled = 2 * latency;
    let want = shares(steady, settled);
    for (transport, ports, latency) in &runs {
        let (db, blocks) = mix_error(ports, &input, *latency);
        let got = shares(ports, settled);
        eprintln!("{transport:?}: main output {db:.1} dB from the delayed input in {blocks} blocks; stems {got:.3?}");
        assert_eq!(blocks, 0, "{transport:?}: the main output is not the delayed input ({db:.1} dB)");
        // At unity the mix is the delayed input whatever the stems hold; the stems must add up to
        // it too (a cache playing other audio would not).
        for (channel, mix) in ports[0].iter().enumerate() {
            let apart = (settled..mix.len())
                .map(|t| (ports[1..].iter().map(|stem| stem[channel][t]).sum::<f32>() - mix[t]).abs())
                .fold(0.0, f32::max);
            assert!(apart < 1e-4, "{transport:?}: the stems are {apart} from the mix on channel {channel}");
        }
        for (stem, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 0.02, "{transport:?}: stem {stem} has {g:.3} of the energy, a steady host {w:.3}");
        }
    }
}

#[test]
fn offline_the_stems_do_not_depend_on_the_position_the_host_reports() {
    let input = music(2 * SR as usize);
    let (stopped, latency) = play(&input, Transport::Stopped, RenderMode::Offline);
    assert!(shares(&stopped, latency).iter().all(|&share| share > 0.01), "every stem sounds");
    for transport in [Transport::Steady].into_iter().chain(Transport::WEIRD) {
        let (ports, _) = play(&input, transport, RenderMode::Offline);
        eprintln!("{transport:?} offline: stems {:.3?}", shares(&ports, latency));
        for (port, (got, want)) in ports.iter().zip(&stopped).enumerate() {
            assert!(got == want, "{transport:?}: port {port} differs from the same input with the transport stopped");
        }
    }
}
