//! Verified downloads over HTTP(S) (`ureq` with rustls).
//!
//! [`download`] streams the body into a file while hashing it, and returns only when the size
//! (the server's `Content-Length` and the size the catalog expects) and the SHA-256 (when one is
//! expected) match. The file is written where the caller says, normally inside a
//! [`crate::library::Staging`] folder, so a refused or cut download never gets a model's name.
//! A server that sends nothing for the stall time is given up on.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::digest::Hasher;

/// How long connecting may take.
const CONNECT: Duration = Duration::from_secs(15);
/// The most a download of unknown size may write, in bytes (the largest published bag is 1.3 GB).
pub const MAX_UNKNOWN_SIZE: u64 = 8 << 30;

/// What to fetch and what it must be.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The address.
    pub url: &'a str,
    /// The SHA-256 the file must have (hex), if known.
    pub sha256: Option<&'a str>,
    /// The size in bytes it must have, if known.
    pub size: Option<u64>,
    /// How long the server may send nothing before the download is given up.
    pub stall: Duration,
}

/// A download that arrived complete and matched what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Its SHA-256 (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Why a download failed. Every message names the address.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status.
    #[error("{url}: the server answered HTTP {status}{}", if *.status == 404 { " (not found)" } else { "" })]
    Status {
        /// The address.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The server sent nothing for the stall time.
    #[error("{url}: the server sent nothing for {} s (after {received} bytes); giving up", .stall.as_secs_f32())]
    Stalled {
        /// The address.
        url: String,
        /// Bytes received before it stalled.
        received: u64,
        /// The stall time.
        stall: Duration,
    },
    /// The connection broke or ended before the whole file came.
    #[error("{url}: the transfer was cut after {received} of {} bytes{}", .expected.map_or("?".into(), |e| e.to_string()), .why.as_ref().map_or(String::new(), |w| format!(" ({w})")))]
    Cut {
        /// The address.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes announced or expected.
        expected: Option<u64>,
        /// The network's error, if it gave one.
        why: Option<String>,
    },
    /// The server announces another size than the catalog gives.
    #[error("{url}: the server announces {announced} bytes, but the model is {expected} bytes; refused")]
    Announced {
        /// The address.
        url: String,
        /// What `Content-Length` says.
        announced: u64,
        /// Bytes expected.
        expected: u64,
    },
    /// More or fewer bytes arrived than the model has (or more than [`MAX_UNKNOWN_SIZE`]).
    #[error("{url}: {received} bytes arrived, but the model is {expected} bytes; refused")]
    Size {
        /// The address.
        url: String,
        /// Bytes received.
        received: u64,
        /// Bytes expected.
        expected: u64,
    },
    /// The file's SHA-256 is not the expected one.
    #[error("{url}: SHA-256 {actual} does not match the expected {expected}; the file was refused and deleted")]
    Hash {
        /// The address.
        url: String,
        /// The expected digest.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// Any other network failure (no such host, refused connection, TLS).
    #[error("{url}: {why}")]
    Network {
        /// The address.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
}

/// An HTTP agent that trusts the system's certificate authorities (as curl and pip do: a network
/// whose proxy re-signs TLS with its own authority, installed on the system, works), giving up
/// after `stall` of silence. Downloads are verified by size and SHA-256 besides.
fn agent(stall: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(CONNECT))
        .timeout_recv_response(Some(stall))
        .timeout_per_read(Some(stall))
        .user_agent(concat!("demixer/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn request_error(url: &str, error: ureq::Error, stall: Duration) -> DownloadError {
    match error {
        ureq::Error::StatusCode(status) => DownloadError::Status { url: url.into(), status },
        ureq::Error::Timeout(_) => DownloadError::Stalled { url: url.into(), received: 0, stall },
        other => DownloadError::Network { url: url.into(), why: other.to_string() },
    }
}

/// Downloads `request.url` into `destination`, calling `progress(received, total)` as bytes come.
///
/// # Errors
/// Any [`DownloadError`]; `destination` may then hold part of the file (callers download into a
/// staging folder that is removed).
pub fn download(
    request: &Request<'_>,
    destination: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, DownloadError> {
    let url = request.url;
    let response = agent(request.stall).get(url).call().map_err(|e| request_error(url, e, request.stall))?;
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let (Some(announced), Some(expected)) = (announced, request.size)
        && announced != expected
    {
        return Err(DownloadError::Announced { url: url.into(), announced, expected });
    }
    let total = announced.or(request.size);
    let limit = total.unwrap_or(MAX_UNKNOWN_SIZE);
    let write_error = |error| DownloadError::Write { path: destination.to_path_buf(), error };
    let mut file = std::fs::File::create(destination).map_err(write_error)?;
    let mut body = response.into_body().into_reader();
    let mut hasher = Hasher::default();
    let mut buffer = vec![0; 1 << 16];
    progress(0, total);
    loop {
        let read = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let received = hasher.bytes();
                let timed_out = matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
                    || e.to_string().to_ascii_lowercase().contains("timeout");
                return Err(if timed_out {
                    DownloadError::Stalled { url: url.into(), received, stall: request.stall }
                } else {
                    DownloadError::Cut { url: url.into(), received, expected: total, why: Some(e.to_string()) }
                });
            }
        };
        if hasher.bytes() + read as u64 > limit {
            // More than announced or expected: stop before it fills the disk.
            return Err(DownloadError::Size {
                url: url.into(),
                received: hasher.bytes() + read as u64,
                expected: limit,
            });
        }
        file.write_all(&buffer[..read]).map_err(write_error)?;
        hasher.update(&buffer[..read]);
        progress(hasher.bytes(), total);
    }
    file.sync_all().map_err(write_error)?;
    let received = hasher.bytes();
    if let Some(announced) = announced
        && received != announced
    {
        return Err(DownloadError::Cut { url: url.into(), received, expected: Some(announced), why: None });
    }
    if let Some(expected) = request.size
        && received != expected
    {
        return Err(DownloadError::Size { url: url.into(), received, expected });
    }
    let actual = hasher.hex();
    if let Some(expected) = request.sha256
        && !expected.eq_ignore_ascii_case(&actual)
    {
        return Err(DownloadError::Hash { url: url.into(), expected: expected.to_ascii_lowercase(), actual });
    }
    Ok(Downloaded { sha256: actual, size: received })
}

/// Fetches a small text (a catalog), at most 1 MiB, giving up after 30 s of silence.
///
/// # Errors
/// As [`download`], or a body that is not UTF-8.
pub fn fetch_text(url: &str) -> Result<String, DownloadError> {
    fetch_text_as(url, "*/*", 1 << 20)
}

/// Fetches a text of at most `limit` bytes, asking for the media type `accept` (a package
/// index's JSON), giving up after 30 s of silence.
///
/// # Errors
/// As [`download`], or a body that is not UTF-8 or is longer than `limit`.
pub fn fetch_text_as(url: &str, accept: &str, limit: u64) -> Result<String, DownloadError> {
    let stall = Duration::from_secs(30);
    let response = agent(stall).get(url).header("Accept", accept).call().map_err(|e| request_error(url, e, stall))?;
    response
        .into_body()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(|e| DownloadError::Network { url: url.into(), why: e.to_string() })
}
