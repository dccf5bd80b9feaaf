//! `demixer`: separates songs into drums, bass, other and vocals stems.

mod audio;
mod models;
mod song;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use demixer_dsp::hpss::{HpssConfig, Preset};
use demixer_dsp::onnx::{Device, Mode, OnnxConfig, SessionOptions};
use demixer_dsp::{EngineSpec, Stem};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

use audio::{AUDIO_EXTENSIONS, SampleFormat};
use song::{Engines, Job};

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
    /// Separate audio files (WAV, FLAC, MP3, OGG) into `<out>/<song>/<stem>.wav`. Exit status: 0
    /// all separated; 1 a file failed (the others are still done) or bad options; 3 some file
    /// ended early (its readable part was separated).
    Separate {
        /// Audio files or folders (searched recursively).
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
        /// Files separated at once (default: one per core; one with --engine onnx).
        #[arg(short, long)]
        jobs: Option<usize>,
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
    /// An HT-Demucs (Demucs-family) ONNX model run by ONNX Runtime.
    Onnx,
}

/// Options of the ONNX engine.
#[derive(clap::Args)]
struct OnnxArgs {
    /// An installed model's name (`demixer models list`), an ONNX model file (`.onnx`, input `mix`
    /// [1,2,T], output `stems` [1,S,2,T]) or a bag manifest (`.json`).
    #[arg(long)]
    model: Option<String>,
    /// Where inference runs: auto (CUDA if it registers), cpu or cuda.
    #[arg(long, value_parser = parse_device, default_value = "auto")]
    device: Device,
    /// CPU threads for inference (default: ONNX Runtime's choice, all cores, for a segment model;
    /// one for a streaming model).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// ONNX Runtime library (file or folder); else DEMIXER_ORT_DYLIB, ORT_DYLIB_PATH, next to this
    /// program, then the system's library path.
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
            let session = SessionOptions { device: onnx.device, threads: onnx.threads, max_auto_threads: None };
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

/// Expands folders into the audio files they contain, sorted; files are kept as given.
fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        paths.sort();
        for path in paths {
            let is_audio = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if path.is_dir() {
                walk(&path, found)?;
            } else if is_audio {
                found.push(path);
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut found)?;
        } else {
            found.push(input.clone());
        }
    }
    if found.is_empty() {
        bail!("no audio files found in the given folders");
    }
    Ok(found)
}

/// Output folder names: the file name without extension, or with it where two inputs would
/// otherwise share a folder, plus a counter where even that is not unique.
fn song_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |f: &PathBuf| f.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    let mut taken = std::collections::HashSet::new();
    files
        .iter()
        .map(|file| {
            let shared = files.iter().filter(|other| stem(other) == stem(file)).count() > 1;
            let base =
                if shared { file.file_name().unwrap_or_default().to_string_lossy().into_owned() } else { stem(file) };
            let mut name = base.clone();
            for n in 2.. {
                if taken.insert(name.clone()) {
                    break;
                }
                name = format!("{base}-{n}");
            }
            name
        })
        .collect()
}

/// How a batch went: files that failed, and files that ended early (their readable part was
/// separated).
#[derive(Default)]
struct Tally {
    failed: usize,
    incomplete: usize,
}

fn separate_all(files: &[PathBuf], job: &Job, jobs: Option<usize>) -> Result<Tally> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build()?;
    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(files.len() as u64));
    overall.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} songs  {elapsed}").unwrap());
    let tally = Mutex::new(Tally::default());
    pool.install(|| {
        files.par_iter().zip(song_names(files)).for_each(|(file, song)| {
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
    let (inputs, out, stems, engine_name, preset, onnx, format, fit, jobs) = match Cli::parse().command {
        Command::Separate { inputs, out, stems, engine, preset, onnx, format, fit, jobs } => {
            (inputs, out, stems, engine, preset, onnx, format, fit, jobs)
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
    // An ONNX model uses every core for each song: songs go one at a time unless asked otherwise.
    let jobs = jobs.or((engine_name == Some(EngineName::Onnx) || onnx.model.is_some()).then_some(1));
    let outcome = engine_spec(engine_name, preset, onnx).and_then(engines).and_then(|engines| {
        let job = Job { out_dir: out, stems, engines, format, fit };
        let files = collect_inputs(&inputs)?;
        Ok((files.len(), separate_all(&files, &job, jobs)?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn songs_with_the_same_name_get_their_own_folders() {
        let files: Vec<PathBuf> = ["a/song.mp3", "a/song.wav", "b/song.wav", "c/other.flac"].map(PathBuf::from).into();
        assert_eq!(song_names(&files), ["song.mp3", "song.wav", "song.wav-2", "other"]);
    }
}
