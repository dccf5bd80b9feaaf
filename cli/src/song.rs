//! Separating one song file into stem files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use demixer_dsp::Stem;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::render::separate_aligned;

use crate::audio::{self, SampleFormat};

/// What to produce for every song.
pub struct Job {
    /// Folder that receives one sub-folder per song.
    pub out_dir: PathBuf,
    /// Stems to write.
    pub stems: Vec<Stem>,
    /// HPSS latency/quality preset.
    pub preset: Preset,
    /// Sample format of the written files.
    pub format: SampleFormat,
}

impl Job {
    /// Separates `input` into `<out_dir>/<song>/<stem>.wav` and returns that folder.
    /// `progress` receives the fraction done, from 0 to 1.
    pub fn run(&self, input: &Path, song: &str, progress: &mut dyn FnMut(f32)) -> Result<PathBuf> {
        let audio = audio::read(input)?;
        let config = HpssConfig::preset(self.preset, audio.sample_rate as f32)?;
        let mut engine = HpssSeparator::new(config);
        let (left, right) = match audio.channels.as_slice() {
            [mono] => (mono, mono),
            [left, right] => (left, right),
            _ => unreachable!("audio::read returns mono or stereo"),
        };
        let len = left.len().max(1) as f32;
        let stems = separate_aligned(&mut engine, left, right, &mut |done| progress(done as f32 / len));

        let dir = self.out_dir.join(song);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for stem in &self.stems {
            let index = Stem::ALL.iter().position(|s| s == stem).expect("the HPSS engine makes every stem");
            let [l, r] = &stems[index];
            let channels: Vec<&[f32]> = if audio.channels.len() == 1 { vec![l] } else { vec![l, r] };
            audio::write_wav(&dir.join(format!("{stem}.wav")), audio.sample_rate, &channels, self.format)?;
        }
        Ok(dir)
    }
}
