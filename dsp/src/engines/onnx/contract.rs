//! What a Demucs-family ONNX export must look like, and what Demixer reads from it.
//!
//! Input `mix`, float32 `[1, 2, T]` with `T` fixed; output `stems`, float32 `[1, S, 2, T]` (a model
//! with a single output may name it otherwise: published HT-Demucs exports document only the
//! input's name). Source
//! names come from the metadata key `sources` (comma-separated), else from a sidecar `<model>.json`
//! (`{"sources": [...], "sample_rate": 44100}`), else from the count: 4 is drums, bass, other,
//! vocals; 6 adds guitar and piano. The sample rate comes from the metadata key `sample_rate`, the
//! sidecar, or defaults to 44100 Hz.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::stem::Stem;

/// Name of the model's input.
pub const INPUT: &str = "mix";
/// Name of the model's output (any name is taken when there is only one).
pub const OUTPUT: &str = "stems";
/// Sample rate of models that do not state one.
pub const DEFAULT_SAMPLE_RATE: usize = 44_100;

/// The contract as users read it in error messages.
pub const EXPECTED: &str = "a Demucs-style export: input `mix` float32 [1, 2, T] with a fixed T, \
                            output `stems` float32 [1, S, 2, T]";

/// What Demixer needs to know about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Samples per channel of one segment (`T`).
    pub segment: usize,
    /// The sources, in the model's output order.
    pub sources: Vec<Stem>,
    /// The rate the model works at, in Hz.
    pub sample_rate: usize,
    /// The name of the stems output.
    pub output: String,
}

/// Names and rate stated next to the model rather than in it.
#[derive(Debug, Default)]
pub(crate) struct Declared {
    pub sources: Option<Vec<Stem>>,
    pub sample_rate: Option<usize>,
    /// Streaming models: the algorithmic latency in samples at the model's rate.
    pub latency: Option<usize>,
    /// Streaming models: replace the last source by the delayed input minus the others.
    pub sum_to_input: Option<bool>,
}

impl Declared {
    /// What the model says, completed by what its sidecar says.
    pub(crate) fn or(self, other: Declared) -> Declared {
        Declared {
            sources: self.sources.or(other.sources),
            sample_rate: self.sample_rate.or(other.sample_rate),
            latency: self.latency.or(other.latency),
            sum_to_input: self.sum_to_input.or(other.sum_to_input),
        }
    }
}

fn parse_flag(text: &str) -> Result<bool, String> {
    match text.trim().trim_matches('"').to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("bad flag '{other}' (true or false)")),
    }
}

/// `<model>.json` beside `model`.
pub fn sidecar_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

pub(crate) fn parse_sources(list: &str) -> Result<Vec<Stem>, String> {
    list.split(',')
        .filter(|name| !name.trim().is_empty())
        .map(|name| {
            Stem::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Stem::KNOWN.iter().map(|s| s.name()).collect();
                format!("unknown source '{}' (known: {})", name.trim(), known.join(", "))
            })
        })
        .collect()
}

/// A positive whole number (a rate in Hz, a latency in samples), or why not.
pub(crate) fn parse_positive(text: &str, what: &str) -> Result<usize, String> {
    text.trim()
        .trim_matches('"')
        .parse::<f64>()
        .ok()
        .filter(|r| *r >= 1.0)
        .map(|r| r as usize)
        .ok_or_else(|| format!("bad {what} '{text}'"))
}

fn parse_rate(text: &str) -> Result<usize, String> {
    parse_positive(text, "sample rate")
}

pub(crate) fn read_sidecar(model: &Path) -> Result<Declared, String> {
    let path = sidecar_path(model);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Declared::default());
    };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let sources = match json.get("sources") {
        None => None,
        Some(serde_json::Value::String(list)) => Some(parse_sources(list)?),
        Some(serde_json::Value::Array(names)) => {
            let names: Option<Vec<&str>> = names.iter().map(serde_json::Value::as_str).collect();
            Some(parse_sources(&names.ok_or("`sources` must list names")?.join(","))?)
        }
        Some(_) => return Err(format!("{}: `sources` must be a list of names", path.display())),
    };
    let sample_rate = json.get("sample_rate").map(|r| parse_rate(&r.to_string())).transpose()?;
    let latency = json.get("latency").map(|r| parse_positive(&r.to_string(), "latency")).transpose()?;
    let sum_to_input = json.get("sum_to_input").map(|f| parse_flag(&f.to_string())).transpose()?;
    Ok(Declared { sources, sample_rate, latency, sum_to_input })
}

