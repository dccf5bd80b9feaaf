//! `demixer`: separates songs into drums, bass, other and vocals stems.

mod audio;
mod engines;
mod inputs;
mod models;
mod output;
mod song;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use demixer_dsp::hpss::{HpssConfig, Preset};
use demixer_dsp::onnx::{Device, Mode, OnnxConfig, SessionOptions};
use demixer_dsp::{EngineSpec, Stem};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use audio::SampleFormat;
use engines::Engines;
use song::Job;

/// Exit status when every file was separated but some ended early (a cut or damaged file):
/// the stems hold what could be read. 1 means a file could not be separated at all.
const INCOMPLETE: u8 = 3;

#[derive(Parser)]
#[command(name = "demixer", version, about = "Split songs into drums, bass, other and vocals stems")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Separate audio files (WAV, RF64, Wave64, FLAC, MP3, OGG) into `<out>/<song>/<stem>.wav`.
    /// Exit status: 0 all separated; 1 a file failed (the others are still done) or bad options;
    /// 3 some file ended early (its readable part was separated); 130 interrupted (unfinished
    /// stems removed).
    Separate {
        /// Audio files or folders (searched recursively; stems this tool wrote are skipped).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long, default_value = "stems")]
        out: PathBuf,
        /// Stems to write, comma-separated (drums,bass,other,vocals; guitar,piano from six-stem
        /// models). Default: every stem the engine makes.
        #[arg(long, value_delimiter = ',', value_parser = parse_stem)]
        stems: Option<Vec<Stem>>,
        /// Separation engine: the built-in HPSS (the default without --model), or an ONNX model
        /// (the default with --model).
        #[arg(long, value_enum)]
        engine: Option<EngineName>,
        /// HPSS preset: low (< 30 ms), normal (< 100 ms) or high (~250 ms) latency.
        #[arg(long, value_parser = parse_preset, default_value = "normal")]
        preset: Preset,
        #[command(flatten)]
        onnx: OnnxArgs,
        /// Sample format of the stem files.
        #[arg(long, value_enum, default_value_t = SampleFormat::F32)]
        format: SampleFormat,
        /// In integer formats, scale all stems of a song by one gain where they would clip, so they
        /// keep summing to the input (times that gain, which is reported). Without it, samples
        /// beyond full scale are clipped, with a warning.
        #[arg(long)]
        fit: bool,
        /// Replace the stems a song's folder holds already (an earlier run, another song of the
        /// same name): the folder then holds this song's stems only. Without it such a song is
        /// refused and its folder kept. An input is never written over.
        #[arg(long)]
        overwrite: bool,
        /// Files separated at once, at least 1 (default: one per core; one with --engine onnx);
        /// at most one per file and per core.
        #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
        jobs: Option<u32>,
    },
    /// Models: the catalog, verified downloads, the library of installed models (`--model NAME`).
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
        /// ONNX Runtime library (file or folder) to check models with; else found as for `separate`.
        #[arg(long, global = true)]
        ort: Option<PathBuf>,
    },
    /// Show what each HPSS preset becomes at a sample rate: STFT, kernels and latency.
    Presets {
        /// Sample rate in Hz.
        #[arg(long, default_value_t = 44_100.0)]
        sample_rate: f32,
    },
}

/// The engines `--engine` names.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineName {
    /// Median-filter harmonic/percussive separation, built in.
    Hpss,
    /// A trained model run by ONNX Runtime (--model): segment (HT-Demucs), streaming or
    /// spectrogram (Spleeter) models.
    Onnx,
}

