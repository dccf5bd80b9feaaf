//! What exists while the plugin is active: the stream to the worker thread and its engines, the
//! dry delay, the mixer and scratch buffers, all sized at activation.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use demixer_dsp::Separator;
use demixer_dsp::delay::DelayLine;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::onnx::Device;
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, Timing, WorkerHandle};
use demixer_gui::{MixerStatus, ModelSettings};
use nice_plug::prelude::*;

use crate::mixer::{Mixer, effective_gains};
use crate::params::{DemixerParams, EngineChoice, PresetChoice};

/// Scheduling headroom the worker gets on top of one maximum block.
const WORKER_SLACK: Duration = Duration::from_millis(5);

/// Index of the ONNX engine in a stream that has one: after the HPSS engine of every preset.
pub const ONNX_ENGINE: usize = Preset::ALL.len();

/// The host's configuration for one activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// Counts activations, so that a stream built for an earlier one is never used.
    pub activation: u64,
    /// Host sample rate in Hz.
    pub sample_rate: f32,
    /// Largest block the host sends.
    pub max_block: usize,
    /// Real time or offline rendering.
    pub timing: Timing,
    /// Whether the main input is mono (its one channel feeds both sides).
    pub mono_input: bool,
}

impl Setup {
    /// The setup for the host's layout and buffer configuration.
    pub fn new(activation: u64, layout: &AudioIOLayout, config: &BufferConfig) -> Self {
        Self {
            activation,
            sample_rate: config.sample_rate,
            max_block: config.max_buffer_size as usize,
            timing: if config.process_mode == ProcessMode::Offline { Timing::Offline } else { Timing::Realtime },
            mono_input: layout.main_input_channels.map(NonZeroU32::get) == Some(1),
        }
    }
}

/// Identifies a loaded ONNX engine: the settings it was loaded with and the rate it runs at.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelKey {
    /// Model file or bag manifest.
    pub model: PathBuf,
    /// User-chosen ONNX Runtime library, if any.
    pub runtime: Option<PathBuf>,
    /// Inference device.
    pub device: Device,
    /// CPU threads.
    pub threads: usize,
    /// Host sample rate in Hz.
    pub sample_rate: u32,
}

impl ModelKey {
    /// The model the parameters and settings ask for at `setup`'s rate, if they ask for one.
    pub fn wanted(params: &DemixerParams, setup: &Setup) -> Option<ModelKey> {
        let settings = params.model.read().map(|s| s.clone()).unwrap_or_default();
        (params.engine.value() != EngineChoice::Hpss && !settings.model.is_empty())
            .then(|| ModelKey::new(&settings, setup.sample_rate))
    }

    fn new(settings: &ModelSettings, sample_rate: f32) -> ModelKey {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ModelKey {
            model: PathBuf::from(&settings.model),
            runtime: (!settings.runtime.is_empty()).then(|| PathBuf::from(&settings.runtime)),
            device: Device::from_name(&settings.device).unwrap_or_default(),
            // By default leave half the cores to the host and the other plugins.
            threads: if settings.threads > 0 { settings.threads as usize } else { (cores / 2).max(1) },
            sample_rate: sample_rate.round() as u32,
        }
    }
}

/// A loaded ONNX engine and what it is.
pub struct Model {
    /// What it was loaded for.
    pub key: ModelKey,
    /// The streaming engine.
    pub engine: Box<dyn Separator>,
    /// For the mixer's "Running" line.
    pub name: String,
    /// What it is in full, with remarks (CUDA, resampling).
    pub description: String,
}

/// The HPSS engine of every preset at `sample_rate`, in [`Preset::ALL`] order.
pub fn hpss_engines(sample_rate: f32) -> Result<Vec<Box<dyn Separator>>, String> {
    Preset::ALL
        .into_iter()
        .map(|preset| {
            let config = HpssConfig::preset(preset, sample_rate).map_err(|e| e.to_string())?;
            Ok(Box::new(HpssSeparator::new(config)) as Box<dyn Separator>)
        })
        .collect()
}

