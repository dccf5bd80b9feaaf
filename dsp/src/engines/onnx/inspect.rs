//! What `demixer models info` and `add` say about a model file: its inputs and outputs, what the
//! contract reads from it, its latency at common host rates and its parameter count.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ort::value::ValueType;

use ort::session::Session;

use super::model::Mode;
use super::streaming::{Pairing, State};
use super::{OnnxConfig, OnnxError, Opened, for_host, open, runtime};
use crate::engine::EngineKind;
use crate::engines::segments::{InferenceError, OverlapAdd, SegmentModel};
use crate::engines::spectrogram::{Chunking, MaskedStft, SpectrogramModel, SpectrogramSpec};
use crate::separator::Separator;
use crate::separator::StereoOut;
use crate::stem::Stem;

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

/// The contract-specific part of an [`Inspection`].
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// A segment model (or bag): samples per segment.
    Segment {
        /// Samples per channel of one segment.
        segment: usize,
    },
    /// A streaming model.
    Streaming {
        /// Samples per channel of one hop.
        hop: usize,
        /// The states and their outputs.
        states: Vec<State>,
        /// The rule that paired them.
        pairing: Pairing,
        /// Whether Demixer completes the last source.
        sum_to_input: bool,
    },
    /// A spectrogram model.
    Spectrogram {
        /// The STFT, bins and estimates.
        spec: SpectrogramSpec,
        /// Frames of its own chunks.
        frames: usize,
        /// How it runs offline (its own chunks) and live (a sliding window).
        offline: Chunking,
        /// See `offline`.
        live: Chunking,
        /// Engine latency in samples at each of [`LATENCY_RATES`] in live mode (`latencies` has
        /// the offline ones).
        live_latencies: Vec<(usize, usize)>,
    },
}

/// What a model (or a bag of models) is.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// [`EngineKind::SegmentModel`], [`EngineKind::StreamingModel`] or
    /// [`EngineKind::SpectrogramModel`].
    pub kind: EngineKind,
    /// The files loaded: the model, or a bag's members.
    pub files: Vec<PathBuf>,
    /// The first file's inputs.
    pub inputs: Vec<Port>,
    /// The first file's outputs.
    pub outputs: Vec<Port>,
    /// The model's sources, in output order.
    pub sources: Vec<Stem>,
    /// The stems the engine writes: the model's sources, or the four stems where HPSS completes
    /// a model that gives fewer ([`crate::Completed`]).
    pub stems: Vec<Stem>,
    /// The rate the model works at, in Hz.
    pub sample_rate: usize,
    /// Segment or hop, states.
    pub layout: Layout,
    /// Engine latency in samples at each of [`LATENCY_RATES`], exactly what the engine reports
    /// there offline (for segment models the stride it waits for included; resampling and HPSS
    /// completion included). The plugin adds its worker margin on top.
    pub latencies: Vec<(usize, usize)>,
    /// Weights in all files (elements of the graphs' initializers), when the files could be read.
    pub parameters: Option<u64>,
}

/// Opens `config`'s model or bag (sessions are created: seconds for a large model, no inference)
/// and checks it against its contract.
///
/// # Errors
/// As [`super::load`], but no inference runs.
pub fn inspect(config: &OnnxConfig) -> Result<Inspection, OnnxError> {
    let runtime = runtime::load(config.runtime.as_deref(), config.installed_runtime.as_deref())?;
    let ports = |session: &Session| -> (Vec<Port>, Vec<Port>) {
        let list = |outlets: &[ort::value::Outlet]| -> Vec<Port> {
            outlets.iter().map(|o| Port { name: o.name().to_string(), shape: describe(o.dtype()) }).collect()
        };
        (list(session.inputs()), list(session.outputs()))
    };
    let (kind, files, (inputs, outputs), sources, sample_rate, shape) = match open(config, runtime)? {
        Opened::Segments(set) => {
            let first = set.models().next().expect("a set has a model");
            let (segment, sources, rate) = (set.segment_len(), set.sources().to_vec(), set.sample_rate());
            let files = set.models().map(|m| m.opened().path().to_path_buf()).collect();
            let ports = ports(&first.opened().session);
            (EngineKind::SegmentModel, files, ports, sources, rate, Shape::Segment(segment))
        }
        Opened::Streaming(model) => {
            let spec = model.spec().clone();
            let files = vec![model.opened().path().to_path_buf()];
            let ports = ports(&model.opened().session);
            let latency = spec.latency;
            (
                EngineKind::StreamingModel,
                files,
                ports,
                spec.sources.clone(),
                spec.sample_rate,
                Shape::Streaming(spec, latency),
            )
        }
        Opened::Spectrogram(model) => {
            let declared = model.declared().clone();
            let files = vec![model.opened().path().to_path_buf()];
            let ports = ports(&model.opened().session);
            let sources = declared.layout.sources.clone();
            (EngineKind::SpectrogramModel, files, ports, sources, declared.sample_rate, Shape::Spectrogram(declared))
        }
    };
    let at_rates = |mode: Mode| -> Result<Vec<(usize, usize)>, OnnxError> {
        LATENCY_RATES.iter().map(|&rate| Ok((rate, shape.engine(&sources, sample_rate, rate, mode)?.1))).collect()
    };
    let latencies = at_rates(Mode::Offline)?;
    let stems = shape.engine(&sources, sample_rate, sample_rate, Mode::Offline)?.0;
    let layout = match shape {
        Shape::Segment(segment) => Layout::Segment { segment },
        Shape::Streaming(spec, _) => Layout::Streaming {
            hop: spec.hop,
            states: spec.states,
            pairing: spec.pairing,
            sum_to_input: spec.sum_to_input,
        },
        Shape::Spectrogram(ref declared) => Layout::Spectrogram {
            spec: declared.layout.clone(),
            frames: declared.frames,
            offline: declared.reference_chunking(),
            live: declared.live_chunking(),
            live_latencies: at_rates(Mode::Live)?,
        },
    };
    let parameters = files.iter().map(|f| count_parameters(f).ok()).sum();
    Ok(Inspection { kind, files, inputs, outputs, sources, stems, sample_rate, layout, latencies, parameters })
}