/// Options of the ONNX engine.
#[derive(clap::Args)]
struct OnnxArgs {
    /// An installed model's name (`demixer models list`, e.g. spleeter-2stems), an ONNX model file
    /// told apart by its inputs (segment: `mix` [1,2,T] to `stems` [1,S,2,T]; streaming: audio
    /// [1,2,H] and states; spectrogram: [1,2,T,F] magnitudes; docs/models.md) or a bag manifest
    /// (`.json`).
    #[arg(long)]
    model: Option<String>,
    /// Where inference runs: auto (CUDA if it registers), cpu or cuda.
    #[arg(long, value_parser = parse_device, default_value = "auto")]
    device: Device,
    /// CPU threads for inference (default: ONNX Runtime's choice, all cores, for a segment model;
    /// one for a streaming model).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// ONNX Runtime library (file, or a folder holding libonnxruntime.so or the wheel's versioned
    /// libonnxruntime.so.X.Y.Z); else DEMIXER_ORT_DYLIB, ORT_DYLIB_PATH, next to this program, the
    /// runtime `demixer models runtime --download` installed, then the system's library path.
    #[arg(long)]
    ort: Option<PathBuf>,
    /// How a spectrogram model (Spleeter) runs: offline, in its own chunks as its reference
    /// implementation does (exact); live, in the plugin's low-latency sliding window (to hear
    /// what the plugin plays in real time).
    #[arg(long, value_enum, default_value_t = ModeName::Offline)]
    mode: ModeName,
}

/// The modes `--mode` names.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModeName {
    /// The model's reference behaviour.
    Offline,
    /// The plugin's real-time variant.
    Live,
}

fn parse_stem(name: &str) -> Result<Stem, String> {
    Stem::from_name(name).ok_or_else(|| format!("unknown stem '{name}' (drums, bass, other, vocals, guitar, piano)"))
}

fn parse_device(name: &str) -> Result<Device, String> {
    Device::from_name(name).ok_or_else(|| format!("unknown device '{name}' (auto, cpu, cuda)"))
}

/// The engine the options ask for; a `--model` name is looked up in the model library.
fn engine_spec(name: Option<EngineName>, preset: Preset, onnx: OnnxArgs) -> Result<EngineSpec> {
    match (name, onnx.model) {
        (None | Some(EngineName::Hpss), None) => Ok(EngineSpec::Hpss(preset)),
        (Some(EngineName::Hpss), Some(_)) => bail!("--model is for --engine onnx, not hpss"),
        (Some(EngineName::Onnx), None) => {
            bail!("--engine onnx needs --model <name, file.onnx or bag.json> (see `demixer models list`)")
        }
        (_, Some(model)) => {
            let library = demixer_models::Library::open()?;
            let model = library.resolve(&model).map_err(|e| match e {
                demixer_models::LibraryError::NotInstalled { ref name, .. } => {
                    anyhow::anyhow!("{e}; get it with `demixer models download {name}` or give a model file's path")
                }
                other => other.into(),
            })?;
            let threads = at_most_cores("--threads", onnx.threads);
            let session = SessionOptions { device: onnx.device, threads, max_auto_threads: None };
            let installed_runtime = library.installed_runtime();
            let mode = if onnx.mode == ModeName::Live { Mode::Live } else { Mode::Offline };
            Ok(EngineSpec::Model(OnnxConfig { model: model.path, runtime: onnx.ort, installed_runtime, session, mode }))
        }
    }
}

/// Builds the engine pool (a model is loaded and checked here) and says what runs.
fn engines(spec: EngineSpec) -> Result<Engines> {
    let (engines, description) = Engines::new(spec)?;
    if let Some(description) = description {
        eprintln!("Model: {description}");
    }
    Ok(engines)
}

fn parse_preset(name: &str) -> Result<Preset, String> {
    Preset::from_name(name).ok_or_else(|| format!("unknown preset '{name}' (low, normal, high)"))
}

/// The cores this machine has (1 where it cannot tell).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `asked` (threads of some kind, 0 for the default), at most one per core: more only add
/// threads that wait. Says so where it cuts.
fn at_most_cores(option: &str, asked: usize) -> usize {
    let cores = cores();
    if asked > cores {
        eprintln!("note: {option} {asked}: this machine has {cores} cores; using {cores}");
        return cores;
    }
    asked
}

/// Songs separated at once: as asked (default: one per core, or one for a model, which uses
/// every core for each song), at most one per file and one per core; says so where it cuts what
/// was asked.
fn job_count(asked: Option<u32>, model: bool, files: usize) -> usize {
    let cores = cores();
    let wanted = asked.map_or(if model { 1 } else { cores }, |n| n as usize);
    let jobs = wanted.min(files).min(cores).max(1);
    if let Some(asked) = asked.filter(|&n| n as usize > jobs) {
        eprintln!("note: --jobs {asked}: {jobs} at a time ({files} files, {cores} cores)");
    }
    jobs
}

