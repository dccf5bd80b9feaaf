//! Everything the host can automate and save.

use demixer_dsp::Stem;
use demixer_dsp::hpss::Preset;
use std::sync::{Arc, RwLock};

use demixer_gui::{MixerParams, ModelSettings, StripParams};

use crate::mixer::Strip;
use nice_plug::prelude::*;

/// Stem names in port order, as hosts and the mixer show them.
pub const STEM_NAMES: [&str; 4] = ["Drums", "Bass", "Other", "Vocals"];

/// Loudest stem gain, in dB.
const MAX_GAIN_DB: f32 = 12.0;
/// Gain curve: −60 dB sits low on the fader; the bottom is −∞.
const SKEW_FLOOR_DB: f32 = -60.0;

/// Which separation engine runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// The best engine available: HT-Demucs once a model is loaded, else HPSS.
    #[name = "Auto"]
    Auto,
    /// The built-in real-time HPSS engine.
    #[name = "HPSS"]
    Hpss,
    /// An HT-Demucs ONNX model; HPSS plays while it loads or if it cannot.
    #[name = "ONNX"]
    Onnx,
}

/// HPSS latency/quality preset.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresetChoice {
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

impl PresetChoice {
    /// The engine preset this choice stands for.
    pub fn preset(self) -> Preset {
        match self {
            PresetChoice::Low => Preset::Low,
            PresetChoice::Normal => Preset::Normal,
            PresetChoice::HighQuality => Preset::HighQuality,
        }
    }
}

/// One stem's channel strip.
#[derive(Params)]
pub struct StemParams {
    /// Linear gain, 0 (−∞ dB) to +12 dB.
    #[id = "gain"]
    pub gain: FloatParam,
    /// Silences the stem; wins over solo.
    #[id = "mute"]
    pub mute: BoolParam,
    /// When any stem is soloed, only soloed stems sound.
    #[id = "solo"]
    pub solo: BoolParam,
}

impl StemParams {
    fn new(stem: &str) -> Self {
        Self {
            gain: FloatParam::new(
                format!("{stem} Gain"),
                1.0,
                FloatRange::Skewed {
                    min: 0.0,
                    max: util::db_to_gain(MAX_GAIN_DB),
                    factor: FloatRange::gain_skew_factor(SKEW_FLOOR_DB, MAX_GAIN_DB),
                },
            )
            .with_unit(" dB")
            .with_value_to_string(formatters::v2s_f32_gain_to_db(1))
            .with_string_to_value(formatters::s2v_f32_gain_to_db()),
            mute: BoolParam::new(format!("{stem} Mute"), false),
            solo: BoolParam::new(format!("{stem} Solo"), false),
        }
    }
}

/// The plugin's parameters.
#[derive(Params)]
pub struct DemixerParams {
    /// Drums strip.
    #[nested(id_prefix = "drums", group = "Drums")]
    pub drums: StemParams,
    /// Bass strip.
    #[nested(id_prefix = "bass", group = "Bass")]
    pub bass: StemParams,
    /// Other strip.
    #[nested(id_prefix = "other", group = "Other")]
    pub other: StemParams,
    /// Vocals strip.
    #[nested(id_prefix = "vocals", group = "Vocals")]
    pub vocals: StemParams,
    /// Separation engine.
    #[id = "engine"]
    pub engine: EnumParam<EngineChoice>,
    /// HPSS preset.
    #[id = "preset"]
    pub preset: EnumParam<PresetChoice>,
    /// Whether the stem outputs carry the stems after their gain, mute and solo.
    #[id = "aux_post"]
    pub aux_post_fader: BoolParam,
    /// Passes the input through, delayed by the reported latency; the stem outputs are silent.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// The ONNX engine's model, runtime library and device (saved with the project).
    #[persist = "model"]
    pub model: Arc<RwLock<ModelSettings>>,
}

impl Default for DemixerParams {
    fn default() -> Self {
        let [drums, bass, other, vocals] = STEM_NAMES.map(StemParams::new);
        Self {
            drums,
            bass,
            other,
            vocals,
            engine: EnumParam::new("Engine", EngineChoice::Auto),
            preset: EnumParam::new("Preset", PresetChoice::Normal),
            aux_post_fader: BoolParam::new("Stem Outputs Post-Fader", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            model: Arc::default(),
        }
    }
}

impl DemixerParams {
    /// The four strips in [`Stem::ALL`] order.
    pub fn stems(&self) -> [&StemParams; Stem::ALL.len()] {
        [&self.drums, &self.bass, &self.other, &self.vocals]
    }

    /// The strips' current gain, mute and solo, for the mixer.
    pub fn strip_values(&self) -> [Strip; Stem::ALL.len()] {
        self.stems().map(|s| Strip { gain: s.gain.value(), mute: s.mute.value(), solo: s.solo.value() })
    }
}

impl MixerParams for DemixerParams {
    type Engine = EngineChoice;
    type Preset = PresetChoice;

    fn strips(&self) -> [StripParams<'_>; 4] {
        let mut names = STEM_NAMES.into_iter();
        self.stems().map(|p| StripParams { name: names.next().unwrap(), gain: &p.gain, mute: &p.mute, solo: &p.solo })
    }

    fn engine(&self) -> &EnumParam<EngineChoice> {
        &self.engine
    }

    fn preset(&self) -> &EnumParam<PresetChoice> {
        &self.preset
    }

    fn aux_post_fader(&self) -> &BoolParam {
        &self.aux_post_fader
    }

    fn bypass(&self) -> &BoolParam {
        &self.bypass
    }

    fn model_settings(&self) -> &RwLock<ModelSettings> {
        &self.model
    }
}
