//! Everything the host can automate and save.

use std::sync::Arc;

use demixer_dsp::hpss::Preset;
use demixer_gui::{MixerParams, StripParams};
use demixer_state::ModelSettings;
use nice_plug::prelude::*;
use parking_lot::RwLock;

use crate::mixer::Strip;
use crate::stems::{STEM_COUNT, STEMS};

/// Loudest stem gain, in dB.
const MAX_GAIN_DB: f32 = 12.0;
/// Gain curve: −60 dB sits low on the fader; the bottom is −∞.
const SKEW_FLOOR_DB: f32 = -60.0;

/// Gains at or below this many dB are silence ("-inf").
const SILENCE_DB: f32 = -100.0;

/// A gain in dB with one decimal; what rounds to [`SILENCE_DB`] or below shows as "-inf", so that
/// every text parses back ([`text_to_gain`]) to a value that shows the same text. (nice-plug's
/// formatter pair shows gains just above −100 dB as "-100.0", which parses to silence.)
fn gain_to_text(gain: f32) -> String {
    let db = (200.0 * gain.log10()).round() / 10.0;
    match db {
        db if db.is_nan() || db <= SILENCE_DB => "-inf".into(),
        0.0 => "0.0".into(),
        db => format!("{db:.1}"),
    }
}

/// Parses "-6.0", "-6 dB", "+3.5 dBFS" or "-inf" into a linear gain.
fn text_to_gain(text: &str) -> Option<f32> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let number = lower.strip_suffix("dbfs").or_else(|| lower.strip_suffix("db")).unwrap_or(&lower).trim();
    if number == "-inf" {
        return Some(0.0);
    }
    let db = number.parse::<f32>().ok().filter(|db| db.is_finite())?;
    Some(if db <= SILENCE_DB { 0.0 } else { 10f32.powf(db / 20.0) })
}

/// Which separation engine runs.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    /// The best engine available: the model once it is loaded, else HPSS.
    #[name = "Auto"]
    Auto,
    /// The built-in real-time HPSS engine.
    #[name = "HPSS"]
    Hpss,
    /// An ONNX model; HPSS plays while it loads or if it cannot.
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
            .with_value_to_string(Arc::new(gain_to_text))
            .with_string_to_value(Arc::new(text_to_gain)),
            mute: BoolParam::new(format!("{stem} Mute"), false),
            solo: BoolParam::new(format!("{stem} Solo"), false),
        }
    }
}

/// One strip per entry of [`STEMS`], with the IDs `<id>_gain`, `<id>_mute` and `<id>_solo` in
/// the group named after the stem (what `#[nested(id_prefix, group)]` gave the written-out fields).
pub struct StemStrips([StemParams; STEM_COUNT]);

impl Default for StemStrips {
    fn default() -> Self {
        Self(STEMS.map(|port| StemParams::new(port.name)))
    }
}

// SAFETY: every pointer comes from a parameter that `self` owns and that lives as long as it, as
// in the derived implementation for `StemParams` this delegates to.
unsafe impl Params for StemStrips {
    fn param_map(&self) -> Vec<(String, ParamPtr, String)> {
        STEMS
            .iter()
            .zip(&self.0)
            .flat_map(|(port, strip)| {
                strip.param_map().into_iter().map(|(id, ptr, _)| (format!("{}_{id}", port.id), ptr, port.name.into()))
            })
            .collect()
    }
}

/// The plugin's parameters.
#[derive(Params)]
pub struct DemixerParams {
    /// The stem strips.
    #[nested]
    pub strips: StemStrips,
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
    /// Memory this instance's loop cache may take, in MB (0: no cache); all instances in the
    /// process together take at most the largest of their settings.
    #[id = "cache_mb"]
    pub cache_megabytes: IntParam,
    /// The model engine's model, runtime library and device (saved with the project).
    #[persist = "model"]
    pub model: Arc<RwLock<ModelSettings>>,
}

impl Default for DemixerParams {
    fn default() -> Self {
        Self {
            strips: StemStrips::default(),
            engine: EnumParam::new("Engine", EngineChoice::Auto),
            preset: EnumParam::new("Preset", PresetChoice::Normal),
            aux_post_fader: BoolParam::new("Stem Outputs Post-Fader", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            cache_megabytes: IntParam::new("Loop Cache", 256, IntRange::Linear { min: 0, max: 4096 })
                .with_unit(" MB")
                .non_automatable(),
            model: Arc::default(),
        }
    }
}

impl DemixerParams {
    /// The strips' current gain, mute and solo, for the mixer, in [`STEMS`] order.
    pub fn strip_values(&self) -> [Strip; STEM_COUNT] {
        self.strips.0.each_ref().map(|s| Strip { gain: s.gain.value(), mute: s.mute.value(), solo: s.solo.value() })
    }
}

impl MixerParams for DemixerParams {
    type Engine = EngineChoice;
    type Preset = PresetChoice;

    fn strips(&self) -> Vec<StripParams<'_>> {
        STEMS
            .iter()
            .zip(&self.strips.0)
            .map(|(port, p)| StripParams {
                name: port.name,
                colour: port.colour,
                gain: &p.gain,
                mute: &p.mute,
                solo: &p.solo,
            })
            .collect()
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

    fn cache_megabytes(&self) -> &IntParam {
        &self.cache_megabytes
    }

    fn model_settings(&self) -> &RwLock<ModelSettings> {
        &self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_texts_parse_back_to_the_same_text() {
        assert_eq!(gain_to_text(0.0), "-inf");
        assert_eq!(gain_to_text(1.0), "0.0");
        assert_eq!(gain_to_text(1.000_001e-5), "-inf", "rounds to -100.0 dB");
        // nice-plug's own pair shows that gain as "-100.0", which parses to silence ("-inf").
        let (v2s, s2v) = (formatters::v2s_f32_gain_to_db(1), formatters::s2v_f32_gain_to_db());
        assert_eq!(v2s(1.000_001e-5), "-100.0");
        assert_eq!(v2s(s2v("-100.0").unwrap()), "-inf");
        assert_eq!(gain_to_text(1.2e-5), "-98.4");
        assert_eq!(text_to_gain("-6 dB"), Some(10f32.powf(-0.3)));
        assert_eq!(text_to_gain("-inf dB"), Some(0.0));
        assert_eq!(text_to_gain("+3.5 dBFS"), Some(10f32.powf(3.5 / 20.0)));
        assert_eq!(text_to_gain("loud"), None);
        assert_eq!(text_to_gain("nan dB"), None);
        assert_eq!(text_to_gain("inf"), None);
        for step in 0..=10_000 {
            let gain = 4.0 * (step as f32 / 10_000.0).powi(4);
            let text = gain_to_text(gain);
            assert_eq!(gain_to_text(text_to_gain(&text).unwrap()), text, "gain {gain}");
        }
    }

    #[test]
    fn strip_parameters_keep_their_ids_and_groups() {
        let params = DemixerParams::default();
        let map = params.param_map();
        let ids: Vec<(&str, &str)> = map.iter().map(|(id, _, group)| (id.as_str(), group.as_str())).collect();
        assert_eq!(&ids[..3], [("drums_gain", "Drums"), ("drums_mute", "Drums"), ("drums_solo", "Drums")]);
        assert_eq!(ids[9..12], [("vocals_gain", "Vocals"), ("vocals_mute", "Vocals"), ("vocals_solo", "Vocals")]);
        assert_eq!(ids[12..], [("engine", ""), ("preset", ""), ("aux_post", ""), ("bypass", ""), ("cache_mb", "")]);
    }
}
