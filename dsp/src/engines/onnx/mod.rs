//! The ONNX engines: models run by ONNX Runtime through `ort`, of three kinds told apart by their
//! inputs: segment models (HT-Demucs exports: `contract.rs`), streaming models (`streaming.rs`) and
//! spectrogram models (Spleeter: `spectrogram.rs`).
//!
//! [`load`] finds the runtime ([`runtime`]), opens the model or bag of models (`model.rs`) and
//! checks it against its contract, warms it up, and streams it: segments with Demucs' overlap-add
//! ([`crate::OverlapAdd`]), hops one by one (`HopStream`), spectrograms chunk by chunk
//! ([`crate::MaskedStft`]); resampled when the stream's rate is not the model's
//! ([`crate::Resampled`]), and completed by HPSS where the model gives fewer than the four stems
//! ([`crate::Completed`]). Loading is slow (seconds); callers do it off the audio thread.

mod contract;
mod error;
pub mod inspect;
mod model;
pub mod runtime;
mod spectrogram;
mod streaming;

use std::path::{Path, PathBuf};

use crate::compose::completed::Completed;
use crate::compose::resampled::Resampled;
use crate::engine::{Engine, EngineKind};
use crate::engines::hpss::{HpssConfig, HpssSeparator, Preset};
use crate::engines::segments::{OverlapAdd, SegmentModel, check_output};
use crate::engines::spectrogram::MaskedStft;
use crate::separator::Separator;
use crate::stem::Stem;
pub use contract::sidecar_path;
pub use error::OnnxError;
pub use inspect::{Inspection, inspect};
use model::Contract;
pub use model::{Device, Mode, ModelFile, Provider, SessionOptions};
use model::{ModelSet, OnnxModel};
use spectrogram::SpectrogramOnnx;
use streaming::{HopStream, StreamingModel};
pub use streaming::{Pairing, State};

/// What to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnnxConfig {
    /// A model (`.onnx`) or a bag manifest (`.json`: `{"bag": {"drums": "drums.onnx", ...}}`, paths
    /// relative to the manifest).
    pub model: PathBuf,
    /// A user-chosen ONNX Runtime library (file or folder), tried before the other places.
    pub runtime: Option<PathBuf>,
    /// The ONNX Runtime library Demixer installed (`demixer models runtime --download`), tried
    /// after the environment variables and before the system's library path.
    pub installed_runtime: Option<PathBuf>,
    /// Device and threads.
    pub session: SessionOptions,
    /// Offline (the model's reference behaviour) or live (the lowest latency).
    pub mode: Mode,
}

/// Reads a bag manifest, `{"bag": {"<stem>": "<model path>", ...}}`, in stem order.
fn read_bag(manifest: &Path) -> Result<Vec<(Stem, PathBuf)>, OnnxError> {
    let refuse = |why: String| OnnxError::Bag(format!("{}: {why}", manifest.display()));
    let text = std::fs::read_to_string(manifest).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| refuse(format!("not valid JSON: {e}")))?;
    let Some(bag) = json.get("bag").and_then(serde_json::Value::as_object) else {
        return Err(refuse("expected {\"bag\": {\"drums\": \"drums.onnx\", ...}}".into()));
    };
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let mut picks = bag
        .iter()
        .map(|(stem, file)| {
            let stem = Stem::from_name(stem).ok_or_else(|| refuse(format!("unknown stem '{stem}'")))?;
            let file = file.as_str().ok_or_else(|| refuse(format!("the {stem} entry must be a path")))?;
            Ok((stem, dir.join(file)))
        })
        .collect::<Result<Vec<_>, OnnxError>>()?;
    picks.sort_by_key(|(stem, _)| stem.index());
    Ok(picks)
}

