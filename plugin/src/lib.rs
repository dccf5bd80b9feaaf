//! Demixer as a CLAP and VST3 plugin: the track's input split into drums, bass, other and vocals,
//! each on its own auxiliary stereo output, with the remix on the main output ("Mix").
//!
//! The separation runs on a worker thread of the plugin's own (see [`demixer_dsp::stream`]); the
//! audio thread only moves samples through lock-free rings and mixes.
#![warn(missing_docs)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use demixer_dsp::Timing;
use demixer_gui::{EguiEditorState, MixerEditor};
use demixer_state::{MeterReader, MeterWriter, MixerStatus};
use nice_plug::prelude::*;
use ringbuf::traits::Consumer;

mod cover;
pub mod mixer;
pub mod model_choice;
pub mod model_loader;
pub mod params;
pub mod running;
pub mod stems;

use model_choice::{Model, Wish};
use model_loader::{Handover, Loader, Shared};
use params::DemixerParams;
use running::{Playhead, Running, Setup};
use stems::{PORT_NAMES, STEM_COUNT};

/// One stereo output per stem.
const STEREO_STEMS: [NonZeroU32; STEM_COUNT] = [new_nonzero_u32(2); STEM_COUNT];
/// One mono output per stem.
const MONO_STEMS: [NonZeroU32; STEM_COUNT] = [new_nonzero_u32(1); STEM_COUNT];

/// The layout with `input_channels` in and `output_channels` out, on the main bus and on every
/// stem port.
const fn layout(input_channels: u32, output_channels: u32) -> AudioIOLayout {
    let mono_out = output_channels == 1;
    AudioIOLayout {
        main_input_channels: NonZeroU32::new(input_channels),
        main_output_channels: NonZeroU32::new(output_channels),
        aux_input_ports: &[],
        aux_output_ports: if mono_out { &MONO_STEMS } else { &STEREO_STEMS },
        names: PortNames {
            layout: Some(match (input_channels, mono_out) {
                (1, true) => "Mono",
                (1, false) => "Mono in",
                _ => "Stereo",
            }),
            // nice-plug reports `main_input` as the main output's name too, so both say "Mix".
            main_input: Some("Mix"),
            main_output: Some("Mix"),
            aux_inputs: &[],
            aux_outputs: &PORT_NAMES,
        },
    }
}

/// The plugin instance.
pub struct Demixer {
    params: Arc<DemixerParams>,
    /// What the mixer window shows besides the parameters and meters.
    status: Arc<MixerStatus>,
    /// The meters the audio thread measures, and the end the window reads.
    meters: (MeterWriter, MeterReader),
    editor_state: Arc<EguiEditorState>,
    running: Option<Box<Running>>,
    /// Activation state and the parked model engine, shared with the loader.
    shared: Arc<Shared>,
    /// The audio thread's ends of the rings to and from the loader.
    handover: Handover,
    /// Loads model engines off the audio thread.
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
            meters: demixer_state::meters(mixer::METERS),
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
    /// Stops the stream (keeping its model engine) and any the loader sent. Not on the audio thread.
    fn stop_streams(&mut self) {
        *self.shared.setup.lock() = None;
        let mut old: Vec<Box<Running>> = self.running.take().into_iter().collect();
        old.extend(self.handover.pending.take());
        while let Some(running) = self.handover.incoming.try_pop() {
            old.push(running);
        }
        for running in old {
            self.shared.park(*running);
        }
    }

    /// The model engine to start an activation with: a parked one, or, for an offline render, one
    /// loaded now (a bounce may wait); in real time the loader brings it later.
    fn model_for(&self, setup: &Setup) -> Option<Model> {
        // A model that is not installed is reported by the loader.
        let Wish::Model { key, note } = Wish::of(&self.params, setup) else { return None };
        let parked = self.shared.take_parked(&key);
        if parked.is_none() && setup.timing == Timing::Realtime {
            return None;
        }
        self.shared.attempted(key.clone());
        parked.or_else(|| match key.load() {
            Ok(model) => {
                self.shared.loaded(&self.status, &model, note);
                Some(model)
            }
            Err(e) => {
                self.shared.failed(&self.status, &e);
                None
            }
        })
    }

