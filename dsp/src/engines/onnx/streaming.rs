//! Streaming (stateful) models: one hop of audio in, that hop's stems out, with recurrent state
//! carried from hop to hop (HS-TasNet, arXiv 2402.17701, as StemgenRT exports it: `hop128.onnx`).
//!
//! **Contract**: one audio input float32 `[1, 2, H]` with a fixed hop `H`; any number of state
//! inputs, each with a fixed shape; one stems output `[1, S, 2, H]`; one state output per state
//! input, of the same shape, holding the state for the next hop. States are paired by name first
//! (input `x` with the output `x_out`, `x_next`, `x_new`, `next_x`, `new_x` or `out_x`; `x_in` or
//! `in_x` with `x_out` or `out_x`), and where names pair nothing, in order: the inputs after the
//! first with the outputs after the first, shapes equal. The first input is then the audio and the
//! first output the stems. Anything else is refused with what was found.
//!
//! Sources, sample rate and latency come from the metadata keys `sources`, `sample_rate` and
//! `latency` (the algorithmic latency in samples at the model's rate, the hop included; default:
//! the hop), else the sidecar `<model>.json`, as for segment models. `sum_to_input: true` replaces
//! the last source by the input delayed by the latency minus the other sources, so that the stems
//! sum to the input for a model that does not do it itself. States start at zero, and go back to
//! zero on [`Separator::reset`].

use std::borrow::Cow;
use std::path::Path;

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use super::OnnxError;
use super::contract::{DEFAULT_SAMPLE_RATE, declared_in_metadata, float_dims, read_sidecar, sources_by_count};
use super::model::ModelFile;
use crate::engines::segments::{InferenceError, catch_all, check_output};
use crate::separator::{Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::signal::denormals::clean;
use crate::stem::Stem;

/// How long a streaming model's recurrent states are taken to remember, in seconds, for the loop
/// cache (the contract declares no bound; HS-TasNet's memory layers forget within a few seconds).
pub const STATE_MEMORY_S: f32 = 10.0;

/// The contract as users read it in error messages.
pub const EXPECTED: &str = "a streaming export: audio input float32 [1, 2, H], state inputs, stems output \
                            [1, S, 2, H], one state output per state input with its shape";

/// How a model's states were paired with their outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// By the names of inputs and outputs (`x` with `x_out`, `next_x`, ...).
    ByName,
    /// In order, inputs after the first with outputs after the first, shapes equal.
    ByOrder,
    /// The model has no states.
    Stateless,
}

impl std::fmt::Display for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pairing::ByName => "by name",
            Pairing::ByOrder => "by order and shape",
            Pairing::Stateless => "no states",
        })
    }
}

/// One recurrent state: the input it is fed through and the output it comes back from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The state input's name.
    pub input: String,
    /// The state output's name.
    pub output: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// What Demixer knows about a streaming model.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingSpec {
    /// The audio input's name.
    pub audio: String,
    /// The stems output's name.
    pub stems: String,
    /// Samples per channel of one hop (`H`).
    pub hop: usize,
    /// The sources, in output order.
    pub sources: Vec<Stem>,
    /// The rate the model works at, in Hz.
    pub sample_rate: usize,
    /// Algorithmic latency in samples at the model's rate, the hop's own included.
    pub latency: usize,
    /// The states, in input order.
    pub states: Vec<State>,
    /// How the states were paired.
    pub pairing: Pairing,
    /// Whether the last source is made the delayed input minus the others.
    pub sum_to_input: bool,
}

/// Output names a state input `name` pairs with.
fn partners(name: &str) -> Vec<String> {
    let mut names: Vec<String> = ["{}_out", "{}_next", "{}_new", "next_{}", "new_{}", "out_{}"]
        .iter()
        .map(|pattern| pattern.replace("{}", name))
        .collect();
    if let Some(stem) = name.strip_suffix("_in") {
        names.extend([format!("{stem}_out"), format!("out_{stem}")]);
    }
    if let Some(stem) = name.strip_prefix("in_") {
        names.extend([format!("out_{stem}"), format!("{stem}_out")]);
    }
    names
}

/// A named tensor with a fixed float32 shape.
type Port = (String, Option<Vec<i64>>);

