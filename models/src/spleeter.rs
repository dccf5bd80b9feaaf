//! Deezer's Spleeter models (MIT licence, code and weights: "Copyright (c) 2019-present, Deezer
//! SA") converted from their TensorFlow checkpoint to an ONNX spectrogram model, without Python
//! or TensorFlow.
//!
//! Spleeter (Hennequin et al., "Spleeter: a fast and efficient music source separation tool with
//! pre-trained models", JOSS 2020) runs one U-Net per source (Jansson et al., "Singing voice
//! separation with deep U-Net convolutional networks", ISMIR 2017) on the magnitude spectrogram of
//! the mixture, `[T frames, F bins, 2 channels]`. The network rebuilt here follows
//! `spleeter/model/functions/unet.py` layer for layer; for source `s` (Keras' names, counted over
//! the whole model):
//! - encoder: six `conv2d_{7s+i}` (5×5, stride 2, TF "same" padding) whose raw outputs are the
//!   skips, each followed by `batch_normalization_{12s+i}` and the convolution activation (the
//!   sixth's normalisation and activation feed nothing);
//! - decoder: six `conv2d_transpose_{6s+i}` (5×5, stride 2, "same"), each followed by the
//!   deconvolution activation and `batch_normalization_{12s+6+i}`, concatenated with the skip of
//!   the same size (dropout is inactive at inference);
//! - `conv2d_{7s+6}` (4×4, dilation 2, "same", 2 filters): a sigmoid mask (`unet`), or logits that
//!   a softmax across sources turns into masks (`softmax_unet`); the source's magnitude estimate
//!   is the mask times the input.
//!
//! Kernels are stored HWIO (`[kh, kw, in, out]`; transposed convolutions `[kh, kw, out, in]`), batch
//! normalisation uses Keras' epsilon 0.001. The ONNX graph works channels-first: input
//! `magnitude` float32 `[batch, 2, frames, F]`, output `sources` float32 `[batch, S, 2, frames, F]`
//! (the magnitude estimates; Demixer turns them into ratio masks, see the spectrogram contract in
//! `demixer-dsp`). `frames` is free and must be a multiple of 64 (six halvings).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::onnx_graph::{Attribute, Dimension, GraphBuilder};
use crate::tensor_bundle::{Bundle, BundleError, Tensor};

/// Keras' `BatchNormalization` epsilon.
const BATCH_NORM_EPSILON: f32 = 0.001;
/// Halvings in the encoder: the frames and bins must be multiples of 2⁶.
pub const FRAME_MULTIPLE: usize = 64;
/// ONNX operator set the graph is written for.
const OPSET: i64 = 17;
/// Encoder layers per U-Net.
const DEPTH: usize = 6;

/// An activation of Spleeter's U-Net (`conv_activation`, `deconv_activation` in its configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Activation {
    /// `LeakyReLU(0.2)`: the encoder's default.
    LeakyReLU,
    /// `ReLU`: the decoder's default.
    ReLU,
    /// `ELU` (alpha 1): the 4- and 5-stem models' choice.
    ELU,
}

/// How the last layer becomes masks: `unet.unet` or `unet.softmax_unet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Masks {
    /// A sigmoid mask per source.
    Sigmoid,
    /// A softmax across sources of each source's logits.
    Softmax,
}

fn leaky_relu() -> Activation {
    Activation::LeakyReLU
}

fn relu() -> Activation {
    Activation::ReLU
}

fn sigmoid() -> Masks {
    Masks::Sigmoid
}

/// A Spleeter model's configuration: what its `<model>.json` in Deezer's `spleeter/resources`
/// says, as far as inference goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SpleeterConfig {
    /// The sources, in the checkpoint's order (`instrument_list`), e.g. `["vocals", "accompaniment"]`.
    pub instruments: Vec<String>,
    /// Encoder activation.
    #[serde(default = "leaky_relu")]
    pub conv_activation: Activation,
    /// Decoder activation.
    #[serde(default = "relu")]
    pub deconv_activation: Activation,
    /// Sigmoid masks per source, or a softmax across sources.
    #[serde(default = "sigmoid")]
    pub masks: Masks,
    /// Frequency bins the network sees (`F`), from bin 0.
    pub bins: usize,
    /// Frames per chunk in Spleeter's own separation (`T`).
    pub frames: usize,
    /// STFT frame length (`frame_length`), samples.
    pub n_fft: usize,
    /// STFT hop (`frame_step`), samples.
    pub hop: usize,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Exponent of the ratio masks (`separation_exponent`).
    pub separation_exponent: u32,
}

