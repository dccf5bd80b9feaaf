//! Signal-processing primitives the engines are built of: the STFT, median filters (a sorting
//! network for the short ones), a delay line, and what keeps bad numbers out of the engines.

pub(crate) mod delay;
pub(crate) mod denormals;
pub(crate) mod median;
pub(crate) mod median_network;
pub(crate) mod stft;