fn ports(list: &[ort::value::Outlet]) -> Vec<Port> {
    list.iter().map(|o| (o.name().to_string(), float_dims(o.dtype()))).collect()
}

fn describe(ports: &[Port]) -> String {
    ports.iter().map(|(name, dims)| format!("`{name}` {dims:?}")).collect::<Vec<_>>().join(", ")
}

fn fixed(dims: &Option<Vec<i64>>) -> Option<Vec<usize>> {
    dims.as_ref()?.iter().map(|&d| usize::try_from(d).ok().filter(|&d| d > 0)).collect()
}

/// Pairs states by name: (state input index, output index) pairs, or why names are ambiguous.
fn pair_by_name(inputs: &[Port], outputs: &[Port]) -> Result<Vec<(usize, usize)>, String> {
    let mut pairs = Vec::new();
    for (i, (name, dims)) in inputs.iter().enumerate() {
        let wanted = partners(name);
        let found: Vec<usize> =
            (0..outputs.len()).filter(|&o| wanted.contains(&outputs[o].0) && outputs[o].1 == *dims).collect();
        match found[..] {
            [] => {}
            [o] => pairs.push((i, o)),
            _ => return Err(format!("the state `{name}` pairs with several outputs by name")),
        }
    }
    Ok(pairs)
}

/// Indices of the audio input and the stems output, (input, output) index pairs of the states,
/// and the rule that paired them.
type Paired = (usize, usize, Vec<(usize, usize)>, Pairing);

/// Audio input, stems output, states and the rule that paired them.
fn pair(inputs: &[Port], outputs: &[Port]) -> Result<Paired, String> {
    let by_name = pair_by_name(inputs, outputs)?;
    let unpaired_in: Vec<usize> = (0..inputs.len()).filter(|i| !by_name.iter().any(|p| p.0 == *i)).collect();
    let unpaired_out: Vec<usize> = (0..outputs.len()).filter(|o| !by_name.iter().any(|p| p.1 == *o)).collect();
    if let ([audio], [stems]) = (&unpaired_in[..], &unpaired_out[..]) {
        let pairing = if by_name.is_empty() { Pairing::Stateless } else { Pairing::ByName };
        return Ok((*audio, *stems, by_name, pairing));
    }
    let in_order = inputs.len() == outputs.len() && (1..inputs.len()).all(|i| inputs[i].1 == outputs[i].1);
    if in_order {
        return Ok((0, 0, (1..inputs.len()).map(|i| (i, i)).collect(), Pairing::ByOrder));
    }
    Err(format!(
        "cannot pair its states: inputs {}; outputs {}. A state input `x` pairs with an output `x_out`, \
         `x_next`, `x_new`, `next_x`, `new_x` or `out_x` of its shape; else the inputs after the first pair \
         with the outputs after the first, in order, with equal shapes",
        describe(inputs),
        describe(outputs)
    ))
}

/// Checks `session` (loaded from `path`) against the streaming contract and reads its spec.
pub(crate) fn read_spec(session: &Session, path: &Path) -> Result<StreamingSpec, String> {
    let refuse = |why: String| Err(format!("{why}; expected {EXPECTED}"));
    let (inputs, outputs) = (ports(session.inputs()), ports(session.outputs()));
    let (audio, stems, pairs, pairing) = pair(&inputs, &outputs)?;
    let hop = match fixed(&inputs[audio].1).as_deref() {
        Some(&[1, 2, hop]) => hop,
        _ => return refuse(format!("the audio input `{}` is {:?}", inputs[audio].0, inputs[audio].1)),
    };
    let count = match fixed(&outputs[stems].1).as_deref() {
        Some(&[1, s, 2, h]) if h == hop => s,
        _ => {
            return refuse(format!(
                "the stems output `{}` is {:?} for a hop of {hop}",
                outputs[stems].0, outputs[stems].1
            ));
        }
    };
    let mut states = Vec::new();
    for (i, o) in pairs {
        let Some(shape) = fixed(&inputs[i].1) else {
            return refuse(format!("the state `{}` has no fixed float32 shape ({:?})", inputs[i].0, inputs[i].1));
        };
        states.push(State { input: inputs[i].0.clone(), output: outputs[o].0.clone(), shape });
    }
    let declared = declared_in_metadata(session)?.or(read_sidecar(path)?);
    let Some(sources) = declared.sources.or_else(|| sources_by_count(count)) else {
        return Err(format!("the model's {count} sources are not named: add metadata `sources` or a sidecar"));
    };
    if sources.len() != count {
        return Err(format!("the model outputs {count} sources but names {}", sources.len()));
    }
    let latency = declared.latency.unwrap_or(hop);
    if latency < hop {
        return Err(format!("its latency of {latency} samples is less than its hop of {hop}"));
    }
    let sample_rate = declared.sample_rate.unwrap_or(DEFAULT_SAMPLE_RATE);
    let sum_to_input = declared.sum_to_input.unwrap_or(false);
    let (audio, stems) = (inputs[audio].0.clone(), outputs[stems].0.clone());
    Ok(StreamingSpec { audio, stems, hop, sources, sample_rate, latency, states, pairing, sum_to_input })
}