    /// Takes a stream the loader built for this activation; sends replaced or stale ones back.
    fn take_new_stream(&mut self) {
        self.handover.flush();
        // An old stream still waits to go back: take nothing, so none is ever dropped here.
        if self.handover.pending.is_some() {
            return;
        }
        let Some(mut new) = self.handover.incoming.try_pop() else { return };
        match &mut self.running {
            Some(running) if running.setup().activation == new.setup().activation => {
                // What the host knows; `prepare` reports the new stream's latency.
                new.replaces(running);
                let old = std::mem::replace(running, new);
                self.handover.dispose(old);
            }
            _ => self.handover.dispose(new),
        }
    }
}

/// Tells the host about a latency that changed while processing, by each format's rule. CLAP
/// allows `clap_host_latency::changed()` only inside `activate`: the plugin asks for a restart
/// and reports the latency in [`Plugin::activate`]. (nice-plug 0.4.2 turns `set_latency_samples`
/// from `process` into a main-thread task that calls `changed()` after a deactivation, outside
/// `activate`: wrapper/clap/wrapper.rs, `Task::LatencyChanged`.) VST3 wants
/// `restartComponent(kLatencyChanged)`, which nice-plug sends for `set_latency_samples`.
fn report_latency<P: Plugin>(context: &mut impl ProcessContext<P>, latency: u32) {
    match context.plugin_api() {
        PluginApi::Clap => context.request_restart(),
        _ => context.set_latency_samples(latency),
    }
}

/// The stem ports' channels. A port or channel the host left out (it disabled the stem buses,
/// gave fewer channels, or a null pointer) is missing or empty: its stems are separated into
/// scratch and only the mix is heard.
fn stem_ports<'a, 'b>(aux: &'a mut AuxiliaryBuffers<'b>) -> [&'a mut [&'b mut [f32]]; STEM_COUNT] {
    let mut ports = aux.outputs.iter_mut().map(Buffer::as_slice);
    std::array::from_fn(|_| ports.next().unwrap_or(&mut []))
}

impl Plugin for Demixer {
    const NAME: &'static str = "Demixer";
    const VENDOR: &'static str = "Demixer";
    const URL: &'static str = "https://github.com/demixer/demixer";
    const EMAIL: &'static str = "demixer@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[layout(2, 2), layout(1, 2), layout(1, 1)];

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = MixerEditor<DemixerParams>;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let (params, status) = (self.params.clone(), self.status.clone());
        demixer_gui::create_editor(params, status, self.meters.1.clone(), self.editor_state.clone())
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
        let running = match Running::start(setup.clone(), &self.params, &self.status, &self.shared, model) {
            Ok(running) => running,
            Err(e) => {
                nice_error!("Demixer cannot run: {e}");
                *self.status.last_error.lock() = format!("Demixer cannot run: {e}");
                return false;
            }
        };
        *self.shared.setup.lock() = Some(setup.clone());
        context.set_latency_samples(running.reported_latency());
        *self.status.last_error.lock() = running.problem().unwrap_or_default();
        self.status.sample_rate.store(setup.sample_rate, Ordering::Relaxed);
        self.status.latency_samples.store(running.reported_latency(), Ordering::Relaxed);
        self.running = Some(Box::new(running));
        true
    }

    fn reset(&mut self) {
        if let Some(running) = &mut self.running {
            running.reset();
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
        let Some(running) = &mut self.running else {
            return ProcessStatus::Error("process before activate");
        };
        let mut stems = stem_ports(aux);
        let transport = context.transport();
        let playhead = Playhead {
            playing: transport.playing,
            position: transport.pos_samples(),
            loop_range: transport.loop_range_samples(),
        };
        if let Some(latency) = running.prepare(&self.params, playhead) {
            report_latency(context, latency);
            self.status.latency_samples.store(latency, Ordering::Relaxed);
        }
        let len = buffer.samples();
        let levels = running.process(&self.params, len, buffer.as_slice(), &mut stems);
        levels.publish(&self.meters.0);
        running.publish(&self.status);
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
