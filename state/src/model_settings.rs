//! The model engine's settings: which model, which ONNX Runtime library, which device. They are
//! saved with the plugin's state (not automatable) and edited in the mixer's model panel.

use serde::{Deserialize, Serialize};

/// Devices the model panel offers, as the engine names them.
pub const DEVICES: [&str; 3] = ["auto", "cpu", "cuda"];

/// Where the model engine's model and runtime are, and how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelSettings {
    /// An ONNX model (`.onnx`) or a bag manifest (`.json`); empty: none.
    pub model: String,
    /// ONNX Runtime library (file or folder); empty: search the usual places.
    pub runtime: String,
    /// One of [`DEVICES`].
    pub device: String,
    /// CPU threads for inference; 0: half the cores.
    pub threads: u32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self { model: String::new(), runtime: String::new(), device: DEVICES[0].into(), threads: 0 }
    }
}
