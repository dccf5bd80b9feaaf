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
