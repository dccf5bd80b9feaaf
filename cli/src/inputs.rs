//! What a batch separates: the files given and the audio files in the folders given, each real
//! file once, and the folder name each song gets.
//!
//! Folders are walked through symbolic links, but each real folder (and file) is visited once,
//! so a link back up the tree is no loop. The tool's own stems (their header names the tool) and
//! the output folder are not taken as songs, so separating a folder twice into itself does not
//! separate its stems.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use unicode_normalization::UnicodeNormalization;

use crate::audio::{AUDIO_EXTENSIONS, is_own_stem};

/// A file's identity: the same for every path to it (symbolic links, hard links, `..`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileId(#[cfg(unix)] (u64, u64), #[cfg(not(unix))] PathBuf);

impl FileId {
    /// The identity of what `path` names, through symbolic links.
    ///
    /// # Errors
    /// Nothing is there, or it cannot be looked at.
    pub fn of(path: &Path) -> io::Result<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path)?;
            Ok(FileId((meta.dev(), meta.ino())))
        }
        #[cfg(not(unix))]
        {
            Ok(FileId(std::fs::canonicalize(path)?))
        }
    }
}

/// The identities of a batch's inputs: no stem is ever written over one of them.
#[derive(Debug, Default)]
pub struct Identities(HashSet<FileId>);

impl Identities {
    /// Whether `path` is (another name of) one of the inputs.
    pub fn contains(&self, path: &Path) -> bool {
        FileId::of(path).is_ok_and(|id| self.0.contains(&id))
    }
}

/// The songs of a batch.
#[derive(Debug)]
pub struct Collected {
    /// Each input file once, in the order given (folders in sorted order).
    pub files: Vec<PathBuf>,
    /// Their identities.
    pub identities: Identities,
    /// Stems written by this tool, found in the folders and left out.
    pub own_stems: usize,
}

/// Expands folders into the audio files they contain, recursively; files are kept as given
/// (one that cannot be opened is kept, to be reported as it is separated). A file reached twice,
/// by two names or links, is taken once. `out_dir` (the output folder) is not walked.
///
/// # Errors
/// A folder cannot be read, or nothing was found.
pub fn collect(inputs: &[PathBuf], out_dir: &Path) -> Result<Collected> {
    let mut walk = Walk { skip: FileId::of(out_dir).ok(), ..Walk::default() };
    for input in inputs {
        match FileId::of(input) {
            Ok(id) if input.is_dir() => {
                if walk.folders.insert(id) {
                    walk.folder(input)?;
                }
            }
            Ok(id) => walk.file(input.clone(), id),
            Err(_) => walk.found.push(input.clone()),
        }
    }
    if walk.found.is_empty() {
        bail!("no audio files found in the given folders");
    }
    Ok(Collected { files: walk.found, identities: Identities(walk.files), own_stems: walk.own_stems })
}

#[derive(Default)]
struct Walk {
    /// The output folder.
    skip: Option<FileId>,
    folders: HashSet<FileId>,
    files: HashSet<FileId>,
    found: Vec<PathBuf>,
    own_stems: usize,
}

impl Walk {
    fn file(&mut self, path: PathBuf, id: FileId) {
        if self.files.insert(id) {
            self.found.push(path);
        }
    }

    fn folder(&mut self, dir: &Path) -> Result<()> {
        let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
        let mut paths: Vec<PathBuf> = entries.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
        paths.sort();
        for path in paths {
            // A dangling link or an entry that vanished meanwhile is nothing to separate.
            let Ok(id) = FileId::of(&path) else { continue };
            if path.is_dir() {
                if Some(&id) != self.skip.as_ref() && self.folders.insert(id) {
                    self.folder(&path)?;
                }
            } else if is_audio(&path) {
                if is_own_stem(&path) {
                    self.own_stems += 1;
                } else {
                    self.file(path, id);
                }
            }
        }
        Ok(())
    }
}

fn is_audio(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    extension.is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str()))
}

/// A song folder's name in Unicode's composed form (NFC): "Café" typed on one system and listed
/// by another (macOS decomposes names) is one song.
fn composed(name: &std::ffi::OsStr) -> String {
    name.to_string_lossy().nfc().collect()
}

/// What two song folder names are compared by: names equal after composition and lower-casing
/// are one folder on case-insensitive file systems (macOS, Windows), so they are one name here.
fn folder_key(name: &str) -> String {
    name.nfc().flat_map(char::to_lowercase).collect()
}

/// Output folder names: the file name without extension (composed, see [`composed`]), or with it
/// where two inputs would otherwise share a folder, plus a counter where even that is not unique.
/// Names that differ only in case or composition count as the same.
pub fn song_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |f: &PathBuf| composed(f.file_stem().unwrap_or_default());
    let keys: Vec<String> = files.iter().map(|f| folder_key(&stem(f))).collect();
    let mut taken = HashSet::new();
    files
        .iter()
        .zip(&keys)
        .map(|(file, key)| {
            let shared = keys.iter().filter(|other| *other == key).count() > 1;
            let base = if shared { composed(file.file_name().unwrap_or_default()) } else { stem(file) };
            let mut name = base.clone();
            for n in 2.. {
                if taken.insert(folder_key(&name)) {
                    break;
                }
                name = format!("{base}-{n}");
            }
            name
        })
        .collect()
}

/// `names` with each replaced by the spelling of a folder already in `out_dir` that is the same
/// name (see [`folder_key`]), so that an earlier run's folder is found whatever its spelling.
pub fn existing_spellings(out_dir: &Path, names: Vec<String>) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out_dir) else { return names };
    let existing: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names
        .into_iter()
        .map(|name| existing.iter().find(|e| folder_key(e) == folder_key(&name)).cloned().unwrap_or(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn songs_with_the_same_name_get_their_own_folders() {
        let files: Vec<PathBuf> = ["a/song.mp3", "a/song.wav", "b/song.wav", "c/other.flac"].map(PathBuf::from).into();
        assert_eq!(song_names(&files), ["song.mp3", "song.wav", "song.wav-2", "other"]);
    }

    /// "Café" composed (NFC) and decomposed (NFD, as macOS lists it) is one name, as are names
    /// that differ only in case; each song gets a folder of its own, in composed form.
    #[test]
    fn two_spellings_of_one_name_are_one_name() {
        let composed = "Caf\u{e9}";
        let decomposed = "Cafe\u{301}";
        let files: Vec<PathBuf> =
            [format!("a/{composed}.wav"), format!("b/{decomposed}.wav"), "c/SONG.wav".into(), "d/song.flac".into()]
                .map(PathBuf::from)
                .into();
        assert_eq!(
            song_names(&files),
            [format!("{composed}.wav"), format!("{composed}.wav-2"), "SONG.wav".into(), "song.flac".into()]
        );
        let one: Vec<PathBuf> = vec![PathBuf::from(format!("x/{decomposed}.wav"))];
        assert_eq!(song_names(&one), [composed]);
    }

    #[test]
    fn an_earlier_folder_is_found_by_its_own_spelling() {
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir(out.path().join("Cafe\u{301}")).unwrap();
        let names = existing_spellings(out.path(), vec!["caf\u{e9}".into(), "other".into()]);
        assert_eq!(names, ["Cafe\u{301}", "other"]);
    }
}
