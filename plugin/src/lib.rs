//! Demixer as a CLAP and VST3 plugin: the track's input split into drums, bass, other and vocals,
//! each on its own auxiliary stereo output, with the remix on the main output ("Mix").
//!
//! The separation runs on a worker thread of the plugin's own (see [`demixer_dsp::stream`]); the
//! audio thread only moves samples through lock-free rings and mixes.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use demixer_dsp::Separator;
use demixer_dsp::delay::DelayLine;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::stream::{self, RealtimeSide, StreamConfig, Timing, WorkerHandle};
use nice_plug::prelude::*;

pub mod mixer;
pub mod params;

use demixer_gui::{EguiEditorState, MixerEditor, MixerStatus};
use mixer::{BlockLevels, MixBuffers, Mixer, Strip, effective_gains};
use params::{DemixerParams, PresetChoice, STEM_NAMES};

/// Scheduling headroom the worker gets on top of one maximum block.
const WORKER_SLACK: Duration = Duration::from_millis(5);

/// Four stereo stem outputs.
const STEM_PORTS: [NonZeroU32; 4] = [new_nonzero_u32(2); 4];

const fn layout(input_channels: u32) -> AudioIOLayout {
    AudioIOLayout {
        main_input_channels: NonZeroU32::new(input_channels),
        main_output_channels: NonZeroU32::new(2),
        aux_input_ports: &[],
        aux_output_ports: &STEM_PORTS,
        names: PortNames {
            layout: Some(if input_channels == 1 { "Mono in" } else { "Stereo" }),
            // nice-plug reports `main_input` as the main output's name too, so both say "Mix".
            main_input: Some("Mix"),
            main_output: Some("Mix"),
            aux_inputs: &[],
            aux_outputs: &STEM_NAMES,
        },
    }
}

/// What exists while the plugin is active.
struct Running {
    stream: RealtimeSide,
    /// Stops the worker when dropped (deactivation, removal).
    _worker: WorkerHandle,
    dry: [DelayLine; 2],
    mixer: Mixer,
    input: [Vec<f32>; 2],
    dry_out: [Vec<f32>; 2],
    sample_rate: f32,
    timing: Timing,
    mono_input: bool,
    reported_latency: u32,
    /// Where the transport should be at the next block if it keeps playing.
    expected_position: Option<i64>,
}

impl Running {
    /// Starts `engine` afresh (a seek, a reset, a switch) with the dry path matching its latency.
    fn restart(&mut self, engine: usize) {
        self.stream.restart(engine);
        let latency = self.stream.latency_samples();
        self.dry.iter_mut().for_each(|d| d.set_delay(latency));
    }
}

/// The plugin instance.
pub struct Demixer {
    params: Arc<DemixerParams>,
    /// What the mixer window shows besides the parameters.
    status: Arc<MixerStatus>,
    editor_state: Arc<EguiEditorState>,
    running: Option<Running>,
}

impl Default for Demixer {
    fn default() -> Self {
        Self {
            params: Arc::default(),
            status: Arc::default(),
            editor_state: demixer_gui::default_state(),
            running: None,
        }
    }
}

/// Index of the engine for `choice` in the list [`Demixer::activate`] builds: one HPSS engine
/// per preset, in [`Preset::ALL`] order.
fn engine_index(choice: PresetChoice) -> usize {
    Preset::ALL.iter().position(|&p| p == choice.preset()).expect("every preset is listed")
}

impl Demixer {
    fn strips(&self) -> [Strip; 4] {
        self.params.stems().map(|s| Strip { gain: s.gain.value(), mute: s.mute.value(), solo: s.solo.value() })
    }
}

