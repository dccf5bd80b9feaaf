//! SHA-256 of files, as lower-case hex (the form `sha256sum` prints).

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// A running SHA-256 that also counts bytes.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    bytes: u64,
}

impl Hasher {
    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.bytes += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digest as 64 lower-case hex digits.
    pub fn hex(self) -> String {
        self.sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// SHA-256 of the file at `path` and its size in bytes.
///
/// # Errors
/// The file cannot be read.
pub fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::default();
    let mut buffer = vec![0; 1 << 16];
    loop {
        match file.read(&mut buffer)? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    let bytes = hasher.bytes();
    Ok((hasher.hex(), bytes))
}

/// Whether `text` looks like a SHA-256 in hex (64 hex digits, either case).
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        let mut hasher = Hasher::default();
        hasher.update(b"abc");
        assert_eq!(hasher.bytes(), 3);
        assert_eq!(hasher.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_sha256("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert!(!is_sha256("abc"));
    }
}
