//! Separating one song file into stem files, with any engine of the registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use demixer_dsp::render::separate_aligned;
use demixer_dsp::{Engine, EngineSpec, Stem};

use crate::audio::{self, SampleFormat};

/// The sources an engine made, and their `[source][channel]` audio.
type Separated = (Vec<Stem>, Vec<[Vec<f32>; 2]>);

/// The engine a job runs, built from its spec once per sample rate and song at a time: songs
/// take an engine from the pool and give it back, so songs run in parallel and a model loads
/// once per rate and job slot.
pub struct Engines {
    spec: EngineSpec,
    pool: Mutex<HashMap<u32, Vec<Engine>>>,
}

impl Engines {
    /// The pool for `spec`, with one engine built now at 44.1 kHz so that a bad model or a
    /// missing runtime is reported before any song is read. Returns it with, for a model, what
    /// the model is.
    pub fn new(spec: EngineSpec) -> Result<(Engines, Option<String>)> {
        let first = demixer_dsp::build(&spec, 44_100.0)?;
        let description = first.kind.is_model().then(|| first.description_with_notes());
        let pool = Mutex::new(HashMap::from([(44_100, vec![first])]));
        Ok((Engines { spec, pool }, description))
    }

    /// Separates a song at `sample_rate`: the sources made and their `[source][channel]` audio.
    fn separate(
        &self,
        sample_rate: u32,
        left: &[f32],
        right: &[f32],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Separated> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&sample_rate).and_then(Vec::pop);
        let mut engine = match pooled {
            Some(engine) => engine,
            None => demixer_dsp::build(&self.spec, sample_rate as f32)?,
        };
        let stems = separate_aligned(&mut *engine.separator, left, right, progress);
        let sources = engine.sources().to_vec();
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).entry(sample_rate).or_default().push(engine);
        Ok((sources, stems))
    }
}

/// What to produce for every song.
pub struct Job {
    /// Folder that receives one sub-folder per song.
    pub out_dir: PathBuf,
    /// Stems to write; `None`: every stem the engine makes.
    pub stems: Option<Vec<Stem>>,
    /// The engine.
    pub engines: Engines,
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
            self.engines.separate(audio.sample_rate, left, right, &mut |done| progress(done as f32 / len))?;
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