impl Plugin for Demixer {
    const NAME: &'static str = "Demixer";
    const VENDOR: &'static str = "Demixer";
    const URL: &'static str = "https://github.com/demixer/demixer";
    const EMAIL: &'static str = "demixer@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[layout(2), layout(1)];

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = MixerEditor<DemixerParams>;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        demixer_gui::create_editor(self.params.clone(), self.status.clone(), self.editor_state.clone())
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.running = None;
        let sample_rate = buffer_config.sample_rate;
        let mut engines: Vec<Box<dyn Separator>> = Vec::new();
        for preset in Preset::ALL {
            match HpssConfig::preset(preset, sample_rate) {
                Ok(config) => engines.push(Box::new(HpssSeparator::new(config))),
                Err(e) => {
                    nice_error!("Demixer cannot run: {e}");
                    *self.status.last_error.lock().unwrap() = format!("Demixer cannot run: {e}");
                    return false;
                }
            }
        }
        let max_latency = engines.iter().map(|e| e.latency_samples()).max().unwrap_or(0);
        let max_block = buffer_config.max_buffer_size as usize;
        let config = StreamConfig::new(max_block, sample_rate, WORKER_SLACK);
        let initial = engine_index(self.params.preset.value());
        let (stream, worker) = match stream::spawn(engines, initial, config) {
            Ok(stream) => stream,
            Err(e) => {
                nice_error!("Demixer cannot start its worker thread: {e}");
                *self.status.last_error.lock().unwrap() = format!("Demixer cannot start its worker thread: {e}");
                return false;
            }
        };
        let latency = stream.latency_samples();
        context.set_latency_samples(latency as u32);
        self.status.last_error.lock().unwrap().clear();
        self.status.sample_rate.store(sample_rate, Ordering::Relaxed);
        self.status.latency_samples.store(latency as u32, Ordering::Relaxed);
        self.running = Some(Running {
            stream,
            _worker: worker,
            dry: std::array::from_fn(|_| DelayLine::new(latency, max_latency + config.margin)),
            mixer: Mixer::new(effective_gains(&self.strips())),
            input: [vec![0.0; max_block], vec![0.0; max_block]],
            dry_out: [vec![0.0; max_block], vec![0.0; max_block]],
            sample_rate,
            timing: if buffer_config.process_mode == ProcessMode::Offline { Timing::Offline } else { Timing::Realtime },
            mono_input: audio_io_layout.main_input_channels.map(NonZeroU32::get) == Some(1),
            reported_latency: latency as u32,
            expected_position: None,
        });
        true
    }

    fn reset(&mut self) {
        if let Some(running) = &mut self.running {
            let engine = running.stream.engine();
            running.restart(engine);
            running.expected_position = None;
        }
    }

    fn deactivate(&mut self) {
        self.running = None;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let targets = effective_gains(&self.strips());
        let (params, status) = (&self.params, &self.status);
        let Some(running) = &mut self.running else {
            return ProcessStatus::Error("process before activate");
        };
        let wanted = engine_index(params.preset.value());
        let transport = context.transport();
        let jumped = transport.playing
            && matches!((transport.pos_samples(), running.expected_position), (Some(at), Some(expected)) if at != expected);
        if wanted != running.stream.engine() || jumped {
            running.restart(wanted);
        }
        let len = buffer.samples();
        running.expected_position =
            if transport.playing { transport.pos_samples().map(|p| p + len as i64) } else { None };
        let latency = running.stream.latency_samples() as u32;
        if running.reported_latency != latency {
            context.set_latency_samples(latency);
            running.reported_latency = latency;
            status.latency_samples.store(latency, Ordering::Relaxed);
        }

        let main = buffer.as_slice();
        let [stem_0, stem_1, stem_2, stem_3] = &mut aux.outputs[..] else {
            return ProcessStatus::Error("Demixer needs its four stem outputs");
        };
        let (post_fader, bypass) = (params.aux_post_fader.value(), params.bypass.value());
        let mut levels = BlockLevels::default();
        let mut start = 0;
        while start < len {
            let end = (start + running.input[0].len()).min(len);
            let n = end - start;
            let [in_l, in_r] = &mut running.input;
            in_l[..n].copy_from_slice(&main[0][start..end]);
            let right_source = if running.mono_input { 0 } else { 1 };
            in_r[..n].copy_from_slice(&main[right_source][start..end]);
            let [dry_l, dry_r] = &mut running.dry_out;
            running.dry[0].process(&in_l[..n], &mut dry_l[..n]);
            running.dry[1].process(&in_r[..n], &mut dry_r[..n]);
            let mut stems = [&mut *stem_0, &mut *stem_1, &mut *stem_2, &mut *stem_3].map(|port| {
                let [l, r] = port.as_slice() else { unreachable!("stem ports are stereo") };
                [&mut l[start..end], &mut r[start..end]]
            });
            let timing = running.timing;
            let stream = &mut running.stream;
            let mut separate = || stream.process(&in_l[..n], &in_r[..n], &mut stems, timing);
            // Offline, waiting for the worker may allocate (the channel registers this thread once);
            // CLAP and VST3 allow that in offline rendering. Real-time processing never waits.
            let separated = if timing == Timing::Offline { util::permit_alloc(separate) } else { separate() };
            let [main_l, main_r] = main else { unreachable!("the main output is stereo") };
            let buffers = MixBuffers {
                stems,
                dry: [&dry_l[..n], &dry_r[..n]],
                main: [&mut main_l[start..end], &mut main_r[start..end]],
            };
            running.mixer.process(running.sample_rate, targets, buffers, separated, post_fader, bypass, &mut levels);
            start = end;
        }
        levels.publish(&status.levels);
        let worker = running.stream.status();
        status.underruns.store(worker.underruns(), Ordering::Relaxed);
        status.realtime_factor.store(worker.realtime_factor(running.sample_rate), Ordering::Relaxed);
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Demixer {
    const CLAP_ID: &'static str = "org.demixer.demixer";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Real-time stem separation: drums, bass, other, vocals");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] =
        &[ClapFeature::AudioEffect, ClapFeature::Stereo, ClapFeature::Utility];
}

impl Vst3Plugin for Demixer {
    const VST3_CLASS_ID: [u8; 16] = *b"DemixerStemSplit";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Tools];
}

nice_export_clap!(Demixer);
nice_export_vst3!(Demixer);
