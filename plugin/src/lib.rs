//! Demixer as a CLAP and VST3 plugin: the track's input split into drums, bass, other and vocals,
//! each on its own auxiliary stereo output, with their sum on the main output ("Mix").
//!
//! This first version runs the allocation-free HPSS engine directly on the audio thread. Engines
//! for all presets are built in `activate`, so switching preset never allocates.

use std::num::NonZeroU32;
use std::sync::Arc;

use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, Stem, StereoOut};
use nice_plug::prelude::*;

mod params;

use params::{DemixerParams, PresetParam};

/// Stem names in port order, as hosts show them.
const STEM_PORT_NAMES: [&str; 4] = ["Drums", "Bass", "Other", "Vocals"];

/// The plugin instance.
#[derive(Default)]
pub struct Demixer {
    params: Arc<DemixerParams>,
    /// One engine per preset, indexed like [`Preset::ALL`]; empty until activated.
    engines: Vec<HpssSeparator>,
    /// Preset whose engine is running.
    active: Option<PresetParam>,
    /// Copy of the input block, since the host's main buffer is overwritten by the output.
    input: [Vec<f32>; 2],
}

impl Demixer {
    /// Makes `preset` the running engine, reporting its latency, if it is not running already.
    fn select(&mut self, preset: PresetParam, set_latency: impl Fn(u32)) {
        if self.active != Some(preset) {
            let engine = &mut self.engines[preset.index()];
            engine.reset();
            set_latency(engine.latency_samples() as u32);
            self.active = Some(preset);
        }
    }
}

impl Plugin for Demixer {
    const NAME: &'static str = "Demixer";
    const VENDOR: &'static str = "Demixer";
    const URL: &'static str = "https://github.com/demixer/demixer";
    const EMAIL: &'static str = "demixer@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: NonZeroU32::new(2),
        main_output_channels: NonZeroU32::new(2),
        aux_input_ports: &[],
        aux_output_ports: &[new_nonzero_u32(2); 4],
        names: PortNames {
            layout: Some("Stereo"),
            // nice-plug reports `main_input` as the main output's name too; "Mix" is what that
            // output carries.
            main_input: Some("Mix"),
            main_output: Some("Mix"),
            aux_inputs: &[],
            aux_outputs: &STEM_PORT_NAMES,
        },
    }];

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn activate(
        &mut self,
        _layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let sample_rate = buffer_config.sample_rate;
        let engines: Result<Vec<_>, _> =
            Preset::ALL.iter().map(|&p| HpssConfig::preset(p, sample_rate).map(HpssSeparator::new)).collect();
        match engines {
            Ok(engines) => self.engines = engines,
            Err(e) => {
                nice_error!("Demixer cannot run: {e}");
                return false;
            }
        }
        let block = buffer_config.max_buffer_size as usize;
        self.input = [vec![0.0; block], vec![0.0; block]];
        self.active = None;
        self.select(self.params.preset.value(), |l| context.set_latency_samples(l));
        true
    }

    fn reset(&mut self) {
        self.engines.iter_mut().for_each(Separator::reset);
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        self.select(self.params.preset.value(), |l| context.set_latency_samples(l));
        let engine = &mut self.engines[self.active.expect("activate selects a preset").index()];
        let main = buffer.as_slice();
        let len = main[0].len();
        let [in_l, in_r] = &mut self.input;
        let [stem_0, stem_1, stem_2, stem_3] = &mut aux.outputs[..] else {
            return ProcessStatus::Error("Demixer needs its four stem outputs");
        };
        let mut start = 0;
        while start < len {
            let end = (start + in_l.len()).min(len);
            let n = end - start;
            in_l[..n].copy_from_slice(&main[0][start..end]);
            in_r[..n].copy_from_slice(&main[1][start..end]);
            let mut stems: [StereoOut<'_>; 4] = [&mut *stem_0, &mut *stem_1, &mut *stem_2, &mut *stem_3].map(|port| {
                let [l, r] = port.as_slice() else { unreachable!("stem ports are stereo") };
                [&mut l[start..end], &mut r[start..end]]
            });
            engine.process(&in_l[..n], &in_r[..n], &mut stems);
            for (channel, out) in main.iter_mut().enumerate() {
                for (t, sample) in out[start..end].iter_mut().enumerate() {
                    *sample = Stem::ALL.iter().map(|s| stems[s.index()][channel][t]).sum();
                }
            }
            start = end;
        }
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
