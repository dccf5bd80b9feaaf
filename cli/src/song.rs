//! Separating one song file into stem files, with the HPSS engine or an ONNX model.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use demixer_dsp::Stem;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::onnx::{self, LoadedEngine, OnnxConfig};
use demixer_dsp::render::separate_aligned;

use crate::audio::{self, SampleFormat};

/// The sources an engine made, and their `[source][channel]` audio.
type Separated = (Vec<Stem>, Vec<[Vec<f32>; 2]>);

/// Which engine separates.
pub enum Engine {
    /// The built-in HPSS engine with a preset.
    Hpss(Preset),
    /// An ONNX model (or bag); loaded once per sample rate and shared by the songs.
    Onnx { config: OnnxConfig, loaded: Mutex<HashMap<u32, LoadedEngine>> },
}

impl Engine {
    /// An ONNX engine for `config`, loaded now at 44.1 kHz so that a bad model or a missing runtime
    /// is reported before any song is read. Returns it with its description.
    pub fn onnx(config: OnnxConfig) -> Result<(Engine, String)> {
        let first = onnx::load(&config, 44_100, None).map_err(|e| anyhow!(e))?;
        let description = first.description_with_notes();
        let loaded = Mutex::new(HashMap::from([(44_100, first)]));
        Ok((Engine::Onnx { config, loaded }, description))
    }

    /// Separates a song at `sample_rate`: the sources made and their `[source][channel]` audio.
    fn separate(
        &self,
        sample_rate: u32,
        left: &[f32],
        right: &[f32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Separated> {
        match self {
            Engine::Hpss(preset) => {
                let mut engine = HpssSeparator::new(HpssConfig::preset(*preset, sample_rate as f32)?);
                Ok((Stem::ALL.to_vec(), separate_aligned(&mut engine, left, right, progress)))
            }
            Engine::Onnx { config, loaded } => {
                let mut loaded = loaded.lock().unwrap_or_else(|p| p.into_inner());
                let engine = match loaded.entry(sample_rate) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        entry.insert(onnx::load(config, sample_rate as usize, None).map_err(|e| anyhow!(e))?)
                    }
                };
                let stems = separate_aligned(&mut *engine.separator, left, right, progress);
                Ok((engine.model_sources.clone(), stems))
            }
        }
    }
}

/// What to produce for every song.
pub struct Job {
    /// Folder that receives one sub-folder per song.
    pub out_dir: PathBuf,
    /// Stems to write; `None`: every stem the engine makes.
    pub stems: Option<Vec<Stem>>,
    /// The engine.
    pub engine: Engine,
    /// Sample format of the written files.
    pub format: SampleFormat,
}

impl Job {
    /// Separates `input` into `<out_dir>/<song>/<stem>.wav` and returns that folder.
    /// `progress` receives the fraction done, from 0 to 1.
    pub fn run(&self, input: &Path, song: &str, progress: &mut dyn FnMut(f32)) -> Result<PathBuf> {
        let audio = audio::read(input)?;
        let (left, right) = match audio.channels.as_slice() {
            [mono] => (mono, mono),
            [left, right] => (left, right),
            _ => unreachable!("audio::read returns mono or stereo"),
        };
        let len = left.len().max(1) as f32;
        let (sources, stems) =
            self.engine.separate(audio.sample_rate, left, right, &mut |done| progress(done as f32 / len))?;
        let wanted = self.stems.clone().unwrap_or_else(|| sources.clone());
        if let Some(missing) = wanted.iter().find(|stem| !sources.contains(stem)) {
            let made: Vec<&str> = sources.iter().map(|s| s.name()).collect();
            bail!("the engine makes no {missing} stem (it makes {})", made.join(", "));
        }

        let dir = self.out_dir.join(song);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for stem in &wanted {
            let [l, r] = &stems[sources.iter().position(|s| s == stem).expect("checked above")];
            let channels: Vec<&[f32]> = if audio.channels.len() == 1 { vec![l] } else { vec![l, r] };
            audio::write_wav(&dir.join(format!("{stem}.wav")), audio.sample_rate, &channels, self.format)?;
        }
        Ok(dir)
    }
}
