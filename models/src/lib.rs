//! Demixer's model library: where models live on this machine, by name, and how they get there.
//!
//! - [`catalog`]: the published models Demixer knows (`models/catalog.json`, or another catalog
//!   named by `DEMIXER_CATALOG`), with where each comes from and its SHA-256 where the publisher
//!   gives one.
//! - [`library`]: the installed models, one folder each in the platform's data folder (or
//!   `DEMIXER_MODELS_DIR`), with the SHA-256 pinned by the first download of a model whose
//!   publisher gives none.
//! - [`download`] (feature `download`): HTTPS downloads that are checked for size and SHA-256
//!   before the model gets its final name.
//!
//! Checking a model against Demixer's contracts needs ONNX Runtime and lives in `demixer-dsp`
//! (`onnx::inspect`); this crate only moves and verifies files.
#![warn(missing_docs)]

pub mod catalog;
#[cfg(feature = "download")]
pub mod checkpoint;
pub mod digest;
#[cfg(feature = "download")]
pub mod download;
pub mod library;
pub mod onnx_graph;
#[cfg(feature = "download")]
pub mod pypi;
pub mod runtime;
pub mod spleeter;
pub mod tensor_bundle;

pub use catalog::{Catalog, CatalogEntry, CatalogError};
pub use library::{Installed, Library, LibraryError, ModelKind};