/// What a model's latency depends on.
pub(crate) enum Shape {
    Segment(usize),
    Streaming(super::streaming::StreamingSpec, usize),
    Spectrogram(super::spectrogram::SpectrogramDeclared),
}

impl Shape {
    /// The stems and the latency (bursts included), in host samples, of the engine [`super::load`]
    /// builds for this model at `host_rate` in `mode`, without running it.
    pub(crate) fn engine(
        &self,
        sources: &[Stem],
        model_rate: usize,
        host_rate: usize,
        mode: Mode,
    ) -> Result<(Vec<Stem>, usize), OnnxError> {
        let inner: Box<dyn Separator> = match self {
            Shape::Segment(segment) => {
                Box::new(OverlapAdd::new(Unrun { segment: *segment, sources: sources.to_vec(), layout: None })?)
            }
            Shape::Streaming(_, latency) => Box::new(Latent { latency: *latency, sources: sources.to_vec() }),
            Shape::Spectrogram(declared) => {
                let chunking =
                    if mode == Mode::Live { declared.live_chunking() } else { declared.reference_chunking() };
                let model = Unrun { segment: 0, sources: sources.to_vec(), layout: Some(declared.layout.clone()) };
                Box::new(MaskedStft::new(model, chunking))
            }
        };
        let engine = for_host(inner, model_rate, host_rate, &mut Vec::new())?;
        Ok((engine.sources().to_vec(), engine.latency_samples() + engine.burst_samples()))
    }
}

/// A separator that only has a latency, for latency arithmetic.
struct Latent {
    latency: usize,
    sources: Vec<Stem>,
}

impl Separator for Latent {
    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn latency_samples(&self) -> usize {
        self.latency
    }

    fn process(&mut self, _: &[f32], _: &[f32], stems: &mut [StereoOut<'_>]) {
        stems.iter_mut().flat_map(|s| s.iter_mut()).for_each(|c| c.fill(0.0));
    }

    fn reset(&mut self) {}
}

fn describe(dtype: &ValueType) -> String {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => format!("{ty} {:?}", shape.iter().collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// A model that is never run, for latency arithmetic: a segment model of `segment` samples, or a
/// spectrogram model of `layout`.
struct Unrun {
    segment: usize,
    sources: Vec<Stem>,
    layout: Option<SpectrogramSpec>,
}

impl SegmentModel for Unrun {
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

impl SpectrogramModel for Unrun {
    fn spec(&self) -> &SpectrogramSpec {
        self.layout.as_ref().expect("a spectrogram shape has its layout")
    }

    fn run(&mut self, _: &[f32], _: usize, _: &mut [f32]) -> Result<(), InferenceError> {
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
    Ok(Shape::Segment(segment).engine(sources, model_rate, host_rate, Mode::Offline)?.1)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::hpss::{HpssConfig, Preset};

    #[test]
    fn completion_takes_the_normal_preset_only_where_it_adds_little_latency() {
        let two = vec![Stem::Vocals, Stem::Accompaniment];
        let hpss = |preset| HpssConfig::preset(preset, 44_100.0).unwrap().latency_samples();
        let added = |model_latency: usize| {
            let model = Box::new(Latent { latency: model_latency, sources: two.clone() });
            let engine = for_host(model, 44_100, 44_100, &mut Vec::new()).unwrap();
            engine.latency_samples() - model_latency
        };
        assert_eq!(added(256), hpss(Preset::Low), "a streaming model keeps its milliseconds");
        assert_eq!(added(86_000), hpss(Preset::Normal), "two seconds: the normal preset adds 4 %");
    }
}