/// Opens the model or bag named by `config`.
fn open_set(config: &OnnxConfig, runtime: &runtime::Runtime) -> Result<ModelSet, OnnxError> {
    let is_manifest = config.model.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_manifest {
        return Ok(ModelSet::single(OnnxModel::open(runtime, &config.model, &config.session)?));
    }
    let picks = read_bag(&config.model)?
        .into_iter()
        .map(|(stem, path)| Ok((stem, OnnxModel::open(runtime, &path, &config.session)?)))
        .collect::<Result<Vec<_>, OnnxError>>()?;
    ModelSet::bag(picks)
}

/// A model file opened and checked against the contract its inputs call for.
pub(crate) enum Opened {
    /// A segment model or bag.
    Segments(ModelSet),
    /// A streaming model.
    Streaming(StreamingModel),
    /// A spectrogram model.
    Spectrogram(SpectrogramOnnx),
}

/// Opens `config`'s model: a bag manifest or a one-input model as segments, a model with state
/// inputs as a streaming model, a four-dimensional input as a spectrogram model (its session made
/// again with its own thread default if that differs).
pub(crate) fn open(config: &OnnxConfig, runtime: &runtime::Runtime) -> Result<Opened, OnnxError> {
    let is_manifest = config.model.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_manifest {
        return Ok(Opened::Segments(open_set(config, runtime)?));
    }
    let (path, options, mode) = (config.model.as_path(), &config.session, config.mode);
    let opened = model::open_session(runtime, path, options, Contract::Segment, mode)?;
    let contract = Contract::of(&opened.session);
    if contract == Contract::Segment {
        return Ok(Opened::Segments(ModelSet::single(OnnxModel::from_session(opened)?)));
    }
    let same_threads =
        model::threads_for(options, contract, mode) == model::threads_for(options, Contract::Segment, mode);
    let opened = if same_threads { opened } else { model::open_session(runtime, path, options, contract, mode)? };
    Ok(match contract {
        Contract::Streaming => Opened::Streaming(StreamingModel::from_session(opened)?),
        _ => Opened::Spectrogram(SpectrogramOnnx::from_session(opened)?),
    })
}

/// Wraps `separator`, which runs at `model_rate`, for a stream at `host_rate`, noting resampling.
fn at_host_rate(
    separator: Box<dyn Separator>,
    model_rate: usize,
    host_rate: usize,
    notes: &mut Vec<String>,
) -> Result<Box<dyn Separator>, OnnxError> {
    if model_rate == host_rate {
        return Ok(separator);
    }
    notes.push(format!("resampling {host_rate} Hz to the model's {model_rate} Hz and back"));
    Ok(Box::new(Resampled::new(separator, host_rate, model_rate)?))
}

/// Share of a model's latency that HPSS's completion may add before the causal low preset
/// completes it instead of the normal one.
const COMPLETION_SHARE: f64 = 0.05;

/// HPSS for completing `model` (a model that gives fewer than the four stems, at `host_rate`):
/// the normal preset where its latency adds at most [`COMPLETION_SHARE`] to the model's
/// (Spleeter's 2 s live: 81 ms against the low preset's 23 ms at 44.1 kHz), else the low preset
/// (streaming models: milliseconds). It depends on the model's latency alone, so a model that runs
/// alike in both modes is completed alike too (a model loaded for a bounce plays on in real time).
/// The look-ahead is what the completed stems need: on the vdev split Spleeter live completed by
/// the low preset scored drums 3.66, bass 1.79 dB, by the normal preset 5.67, 2.88 (mean 3.55 ->
/// 4.32, with the live window's look-ahead shortened to keep the latency under 2 s; BENCHMARKS.md,
/// "Spleeter").
fn completion(model: &dyn Separator, host_rate: usize) -> Result<(Preset, HpssSeparator), OnnxError> {
    let config = |preset| HpssConfig::preset(preset, host_rate as f32);
    let normal = config(Preset::Normal)?;
    let model_latency = (model.latency_samples() + model.burst_samples()) as f64;
    if normal.latency_samples() as f64 <= COMPLETION_SHARE * model_latency {
        return Ok((Preset::Normal, HpssSeparator::new(normal)));
    }
    Ok((Preset::Low, HpssSeparator::new(config(Preset::Low)?)))
}