/// What the mixer says each HPSS engine is.
fn hpss_names() -> impl Iterator<Item = String> {
    PresetChoice::variants().iter().map(|preset| format!("HPSS, {preset} preset, CPU"))
}

/// The stream, its engines and the audio thread's buffers.
pub struct Running {
    /// The activation this was built for.
    pub setup: Setup,
    /// The audio thread's end of the stream.
    pub stream: RealtimeSide,
    /// Stops the worker when dropped; hands back the engines in [`Running::into_model`].
    worker: WorkerHandle,
    /// The ONNX engine's key, name and description, when the stream has one (at [`ONNX_ENGINE`]).
    model: Option<(ModelKey, String, String)>,
    /// The input, delayed like the stems.
    pub dry: [DelayLine; 2],
    /// Gains, mute, solo and meters.
    pub mixer: Mixer,
    /// Scratch: the block's input (right = left for a mono input).
    pub input: [Vec<f32>; 2],
    /// Scratch: the delayed input.
    pub dry_out: [Vec<f32>; 2],
    /// The latency last reported to the host.
    pub reported_latency: u32,
    /// Where the transport should be at the next block if it keeps playing.
    pub expected_position: Option<i64>,
}

impl Running {
    /// Builds the stream for `setup`: the HPSS engines, then `model` if given, starting with the
    /// model or else the preset's HPSS engine. Publishes the engines' names in `status`.
    pub fn start(
        setup: Setup,
        params: &DemixerParams,
        status: &MixerStatus,
        model: Option<Model>,
    ) -> Result<Self, String> {
        let mut engines = hpss_engines(setup.sample_rate)?;
        let mut names: Vec<String> = hpss_names().collect();
        let initial = if model.is_some() { ONNX_ENGINE } else { preset_engine(params.preset.value()) };
        let model = model.map(|model| {
            engines.push(model.engine);
            names.push(model.name.clone());
            (model.key, model.name, model.description)
        });
        let max_block = setup.max_block;
        let config = StreamConfig::new(max_block, setup.sample_rate, WORKER_SLACK);
        let max_latency = engines.iter().map(|e| e.latency_samples() + e.burst_samples()).max().unwrap_or(0);
        let (stream, worker) = stream::spawn(engines, initial, config)
            .map_err(|e| format!("Demixer cannot start its worker thread: {e}"))?;
        *crate::model_loader::lock(&status.engine_names) = names;
        let latency = stream.latency_samples();
        Ok(Self {
            setup,
            stream,
            worker,
            model,
            dry: std::array::from_fn(|_| DelayLine::new(latency, max_latency + config.margin)),
            mixer: Mixer::new(effective_gains(&params.strip_values())),
            input: [vec![0.0; max_block], vec![0.0; max_block]],
            dry_out: [vec![0.0; max_block], vec![0.0; max_block]],
            reported_latency: latency as u32,
            expected_position: None,
        })
    }

    /// Starts `engine` afresh (a seek, a reset, a switch) with the dry path matching its latency.
    pub fn restart(&mut self, engine: usize) {
        self.stream.restart(engine);
        let latency = self.stream.latency_samples();
        self.dry.iter_mut().for_each(|d| d.set_delay(latency));
    }

    /// Whether the stream holds an ONNX engine.
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// Stops the worker (joining it: not on the audio thread) and returns the ONNX engine, if any.
    pub fn into_model(self) -> Option<Model> {
        let (key, name, description) = self.model?;
        let mut engines = self.worker.stop();
        (engines.len() > ONNX_ENGINE).then(|| Model {
            key,
            engine: engines.swap_remove(ONNX_ENGINE),
            name,
            description,
        })
    }
}

/// Index of the HPSS engine for `choice`.
pub fn preset_engine(choice: PresetChoice) -> usize {
    Preset::ALL.iter().position(|&p| p == choice.preset()).expect("every preset is listed")
}

/// The engine the parameters ask for, among those `running` has.
pub fn wanted_engine(params: &DemixerParams, running: &Running) -> usize {
    match params.engine.value() {
        EngineChoice::Auto | EngineChoice::Onnx if running.has_model() => ONNX_ENGINE,
        _ => preset_engine(params.preset.value()),
    }
}
