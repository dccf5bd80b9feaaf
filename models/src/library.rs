//! The installed models: one folder per model under the library root, holding the model file
//! (or a bag manifest and its models), an optional sidecar `<model>.json`, and
//! `demixer-model.json`, which records what Demixer knows about it (kind, SHA-256, source).
//!
//! The root is `DEMIXER_MODELS_DIR` when set, else `models` in the platform's data folder
//! (`~/.local/share/demixer/models` on Linux, `~/Library/Application Support/Demixer/models` on
//! macOS, `%APPDATA%\Demixer\data\models` on Windows). New models are assembled in
//! `<root>/.staging` and renamed into place in one step, so a failed or interrupted install
//! leaves nothing under the model's name; `pins.json` keeps the SHA-256 of the first download
//! of each model whose publisher gives none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variable that moves the library.
pub const DIR_VARIABLE: &str = "DEMIXER_MODELS_DIR";
/// The record in each model's folder.
pub const RECORD: &str = "demixer-model.json";
const STAGING: &str = ".staging";
const PINS: &str = "pins.json";

/// Which contract a model follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Whole segments in, stems out, streamed with overlap-add (HT-Demucs): seconds of latency.
    Segment,
    /// One hop in, stems out, recurrent state carried between hops: milliseconds of latency.
    Streaming,
    /// Magnitude spectrograms in, per-source estimates out, Demixer doing the STFT and masks
    /// (Spleeter): seconds of latency offline, under two live.
    Spectrogram,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Segment => "segment",
            ModelKind::Streaming => "streaming",
            ModelKind::Spectrogram => "spectrogram",
        })
    }
}

/// An installed model, as its record describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    /// Its name in the library.
    pub name: String,
    /// Its contract.
    pub kind: ModelKind,
    /// The model file (or bag manifest) inside the model's folder.
    pub file: String,
    /// SHA-256 of `file` (for a bag: of its `sha256sum` listing of the members).
    pub sha256: String,
    /// Bytes on disk, all files together.
    pub size: u64,
    /// One line for menus: stems, rate, latency.
    pub summary: String,
    /// Where it came from: a download address or the file it was added from.
    pub source: String,
    /// The model's folder (not stored; set when read).
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Installed {
    /// The model file or bag manifest to load.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }
}

/// What can go wrong with the library.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    /// No model of that name is installed.
    #[error("no model '{name}' is installed in {root}")]
    NotInstalled {
        /// The name asked for.
        name: String,
        /// The library root.
        root: PathBuf,
    },
    /// A model path that names no file.
    #[error("model {} does not exist", .0.display())]
    MissingFile(PathBuf),
    /// A model of that name is installed already.
    #[error("a model '{0}' is installed already (remove it first: demixer models remove {0})")]
    AlreadyInstalled(String),
    /// Not a usable model name.
    #[error("{0}")]
    BadName(String),
    /// No folder for the library could be found.
    #[error("no folder for the model library: set {DIR_VARIABLE}")]
    NoDataFolder,
    /// A file operation failed.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The pins file cannot be read: no download is checked against a damaged pin list.
    #[error("the pinned hashes {} are damaged ({why}); fix or delete the file", path.display())]
    Pins {
        /// The pins file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A model's record cannot be read.
    #[error("the record {} is damaged: {why}", path.display())]
    Damaged {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LibraryError + 'a {
    move |error| LibraryError::Io { what, path: path.to_path_buf(), error }
}

/// Checks a model name: 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.` and not
/// ending in `.onnx` or `.json` (those are file names).
///
/// # Errors
/// Says what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !looks_like_file(name)
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a model name (1 to 64 letters, digits, '.', '_' or '-', not starting with '.', \
             not ending in .onnx or .json)"
        ))
    }
}

/// Whether a `--model` value names a file rather than a library model: it has a path separator or
/// ends in `.onnx` or `.json` (any case).
pub fn looks_like_file(model: &str) -> bool {
    let lower = model.to_ascii_lowercase();
    model.contains(['/', '\\']) || lower.ends_with(".onnx") || lower.ends_with(".json")
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), LibraryError> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes).map_err(io("cannot write", &temporary))?;
    std::fs::rename(&temporary, path).map_err(io("cannot write", path))
}

/// The model library at one root folder.
#[derive(Debug, Clone)]
pub struct Library {
    root: PathBuf,
}

