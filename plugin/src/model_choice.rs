//! Which model the plugin should play: the model panel's settings (a library name or a file)
//! resolved through the model library into what to load ([`Wish`]), the key a loaded engine is
//! known by ([`ModelKey`]), and which version of its file it was loaded from ([`FileIdentity`]).
//! Nothing here runs on the audio thread.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use demixer_dsp::onnx::{Device, Mode, OnnxConfig, SessionOptions};
use demixer_dsp::{Engine, EngineError, EngineKind, EngineSpec, Timing};
use demixer_models::library::{Library, LibraryError, Resolved, looks_like_file};
use demixer_state::ModelSettings;

use crate::params::{DemixerParams, EngineChoice};
use crate::running::Setup;

/// What the parameters and the model settings ask for.
#[derive(Debug, Clone, PartialEq)]
pub enum Wish {
    /// No model: Engine is HPSS, or no model is chosen.
    Hpss,
    /// A model to load, with a note when it is a library model whose file is not the one the
    /// project was saved with.
    Model {
        /// What to load, at which rate.
        key: ModelKey,
        /// Something the user should know about the file.
        note: Option<String>,
    },
    /// A model that cannot be had here (a library model not installed): why, and how to get it.
    Unavailable(String),
}

impl Wish {
    /// What the parameters and settings ask for at `setup`'s rate and timing (offline renders run
    /// a model as its reference does, real time at its lowest latency).
    pub fn of(params: &DemixerParams, setup: &Setup) -> Wish {
        let settings = params.model.read().clone();
        if params.engine.value() == EngineChoice::Hpss || settings.model.is_empty() {
            return Wish::Hpss;
        }
        let mode = if setup.timing == Timing::Offline { Mode::Offline } else { Mode::Live };
        match model_spec(&settings, mode) {
            Ok((spec, note)) => Wish::Model { key: ModelKey { spec, sample_rate: setup.sample_rate }, note },
            Err(why) => Wish::Unavailable(why),
        }
    }
}

/// Identifies a loaded model engine: what it was built from and the rate it runs at.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelKey {
    /// The model engine's spec.
    pub spec: EngineSpec,
    /// Host sample rate in Hz.
    pub sample_rate: f32,
}

impl ModelKey {
    /// The model file (or bag manifest), for a model.
    pub fn file(&self) -> Option<&Path> {
        match &self.spec {
            EngineSpec::Model(config) => Some(&config.model),
            _ => None,
        }
    }

    /// Builds the engine, noting which version of its file it read; slow (seconds), not on the
    /// audio thread.
    pub fn load(&self) -> Result<Model, EngineError> {
        let file = self.file().and_then(FileIdentity::of);
        Ok(Model { key: self.clone(), engine: demixer_dsp::build(&self.spec, self.sample_rate)?, file })
    }
}

/// What tells one version of a model file from another without reading it: its size,
/// modification time and (on Unix) inode. A file replaced by writing, copying or moving another
/// over it changes at least one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self { len: metadata.len(), modified: metadata.modified().ok(), inode })
    }
}

/// The model file the settings name: a path as it is, a name through the model `library`.
fn model_path(library: &Library, settings: &ModelSettings) -> Result<(PathBuf, Option<String>), String> {
    match library.resolve(&settings.model) {
        Ok(Resolved { path, installed: Some(installed) }) => {
            let differs = !settings.sha256.is_empty() && !settings.sha256.eq_ignore_ascii_case(&installed.sha256);
            let note = differs.then(|| {
                format!(
                    "the installed '{}' (SHA-256 {}…) is not the file this project was saved with ({}…)",
                    installed.name,
                    &installed.sha256[..12],
                    settings.sha256.chars().take(12).collect::<String>()
                )
            });
            Ok((path, note))
        }
        Ok(Resolved { path, installed: None }) => Ok((path, None)),
        Err(LibraryError::NotInstalled { name, .. }) => Err(format!(
            "The model '{name}' is not installed on this computer: run `demixer models download {name}` \
             (or `demixer models add FILE --name {name}`), or choose another model. HPSS plays."
        )),
        // A path that is not there: the engine says so when it tries to load it.
        Err(_) => Ok((PathBuf::from(&settings.model), None)),
    }
}

