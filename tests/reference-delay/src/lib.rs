//! Reference plugins for the host tests: the input delayed by exactly [`LATENCY`] samples, which
//! they report as their latency. Whatever a host does with them is the host's own handling of a
//! reported latency, to hold Demixer's behaviour in that host against. Two variants differ only
//! in their buses: "Reference Delay" has the main bus alone; "Reference Delay (stem buses)" has
//! Demixer's layouts, four silent auxiliary outputs included. A third, "Reference Bus Probe"
//! ([`BusProbe`]), has Demixer's buses too and tells what the host gives them: instead of the
//! delayed input, its main output is the number of auxiliary output channels that came with
//! buffers, and it reports no latency.
#![warn(missing_docs)]

use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::sync::Arc;

use nice_plug::prelude::*;

/// The delay and the reported latency, in samples.
pub const LATENCY: usize = 1000;

/// What sets a variant apart.
pub trait Variant: Send + 'static {
    /// The plugin's name.
    const NAME: &'static str;
    /// Its VST3 class ID.
    const CLASS_ID: [u8; 16];
    /// Its bus layouts.
    const LAYOUTS: &'static [AudioIOLayout];
    /// Whether it probes the buses instead of delaying.
    const PROBE: bool = false;
}

/// Main bus only: stereo, or mono in and out.
pub struct MainOnly;

/// Demixer's buses: four stereo (or, in the mono layout, mono) auxiliary outputs, left silent.
pub struct StemBuses;

/// Demixer's buses, probed.
pub struct BusProbe;

const fn main(input: u32, output: u32, aux: &'static [NonZeroU32]) -> AudioIOLayout {
    AudioIOLayout {
        main_input_channels: NonZeroU32::new(input),
        main_output_channels: NonZeroU32::new(output),
        aux_output_ports: aux,
        ..AudioIOLayout::const_default()
    }
}

const STEREO_AUX: [NonZeroU32; 4] = [new_nonzero_u32(2); 4];
const MONO_AUX: [NonZeroU32; 4] = [new_nonzero_u32(1); 4];

impl Variant for MainOnly {
    const NAME: &'static str = "Reference Delay";
    const CLASS_ID: [u8; 16] = *b"DemixerRefDelay1";
    const LAYOUTS: &'static [AudioIOLayout] = &[main(2, 2, &[]), main(1, 1, &[])];
}

impl Variant for BusProbe {
    const NAME: &'static str = "Reference Bus Probe";
    const CLASS_ID: [u8; 16] = *b"DemixerBusProbe1";
    const LAYOUTS: &'static [AudioIOLayout] = StemBuses::LAYOUTS;
    const PROBE: bool = true;
}

impl Variant for StemBuses {
    const NAME: &'static str = "Reference Delay (stem buses)";
    const CLASS_ID: [u8; 16] = *b"DemixerRefDelay2";
    const LAYOUTS: &'static [AudioIOLayout] =
        &[main(2, 2, &STEREO_AUX), main(1, 2, &STEREO_AUX), main(1, 1, &MONO_AUX)];
}

/// The plugin instance: one ring per channel.
pub struct ReferenceDelay<V: Variant> {
    params: Arc<NoParams>,
    rings: Vec<Vec<f32>>,
    position: usize,
    variant: PhantomData<V>,
}

impl<V: Variant> Default for ReferenceDelay<V> {
    fn default() -> Self {
        Self { params: Arc::default(), rings: Vec::new(), position: 0, variant: PhantomData }
    }
}

/// It has no parameters.
#[derive(Params, Default)]
struct NoParams {}

impl<V: Variant> Plugin for ReferenceDelay<V> {
    const NAME: &'static str = V::NAME;
    const VENDOR: &'static str = "Demixer tests";
    const URL: &'static str = "https://github.com/demixer/demixer";
    const EMAIL: &'static str = "demixer@example.org";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = V::LAYOUTS;

    type SysExMessage = ();
    type BackgroundTask = ();
    type Editor = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn activate(&mut self, layout: &AudioIOLayout, _: &BufferConfig, context: &mut impl ActivateContext<Self>) -> bool {
        let channels = layout.main_output_channels.map_or(0, NonZeroU32::get) as usize;
        self.rings = vec![vec![0.0; LATENCY]; channels];
        self.position = 0;
        context.set_latency_samples(if V::PROBE { 0 } else { LATENCY as u32 });
        true
    }

    fn reset(&mut self) {
        self.rings.iter_mut().for_each(|ring| ring.fill(0.0));
        self.position = 0;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        aux: &mut AuxiliaryBuffers,
        _: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let mut given = 0;
        for port in aux.outputs.iter_mut() {
            for channel in port.as_slice().iter_mut().filter(|channel| !channel.is_empty()) {
                channel.fill(0.0);
                given += 1;
            }
        }
        if V::PROBE {
            buffer.as_slice().iter_mut().for_each(|channel| channel.fill(given as f32));
            return ProcessStatus::Normal;
        }
        for mut frame in buffer.iter_samples() {
            for (sample, ring) in frame.iter_mut().zip(&mut self.rings) {
                std::mem::swap(sample, &mut ring[self.position]);
            }
            self.position = (self.position + 1) % LATENCY;
        }
        ProcessStatus::Normal
    }
}

impl<V: Variant> Vst3Plugin for ReferenceDelay<V> {
    const VST3_CLASS_ID: [u8; 16] = V::CLASS_ID;
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] = &[Vst3SubCategory::Fx, Vst3SubCategory::Delay];
}

nice_export_vst3!(ReferenceDelay<MainOnly>, ReferenceDelay<StemBuses>, ReferenceDelay<BusProbe>);
