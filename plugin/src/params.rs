//! The plugin's parameters.

use demixer_dsp::hpss::Preset;
use nice_plug::prelude::*;

/// HPSS latency/quality preset, as a host-automatable choice.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetParam {
    /// Under 30 ms.
    #[name = "Low latency"]
    Low,
    /// Under 100 ms.
    #[name = "Normal"]
    Normal,
    /// About 250 ms, cleanest split.
    #[name = "High quality"]
    HighQuality,
}

impl PresetParam {
    /// Index of the matching [`Preset`] in [`Preset::ALL`].
    pub fn index(self) -> usize {
        let preset = match self {
            PresetParam::Low => Preset::Low,
            PresetParam::Normal => Preset::Normal,
            PresetParam::HighQuality => Preset::HighQuality,
        };
        Preset::ALL.iter().position(|&p| p == preset).expect("every preset is listed")
    }
}

/// Everything the host can automate and save.
#[derive(Params)]
pub struct DemixerParams {
    /// Which HPSS preset runs.
    #[id = "preset"]
    pub preset: EnumParam<PresetParam>,
}

impl Default for DemixerParams {
    fn default() -> Self {
        Self { preset: EnumParam::new("Preset", PresetParam::Normal) }
    }
}
