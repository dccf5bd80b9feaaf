//! The ONNX engine: Demucs-family models (HT-Demucs exports) run by ONNX Runtime through `ort`.
//!
//! [`load`] finds the runtime ([`runtime`]), opens the model or bag of models ([`model`]) and checks
//! them against the contract ([`contract`]), warms them up, and streams them with Demucs'
//! overlap-add ([`crate::segments`]), resampled when the stream's rate is not the model's
//! ([`crate::resampled`]). Loading is slow (seconds); callers do it off the audio thread.

pub mod contract;
mod error;
pub mod inspect;
pub mod model;
pub mod runtime;
pub mod streaming;

use std::path::{Path, PathBuf};

pub use crate::engine::Provider;
use crate::engine::{Engine, EngineKind};
use crate::resampled::Resampled;
use crate::segments::{OverlapAdd, SegmentModel};
use crate::{Separator, Stem};
pub use error::OnnxError;
pub use inspect::{Inspection, inspect};
use model::Contract;
pub use model::{Device, ModelSet, OnnxModel, SessionOptions};
pub use streaming::{HopStream, StreamingModel};

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
}

/// Opens `config`'s model: a bag manifest or a one-input model as segments, a model with state
/// inputs as a streaming model (its session made again with its own thread default if that
/// differs).
pub(crate) fn open(config: &OnnxConfig, runtime: &runtime::Runtime) -> Result<Opened, OnnxError> {
    let is_manifest = config.model.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_manifest {
        return Ok(Opened::Segments(open_set(config, runtime)?));
    }
    let (path, options) = (config.model.as_path(), &config.session);
    let opened = model::open_session(runtime, path, options, Contract::Segment)?;
    if Contract::of(&opened.session) == Contract::Segment {
        let model = OnnxModel::from_session(opened.session, path, opened.provider, opened.cuda_note)?;
        return Ok(Opened::Segments(ModelSet::single(model)));
    }
    let opened = if model::threads_for(options, Contract::Streaming) == model::threads_for(options, Contract::Segment) {
        opened
    } else {
        model::open_session(runtime, path, options, Contract::Streaming)?
    };
    Ok(Opened::Streaming(StreamingModel::from_session(opened.session, path, opened.provider, opened.cuda_note)?))
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

/// Loads a streaming model's engine (see [`load`]).
fn load_streaming(
    mut model: StreamingModel,
    runtime: &runtime::Runtime,
    host_rate: usize,
) -> Result<Engine, OnnxError> {
    let spec = model.spec().clone();
    // Warm-up: the first inference allocates; the states go back to zero after it.
    let mut scratch = vec![0.0; spec.sources.len() * 2 * spec.hop];
    model.run(&vec![0.0; 2 * spec.hop], &mut scratch)?;
    model.reset_states();
    let provider = model.provider();
    let mut notes: Vec<String> = model.cuda_note.clone().into_iter().collect();
    let file = model.path().file_name().unwrap_or_default().to_string_lossy().into_owned();
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
    let separator = at_host_rate(Box::new(HopStream::new(model)), spec.sample_rate, host_rate, &mut notes)?;
    Ok(Engine { kind, separator, provider, name, description, notes })
}

/// Loads the engine for a stream at `host_rate` Hz; its sources are the model's, in its order.
/// The model's inputs say which engine: a segment model (or bag) is streamed with overlap-add,
/// a streaming model runs once per hop. Slow (seconds: sessions and a warm-up inference): call it
/// off the audio thread.
///
/// # Errors
/// Any [`OnnxError`]: no runtime, a missing or unusable model, a failed warm-up, rates that
/// cannot be converted.
pub fn load(config: &OnnxConfig, host_rate: usize) -> Result<Engine, OnnxError> {
    let runtime = runtime::load(config.runtime.as_deref(), config.installed_runtime.as_deref())?;
    let mut set = match open(config, runtime)? {
        Opened::Segments(set) => set,
        Opened::Streaming(model) => return load_streaming(model, runtime, host_rate),
    };
    let provider = if set.models().all(|m| m.provider() == Provider::Cuda) { Provider::Cuda } else { Provider::Cpu };
    let mut notes: Vec<String> = set.models().filter_map(|m| m.cuda_note.clone()).take(1).collect();
    // Warm-up: the first inference allocates and, on CUDA, compiles kernels.
    let mut scratch = vec![0.0; set.sources().len() * 2 * set.segment_len()];
    set.run(&vec![0.0; 2 * set.segment_len()], &mut scratch)?;

    let model_rate = set.sample_rate();
    let names: Vec<&str> = set.sources().iter().map(|s| s.name()).collect();
    let files: Vec<String> =
        set.models().map(|m| m.path().file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
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
    let separator = at_host_rate(Box::new(OverlapAdd::new(set)?), model_rate, host_rate, &mut notes)?;
    Ok(Engine { kind, separator, provider, name, description, notes })
}
