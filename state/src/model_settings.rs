//! The model engine's settings: which model, which ONNX Runtime library, which device. They are
//! saved with the plugin's state (not automatable) and edited in the mixer's model panel.

use serde::{Deserialize, Serialize};

/// Devices the model panel offers, as the engine names them.
pub const DEVICES: [&str; 3] = ["auto", "cpu", "cuda"];

/// Where the model engine's model and runtime are, and how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
    /// The name of a model in the model library (`demixer models list`), or the path of an ONNX
    /// model (`.onnx`) or bag manifest (`.json`); empty: none.
    pub model: String,
    /// SHA-256 of the library model when it was chosen (empty for a path): a project opened where
    /// that name holds another file says so.
    pub sha256: String,
    /// ONNX Runtime library (file or folder); empty: search the usual places.
    pub runtime: String,
    /// One of [`DEVICES`].
    pub device: String,
    /// CPU threads for inference; 0: half the cores.
    pub threads: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            model: String::new(),
            sha256: String::new(),
            runtime: String::new(),
            device: DEVICES[0].into(),
            threads: 0,
        }
    }
}
