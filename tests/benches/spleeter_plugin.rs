//! Spleeter in the plugin, in one run: the release plugin loaded through CLAP with the installed
//! `spleeter-2stems` model (`demixer models download spleeter-2stems`), giving
//! - the parity of an offline bounce's vocals with Deezer's own separation of the same song,
//! - the latency the plugin reports in real time once the model has taken over (512-sample blocks),
//! - the whole process's CPU time while it plays 30 s paced as an audio interface paces it (the
//!   audio thread, the worker with one ONNX Runtime thread, the HPSS completion and cover).
//!
//! The song and Deezer's vocals are 44.1 kHz WAV files (the committed clip:
//! `python3 -c "import soundfile as sf; [sf.write(o, *sf.read(i), subtype='FLOAT') for i, o in
//! (('examples/song.flac', '/tmp/song.wav'), ('tests/models/fixtures/spleeter_reference/vocals.flac',
//! '/tmp/deezer.wav'))]"`):
//!
//!     cargo bench -p demixer-host-tests --bench spleeter_plugin -- /tmp/song.wav /tmp/deezer.wav
//!
//! ONNX Runtime comes from DEMIXER_ORT_DYLIB. Linux only (CPU time from /proc/self/stat).

use std::time::{Duration, Instant};

use clack_extensions::render::RenderMode;
use clack_host::prelude::PluginAudioConfiguration;
use demixer_host_tests::{
    Build, DEFAULT_CONFIG, Processing, RealtimeClock, SR, activate_until_settled, choose_model, latency, load, render,
    restart_requested, set_mode,
};

const MODEL: &str = "spleeter-2stems";
const BLOCK: usize = 512;
const PLAYED_S: usize = 30;
/// The Vocals output port.
const VOCALS: usize = 4;

/// A stereo WAV file as two channels of f32.
fn read(path: &str) -> [Vec<f32>; 2] {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (SR as u32, 2), "{path}: 44.1 kHz stereo");
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => {
            let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.unwrap() as f32 / scale).collect()
        }
    };
    [samples.iter().step_by(2).copied().collect(), samples.iter().skip(1).step_by(2).copied().collect()]
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [song_path, reference_path] = &paths[..] else {
        panic!("usage: cargo bench -p demixer-host-tests --bench spleeter_plugin -- SONG.wav DEEZER_VOCALS.wav")
    };
    let (song, reference) = (read(song_path), read(reference_path));
    let installed =
        demixer_models::library::Library::open().and_then(|l| l.get(MODEL)).expect("spleeter-2stems installed");
    let blocks = PluginAudioConfiguration { max_frames_count: BLOCK as u32, ..DEFAULT_CONFIG };

    // An offline bounce: the song, then silence for the latency; the vocals from `latency` on.
    let (_entry, mut instance) = load(Build::Release);
    choose_model(&mut instance, MODEL, &installed.sha256);
    let offline = set_mode(&mut instance, RenderMode::Offline);
    let padded = song.clone().map(|mut c| {
        c.resize(c.len() + offline, 0.0);
        c
    });
    let ports = render(&mut instance, DEFAULT_CONFIG, &padded, &[], None, || BLOCK, |_, _| {});
    let len = reference[0].len().min(song[0].len());
    let (mut error, mut energy) = (0.0f64, 0.0f64);
    for (port, want) in ports[VOCALS].iter().zip(&reference) {
        for t in 0..len {
            error += (port[t + offline] as f64 - want[t] as f64).powi(2);
            energy += (want[t] as f64).powi(2);
        }
    }
    println!("offline bounce: latency {offline} samples; vocals vs Deezer's {:.1} dB", 10.0 * (error / energy).log10());

    // Real time: HPSS plays while the model loads; the host restarts the plugin when it asks.
    let (_entry, mut instance) = load(Build::Release);
    choose_model(&mut instance, MODEL, &installed.sha256);
    set_mode(&mut instance, RenderMode::Realtime);
    let mut processing = Processing::start(&mut instance, blocks);
    let mut clock = RealtimeClock::start();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut played = 0;
    let block = |processing: &mut Processing, played: &mut usize| {
        let at = *played % (song[0].len() - BLOCK);
        processing.block([&song[0][at..at + BLOCK], &song[1][at..at + BLOCK]], &[]);
        *played += BLOCK;
    };
    // Restarts until the model's latency is reported (the first may be HPSS's, for the block size).
    let live = loop {
        while !restart_requested(&mut instance) {
            assert!(Instant::now() < deadline, "the model never took over");
            clock.wait(BLOCK);
            block(&mut processing, &mut played);
        }
        processing.stop(&mut instance);
        let (processor, _) = activate_until_settled(&mut instance, blocks);
        let reported = latency(&mut instance);
        instance.deactivate(processor);
        processing = Processing::start(&mut instance, blocks);
        if reported as f64 > SR {
            break reported;
        }
    };
    let mut clock = RealtimeClock::start();
    let (cpu, wall) = (cpu_time(), Instant::now());
    let mut slowest = Duration::ZERO;
    for _ in 0..PLAYED_S * SR as usize / BLOCK {
        clock.wait(BLOCK);
        block(&mut processing, &mut played);
        slowest = slowest.max(processing.last_duration);
    }
    let (cpu, wall) = (cpu_time() - cpu, wall.elapsed());
    processing.stop(&mut instance);
    println!(
        "real time: latency {live} samples ({:.3} s); {PLAYED_S} s played in {:.1} s: CPU {:.2} s = {:.1} % of one core \
         ({:.1}x real time); slowest process() {:.0} µs",
        live as f64 / SR,
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        PLAYED_S as f64 / cpu.as_secs_f64(),
        slowest.as_secs_f64() * 1e6
    );
}