/// The engine spec the model panel's settings describe for `mode` (offline renders run a model as
/// its reference does, real time at its lowest latency), and a note about the model file.
fn model_spec(settings: &ModelSettings, mode: Mode) -> Result<(EngineSpec, Option<String>), String> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ((model, note), installed_runtime) = match Library::open() {
        Ok(library) => (model_path(&library, settings)?, library.installed_runtime()),
        // No library folder (no home folder): a path still loads.
        Err(_) if looks_like_file(&settings.model) => ((PathBuf::from(&settings.model), None), None),
        Err(e) => return Err(format!("{e}. HPSS plays.")),
    };
    let spec = EngineSpec::Model(OnnxConfig {
        model,
        installed_runtime,
        runtime: (!settings.runtime.is_empty()).then(|| PathBuf::from(&settings.runtime)),
        session: SessionOptions {
            device: Device::from_name(&settings.device).unwrap_or_default(),
            threads: settings.threads as usize,
            // By default a segment model leaves half the cores to the host and the other plugins
            // (a streaming model uses one).
            max_auto_threads: Some((cores / 2).max(1)),
        },
        mode,
    });
    Ok((spec, note))
}

/// A loaded model engine and what it was loaded for.
pub struct Model {
    /// What it was loaded for.
    pub key: ModelKey,
    /// The engine.
    pub engine: Engine,
    /// The version of the model file it was loaded from, when known.
    pub file: Option<FileIdentity>,
}

impl Model {
    /// Whether the model file is still the version this engine was loaded from.
    pub fn is_current(&self) -> bool {
        self.key.file().and_then(FileIdentity::of) == self.file
    }

    /// Whether this engine is what `wanted` asks for: loaded for it, or for it in the other mode
    /// where the mode makes no difference (only a spectrogram model runs differently live and
    /// offline), so a model loaded for an offline render plays on in real time.
    pub fn serves(&self, wanted: &ModelKey) -> bool {
        let without_mode = |key: &ModelKey| match &key.spec {
            EngineSpec::Model(config) => Some((OnnxConfig { mode: Mode::Offline, ..config.clone() }, key.sample_rate)),
            _ => None,
        };
        self.key == *wanted
            || (self.engine.kind != EngineKind::SpectrogramModel
                && without_mode(&self.key).is_some_and(|key| Some(key) == without_mode(wanted)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_model_name_is_found_in_the_library_and_a_missing_one_says_how_to_get_it() {
        use demixer_models::library::{Installed, ModelKind};
        let root = std::env::temp_dir().join(format!("demixer-plugin-library-{}", std::process::id()));
        let library = Library::at(root.clone());
        let staging = library.stage("tiny").unwrap();
        std::fs::write(staging.dir().join("tiny.onnx"), b"model").unwrap();
        let record = Installed {
            name: "tiny".into(),
            kind: ModelKind::Segment,
            file: "tiny.onnx".into(),
            sha256: "a".repeat(64),
            size: 5,
            summary: String::new(),
            source: "test".into(),
            dir: PathBuf::new(),
        };
        let installed = staging.commit(record).unwrap();
        let settings = |model: &str, sha256: &str| ModelSettings {
            model: model.into(),
            sha256: sha256.into(),
            ..ModelSettings::default()
        };

        let (path, note) = model_path(&library, &settings("tiny", &"a".repeat(64))).unwrap();
        assert_eq!((path, note), (installed.path(), None));
        let (_, note) = model_path(&library, &settings("tiny", &"b".repeat(64))).unwrap();
        assert!(note.is_some_and(|n| n.contains("not the file this project was saved with")));
        let missing = model_path(&library, &settings("htdemucs", &"a".repeat(64))).unwrap_err();
        assert!(
            missing.contains("'htdemucs' is not installed") && missing.contains("demixer models download htdemucs")
        );
        assert!(missing.contains("HPSS plays"), "{missing}");
        // A path is used as it is, even where it does not exist (loading it then says so).
        let (path, _) = model_path(&library, &settings("/nowhere/model.onnx", "")).unwrap();
        assert_eq!(path, PathBuf::from("/nowhere/model.onnx"));
        std::fs::remove_dir_all(root).unwrap();
    }
}
