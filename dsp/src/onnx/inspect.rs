//! What `demixer models info` and `add` say about a model file: its inputs and outputs, what the
//! contract reads from it, its latency at common host rates and its parameter count.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ort::value::ValueType;

use super::contract::ModelSpec;
use super::{OnnxConfig, OnnxError, open_set, runtime};
use crate::Stem;
use crate::resampled::Resampled;
use crate::segments::{InferenceError, OverlapAdd, SegmentModel};
use crate::separator::Separator;

/// Host rates, in Hz, at which [`Inspection::latencies`] are given.
pub const LATENCY_RATES: [usize; 2] = [44_100, 48_000];

/// One input or output of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name.
    pub name: String,
    /// Element type and shape as ONNX Runtime reports them (-1: not fixed), e.g. `f32 [1, 2, 343980]`.
    pub shape: String,
}

/// What a model (or a bag of models) is.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The files loaded: the model, or a bag's members.
    pub files: Vec<PathBuf>,
    /// The first file's inputs.
    pub inputs: Vec<Port>,
    /// The first file's outputs.
    pub outputs: Vec<Port>,
    /// Sources, rate and segment, as Demixer reads them.
    pub spec: ModelSpec,
    /// Engine latency in samples (one segment plus the stride the stream waits for, and the
    /// resampling where the host rate is not the model's) at each of [`LATENCY_RATES`]. The plugin
    /// adds its worker margin on top.
    pub latencies: Vec<(usize, usize)>,
    /// Weights in all files (elements of the graphs' initializers), when the files could be read.
    pub parameters: Option<u64>,
}

/// Opens `config`'s model or bag (sessions are created: seconds for a large model, no inference)
/// and checks it against the segment contract.
///
/// # Errors
/// As [`super::load`], but no inference runs.
pub fn inspect(config: &OnnxConfig) -> Result<Inspection, OnnxError> {
    let runtime = runtime::load(config.runtime.as_deref(), config.installed_runtime.as_deref())?;
    let set = open_set(config, runtime)?;
    let first = set.models().next().expect("a set has a model");
    let ports = |list: &[ort::value::Outlet]| -> Vec<Port> {
        list.iter().map(|o| Port { name: o.name().to_string(), shape: describe(o.dtype()) }).collect()
    };
    let (inputs, outputs) = (ports(first.session().inputs()), ports(first.session().outputs()));
    let files: Vec<PathBuf> = set.models().map(|m| m.path().to_path_buf()).collect();
    let spec = ModelSpec { sources: set.sources().to_vec(), ..first.spec().clone() };
    let latencies = LATENCY_RATES
        .iter()
        .map(|&rate| Ok((rate, segment_latency(spec.segment, &spec.sources, spec.sample_rate, rate)?)))
        .collect::<Result<_, OnnxError>>()?;
    let parameters = files.iter().map(|f| count_parameters(f).ok()).sum();
    Ok(Inspection { files, inputs, outputs, spec, latencies, parameters })
}

fn describe(dtype: &ValueType) -> String {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => format!("{ty} {:?}", shape.iter().collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// A segment model that is never run, for latency arithmetic.
struct Shape {
    segment: usize,
    sources: Vec<Stem>,
}

impl SegmentModel for Shape {
    fn segment_len(&self) -> usize {
        self.segment
    }

    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn run(&mut self, _: &[f32], _: &mut [f32]) -> Result<(), InferenceError> {
        Err(InferenceError("a shape is not run".into()))
    }
}

/// The latency, in host samples, of a segment model of `segment` samples at `model_rate` Hz in a
/// stream at `host_rate` Hz: exactly what [`super::load`]'s engine reports, bursts included.
///
/// # Errors
/// Rates that cannot be converted, or segments too short to stream.
pub fn segment_latency(
    segment: usize,
    sources: &[Stem],
    model_rate: usize,
    host_rate: usize,
) -> Result<usize, OnnxError> {
    let streamed = OverlapAdd::new(Shape { segment, sources: sources.to_vec() })?;
    let engine: Box<dyn Separator> = if model_rate == host_rate {
        Box::new(streamed)
    } else {
        Box::new(Resampled::new(Box::new(streamed), host_rate, model_rate)?)
    };
    Ok(engine.latency_samples() + engine.burst_samples())
}

/// Reads protobuf fields from a stream, keeping count of the position.
struct Fields<R: BufRead> {
    reader: R,
    position: u64,
}

impl<R: BufRead> Fields<R> {
    fn byte(&mut self) -> std::io::Result<Option<u8>> {
        let mut one = [0];
        match self.reader.read(&mut one)? {
            0 => Ok(None),
            _ => {
                self.position += 1;
                Ok(Some(one[0]))
            }
        }
    }

    fn varint(&mut self) -> std::io::Result<Option<u64>> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(byte) = self.byte()? else {
                return if shift == 0 { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
            };
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(std::io::Error::other("varint too long"))
    }

    fn need(&mut self) -> std::io::Result<u64> {
        self.varint()?.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }

    fn skip(&mut self, bytes: u64) -> std::io::Result<()> {
        let skipped = std::io::copy(&mut (&mut self.reader).take(bytes), &mut std::io::sink())?;
        self.position += skipped;
        if skipped == bytes { Ok(()) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) }
    }

    /// Skips a field of wire type `wire` whose key was read.
    fn skip_value(&mut self, wire: u64) -> std::io::Result<()> {
        match wire {
            0 => self.need().map(drop),
            1 => self.skip(8),
            2 => {
                let len = self.need()?;
                self.skip(len)
            }
            5 => self.skip(4),
            _ => Err(std::io::Error::other(format!("unknown protobuf wire type {wire}"))),
        }
    }

    /// Calls `field(self, number, wire)` for each field up to `end` (or the end of the stream);
    /// `field` must consume the value.
    fn each(
        &mut self,
        end: Option<u64>,
        mut field: impl FnMut(&mut Self, u64, u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        while end.is_none_or(|end| self.position < end) {
            let Some(key) = self.varint()? else { break };
            field(self, key >> 3, key & 7)?;
        }
        Ok(())
    }
}

/// Elements in the initializers of an ONNX model file (`ModelProto.graph.initializer[*].dims`),
/// read without loading the weights. Weights kept in Constant nodes are not counted.
///
/// # Errors
/// The file cannot be read or is not a protobuf.
pub fn count_parameters(path: &Path) -> std::io::Result<u64> {
    const GRAPH: u64 = 7;
    const INITIALIZER: u64 = 5;
    const DIMS: u64 = 1;
    let file = std::fs::File::open(path)?;
    let mut fields = Fields { reader: BufReader::with_capacity(1 << 16, file), position: 0 };
    let mut total = 0u64;
    fields.each(None, |fields, number, wire| {
        if (number, wire) != (GRAPH, 2) {
            return fields.skip_value(wire);
        }
        let end = fields.need()? + fields.position;
        fields.each(Some(end), |fields, number, wire| {
            if (number, wire) != (INITIALIZER, 2) {
                return fields.skip_value(wire);
            }
            let end = fields.need()? + fields.position;
            let mut elements = 1u64;
            fields.each(Some(end), |fields, number, wire| match (number, wire) {
                (DIMS, 0) => {
                    elements = elements.saturating_mul(fields.need()?);
                    Ok(())
                }
                (DIMS, 2) => {
                    let end = fields.need()? + fields.position;
                    while fields.position < end {
                        elements = elements.saturating_mul(fields.need()?);
                    }
                    Ok(())
                }
                _ => fields.skip_value(wire),
            })?;
            total = total.saturating_add(elements);
            Ok(())
        })
    })?;
    Ok(total)
}