/// The engine around `separator` (at `model_rate`) for a stream at `host_rate`: resampled where
/// the rates differ, completed by HPSS where the model gives fewer than the four stems.
pub(crate) fn for_host(
    separator: Box<dyn Separator>,
    model_rate: usize,
    host_rate: usize,
    notes: &mut Vec<String>,
) -> Result<Box<dyn Separator>, OnnxError> {
    let separator = at_host_rate(separator, model_rate, host_rate, notes)?;
    if crate::compose::completed::complement(separator.sources()).is_none() {
        return Ok(separator);
    }
    let (preset, hpss) = completion(separator.as_ref(), host_rate)?;
    notes.push(format!("HPSS ({} preset) splits what the model leaves into drums, bass and other", preset.name()));
    Ok(Completed::wrap(separator, Box::new(hpss)))
}

/// Loads a streaming model's engine (see [`load`]).
fn load_streaming(
    mut model: StreamingModel,
    runtime: &runtime::Runtime,
    host_rate: usize,
) -> Result<Engine, OnnxError> {
    let spec = model.spec().clone();
    // Warm-up: the first inference allocates; the states go back to zero after it. A model whose
    // output for silence is not audio (NaN) is refused here.
    let (mut scratch, silence) = (vec![0.0; spec.sources.len() * 2 * spec.hop], vec![0.0; 2 * spec.hop]);
    model.run(&silence, &mut scratch)?;
    check_output(&silence, &scratch)?;
    model.reset_states();
    let (provider, file) = (model.opened().provider(), model.opened().file_name());
    let mut notes: Vec<String> = model.opened().cuda_note().map(str::to_string).into_iter().collect();
    let names: Vec<&str> = spec.sources.iter().map(|s| s.name()).collect();
    let description = format!(
        "{file}: streaming, {} (hop {} samples, latency {} samples = {:.1} ms at {} Hz, {} states paired {}) on {provider}, \
         ONNX Runtime {} from {}",
        names.join(", "),
        spec.hop,
        spec.latency,
        spec.latency as f64 * 1000.0 / spec.sample_rate as f64,
        spec.sample_rate,
        spec.states.len(),
        spec.pairing,
        runtime.version,
        runtime.path.display()
    );
    let kind = EngineKind::StreamingModel;
    let name = format!("{} {file} on {provider}", kind.label());
    let separator = for_host(Box::new(HopStream::new(model)), spec.sample_rate, host_rate, &mut notes)?;
    Ok(Engine { kind, separator, provider, name, description, notes })
}