/// A loaded streaming model and its current states.
pub struct StreamingModel {
    opened: ModelFile,
    spec: StreamingSpec,
    /// Each state's current value, in [`StreamingSpec::states`] order.
    states: Vec<Vec<f32>>,
}

impl StreamingModel {
    /// Checks an open session against the streaming contract; states start at zero.
    pub(crate) fn from_session(opened: ModelFile) -> Result<Self, OnnxError> {
        let contract = |why| OnnxError::Contract { path: opened.path().to_path_buf(), why };
        let spec = read_spec(&opened.session, opened.path()).map_err(contract)?;
        let states = spec.states.iter().map(|s| vec![0.0; s.shape.iter().product()]).collect();
        Ok(Self { opened, spec, states })
    }

    /// Its session, file and device.
    pub fn opened(&self) -> &ModelFile {
        &self.opened
    }

    /// What the model declares.
    pub fn spec(&self) -> &StreamingSpec {
        &self.spec
    }

    /// Sets every state to zero.
    pub fn reset_states(&mut self) {
        self.states.iter_mut().for_each(|s| s.fill(0.0));
    }

    /// Separates one planar hop `[channel][sample]` into `out`, planar `[source][channel][sample]`,
    /// and keeps the next states.
    ///
    /// # Errors
    /// ONNX Runtime's error, or outputs of the wrong shape; the states are then left as they were.
    pub fn run(&mut self, hop: &[f32], out: &mut [f32]) -> Result<(), InferenceError> {
        let failed = |e: ort::Error| InferenceError(e.to_string());
        let spec = &self.spec;
        let mut feed: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(1 + spec.states.len());
        let audio = TensorRef::from_array_view(([1usize, 2, spec.hop], hop)).map_err(failed)?;
        feed.push((Cow::Borrowed(spec.audio.as_str()), audio.into()));
        for (state, value) in spec.states.iter().zip(&self.states) {
            let tensor = TensorRef::from_array_view((state.shape.clone(), value.as_slice())).map_err(failed)?;
            feed.push((Cow::Borrowed(state.input.as_str()), tensor.into()));
        }
        let outputs = self.opened.session.run(feed).map_err(failed)?;
        let (shape, data) = outputs[spec.stems.as_str()].try_extract_tensor::<f32>().map_err(failed)?;
        if data.len() != out.len() {
            return Err(InferenceError(format!("the model returned `{}` {shape:?}", spec.stems)));
        }
        for (state, value) in spec.states.iter().zip(&self.states) {
            let (_, next) = outputs[state.output.as_str()].try_extract_tensor::<f32>().map_err(failed)?;
            if next.len() != value.len() {
                return Err(InferenceError(format!(
                    "the state `{}` came back with {} values",
                    state.output,
                    next.len()
                )));
            }
        }
        out.copy_from_slice(data);
        for (state, value) in spec.states.iter().zip(self.states.iter_mut()) {
            let (_, next) = outputs[state.output.as_str()].try_extract_tensor::<f32>().map_err(failed)?;
            value.iter_mut().zip(next).for_each(|(v, &n)| *v = clean(n));
        }
        Ok(())
    }
}

