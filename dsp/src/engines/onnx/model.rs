//! ONNX sessions that separate segments: one model, or a bag of single-stem specialists.

use std::path::{Path, PathBuf};

use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::value::TensorRef;

use super::OnnxError;
use super::contract::{self, INPUT, ModelSpec};
use super::runtime::Runtime;
use crate::engines::segments::{InferenceError, SegmentModel};
use crate::stem::Stem;

/// Where an engine computes: the ONNX Runtime execution provider a model ended up on (HPSS
/// always computes on the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "CPU",
            Provider::Cuda => "CUDA",
        })
    }
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when it registers, else the CPU.
    #[default]
    Auto,
    /// The CPU only.
    Cpu,
    /// CUDA only: failing to register it is an error.
    Cuda,
}

impl Device {
    /// Parses `auto`, `cpu` or `cuda`.
    pub fn from_name(name: &str) -> Option<Device> {
        match name.to_ascii_lowercase().as_str() {
            "auto" => Some(Device::Auto),
            "cpu" => Some(Device::Cpu),
            "cuda" | "gpu" => Some(Device::Cuda),
            _ => None,
        }
    }
}

/// How a model runs: as its reference implementation does, or in real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Mode {
    /// Files and offline renders: exact, whatever the latency (a spectrogram model in its own
    /// chunks, as its reference separates a song).
    #[default]
    Offline,
    /// Real time: the lowest latency the model allows (a spectrogram model in a sliding window,
    /// on one thread).
    Live,
}

/// How sessions are created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionOptions {
    /// Where inference runs.
    pub device: Device,
    /// CPU threads per inference; 0: the model kind's default, one thread for a streaming model
    /// (a hop is too small to share out), for a segment model `max_auto_threads` or, without it,
    /// ONNX Runtime's choice (all physical cores).
    pub threads: usize,
    /// With `threads` 0, at most this many threads for a segment model (a plugin leaves cores to
    /// its host).
    pub max_auto_threads: Option<usize>,
}

/// What kind of model a session holds, by its inputs: one audio input `[1, 2, T]` is a segment
/// model, more (audio and states) a streaming one, one four-dimensional input a spectrogram model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contract {
    /// Whole segments, overlap-add ([`contract`]).
    Segment,
    /// One hop and its states ([`super::streaming`]).
    Streaming,
    /// Magnitude spectrograms ([`super::spectrogram`]).
    Spectrogram,
}

impl Contract {
    /// The contract `session`'s inputs say it follows.
    pub(crate) fn of(session: &Session) -> Contract {
        match session.inputs() {
            [_, _, ..] => Contract::Streaming,
            [input] if contract::float_dims(input.dtype()).is_some_and(|dims| dims.len() == 4) => Contract::Spectrogram,
            _ => Contract::Segment,
        }
    }
}

/// A model file's ONNX Runtime session, and where it runs: what every kind of ONNX model holds.
pub struct ModelFile {
    pub(crate) session: Session,
    path: PathBuf,
    provider: Provider,
    cuda_note: Option<String>,
}

impl ModelFile {
    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where it runs.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Why CUDA is not used although it was allowed, if it is not.
    pub fn cuda_note(&self) -> Option<&str> {
        self.cuda_note.as_deref()
    }

    /// The file name, for descriptions.
    pub(crate) fn file_name(&self) -> String {
        self.path.file_name().unwrap_or_default().to_string_lossy().into_owned()
    }
}

/// Intra-op threads for a model of `contract` (0: ONNX Runtime's choice) run in `mode`: one for
/// what runs in real time in small steps (a streaming model, a spectrogram model live).
pub(crate) fn threads_for(options: &SessionOptions, contract: Contract, mode: Mode) -> usize {
    match (options.threads, contract, mode) {
        (0, Contract::Streaming, _) | (0, Contract::Spectrogram, Mode::Live) => 1,
        (0, _, _) => options.max_auto_threads.unwrap_or(0),
        (n, _, _) => n,
    }
}

/// Opens `path` in `runtime` with `options`, for a model of `contract` run in `mode` (which set
/// the default number of threads).
///
/// # Errors
/// [`OnnxError::Missing`], [`OnnxError::Session`], [`OnnxError::CudaUnavailable`] (with
/// [`Device::Cuda`]) or [`OnnxError::Load`].
pub(crate) fn open_session(
    runtime: &Runtime,
    path: &Path,
    options: &SessionOptions,
    contract: Contract,
    mode: Mode,
) -> Result<ModelFile, OnnxError> {
    if !path.is_file() {
        return Err(OnnxError::Missing(path.to_path_buf()));
    }
    let fail = |source: ort::Error| OnnxError::Session { path: path.to_path_buf(), source };
    let mut builder = Session::builder(&runtime.environment).map_err(fail)?;
    let threads = threads_for(options, contract, mode);
    if threads > 0 {
        builder = builder.with_intra_threads(threads).map_err(|e| fail(e.into()))?;
    }
    let (mut provider, mut cuda_note) = (Provider::Cpu, None);
    if options.device != Device::Cpu {
        let cuda = ep::CUDA::default();
        match cuda.register(&mut builder) {
            Ok(()) => provider = Provider::Cuda,
            Err(e) if options.device == Device::Cuda => return Err(OnnxError::CudaUnavailable(e.to_string())),
            Err(e) => cuda_note = Some(format!("no CUDA ({e})")),
        }
    }
    let session =
        builder.commit_from_file(path).map_err(|source| OnnxError::Load { path: path.to_path_buf(), source })?;
    Ok(ModelFile { session, path: path.to_path_buf(), provider, cuda_note })
}