/// Loads a spectrogram model's engine (see [`load`]): its own chunks offline, a sliding window
/// live.
fn load_spectrogram(
    mut model: SpectrogramOnnx,
    runtime: &runtime::Runtime,
    host_rate: usize,
    mode: Mode,
) -> Result<Engine, OnnxError> {
    use crate::engines::spectrogram::SpectrogramModel;
    let declared = model.declared().clone();
    let chunking = if mode == Mode::Live { declared.live_chunking() } else { declared.reference_chunking() };
    // Warm-up: the first inference allocates (and, on CUDA, compiles kernels) for this chunk size.
    let plane = chunking.window * declared.layout.bins;
    let mut scratch = vec![0.0; declared.layout.sources.len() * 2 * plane];
    model.run(&vec![0.0; 2 * plane], chunking.window, &mut scratch)?;
    let (provider, file) = (model.opened().provider(), model.opened().file_name());
    let mut notes: Vec<String> = model.opened().cuda_note().map(str::to_string).into_iter().collect();
    let names: Vec<&str> = declared.layout.sources.iter().map(|s| s.name()).collect();
    let engine = MaskedStft::new(model, chunking);
    let description = format!(
        "{file}: spectrogram, {} ({} mode: the model runs on {} frames and masks {}) on {provider}, \
         ONNX Runtime {} from {}",
        names.join(", "),
        if mode == Mode::Live { "live" } else { "offline" },
        chunking.window,
        chunking.emit,
        runtime.version,
        runtime.path.display()
    );
    let kind = EngineKind::SpectrogramModel;
    let name = format!("{} {file} on {provider}", kind.label());
    let (sources, rate) = (declared.layout.sources.clone(), declared.sample_rate);
    let other_mode = if mode == Mode::Live { Mode::Offline } else { Mode::Live };
    let (_, other) = inspect::Shape::Spectrogram(declared).engine(&sources, rate, host_rate, other_mode)?;
    let separator = for_host(Box::new(engine), rate, host_rate, &mut notes)?;
    let this = separator.latency_samples() + separator.burst_samples();
    notes.push(match mode {
        Mode::Live => format!(
            "live: {:.2} s of latency here; offline renders run the model's own chunks ({:.2} s)",
            this as f64 / host_rate as f64,
            other as f64 / host_rate as f64
        ),
        Mode::Offline => format!(
            "offline: the model's own chunks ({:.2} s of latency here); in real time {:.2} s",
            this as f64 / host_rate as f64,
            other as f64 / host_rate as f64
        ),
    });
    Ok(Engine { kind, separator, provider, name, description, notes })
}

/// Loads the engine for a stream at `host_rate` Hz; its sources are the model's, in its order,
/// or the four stems where HPSS completes a model that gives fewer. The model's inputs say which
/// engine: a segment model (or bag) is streamed with overlap-add, a streaming model runs once per
/// hop, a spectrogram model chunk by chunk. Slow (seconds: sessions and a warm-up inference):
/// call it off the audio thread.
///
/// # Errors
/// Any [`OnnxError`]: no runtime, a missing or unusable model, a failed warm-up, rates that
/// cannot be converted.
pub fn load(config: &OnnxConfig, host_rate: usize) -> Result<Engine, OnnxError> {
    let runtime = runtime::load(config.runtime.as_deref(), config.installed_runtime.as_deref())?;
    let mut set = match open(config, runtime)? {
        Opened::Segments(set) => set,
        Opened::Streaming(model) => return load_streaming(model, runtime, host_rate),
        Opened::Spectrogram(model) => return load_spectrogram(model, runtime, host_rate, config.mode),
    };
    let on_cuda = set.models().all(|m| m.opened().provider() == Provider::Cuda);
    let provider = if on_cuda { Provider::Cuda } else { Provider::Cpu };
    let mut notes: Vec<String> =
        set.models().filter_map(|m| m.opened().cuda_note().map(str::to_string)).take(1).collect();
    // Warm-up: the first inference allocates and, on CUDA, compiles kernels; a model whose output
    // for silence is not audio (NaN) is refused here.
    let (mut scratch, silence) =
        (vec![0.0; set.sources().len() * 2 * set.segment_len()], vec![0.0; 2 * set.segment_len()]);
    set.run(&silence, &mut scratch)?;
    check_output(&silence, &scratch)?;

    let model_rate = set.sample_rate();
    let names: Vec<&str> = set.sources().iter().map(|s| s.name()).collect();
    let files: Vec<String> = set.models().map(|m| m.opened().file_name()).collect();
    let description = format!(
        "{}: {} ({:.2} s segments at {model_rate} Hz) on {provider}, ONNX Runtime {} from {}",
        files.join(" + "),
        names.join(", "),
        set.segment_len() as f32 / model_rate as f32,
        runtime.version,
        runtime.path.display()
    );
    let kind = EngineKind::SegmentModel;
    let name = format!("{} {} on {provider}", kind.label(), files.join(" + "));
    let separator = for_host(Box::new(OverlapAdd::new(set)?), model_rate, host_rate, &mut notes)?;
    Ok(Engine { kind, separator, provider, name, description, notes })
}
