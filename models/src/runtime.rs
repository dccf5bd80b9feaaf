//! ONNX Runtime without Python: `demixer models runtime --download` takes the library out of the
//! official `onnxruntime` (or `onnxruntime-gpu`) wheel on PyPI, checked against the SHA-256 PyPI
//! publishes, and keeps it in the library's `.runtime` folder, where the plugin and the tool find
//! it after every place the user or the environment names.

use std::path::{Path, PathBuf};

use crate::library::Library;

/// The ONNX Runtime release Demixer's `ort` is built for.
pub const ORT_VERSION: &str = "1.31.1";
/// Folder, under the library root, of the runtimes Demixer installed.
pub const RUNTIME_DIR: &str = ".runtime";

/// Whether `name` is the ONNX Runtime library itself (not a provider library) on this platform.
pub fn is_runtime_library(name: &str) -> bool {
    if cfg!(target_os = "windows") {
        name.eq_ignore_ascii_case("onnxruntime.dll")
    } else if cfg!(target_os = "macos") {
        name.starts_with("libonnxruntime.") && name.ends_with(".dylib")
    } else {
        name.starts_with("libonnxruntime.so")
    }
}

impl Library {
    /// The folder of the runtimes Demixer installed.
    pub fn runtime_dir(&self) -> PathBuf {
        self.root().join(RUNTIME_DIR)
    }

    /// The ONNX Runtime library `demixer models runtime --download` installed, if any (the GPU
    /// build when both are there).
    pub fn installed_runtime(&self) -> Option<PathBuf> {
        let mut folders: Vec<PathBuf> =
            std::fs::read_dir(self.runtime_dir()).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        // "onnxruntime-gpu-..." sorts after "onnxruntime-1...": prefer it.
        folders.sort();
        folders.iter().rev().find_map(|folder| runtime_in(folder))
    }
}

/// The runtime library in `folder`, if there is one.
fn runtime_in(folder: &Path) -> Option<PathBuf> {
    std::fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_str().is_some_and(is_runtime_library))
        .map(|e| e.path())
}

/// Downloading the runtime out of PyPI's wheels.
#[cfg(feature = "download")]
pub mod download {
    use std::io::Read;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::ORT_VERSION;
    use crate::download::{DownloadError, Request, download};
    use crate::library::{Library, LibraryError};
    use crate::pypi::{self, IndexError};

    /// Why the runtime could not be installed.
    #[derive(Debug, thiserror::Error)]
    pub enum RuntimeError {
        /// The wheel could not be fetched, or it is not what the index says.
        #[error(transparent)]
        Download(#[from] DownloadError),
        /// The index could not be read.
        #[error(transparent)]
        Index(#[from] IndexError),
        /// No wheel of the release is built for this platform.
        #[error("{package} {ORT_VERSION} has no wheel for this platform ({platform}); wheels: {wheels}")]
        NoWheel {
            /// The package.
            package: String,
            /// This platform's wheel tag.
            platform: &'static str,
            /// The wheels there are.
            wheels: String,
        },
        /// The wheel holds no runtime library.
        #[error("{0} holds no ONNX Runtime library for this platform")]
        NoLibrary(String),
        /// The wheel cannot be unpacked.
        #[error("cannot unpack {wheel}: {why}")]
        Unpack {
            /// The wheel.
            wheel: String,
            /// What went wrong.
            why: String,
        },
        /// The library folder failed.
        #[error(transparent)]
        Library(#[from] LibraryError),
    }

    /// The end of the wheel names built for this platform.
    fn platform() -> (&'static str, &'static str) {
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            ("manylinux", "_x86_64.whl")
        } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
            ("manylinux", "_aarch64.whl")
        } else if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
            ("macosx", "_arm64.whl")
        } else if cfg!(target_os = "macos") {
            ("macosx", "_x86_64.whl")
        } else if cfg!(target_os = "windows") {
            ("win", "_amd64.whl")
        } else {
            ("unsupported", "unsupported")
        }
    }