pub(crate) fn declared_in_metadata(session: &Session) -> Result<Declared, String> {
    let metadata = session.metadata().map_err(|e| format!("cannot read the model's metadata: {e}"))?;
    let sources = metadata.custom("sources").map(|list| parse_sources(&list)).transpose()?;
    let rate = metadata.custom("sample_rate").or_else(|| metadata.custom("samplerate"));
    let latency = metadata.custom("latency").map(|r| parse_positive(&r, "latency")).transpose()?;
    let sum_to_input = metadata.custom("sum_to_input").map(|f| parse_flag(&f)).transpose()?;
    Ok(Declared { sources, sample_rate: rate.map(|r| parse_rate(&r)).transpose()?, latency, sum_to_input })
}

/// The value of `key` as the model's metadata states it, else as its sidecar does (as text: a
/// JSON string without its quotes, a list of names comma-separated as the metadata writes it, a
/// number as written), else `None`.
pub(crate) fn declared_text(session: &Session, path: &Path, key: &str) -> Result<Option<String>, String> {
    let metadata = session.metadata().map_err(|e| format!("cannot read the model's metadata: {e}"))?;
    if let Some(value) = metadata.custom(key) {
        return Ok(Some(value));
    }
    let Ok(text) = std::fs::read_to_string(sidecar_path(path)) else { return Ok(None) };
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", sidecar_path(path).display()))?;
    Ok(json.get(key).map(|value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_string) => {
            items.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    }))
}

/// Dimensions of a float32 tensor outlet, or why it is not one.
pub(crate) fn float_dims(dtype: &ValueType) -> Option<Vec<i64>> {
    match dtype {
        ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } => Some(shape.iter().copied().collect()),
        _ => None,
    }
}

/// Default names for a model that states none.
pub(crate) fn sources_by_count(count: usize) -> Option<Vec<Stem>> {
    match count {
        4 => Some(Stem::ALL.to_vec()),
        6 => Some(Stem::SIX.to_vec()),
        _ => None,
    }
}

/// Checks `session` (loaded from `path`) against the contract and reads its spec.
pub(crate) fn read_spec(session: &Session, path: &Path) -> Result<ModelSpec, String> {
    let refuse = |why: String| Err(format!("{why}; expected {EXPECTED}"));
    let describe = |outlets: &[ort::value::Outlet]| {
        outlets.iter().map(|o| format!("`{}` {:?}", o.name(), float_dims(o.dtype()))).collect::<Vec<_>>().join(", ")
    };
    let Some(input) = session.inputs().iter().find(|o| o.name() == INPUT) else {
        return refuse(format!("the model has no input `{INPUT}` (it has {})", describe(session.inputs())));
    };
    let only = (session.outputs().len() == 1).then(|| &session.outputs()[0]);
    let Some(output) = session.outputs().iter().find(|o| o.name() == OUTPUT).or(only) else {
        return refuse(format!("the model has no output `{OUTPUT}` (it has {})", describe(session.outputs())));
    };
    if session.inputs().len() != 1 {
        return refuse(format!("the model has {} inputs ({})", session.inputs().len(), describe(session.inputs())));
    }
    let segment = match float_dims(input.dtype()).as_deref() {
        Some(&[1, 2, t]) if t > 0 => t as usize,
        Some(&[_, _, t]) if t <= 0 => return refuse("the input `mix` has no fixed length T".into()),
        dims => return refuse(format!("the input `mix` is {dims:?}")),
    };
    let count = match float_dims(output.dtype()).as_deref() {
        Some(&[1 | -1, s, 2 | -1, t]) if t == segment as i64 || t < 0 => (s > 0).then_some(s as usize),
        dims => return refuse(format!("the output `stems` is {dims:?} for an input of {segment} samples")),
    };
    let from_model = declared_in_metadata(session)?;
    let sidecar = read_sidecar(path)?;
    let sources = from_model.sources.or(sidecar.sources).or_else(|| count.and_then(sources_by_count));
    let Some(sources) = sources else {
        return Err(format!(
            "the model's sources are not named: add metadata `sources` (comma-separated) or a sidecar {} \
             with {{\"sources\": [...]}}; only 4- and 6-source models are named by their count",
            sidecar_path(path).display()
        ));
    };
    if count.is_some_and(|c| c != sources.len()) {
        return Err(format!("the model outputs {} sources but names {}", count.unwrap_or(0), sources.len()));
    }
    if sources.is_empty() || (1..sources.len()).any(|i| sources[..i].contains(&sources[i])) {
        return Err(format!("the model's source names must be distinct and not empty: {sources:?}"));
    }
    let sample_rate = from_model.sample_rate.or(sidecar.sample_rate).unwrap_or(DEFAULT_SAMPLE_RATE);
    Ok(ModelSpec { segment, sources, sample_rate, output: output.name().to_string() })
}