impl Library {
    /// The library at `DEMIXER_MODELS_DIR`, else in the platform's data folder.
    ///
    /// # Errors
    /// [`LibraryError::NoDataFolder`] when neither exists (no home folder).
    pub fn open() -> Result<Library, LibraryError> {
        if let Some(dir) = std::env::var_os(DIR_VARIABLE).filter(|v| !v.is_empty()) {
            return Ok(Library::at(PathBuf::from(dir)));
        }
        let dirs = directories::ProjectDirs::from("", "", "Demixer").ok_or(LibraryError::NoDataFolder)?;
        Ok(Library::at(dirs.data_dir().join("models")))
    }

    /// The library at `root` (created when a model is first installed).
    pub fn at(root: PathBuf) -> Library {
        Library { root }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installed models, sorted by name, and the folders whose record could not be read.
    pub fn list(&self) -> (Vec<Installed>, Vec<LibraryError>) {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Default::default() };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| check_name(name).is_ok())
            .collect();
        names.sort();
        let (mut models, mut problems) = (Vec::new(), Vec::new());
        for name in names {
            match self.get(&name) {
                Ok(model) => models.push(model),
                Err(LibraryError::NotInstalled { .. }) => {}
                Err(problem) => problems.push(problem),
            }
        }
        (models, problems)
    }

    /// The installed model `name`.
    ///
    /// # Errors
    /// [`LibraryError::NotInstalled`], [`LibraryError::BadName`] or [`LibraryError::Damaged`].
    pub fn get(&self, name: &str) -> Result<Installed, LibraryError> {
        check_name(name).map_err(LibraryError::BadName)?;
        let dir = self.root.join(name);
        let record = dir.join(RECORD);
        let Ok(text) = std::fs::read_to_string(&record) else {
            return Err(LibraryError::NotInstalled { name: name.into(), root: self.root.clone() });
        };
        let damaged = |why: String| LibraryError::Damaged { path: record.clone(), why };
        let mut model: Installed = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        if model.name != name {
            return Err(damaged(format!("it names the model '{}'", model.name)));
        }
        if !crate::digest::is_sha256(&model.sha256) {
            return Err(damaged(format!("its SHA-256 '{}' is not 64 hex digits", model.sha256)));
        }
        model.dir = dir;
        Ok(model)
    }

    /// Removes the installed model `name` (its pin stays, so a later download is checked against it).
    ///
    /// # Errors
    /// As [`Library::get`], or the folder cannot be removed.
    /// A folder whose record is damaged or missing is removed as well; returns its path.
    pub fn remove(&self, name: &str) -> Result<PathBuf, LibraryError> {
        check_name(name).map_err(LibraryError::BadName)?;
        let dir = self.root.join(name);
        if !dir.is_dir() {
            return Err(LibraryError::NotInstalled { name: name.into(), root: self.root.clone() });
        }
        // Rename first, so that a half-removed model never answers to its name.
        let doomed = self.staging_dir()?.join(format!("removed-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &doomed).map_err(io("cannot remove", &dir))?;
        std::fs::remove_dir_all(&doomed).map_err(io("cannot remove", &doomed))?;
        Ok(dir)
    }

    /// The folder new models are assembled in; clears what killed processes left there.
    fn staging_dir(&self) -> Result<PathBuf, LibraryError> {
        let staging = self.root.join(STAGING);
        std::fs::create_dir_all(&staging).map_err(io("cannot create", &staging))?;
        if let Ok(entries) = std::fs::read_dir(&staging) {
            for entry in entries.filter_map(|e| e.ok()) {
                let owner = entry.file_name().to_string_lossy().rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
                let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
                let old = cfg!(target_os = "linux") || age.is_some_and(|a| a > std::time::Duration::from_secs(86_400));
                let orphan = old && owner.is_some_and(|pid| pid != std::process::id() && !process_alive(pid));
                if orphan {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(staging)
    }

    /// A new, empty folder in which to assemble the model `name`; see [`Staging`].
    ///
    /// # Errors
    /// A bad name, a model of that name already installed, or the folder cannot be made.
    pub fn stage(&self, name: &str) -> Result<Staging, LibraryError> {
        check_name(name).map_err(LibraryError::BadName)?;
        self.check_free(name)?;
        self.stage_at(name, self.root.join(name))
    }

    /// Fails when something already has the name `name` (an installed model, or a folder left
    /// without a record: `remove` clears either).
    ///
    /// # Errors
    /// [`LibraryError::AlreadyInstalled`].
    pub fn check_free(&self, name: &str) -> Result<(), LibraryError> {
        if self.root.join(name).exists() {
            return Err(LibraryError::AlreadyInstalled(name.into()));
        }
        Ok(())
    }

    /// A new, empty staging folder that [`Staging::commit`] will rename to `target`.
    pub(crate) fn stage_at(&self, name: &str, target: PathBuf) -> Result<Staging, LibraryError> {
        let dir = self.staging_dir()?.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        Ok(Staging { dir, target, name: name.into(), done: false })
    }

    /// The file of pinned hashes.
    pub fn pins_path(&self) -> PathBuf {
        self.root.join(PINS)
    }

    fn pins(&self) -> Result<BTreeMap<String, String>, LibraryError> {
        let path = self.pins_path();
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(BTreeMap::new()) };
        let damaged = |why: String| LibraryError::Pins { path: path.clone(), why };
        let pins: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
        match pins.iter().find(|(_, sha)| !crate::digest::is_sha256(sha)) {
            Some((name, _)) => Err(damaged(format!("the pin of '{name}' is not a SHA-256"))),
            None => Ok(pins),
        }
    }

    /// The SHA-256 pinned for `name` by its first download, if any.
    ///
    /// # Errors
    /// The pins file is damaged.
    pub fn pin(&self, name: &str) -> Result<Option<String>, LibraryError> {
        Ok(self.pins()?.remove(name))
    }

    /// Forgets the pin of `name` (a publisher changed the file); returns it.
    ///
    /// # Errors
    /// The pins file is damaged or cannot be written.
    pub fn unpin(&self, name: &str) -> Result<Option<String>, LibraryError> {
        let mut pins = self.pins()?;
        let removed = pins.remove(name);
        self.write_pins(&pins)?;
        Ok(removed)
    }

    fn write_pins(&self, pins: &BTreeMap<String, String>) -> Result<(), LibraryError> {
        std::fs::create_dir_all(&self.root).map_err(io("cannot create", &self.root))?;
        let text = serde_json::to_string_pretty(pins).expect("a map of strings serialises");
        write_atomically(&self.pins_path(), text.as_bytes())
    }

    /// Pins `sha256` for `name`.
    ///
    /// # Errors
    /// The pins file is damaged or cannot be written.
    pub fn set_pin(&self, name: &str, sha256: &str) -> Result<(), LibraryError> {
        let mut pins = self.pins()?;
        pins.insert(name.into(), sha256.into());
        self.write_pins(&pins)
    }

    /// What a `--model` value or a saved project names: a value with a path separator or ending in
    /// `.onnx` or `.json` is a file; anything else is the name of an installed model, or, where no
    /// model has that name, a file of that name.
    ///
    /// # Errors
    /// Neither a file nor an installed model: says which and how to get it.
    pub fn resolve(&self, model: &str) -> Result<Resolved, LibraryError> {
        let path = Path::new(model);
        if !looks_like_file(model) {
            match self.get(model) {
                Ok(installed) => return Ok(Resolved { path: installed.path(), installed: Some(installed) }),
                Err(LibraryError::NotInstalled { .. }) if path.is_file() => {}
                Err(e) => return Err(e),
            }
        }
        if path.is_file() {
            return Ok(Resolved { path: path.to_path_buf(), installed: None });
        }
        if looks_like_file(model) {
            return Err(LibraryError::MissingFile(path.to_path_buf()));
        }
        Err(LibraryError::NotInstalled { name: model.into(), root: self.root.clone() })
    }
}

/// A model file found by [`Library::resolve`].
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The model file or bag manifest.
    pub path: PathBuf,
    /// The library's record, when it was found by name.
    pub installed: Option<Installed>,
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Elsewhere a leftover is taken for an orphan after a day.
#[cfg(not(target_os = "linux"))]
fn process_alive(_: u32) -> bool {
    false
}

/// A model being assembled. Dropped without [`Staging::commit`], it removes its folder: a failed
/// install leaves nothing behind.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
    name: String,
    done: bool,
}

impl Staging {
    /// The folder to put the model's files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `record` (its name must be this model's) and moves the folder to its final name in
    /// one rename.
    ///
    /// # Errors
    /// The record cannot be written, or another model of that name appeared meanwhile.
    pub fn commit(self, mut record: Installed) -> Result<Installed, LibraryError> {
        record.name = self.name.clone();
        let text = serde_json::to_string_pretty(&record).expect("the record serialises");
        write_atomically(&self.dir.join(RECORD), text.as_bytes())?;
        record.dir = self.commit_files()?;
        Ok(record)
    }

    /// Moves the folder to its final name in one rename and returns that name.
    ///
    /// # Errors
    /// Something of that name exists already, or the rename fails.
    pub fn commit_files(mut self) -> Result<PathBuf, LibraryError> {
        if self.target.exists() {
            return Err(LibraryError::AlreadyInstalled(self.name.clone()));
        }
        if let Some(parent) = self.target.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
        }
        std::fs::rename(&self.dir, &self.target).map_err(io("cannot install into", &self.target))?;
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, file: &str) -> Installed {
        Installed {
            name: name.into(),
            kind: ModelKind::Segment,
            file: file.into(),
            sha256: "0".repeat(64),
            size: 3,
            summary: "test".into(),
            source: "test".into(),
            dir: PathBuf::new(),
        }
    }

    #[test]
    fn install_list_resolve_remove() {
        let root = tempfile::tempdir().unwrap();
        let library = Library::at(root.path().join("lib"));
        assert!(library.list().0.is_empty());
        let staging = library.stage("m1").unwrap();
        std::fs::write(staging.dir().join("m.onnx"), b"abc").unwrap();
        let installed = staging.commit(record("m1", "m.onnx")).unwrap();
        assert_eq!(installed.path(), root.path().join("lib/m1/m.onnx"));
        assert_eq!(library.list().0, vec![installed.clone()]);
        assert_eq!(library.resolve("m1").unwrap().path, installed.path());
        assert!(matches!(library.stage("m1"), Err(LibraryError::AlreadyInstalled(_))));
        let missing = library.resolve("nope").unwrap_err();
        assert!(matches!(missing, LibraryError::NotInstalled { .. }), "{missing}");
        library.remove("m1").unwrap();
        assert!(library.list().0.is_empty());
        assert!(std::fs::read_dir(root.path().join("lib/.staging")).unwrap().next().is_none());
    }

    #[test]
    fn a_dropped_staging_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let library = Library::at(root.path().to_path_buf());
        let staging = library.stage("m2").unwrap();
        std::fs::write(staging.dir().join("m.onnx"), b"abc").unwrap();
        let dir = staging.dir().to_path_buf();
        drop(staging);
        assert!(!dir.exists());
        assert!(library.list().0.is_empty());
        assert!(!root.path().join("m2").exists());
    }

    #[test]
    fn pins_persist_and_bad_names_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let library = Library::at(root.path().to_path_buf());
        assert_eq!(library.pin("a").unwrap(), None);
        library.set_pin("a", &"1".repeat(64)).unwrap();
        assert_eq!(Library::at(root.path().to_path_buf()).pin("a").unwrap(), Some("1".repeat(64)));
        assert_eq!(library.unpin("a").unwrap(), Some("1".repeat(64)));
        assert_eq!(library.pin("a").unwrap(), None);
        std::fs::write(library.pins_path(), r#"{"a": 5}"#).unwrap();
        assert!(matches!(library.pin("a"), Err(LibraryError::Pins { .. })), "a damaged pin list is an error");
        std::fs::write(library.pins_path(), r#"{"a": "xyz"}"#).unwrap();
        assert!(matches!(library.set_pin("b", &"2".repeat(64)), Err(LibraryError::Pins { .. })));
        for bad in ["", ".hidden", "a/b", "a b"] {
            assert!(matches!(library.stage(bad), Err(LibraryError::BadName(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_path_is_used_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("x.onnx");
        std::fs::write(&file, b"x").unwrap();
        let library = Library::at(root.path().join("lib"));
        let resolved = library.resolve(file.to_str().unwrap()).unwrap();
        assert_eq!(resolved.path, file);
        assert!(resolved.installed.is_none());
        assert!(matches!(library.resolve("/no/such.onnx"), Err(LibraryError::MissingFile(_))));
        for file_like in ["m.onnx", "bag.JSON", "dir/m"] {
            assert!(check_name(file_like).is_err(), "{file_like}");
        }
    }
}