    /// Whether a wheel member is a native library to keep: the runtime and its provider libraries,
    /// not the Python extension.
    fn keep(member: &str) -> Option<&str> {
        let name = member.strip_prefix("onnxruntime/capi/")?;
        let native = name.starts_with("libonnxruntime") || (name.starts_with("onnxruntime") && name.ends_with(".dll"));
        (native && !name.contains('/') && !name.contains("pybind11")).then_some(name)
    }

    /// Unpacks the runtime libraries of `wheel` into `dir`; returns the runtime library's path.
    fn unpack(wheel: &Path, dir: &Path) -> Result<PathBuf, RuntimeError> {
        let name = wheel.display().to_string();
        let fail = |why: String| RuntimeError::Unpack { wheel: name.clone(), why };
        let file = std::fs::File::open(wheel).map_err(|e| fail(e.to_string()))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
        let mut runtime = None;
        for index in 0..archive.len() {
            let mut member = archive.by_index(index).map_err(|e| fail(e.to_string()))?;
            let member_name = member.name().map_err(|e| fail(e.to_string()))?.into_owned();
            let Some(file_name) = keep(&member_name).map(str::to_owned) else { continue };
            let target = dir.join(&file_name);
            let mut bytes = Vec::with_capacity(member.size() as usize);
            member.read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
            std::fs::write(&target, bytes).map_err(|e| fail(format!("{}: {e}", target.display())))?;
            if super::is_runtime_library(&file_name) {
                runtime = Some(target);
            }
        }
        runtime.ok_or(RuntimeError::NoLibrary(name))
    }

    /// Downloads the `onnxruntime` wheel (`onnxruntime-gpu` with `gpu`) of [`ORT_VERSION`] for this
    /// platform from PyPI (or `DEMIXER_PYPI`, see [`crate::pypi`]), checks it against the SHA-256 and size the index
    /// gives, and installs its native libraries into the library's `.runtime` folder. Returns the
    /// runtime library's path; an installed one is kept.
    ///
    /// # Errors
    /// [`RuntimeError`]; nothing is left behind.
    pub fn install(
        library: &Library,
        gpu: bool,
        stall: Duration,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<PathBuf, RuntimeError> {
        let package = if gpu { "onnxruntime-gpu" } else { "onnxruntime" };
        let folder = format!("{package}-{ORT_VERSION}");
        let target = library.runtime_dir().join(&folder);
        if let Some(existing) = super::runtime_in(&target) {
            return Ok(existing);
        }
        // A folder without the library (a copy someone emptied) is replaced.
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|error| LibraryError::Io {
                what: "cannot replace",
                path: target.clone(),
                error,
            })?;
        }
        let release = pypi::release_files(package, ORT_VERSION)?;
        let (family, ending) = platform();
        let mut wheels: Vec<&pypi::ReleaseFile> =
            release.iter().filter(|f| f.filename.contains(family) && f.filename.ends_with(ending)).collect();
        wheels.sort_by(|a, b| a.filename.cmp(&b.filename));
        let Some(wheel) = wheels.first() else {
            let names: Vec<&str> = release.iter().map(|f| f.filename.as_str()).collect();
            return Err(RuntimeError::NoWheel { package: package.into(), platform: ending, wheels: names.join(", ") });
        };
        let staging = library.stage_at(&format!("runtime-{folder}"), target)?;
        let wheel_file = staging.dir().join(&wheel.filename);
        let request = Request { url: &wheel.url, sha256: Some(&wheel.sha256), size: wheel.size, stall };
        download(&request, &wheel_file, progress)?;
        let runtime = unpack(&wheel_file, staging.dir())?;
        let file_name = runtime.file_name().expect("a library file").to_owned();
        std::fs::remove_file(&wheel_file)
            .map_err(|e| RuntimeError::Unpack { wheel: wheel_file.display().to_string(), why: e.to_string() })?;
        Ok(staging.commit_files()?.join(file_name))
    }
}