/// Why a checkpoint cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The checkpoint cannot be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// It is not the U-Net the configuration describes.
    #[error("the checkpoint is not a Spleeter U-Net for {sources} sources: {why}")]
    Shape {
        /// Sources expected.
        sources: usize,
        /// What does not fit.
        why: String,
    },
}

/// One layer's weights in ONNX's layout.
struct Layer {
    kernel: Tensor,
    bias: Tensor,
}

/// Reads `conv2d[_n]` or `conv2d_transpose[_n]`: kernel transposed from `[kh, kw, a, b]` to ONNX's
/// `[b, a, kh, kw]` (`Conv`: `[out, in, kh, kw]`; `ConvTranspose`: `[in, out, kh, kw]`).
fn layer(bundle: &Bundle, name: &str) -> Result<Layer, BundleError> {
    let kernel = bundle.tensor(&format!("{name}/kernel"))?;
    let bias = bundle.tensor(&format!("{name}/bias"))?;
    let &[kh, kw, a, b] = kernel.shape.as_slice() else {
        return Err(BundleError::Tensor {
            name: format!("{name}/kernel"),
            why: format!("has shape {:?}", kernel.shape),
        });
    };
    let mut values = vec![0.0; kernel.values.len()];
    for (i, &v) in kernel.values.iter().enumerate() {
        let (y, x, p, q) = (i / (kw * a * b), i / (a * b) % kw, i / b % a, i % b);
        values[((q * a + p) * kh + y) * kw + x] = v;
    }
    Ok(Layer { kernel: Tensor { shape: vec![b, a, kh, kw], values }, bias })
}

/// Keras names its n-th layer of a class `class`, then `class_1`, `class_2`, ...
fn keras_name(class: &str, n: usize) -> String {
    if n == 0 { class.to_string() } else { format!("{class}_{n}") }
}

/// Builds the graph of one checkpoint.
struct Converter<'a> {
    bundle: &'a Bundle,
    config: &'a SpleeterConfig,
    graph: GraphBuilder,
}

