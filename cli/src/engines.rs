//! The engines a batch runs: built from one spec, once per sample rate and song at a time.
//!
//! A model's session is made from its files, which could be replaced while a batch runs (a new
//! download, an export written over the old one): the pool remembers the files as they were at
//! the first load and builds no further session from files that changed since, so one batch
//! never mixes two models.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use anyhow::{Result, bail};
use demixer_dsp::{Engine, EngineSpec};

use crate::inputs::FileId;

/// The engine a job runs, built from its spec once per sample rate and song at a time: songs
/// take an engine from the pool and give it back, so songs run in parallel and a model loads
/// once per rate and job slot.
pub struct Engines {
    spec: EngineSpec,
    /// For a model: its files as they were when it was first loaded.
    model: Option<ModelFiles>,
    pool: Mutex<HashMap<u32, Vec<Engine>>>,
}

impl Engines {
    /// The pool for `spec`, with one engine built now at 44.1 kHz so that a bad model or a
    /// missing runtime is reported before any song is read. Returns it with, for a model, what
    /// the model is.
    pub fn new(spec: EngineSpec) -> Result<(Engines, Option<String>)> {
        let model = match &spec {
            EngineSpec::Model(config) => Some(ModelFiles::of(&config.model)),
            _ => None,
        };
        let first = demixer_dsp::build(&spec, 44_100.0)?;
        let description = first.kind.is_model().then(|| first.description_with_notes());
        let pool = Mutex::new(HashMap::from([(44_100, vec![first])]));
        let engines = Engines { spec, model, pool };
        engines.check_model()?;
        Ok((engines, description))
    }

    /// An engine for `sample_rate`: a pooled one, or a new one.
    ///
    /// # Errors
    /// The engine cannot be built, or the model's files changed since the first load.
    pub fn take(&self, sample_rate: u32) -> Result<Engine> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&sample_rate).and_then(Vec::pop);
        if let Some(engine) = pooled {
            return Ok(engine);
        }
        self.check_model()?;
        let engine = demixer_dsp::build(&self.spec, sample_rate as f32)?;
        self.check_model()?;
        Ok(engine)
    }

    /// Returns `engine`, built for `sample_rate`, to the pool.
    pub fn give_back(&self, sample_rate: u32, engine: Engine) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).entry(sample_rate).or_default().push(engine);
    }

    /// Fails when the model's files are no longer those of the first load.
    fn check_model(&self) -> Result<()> {
        let Some(loaded) = &self.model else { return Ok(()) };
        let now = ModelFiles::of(&loaded.path);
        if let Some(changed) = loaded.changed(&now) {
            bail!(
                "the model file {} changed since the model was loaded at the start (size, time or file): no \
                 session is made from it in this run; run again to use the new file",
                changed.display()
            );
        }
        Ok(())
    }
}

/// What identifies a file's contents cheaply: which file it is, its size and modification time.
type Stamp = Option<(FileId, u64, Option<SystemTime>)>;

/// A model's files (the model or bag manifest, its members, their sidecar `.json` and external
/// weights `.onnx.data`) and their [`Stamp`]s.
struct ModelFiles {
    path: PathBuf,
    stamps: Vec<(PathBuf, Stamp)>,
}

impl ModelFiles {
    fn of(path: &Path) -> ModelFiles {
        let mut files = vec![path.to_path_buf()];
        files.extend(bag_members(path));
        let stamps = files
            .iter()
            .flat_map(|file| {
                let sidecar = demixer_dsp::onnx::sidecar_path(file);
                let external = PathBuf::from(format!("{}.data", file.display()));
                [file.clone(), sidecar, external]
            })
            .map(|file| {
                let stamp = std::fs::metadata(&file)
                    .ok()
                    .and_then(|m| Some((FileId::of(&file).ok()?, m.len(), m.modified().ok())));
                (file, stamp)
            })
            .collect();
        ModelFiles { path: path.to_path_buf(), stamps }
    }

    /// The first file that differs between `self` and `now`.
    fn changed<'a>(&'a self, now: &'a ModelFiles) -> Option<&'a Path> {
        if self.stamps.len() != now.stamps.len() {
            return Some(&self.path);
        }
        self.stamps.iter().zip(&now.stamps).find(|(a, b)| a != b).map(|((path, _), _)| path.as_path())
    }
}

/// The member models a bag manifest (`{"bag": {"<stem>": "<model path>"}}`) names, resolved
/// beside it; none for anything else.
fn bag_members(path: &Path) -> Vec<PathBuf> {
    let is_manifest = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let text = if is_manifest { std::fs::read_to_string(path).ok() } else { None };
    let json: Option<serde_json::Value> = text.and_then(|t| serde_json::from_str(&t).ok());
    let Some(bag) = json.as_ref().and_then(|j| j.get("bag")).and_then(|b| b.as_object()) else { return Vec::new() };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut members: Vec<PathBuf> = bag.values().filter_map(|v| v.as_str()).map(|m| dir.join(m)).collect();
    members.sort();
    members.dedup();
    members
}

#[cfg(test)]
mod tests {
    use demixer_dsp::onnx::{Device, OnnxConfig, SessionOptions};

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx").join(name)
    }

    /// A model file replaced after the first load was used by the next sample rate of a batch:
    /// the pool keeps serving what it loaded and builds nothing from the new file. ONNX Runtime
    /// comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).
    #[test]
    fn a_model_replaced_after_loading_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model.onnx");
        std::fs::copy(fixture("four.onnx"), &model).unwrap();
        let session = SessionOptions { device: Device::Cpu, threads: 1, max_auto_threads: None };
        let config = OnnxConfig { model: model.clone(), session, ..OnnxConfig::default() };
        let (engines, _) = Engines::new(EngineSpec::Model(config)).unwrap();
        let at_48k = engines.take(48_000).unwrap();
        engines.give_back(48_000, at_48k);

        // Replaced by a rename (a new file, here with the same bytes), then written over in place.
        let replacement = dir.path().join("new.onnx");
        std::fs::copy(fixture("four.onnx"), &replacement).unwrap();
        std::fs::rename(&replacement, &model).unwrap();
        let Err(refused) = engines.take(96_000) else { panic!("an engine from the replaced file") };
        assert!(refused.to_string().contains("model.onnx changed since the model was loaded"), "{refused}");
        std::fs::copy(fixture("six.onnx"), &model).unwrap();
        assert!(engines.take(22_050).is_err());
        // What was loaded before is still served.
        assert!(engines.take(44_100).is_ok() && engines.take(48_000).is_ok());
    }
}