/// How a batch went: files that failed, and files that ended early (their readable part was
/// separated).
#[derive(Default)]
struct Tally {
    failed: usize,
    incomplete: usize,
}

fn separate_all(files: &[PathBuf], songs: Vec<String>, job: &Job, jobs: usize) -> Result<Tally> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(files.len() as u64));
    overall.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} songs  {elapsed}").unwrap());
    let tally = Mutex::new(Tally::default());
    pool.install(|| {
        files.par_iter().zip(songs).for_each(|(file, song)| {
            let bar = bars.insert_before(&overall, ProgressBar::new(1000));
            bar.set_style(ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}").unwrap());
            bar.set_message(file.display().to_string());
            let result = job.run(file, &song, &mut |fraction| bar.set_position((fraction * 1000.0) as u64));
            bar.finish_and_clear();
            match result {
                Ok(outcome) => bars.suspend(|| {
                    println!("{} -> {}", file.display(), outcome.dir.display());
                    for note in &outcome.notes {
                        eprintln!("warning: {}: {note}", file.display());
                    }
                    if let Some(why) = &outcome.incomplete {
                        eprintln!("warning: {}: {why}; the stems hold what was read", file.display());
                        tally.lock().unwrap().incomplete += 1;
                    }
                }),
                Err(e) => {
                    bars.suspend(|| eprintln!("error: {}: {e:#}", file.display()));
                    tally.lock().unwrap().failed += 1;
                }
            }
            overall.inc(1);
        })
    });
    overall.finish_and_clear();
    Ok(tally.into_inner().unwrap())
}

fn print_presets(sample_rate: f32) -> Result<()> {
    for preset in Preset::ALL {
        let c = HpssConfig::preset(preset, sample_rate)?;
        println!(
            "{:<7} fft={} hop={} harmonic={} percussive={} lookahead={} margin={}/{} power={} latency={} samples ({:.1} ms)",
            preset.name(),
            c.fft_size,
            c.hop,
            c.harmonic_frames,
            c.percussive_bins,
            c.lookahead_frames,
            c.margin_harmonic,
            c.margin_percussive,
            c.power,
            c.latency_samples(),
            c.latency_samples() as f32 * 1000.0 / sample_rate
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    // Piped into `head`, end quietly as other command-line tools do, rather than panic on the
    // closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default action of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let (inputs, out, stems, engine_name, preset, onnx, format, fit, overwrite, jobs) = match Cli::parse().command {
        Command::Separate { inputs, out, stems, engine, preset, onnx, format, fit, overwrite, jobs } => {
            (inputs, out, stems, engine, preset, onnx, format, fit, overwrite, jobs)
        }
        Command::Models { command, ort } => {
            return match models::run(command, ort) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Presets { sample_rate } => {
            return match print_presets(sample_rate) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    if let Err(e) = output::clean_up_on_interrupt() {
        eprintln!("warning: {e:#}; an interruption may leave unfinished stems under temporary names");
    }
    let model = engine_name == Some(EngineName::Onnx) || onnx.model.is_some();
    let outcome = engine_spec(engine_name, preset, onnx).and_then(engines).and_then(|engines| {
        let collected = inputs::collect(&inputs, &out)?;
        if collected.own_stems > 0 {
            eprintln!(
                "note: {} stems written by demixer were found in the folders and left out (give them as files to \
                 separate them again)",
                collected.own_stems
            );
        }
        let files = collected.files;
        let songs = inputs::existing_spellings(&out, inputs::song_names(&files));
        let jobs = job_count(jobs, model, files.len());
        let job = Job { out_dir: out, stems, engines, format, fit, overwrite, inputs: collected.identities };
        Ok((files.len(), separate_all(&files, songs, &job, jobs)?))
    });
    match outcome {
        Ok((_, Tally { failed: 0, incomplete: 0 })) => ExitCode::SUCCESS,
        Ok((total, Tally { failed: 0, incomplete })) => {
            eprintln!("{incomplete} of {total} files ended early (their readable part was separated)");
            ExitCode::from(INCOMPLETE)
        }
        Ok((total, Tally { failed, .. })) => {
            eprintln!("{failed} of {total} files failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