impl Converter<'_> {
    fn shape_error(&self, why: String) -> ConvertError {
        ConvertError::Shape { sources: self.config.instruments.len(), why }
    }

    /// A convolution (or transposed one) of `input` with the layer `name`; returns its output and
    /// its output channels.
    fn conv(
        &mut self,
        op: &str,
        name: &str,
        input: &str,
        attributes: Vec<(&str, Attribute)>,
    ) -> Result<(String, usize), ConvertError> {
        let Layer { kernel, bias } = layer(self.bundle, name)?;
        let channels = if op == "Conv" { kernel.shape[0] } else { kernel.shape[1] };
        if bias.shape != [channels] {
            return Err(self.shape_error(format!("{name}/bias has shape {:?} for {channels} channels", bias.shape)));
        }
        let w = self.graph.constant(&format!("{name}/kernel"), &kernel.shape, &kernel.values);
        let b = self.graph.constant(&format!("{name}/bias"), &bias.shape, &bias.values);
        Ok((self.graph.node(op, &[input, &w, &b], attributes), channels))
    }

    /// `batch_normalization[_n]` at inference: `gamma (x - mean) / sqrt(var + 0.001) + beta`.
    fn batch_norm(&mut self, n: usize, input: &str, channels: usize) -> Result<String, ConvertError> {
        let name = keras_name("batch_normalization", n);
        let mut inputs = vec![input.to_string()];
        for part in ["gamma", "beta", "moving_mean", "moving_variance"] {
            let tensor = self.bundle.tensor(&format!("{name}/{part}"))?;
            if tensor.shape != [channels] {
                return Err(
                    self.shape_error(format!("{name}/{part} has shape {:?} for {channels} channels", tensor.shape))
                );
            }
            inputs.push(self.graph.constant(&format!("{name}/{part}"), &tensor.shape, &tensor.values));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.graph.node("BatchNormalization", &inputs, vec![("epsilon", Attribute::Float(BATCH_NORM_EPSILON))]))
    }

    fn activate(&mut self, activation: Activation, input: &str) -> String {
        match activation {
            Activation::LeakyReLU => self.graph.node("LeakyRelu", &[input], vec![("alpha", Attribute::Float(0.2))]),
            Activation::ReLU => self.graph.node("Relu", &[input], vec![]),
            Activation::ELU => self.graph.node("Elu", &[input], vec![("alpha", Attribute::Float(1.0))]),
        }
    }

    /// One source's U-Net on `input`: the mask (sigmoid) or its logits (softmax), `[batch, 2, frames, F]`.
    fn unet(&mut self, source: usize, input: &str) -> Result<String, ConvertError> {
        let stride = || ("strides", Attribute::Ints(vec![2, 2]));
        // TF's "same" for a 5×5 kernel and stride 2 on an even size: 1 before, 2 after.
        let same = || ("pads", Attribute::Ints(vec![1, 1, 2, 2]));
        let mut skips = Vec::new();
        let mut x = input.to_string();
        for i in 0..DEPTH {
            let name = keras_name("conv2d", 7 * source + i);
            let (conv, channels) = self.conv("Conv", &name, &x, vec![stride(), same()])?;
            if i + 1 < DEPTH {
                let normal = self.batch_norm(12 * source + i, &conv, channels)?;
                x = self.activate(self.config.conv_activation, &normal);
            }
            skips.push(conv);
        }
        let mut x = skips.pop().expect("six encoder layers");
        for i in 0..DEPTH {
            let name = keras_name("conv2d_transpose", 6 * source + i);
            let (up, channels) = self.conv("ConvTranspose", &name, &x, vec![stride(), same()])?;
            let active = self.activate(self.config.deconv_activation, &up);
            let normal = self.batch_norm(12 * source + DEPTH + i, &active, channels)?;
            x = match skips.pop() {
                Some(skip) => self.graph.node("Concat", &[&skip, &normal], vec![("axis", Attribute::Int(1))]),
                None => normal,
            };
        }
        let last = vec![("dilations", Attribute::Ints(vec![2, 2])), ("pads", Attribute::Ints(vec![3, 3, 3, 3]))];
        let (logits, channels) = self.conv("Conv", &keras_name("conv2d", 7 * source + 6), &x, last)?;
        if channels != 2 {
            return Err(self.shape_error(format!("the last layer has {channels} filters, 2 expected")));
        }
        Ok(match self.config.masks {
            Masks::Sigmoid => self.graph.node("Sigmoid", &[&logits], vec![]),
            Masks::Softmax => logits,
        })
    }
}

