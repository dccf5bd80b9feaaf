//! The ONNX engine: Demucs-family models (HT-Demucs exports) run by ONNX Runtime through `ort`.
//!
//! [`load`] finds the runtime ([`runtime`]), opens the model or bag of models ([`model`]) and checks
//! them against the contract ([`contract`]), warms them up, and streams them with Demucs'
//! overlap-add ([`crate::segments`]), resampled when the stream's rate is not the model's
//! ([`crate::resampled`]). Loading is slow (seconds); callers do it off the audio thread.

pub mod contract;
pub mod model;
pub mod runtime;

use std::path::{Path, PathBuf};

use crate::resampled::Resampled;
use crate::segments::{OverlapAdd, SegmentModel};
use crate::{Separator, Stem};
pub use model::{Device, ModelSet, OnnxModel, Provider, SessionOptions};

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct OnnxConfig {
    /// A model (`.onnx`) or a bag manifest (`.json`: `{"bag": {"drums": "drums.onnx", ...}}`, paths
    /// relative to the manifest).
    pub model: PathBuf,
    /// A user-chosen ONNX Runtime library (file or folder), tried before the other places.
    pub runtime: Option<PathBuf>,
    /// Device and threads.
    pub session: SessionOptions,
}

/// A loaded engine and what it is.
pub struct LoadedEngine {
    /// The streaming engine, at the rate it was loaded for.
    pub separator: Box<dyn Separator>,
    /// Where it runs.
    pub provider: Provider,
    /// Short, for a status line: the model file(s) and the device.
    pub name: String,
    /// One line for people: model, sources, segment, device, runtime.
    pub description: String,
    /// Remarks worth showing (CUDA not available, resampling).
    pub notes: Vec<String>,
    /// The model's sources, in its order.
    pub model_sources: Vec<Stem>,
}

impl LoadedEngine {
    /// The description followed by the notes, for one line of text.
    pub fn description_with_notes(&self) -> String {
        std::iter::once(self.description.as_str())
            .chain(self.notes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Reads a bag manifest, `{"bag": {"<stem>": "<model path>", ...}}`, in stem order.
fn read_bag(manifest: &Path) -> Result<Vec<(Stem, PathBuf)>, String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", manifest.display()))?;
    let Some(bag) = json.get("bag").and_then(serde_json::Value::as_object) else {
        return Err(format!("{}: expected {{\"bag\": {{\"drums\": \"drums.onnx\", ...}}}}", manifest.display()));
    };
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let mut picks = bag
        .iter()
        .map(|(stem, file)| {
            let stem = Stem::from_name(stem).ok_or_else(|| format!("{}: unknown stem '{stem}'", manifest.display()))?;
            let file =
                file.as_str().ok_or_else(|| format!("{}: the {stem} entry must be a path", manifest.display()))?;
            Ok((stem, dir.join(file)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    picks.sort_by_key(|(stem, _)| stem.index());
    Ok(picks)
}

/// Opens the model or bag named by `config`.
fn open_set(config: &OnnxConfig, runtime: &runtime::Runtime) -> Result<ModelSet, String> {
    let is_manifest = config.model.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_manifest {
        return Ok(ModelSet::single(OnnxModel::open(runtime, &config.model, &config.session)?));
    }
    let picks = read_bag(&config.model)?
        .into_iter()
        .map(|(stem, path)| Ok((stem, OnnxModel::open(runtime, &path, &config.session)?)))
        .collect::<Result<Vec<_>, String>>()?;
    ModelSet::bag(picks)
}

/// Loads the engine for a stream at `host_rate` Hz writing `outputs` (the plugin's four ports), or
/// the model's own sources when `outputs` is `None`. Slow: call it off the audio thread.
pub fn load(config: &OnnxConfig, host_rate: usize, outputs: Option<&[Stem]>) -> Result<LoadedEngine, String> {
    let runtime = runtime::load(config.runtime.as_deref()).map_err(|e| e.to_string())?;
    let mut set = open_set(config, runtime)?;
    let model_sources = set.sources().to_vec();
    let provider = if set.models().all(|m| m.provider() == Provider::Cuda) { Provider::Cuda } else { Provider::Cpu };
    let mut notes: Vec<String> = set.models().filter_map(|m| m.cuda_note.clone()).take(1).collect();
    // Warm-up: the first inference allocates and, on CUDA, compiles kernels.
    let mut scratch = vec![0.0; set.sources().len() * 2 * set.segment_len()];
    set.run(&vec![0.0; 2 * set.segment_len()], &mut scratch)?;

    let model_rate = set.sample_rate();
    let names: Vec<&str> = model_sources.iter().map(|s| s.name()).collect();
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
    let name = format!("{} on {provider}", files.join(" + "));
    let outputs = outputs.map_or_else(|| model_sources.clone(), <[Stem]>::to_vec);
    let streamed = OverlapAdd::new(set, &outputs)?;
    let separator: Box<dyn Separator> = if model_rate == host_rate {
        Box::new(streamed)
    } else {
        notes.push(format!("resampling {host_rate} Hz to the model's {model_rate} Hz and back"));
        Box::new(Resampled::new(Box::new(streamed), host_rate, model_rate)?)
    };
    Ok(LoadedEngine { separator, provider, name, description, notes, model_sources })
}
