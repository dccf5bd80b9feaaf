//! Why an ONNX engine could not be loaded or run.

use std::path::PathBuf;

use super::contract::EXPECTED;
use super::runtime::NotFound;
use crate::compose::resampled::ResampleError;
use crate::engines::segments::{InferenceError, SegmentTooShort};

/// Everything that can go wrong between a model path and a running ONNX engine. Each message says
/// what was expected, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// No ONNX Runtime library could be loaded; lists every place tried.
    #[error(transparent)]
    Runtime(#[from] NotFound),
    /// The model file is not there.
    #[error("model {} does not exist", .0.display())]
    Missing(PathBuf),
    /// ONNX Runtime refused the session options.
    #[error("cannot set up ONNX Runtime for {}: {source}", path.display())]
    Session {
        /// The model.
        path: PathBuf,
        /// ONNX Runtime's error.
        source: ort::Error,
    },
    /// `--device cuda` (or the panel's "cuda") and CUDA did not register.
    #[error("CUDA is not available: {0}")]
    CudaUnavailable(String),
    /// ONNX Runtime cannot read the file as a model.
    #[error("cannot load model {}: {source}; expected {EXPECTED}", path.display())]
    Load {
        /// The model.
        path: PathBuf,
        /// ONNX Runtime's error.
        source: ort::Error,
    },
    /// The model loads but does not fit the contract (`contract.rs`).
    #[error("model {}: {why}", path.display())]
    Contract {
        /// The model.
        path: PathBuf,
        /// What does not fit, and what was expected.
        why: String,
    },
    /// A bag manifest that cannot be used; the text names the manifest or model and the problem.
    #[error("{0}")]
    Bag(String),

    /// HPSS could not be set up to complete a model with fewer than four stems.
    #[error("HPSS cannot complete the model: {0}")]
    Completion(#[from] crate::engines::hpss::ConfigError),
    /// The warm-up inference failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// The model's rate cannot be reached from the stream's.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The model's segments are too short to stream.
    #[error(transparent)]
    Segment(#[from] SegmentTooShort),
}
