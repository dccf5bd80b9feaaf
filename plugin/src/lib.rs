//! Demixer as a CLAP and VST3 plugin: the track's input split into drums, bass, other and vocals,
//! each on its own auxiliary stereo output, with the remix on the main output ("Mix").
//!
//! The separation runs on a worker thread of the plugin's own (see [`demixer_dsp::stream`]); the
//! audio thread only moves samples through lock-free rings and mixes.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use demixer_dsp::stream::Timing;
use nice_plug::prelude::*;
use ringbuf::traits::Consumer;

pub mod mixer;
pub mod model_loader;
pub mod params;
pub mod running;

use demixer_gui::{EguiEditorState, MixerEditor, MixerStatus};
use mixer::{BlockLevels, MixBuffers, effective_gains};
use model_loader::{Handover, Loader, Shared, load_model, lock};
use params::{DemixerParams, STEM_NAMES};
use running::{ModelKey, Running, Setup, wanted_engine};

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

/// The plugin instance.
pub struct Demixer {
    params: Arc<DemixerParams>,
    /// What the mixer window shows besides the parameters.
    status: Arc<MixerStatus>,
    editor_state: Arc<EguiEditorState>,
    running: Option<Box<Running>>,
    /// Activation state and the parked ONNX engine, shared with the loader.
    shared: Arc<Shared>,
    /// The audio thread's ends of the rings to and from the loader.
    handover: Handover,
    /// Loads the ONNX engine off the audio thread.
    _loader: Loader,
    activations: u64,
}

impl Default for Demixer {
    fn default() -> Self {
        let params: Arc<DemixerParams> = Arc::default();
        let status: Arc<MixerStatus> = Arc::default();
        let shared: Arc<Shared> = Arc::default();
        let (loader, handover) = Loader::spawn(params.clone(), status.clone(), shared.clone());
        Self {
            params,
            status,
            editor_state: demixer_gui::default_state(),
            running: None,
            shared,
            handover,
            _loader: loader,
            activations: 0,
        }
    }
}

impl Demixer {
    /// Stops the stream (keeping its ONNX engine) and any the loader sent. Not on the audio thread.
    fn stop_streams(&mut self) {
        *lock(&self.shared.setup) = None;
        let mut old: Vec<Box<Running>> = self.running.take().into_iter().collect();
        old.extend(self.handover.pending.take());
        while let Some(running) = self.handover.incoming.try_pop() {
            old.push(running);
        }
        for running in old {
            self.shared.park(*running);
        }
    }

    /// The ONNX engine to start an activation with: a parked one, or, for an offline render, one
    /// loaded now (a bounce may wait); in real time the loader brings it later.
    fn model_for(&self, setup: &Setup) -> Option<running::Model> {
        let key = ModelKey::wanted(&self.params, setup)?;
        let parked = self.shared.take_parked(&key);
        if parked.is_none() && setup.timing == Timing::Realtime {
            return None;
        }
        self.shared.attempted(key.clone());
        parked.or_else(|| match load_model(&key) {
            Ok(model) => Some(model),
            Err(e) => {
                self.shared.failed(&self.status, &e);
                None
            }
        })
    }

    /// Takes a stream the loader built for this activation; sends replaced or stale ones back.
    fn take_new_stream(&mut self) {
        self.handover.flush();
        let Some(new) = self.handover.incoming.try_pop() else { return };
        match &mut self.running {
            Some(running) if running.setup.activation == new.setup.activation => {
                let mut old = std::mem::replace(running, new);
                // What the host knows; `process` reports the new stream's latency.
                std::mem::swap(&mut running.reported_latency, &mut old.reported_latency);
                self.handover.dispose(old);
            }
            _ => self.handover.dispose(new),
        }
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
        self.stop_streams();
        self.activations += 1;
        let setup = Setup::new(self.activations, audio_io_layout, buffer_config);
        self.shared.retry();
        let model = self.model_for(&setup);
        let running = match Running::start(setup.clone(), &self.params, &self.status, model) {
            Ok(running) => running,
            Err(e) => {
                nice_error!("Demixer cannot run: {e}");
                *lock(&self.status.last_error) = format!("Demixer cannot run: {e}");
                return false;
            }
        };
        *lock(&self.shared.setup) = Some(setup.clone());
        context.set_latency_samples(running.reported_latency);
        lock(&self.status.last_error).clear();
        self.status.sample_rate.store(setup.sample_rate, Ordering::Relaxed);
        self.status.latency_samples.store(running.reported_latency, Ordering::Relaxed);
        self.running = Some(Box::new(running));
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
        self.stop_streams();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        self.take_new_stream();
        let targets = effective_gains(&self.params.strip_values());
        let (params, status) = (&self.params, &self.status);
        let Some(running) = &mut self.running else {
            return ProcessStatus::Error("process before activate");
        };
        let wanted = wanted_engine(params, running);
        status.running_engine.store(wanted as u32, Ordering::Relaxed);
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
            let right_source = if running.setup.mono_input { 0 } else { 1 };
            in_r[..n].copy_from_slice(&main[right_source][start..end]);
            let [dry_l, dry_r] = &mut running.dry_out;
            running.dry[0].process(&in_l[..n], &mut dry_l[..n]);
            running.dry[1].process(&in_r[..n], &mut dry_r[..n]);
            let mut stems = [&mut *stem_0, &mut *stem_1, &mut *stem_2, &mut *stem_3].map(|port| {
                let [l, r] = port.as_slice() else { unreachable!("stem ports are stereo") };
                [&mut l[start..end], &mut r[start..end]]
            });
            let timing = running.setup.timing;
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
            running.mixer.process(
                running.setup.sample_rate,
                targets,
                buffers,
                separated,
                post_fader,
                bypass,
                &mut levels,
            );
            start = end;
        }
        levels.publish(&status.levels);
        let worker = running.stream.status();
        status.underruns.store(worker.underruns(), Ordering::Relaxed);
        status.realtime_factor.store(worker.realtime_factor(running.setup.sample_rate), Ordering::Relaxed);
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