/// One loaded model that fits the contract.
pub struct OnnxModel {
    opened: ModelFile,
    spec: ModelSpec,
}

impl OnnxModel {
    /// Opens `path` in `runtime` and checks it against the contract.
    ///
    /// # Errors
    /// [`OnnxError::Missing`], [`OnnxError::Session`], [`OnnxError::CudaUnavailable`] (with
    /// [`Device::Cuda`]), [`OnnxError::Load`] or [`OnnxError::Contract`].
    pub fn open(runtime: &Runtime, path: &Path, options: &SessionOptions) -> Result<Self, OnnxError> {
        Self::from_session(open_session(runtime, path, options, Contract::Segment, Mode::Offline)?)
    }

    /// Checks an open session against the segment contract.
    pub(crate) fn from_session(opened: ModelFile) -> Result<Self, OnnxError> {
        let contract = |why| OnnxError::Contract { path: opened.path.clone(), why };
        let spec = contract::read_spec(&opened.session, &opened.path).map_err(contract)?;
        Ok(Self { opened, spec })
    }

    /// Its session, file and device.
    pub fn opened(&self) -> &ModelFile {
        &self.opened
    }

    /// What the model declares.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Separates one planar segment into `out`, planar `[source][channel][sample]`.
    fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
        let failed = |e: ort::Error| InferenceError(e.to_string());
        let t = self.spec.segment;
        let input = TensorRef::from_array_view(([1usize, 2, t], mix)).map_err(failed)?;
        let outputs = self.opened.session.run(ort::inputs![INPUT => input]).map_err(failed)?;
        let output = self.spec.output.as_str();
        let (shape, data) = outputs[output].try_extract_tensor::<f32>().map_err(failed)?;
        let expected = [1, self.spec.sources.len() as i64, 2, t as i64];
        if shape[..] != expected || data.len() != out.len() {
            return Err(InferenceError(format!("the model returned `{output}` {shape:?}, expected {expected:?}")));
        }
        out.copy_from_slice(data);
        Ok(())
    }
}

/// The sources one member of a set contributes.
struct Member {
    model: OnnxModel,
    /// (index in the model's output, index in the set's output) for each source taken.
    take: Vec<(usize, usize)>,
}

/// One model, or a bag of specialists (htdemucs_ft style) that each contribute their own stems,
/// seen as a single [`SegmentModel`].
pub struct ModelSet {
    members: Vec<Member>,
    sources: Vec<Stem>,
    segment: usize,
    sample_rate: usize,
    scratch: Vec<f32>,
}

impl ModelSet {
    /// All of one model's sources.
    pub fn single(model: OnnxModel) -> Self {
        let spec = model.spec().clone();
        let take = (0..spec.sources.len()).map(|i| (i, i)).collect();
        Self {
            members: vec![Member { model, take }],
            sources: spec.sources,
            segment: spec.segment,
            sample_rate: spec.sample_rate,
            scratch: Vec::new(),
        }
    }

    /// A bag: `picks` names, for each stem, the model that supplies it (a specialist may output that
    /// stem alone or several). All models must share a segment length and sample rate.
    ///
    /// # Errors
    /// [`OnnxError::Bag`] for an empty bag, mismatched models, a model without its stem, or a stem
    /// named twice.
    pub fn bag(picks: Vec<(Stem, OnnxModel)>) -> Result<Self, OnnxError> {
        let refuse = |why: String| Err(OnnxError::Bag(why));
        let Some((_, first)) = picks.first() else { return refuse("a bag needs at least one model".into()) };
        let (segment, sample_rate) = (first.spec().segment, first.spec().sample_rate);
        let mut members = Vec::new();
        let mut sources = Vec::new();
        for (stem, model) in picks {
            let spec = model.spec();
            if (spec.segment, spec.sample_rate) != (segment, sample_rate) {
                return refuse(format!(
                    "{} has segments of {} samples at {} Hz, the bag's first model {segment} at {sample_rate} Hz",
                    model.opened().path().display(),
                    spec.segment,
                    spec.sample_rate
                ));
            }
            let Some(index) = spec.sources.iter().position(|&s| s == stem) else {
                return refuse(format!(
                    "{} has no {stem} source (it has {:?})",
                    model.opened().path().display(),
                    spec.sources
                ));
            };
            if sources.contains(&stem) {
                return refuse(format!("the bag names {stem} twice"));
            }
            sources.push(stem);
            members.push(Member { model, take: vec![(index, sources.len() - 1)] });
        }
        Ok(Self { members, sources, segment, sample_rate, scratch: Vec::new() })
    }

    /// The models in the set.
    pub fn models(&self) -> impl Iterator<Item = &OnnxModel> {
        self.members.iter().map(|m| &m.model)
    }

    /// The rate every model works at, in Hz.
    pub fn sample_rate(&self) -> usize {
        self.sample_rate
    }
}

impl SegmentModel for ModelSet {
    fn segment_len(&self) -> usize {
        self.segment
    }

    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn run(&mut self, mix: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
        let lane = 2 * self.segment;
        for member in &mut self.members {
            self.scratch.resize(member.model.spec().sources.len() * lane, 0.0);
            member.model.run(mix, &mut self.scratch)?;
            for &(from, to) in &member.take {
                out[to * lane..(to + 1) * lane].copy_from_slice(&self.scratch[from * lane..(from + 1) * lane]);
            }
        }
        Ok(())
    }
}
