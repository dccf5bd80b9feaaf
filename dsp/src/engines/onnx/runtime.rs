//! Finding and loading the ONNX Runtime shared library (`ort` with `load-dynamic`).
//!
//! The library is searched in this order: a path the user set, `DEMIXER_ORT_DYLIB`,
//! `ORT_DYLIB_PATH`, the folder of the plugin or program binary, the copy `demixer models runtime
//! --download` installed, then the system's library path.
//! A process can load ONNX Runtime once; later requests get the library already loaded.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

/// The file name ONNX Runtime has on this platform.
#[cfg(target_os = "windows")]
pub const LIBRARY_NAME: &str = "onnxruntime.dll";
/// The file name ONNX Runtime has on this platform.
#[cfg(target_os = "macos")]
pub const LIBRARY_NAME: &str = "libonnxruntime.dylib";
/// The file name ONNX Runtime has on this platform.
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
pub const LIBRARY_NAME: &str = "libonnxruntime.so";

/// The loaded ONNX Runtime.
pub struct Runtime {
    /// Where the library was loaded from (a bare name when the system's search found it).
    pub path: PathBuf,
    /// Its version, as it reports it.
    pub version: String,
    /// The process-wide `ort` environment sessions are created in.
    pub environment: Environment,
}

static LOADED: OnceLock<Runtime> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// One place the library was looked for, and what happened.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The candidate path (or bare name).
    pub path: PathBuf,
    /// Why it could not be used.
    pub error: String,
}

/// No candidate loaded.
#[derive(Debug, Clone)]
pub struct NotFound {
    /// Every candidate tried, in order.
    pub attempts: Vec<Attempt>,
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ONNX Runtime {}.x not found (`demixer models runtime --download` installs it; or install the \
             `onnxruntime` wheel with pip and point Demixer at its onnxruntime/capi/{LIBRARY_NAME}*, or set \
             DEMIXER_ORT_DYLIB)",
            ort_version()
        )?;
        for attempt in &self.attempts {
            write!(f, "; {}: {}", attempt.path.display(), attempt.error)?;
        }
        Ok(())
    }
}

impl std::error::Error for NotFound {}

/// The ONNX Runtime release `ort` is built for ("1.31").
pub fn ort_version() -> String {
    format!("1.{}", ort::MINOR_VERSION)
}

/// The folder of the binary this code is linked into: the plugin's shared library, or the program.
fn own_binary_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        let address = own_binary_dir as *const libc::c_void;
        // SAFETY: dladdr only reads the address and fills `info`; dli_fname points into the loader's tables.
        if unsafe { libc::dladdr(address, &mut info) } != 0 && !info.dli_fname.is_null() {
            let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
            let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
            return std::fs::canonicalize(path).ok()?.parent().map(Path::to_path_buf);
        }
    }
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// Candidates in search order, for a user-set path `user` (a file, or a folder holding the library)
/// and the library file Demixer installed, `installed`: `user`, `DEMIXER_ORT_DYLIB`,
/// `ORT_DYLIB_PATH`, the folder of this program (or plugin), `installed`, then [`LIBRARY_NAME`] on
/// the system's library path. A folder stands for the library in it ([`library_in`]).
pub fn candidates(user: Option<&Path>, installed: Option<&Path>) -> Vec<PathBuf> {
    let expand = |path: PathBuf| if path.is_dir() { library_in(&path) } else { path };
    let mut found: Vec<PathBuf> = Vec::new();
    found.extend(user.filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf));
    for variable in ["DEMIXER_ORT_DYLIB", "ORT_DYLIB_PATH"] {
        found.extend(std::env::var_os(variable).filter(|v| !v.is_empty()).map(PathBuf::from));
    }
    found.extend(own_binary_dir());
    found.extend(installed.map(Path::to_path_buf));
    let mut found: Vec<PathBuf> = found.into_iter().map(expand).collect();
    found.push(PathBuf::from(LIBRARY_NAME));
    found
}