/// The metadata the spectrogram contract reads (see `demixer-dsp`'s `onnx::spectrogram`), plus
/// where the weights come from.
fn metadata(config: &SpleeterConfig, provenance: &str) -> BTreeMap<String, String> {
    let entries = [
        ("sources", config.instruments.join(",")),
        ("sample_rate", config.sample_rate.to_string()),
        ("n_fft", config.n_fft.to_string()),
        ("hop", config.hop.to_string()),
        ("frames", config.frames.to_string()),
        ("frame_multiple", FRAME_MULTIPLE.to_string()),
        ("separation_exponent", config.separation_exponent.to_string()),
        ("output", "magnitudes".to_string()),
        ("licence", "MIT; Copyright (c) 2019-present, Deezer SA (code and weights of Spleeter)".to_string()),
        ("converted_from", provenance.to_string()),
    ];
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Converts the Spleeter checkpoint `bundle` into an ONNX model (the file's bytes); `provenance`
/// (where the checkpoint came from, its SHA-256) is kept in the model's metadata.
///
/// # Errors
/// [`ConvertError::Bundle`] for a missing, damaged or non-float variable; [`ConvertError::Shape`]
/// when the layers do not chain as Spleeter's U-Net does.
pub fn convert(bundle: &Bundle, config: &SpleeterConfig, provenance: &str) -> Result<Vec<u8>, ConvertError> {
    let sources = config.instruments.len();
    if sources == 0 || !config.bins.is_multiple_of(FRAME_MULTIPLE) || !config.frames.is_multiple_of(FRAME_MULTIPLE) {
        return Err(ConvertError::Shape {
            sources,
            why: format!("{} bins and {} frames must be multiples of 64", config.bins, config.frames),
        });
    }
    let unexpected = keras_name("conv2d", 7 * sources);
    if bundle.entries().contains_key(&format!("{unexpected}/kernel")) {
        return Err(ConvertError::Shape {
            sources,
            why: format!("it has a layer `{unexpected}` beyond {sources} U-Nets"),
        });
    }
    let mut converter = Converter { bundle, config, graph: GraphBuilder::default() };
    let input = "magnitude";
    let masks = (0..sources).map(|s| converter.unet(s, input)).collect::<Result<Vec<_>, _>>()?;
    let graph = &mut converter.graph;
    let axis = graph.int64s("source_axis", &[1]);
    let stacked: Vec<String> = masks.iter().map(|m| graph.node("Unsqueeze", &[m, &axis], vec![])).collect();
    let stacked: Vec<&str> = stacked.iter().map(String::as_str).collect();
    let mut masks = graph.node("Concat", &stacked, vec![("axis", Attribute::Int(1))]);
    if config.masks == Masks::Softmax {
        masks = graph.node("Softmax", &[&masks], vec![("axis", Attribute::Int(1))]);
    }
    let mix = graph.node("Unsqueeze", &[input, &axis], vec![]);
    let output = graph.node("Mul", &[&masks, &mix], vec![]);
    graph.rename(&output, "sources");
    let (batch, frames) = (Dimension::Free("batch"), Dimension::Free("frames"));
    let bins = Dimension::Fixed(config.bins);
    let input_dims = [batch.clone(), Dimension::Fixed(2), frames.clone(), bins.clone()];
    let output_dims = [batch, Dimension::Fixed(sources), Dimension::Fixed(2), frames, bins];
    let doc = "Spleeter (Deezer) U-Nets converted by demixer from the TensorFlow checkpoint";
    Ok(converter.graph.encode(
        (input, &input_dims),
        ("sources", &output_dims),
        OPSET,
        &metadata(config, provenance),
        doc,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> Bundle {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spleeter").join(name);
        Bundle::open(&dir.join("model")).unwrap()
    }

    fn config(instruments: &[&str]) -> SpleeterConfig {
        SpleeterConfig {
            instruments: instruments.iter().map(|s| s.to_string()).collect(),
            conv_activation: Activation::LeakyReLU,
            deconv_activation: Activation::ReLU,
            masks: Masks::Sigmoid,
            bins: 64,
            frames: 64,
            n_fft: 256,
            hop: 64,
            sample_rate: 44100,
            separation_exponent: 2,
        }
    }

    /// The fields of `ModelProto` the tests look at.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Model {
        #[prost(message, optional, tag = "7")]
        graph: Option<Graph>,
        #[prost(message, repeated, tag = "14")]
        metadata_props: Vec<Property>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Graph {
        #[prost(bytes = "vec", repeated, tag = "1")]
        node: Vec<Vec<u8>>,
        #[prost(bytes = "vec", repeated, tag = "5")]
        initializer: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Property {
        #[prost(string, tag = "1")]
        key: String,
        #[prost(string, tag = "2")]
        value: String,
    }

    #[test]
    fn the_converted_model_carries_every_layer_and_what_the_engine_needs_to_know() {
        let bytes = convert(&fixture("unet2"), &config(&["vocals", "accompaniment"]), "a test").unwrap();
        let model = <Model as prost::Message>::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.unwrap();
        // Per U-Net: 13 convolutions with kernel and bias, 11 normalisations with 4 tensors.
        assert_eq!(graph.initializer.len(), 2 * (13 * 2 + 11 * 4) + 1);
        let metadata: BTreeMap<String, String> = model.metadata_props.into_iter().map(|p| (p.key, p.value)).collect();
        assert_eq!(metadata["sources"], "vocals,accompaniment");
        assert_eq!((metadata["n_fft"].as_str(), metadata["hop"].as_str()), ("256", "64"));
        assert!(metadata["licence"].contains("Deezer SA"));
        assert_eq!(metadata["converted_from"], "a test");
    }

    #[test]
    fn a_checkpoint_that_is_not_the_configured_u_net_is_refused() {
        let three = convert(&fixture("unet2"), &config(&["vocals", "drums", "other"]), "");
        assert!(
            matches!(three, Err(ConvertError::Bundle(BundleError::Missing(ref name))) if name == "conv2d_14/kernel")
        );
        let one = convert(&fixture("unet2"), &config(&["vocals"]), "").unwrap_err().to_string();
        assert!(one.contains("beyond 1 U-Nets"), "{one}");
        let mut odd = config(&["vocals", "accompaniment"]);
        odd.bins = 100;
        assert!(convert(&fixture("unet2"), &odd, "").unwrap_err().to_string().contains("multiples of 64"));
    }
}