/// A [`StreamingModel`] streamed as a [`Separator`]: inference once per hop, each hop's stems
/// played during the next hop, so the stems lag the input by the model's declared latency (the
/// hop of buffering plus what the model itself delays).
pub struct HopStream {
    model: StreamingModel,
    /// The hop being filled, planar.
    input: Vec<f32>,
    /// The last hop's stems, planar `[source][channel][sample]`.
    output: Vec<f32>,
    /// Position inside the hop, for both.
    at: usize,
    /// The input delayed by the latency, for `sum_to_input`.
    delayed: [DelayLine; 2],
    /// Scratch for a block of delayed input.
    delayed_block: [Vec<f32>; 2],
    /// The first failure since the reset, the hops run, and the source a failed hop's input goes to.
    failure: Option<String>,
    hops: usize,
    catch_all: usize,
}

impl HopStream {
    /// Streams `model`.
    pub fn new(model: StreamingModel) -> Self {
        let spec = model.spec().clone();
        let (hop, lanes, latency) = (spec.hop, spec.sources.len() * 2, spec.latency);
        Self {
            input: vec![0.0; 2 * hop],
            output: vec![0.0; lanes * hop],
            at: 0,
            delayed: std::array::from_fn(|_| DelayLine::new(latency, latency)),
            delayed_block: Default::default(),
            failure: None,
            hops: 0,
            catch_all: catch_all(&spec.sources),
            model,
        }
    }

    /// Runs the model on the full hop; a hop it fails on (an error, NaN, absurd levels) is its
    /// input, in the catch-all source, and the failure is kept.
    fn run_hop(&mut self) {
        self.hops += 1;
        let outcome =
            self.model.run(&self.input, &mut self.output).and_then(|()| check_output(&self.input, &self.output));
        if let Err(e) = outcome {
            self.output.fill(0.0);
            let lanes = &mut self.output[self.catch_all * self.input.len()..][..self.input.len()];
            lanes.copy_from_slice(&self.input);
            let hop = self.hops;
            self.failure.get_or_insert_with(|| format!("{e} (hop {hop} since the stream started)"));
        }
    }

    /// Replaces the last source by the delayed input minus the other sources.
    fn complete_last_source(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let n = left.len();
        for ((line, block), input) in self.delayed.iter_mut().zip(self.delayed_block.iter_mut()).zip([left, right]) {
            block.resize(n, 0.0);
            line.process(input, block);
        }
        let (last, others) = stems.split_last_mut().expect("a model has sources");
        for (channel, delayed) in self.delayed_block.iter().enumerate() {
            for (t, &x) in delayed.iter().enumerate() {
                let rest: f32 = others.iter().map(|stem| stem[channel][t]).sum();
                last[channel][t] = clean(x - rest);
            }
        }
    }
}

impl Separator for HopStream {
    fn sources(&self) -> &[Stem] {
        &self.model.spec().sources
    }

    fn latency_samples(&self) -> usize {
        self.model.spec().latency
    }

    /// A recurrent model's states carry the past without a declared bound: taken to forget
    /// within [`STATE_MEMORY_S`] at the model's rate.
    fn history_samples(&self) -> usize {
        (STATE_MEMORY_S * self.model.spec().sample_rate as f32) as usize
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let hop = self.model.spec().hop;
        let mut done = 0;
        while done < left.len() {
            let n = (left.len() - done).min(hop - self.at);
            let (l, r) = self.input.split_at_mut(hop);
            for (buffer, input) in [(l, left), (r, right)] {
                let slots = &mut buffer[self.at..self.at + n];
                slots.iter_mut().zip(&input[done..done + n]).for_each(|(s, &x)| *s = clean(x));
            }
            for (lane, samples) in self.output.chunks_exact(hop).enumerate() {
                stems[lane / 2][lane % 2][done..done + n].copy_from_slice(&samples[self.at..self.at + n]);
            }
            self.at += n;
            done += n;
            if self.at == hop {
                self.run_hop();
                self.at = 0;
            }
        }
        if self.model.spec().sum_to_input {
            self.complete_last_source(left, right, stems);
        }
    }

    fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn reset(&mut self) {
        (self.failure, self.hops) = (None, 0);
        self.model.reset_states();
        self.input.fill(0.0);
        self.output.fill(0.0);
        self.at = 0;
        self.delayed.iter_mut().for_each(DelayLine::reset);
    }
}