/// The ONNX Runtime library in the folder `dir`: [`LIBRARY_NAME`] where it is there, else the
/// newest versioned file, the only one the PyPI wheels ship (`onnxruntime/capi/libonnxruntime.so.1.31.1`,
/// `libonnxruntime.1.31.1.dylib`), else `dir/LIBRARY_NAME` (named in the error when nothing loads).
fn library_in(dir: &Path) -> PathBuf {
    let plain = dir.join(LIBRARY_NAME);
    if plain.exists() {
        return plain;
    }
    // This platform's versioned name only (Windows has none: the DLL has the plain name).
    let version = |name: &str| -> Option<Vec<u32>> {
        let rest = name.strip_prefix("libonnxruntime.")?;
        let rest = if cfg!(target_os = "macos") { rest.strip_suffix(".dylib") } else { rest.strip_prefix("so.") };
        rest.filter(|_| !cfg!(target_os = "windows"))?.split('.').map(|part| part.parse().ok()).collect()
    };
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let names = entries.filter_map(|entry| entry.file_name().into_string().ok());
    names.filter_map(|name| Some((version(&name)?, name))).max().map_or(plain, |(_, name)| dir.join(name))
}

/// The version string of the ONNX Runtime already loaded from `path` (`OrtGetApiBase`).
fn library_version(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::ffi::{CStr, CString};
        let name = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: RTLD_NOLOAD only returns the handle of the library `ort` loaded (one more
        // reference, released below); OrtGetApiBase has this signature in every ONNX Runtime.
        unsafe {
            let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if handle.is_null() {
                return None;
            }
            let symbol = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
            let version = (!symbol.is_null()).then(|| {
                let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase = std::mem::transmute(symbol);
                let base = get_base();
                CStr::from_ptr(((*base).GetVersionString)()).to_string_lossy().into_owned()
            });
            libc::dlclose(handle);
            version
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Loads ONNX Runtime from the first of [`candidates`] that works, or returns the one already
/// loaded.
///
/// # Errors
/// [`NotFound`], listing every candidate and why it failed.
pub fn load(user: Option<&Path>, installed: Option<&Path>) -> Result<&'static Runtime, NotFound> {
    let _guard = LOADING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = LOADED.get() {
        return Ok(runtime);
    }
    let mut attempts = Vec::new();
    for path in candidates(user, installed) {
        let bare = path.components().count() == 1;
        if !bare && !path.exists() {
            attempts.push(Attempt { path, error: "no such file".into() });
            continue;
        }
        let environment = ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|builder| builder.with_name("demixer").build().map_err(|e| e.to_string()));
        match environment {
            Ok(environment) => {
                let version = library_version(&path).unwrap_or_else(|| "(version unknown)".into());
                return Ok(LOADED.get_or_init(|| Runtime { path, version, environment }));
            }
            Err(error) => attempts.push(Attempt { path, error }),
        }
    }
    Err(NotFound { attempts })
}

/// Whether an execution provider can run sessions with the loaded runtime.
#[derive(Debug, Clone)]
pub struct ProviderCheck {
    /// "CPU" or "CUDA".
    pub name: &'static str,
    /// `Ok` when it registers on a session; else why not (not built in, or its libraries missing).
    pub usable: Result<(), String>,
}

/// The execution providers Demixer uses, each tried on a fresh session builder of `runtime`.
pub fn providers(runtime: &Runtime) -> Vec<ProviderCheck> {
    use ort::ep::ExecutionProvider;
    let cuda = ort::session::Session::builder(&runtime.environment)
        .map_err(|e| e.to_string())
        .and_then(|mut builder| ort::ep::CUDA::default().register(&mut builder).map_err(|e| e.to_string()));
    vec![ProviderCheck { name: "CPU", usable: Ok(()) }, ProviderCheck { name: "CUDA", usable: cuda }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_holding_only_the_wheels_versioned_library_finds_the_newest() {
        let dir = std::env::temp_dir().join(format!("demixer-ort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let versioned = |version: &str| {
            if cfg!(target_os = "macos") {
                format!("libonnxruntime.{version}.dylib")
            } else {
                format!("libonnxruntime.so.{version}")
            }
        };
        let other_platform =
            if cfg!(target_os = "macos") { "libonnxruntime.so.9.0.0" } else { "libonnxruntime.9.0.0.dylib" };
        for name in [
            versioned("1.9.0"),
            versioned("1.31.1"),
            "libonnxruntime_providers_shared.so".into(),
            other_platform.into(),
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let expected = if cfg!(target_os = "windows") { dir.join(LIBRARY_NAME) } else { dir.join(versioned("1.31.1")) };
        assert_eq!(candidates(Some(&dir), None)[0], expected);
        std::fs::write(dir.join(LIBRARY_NAME), b"").unwrap();
        assert_eq!(candidates(Some(&dir), None)[0], dir.join(LIBRARY_NAME), "the plain name first");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
