//! Separating one song file into stem files, with any engine of the registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use demixer_dsp::render::{Aligned, StemBlock};
use demixer_dsp::{Engine, EngineSpec, Stem};

use crate::audio::{Reader, SampleFormat, StemWriter};

/// With `--fit`, the loudest stem sample after scaling, a hair under full scale so that rounding
/// cannot clip it.
const FIT_PEAK: f32 = 0.999;

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

    /// An engine for `sample_rate`: a pooled one, or a new one.
    fn take(&self, sample_rate: u32) -> Result<Engine> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&sample_rate).and_then(Vec::pop);
        match pooled {
            Some(engine) => Ok(engine),
            None => Ok(demixer_dsp::build(&self.spec, sample_rate as f32)?),
        }
    }

    /// Returns `engine`, built for `sample_rate`, to the pool.
    fn give_back(&self, sample_rate: u32, engine: Engine) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).entry(sample_rate).or_default().push(engine);
    }
}

/// What separating one song gave.
pub struct Outcome {
    /// The song's folder of stems.
    pub dir: PathBuf,
    /// Things the user should know: clipping, the gain `--fit` applied.
    pub notes: Vec<String>,
    /// Set when the file ended early: what was read, and why it stopped (its stems hold what
    /// could be read).
    pub incomplete: Option<String>,
}

/// One pass over a song: the stems written, their peak and what clipped.
struct Pass {
    /// Per written stem: samples clipped.
    clipped: Vec<(Stem, u64)>,
    /// Loudest stem sample before clipping.
    peak: f32,
    /// See [`Outcome::incomplete`].
    incomplete: Option<String>,
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
    /// In integer formats, scale a song's stems by one gain where they would clip.
    pub fit: bool,
}

impl Job {
    /// Separates `input` into `<out_dir>/<song>/<stem>.wav`, streaming it (memory stays bounded
    /// by the engine, not the song). `progress` receives the fraction done, from 0 to 1. With
    /// [`Job::fit`] and an integer format, a song whose stems would clip is written again with
    /// one gain for all its stems.
    pub fn run(&self, input: &Path, song: &str, progress: &mut dyn FnMut(f32)) -> Result<Outcome> {
        let reader = Reader::open(input)?;
        let rate = reader.sample_rate;
        let mut engine = self.engines.take(rate)?;
        let dir = self.out_dir.join(song);
        let result = self.write(reader, &mut engine, &dir, 1.0, progress).and_then(|first| {
            if !(self.fit && first.peak > 1.0 && self.format != SampleFormat::F32) {
                return Ok((first, None));
            }
            let gain = FIT_PEAK / first.peak;
            let second = self.write(Reader::open(input)?, &mut engine, &dir, gain, progress)?;
            Ok((second, Some(gain)))
        });
        self.engines.give_back(rate, engine);
        let (pass, gain) = result?;
        let mut notes = Vec::new();
        if let Some(gain) = gain {
            notes.push(format!(
                "every stem scaled by {:.2} dB (--fit) so that none clips; they sum to the input times that gain",
                20.0 * gain.log10()
            ));
        }
        let clipped: Vec<String> =
            pass.clipped.iter().filter(|(_, n)| *n > 0).map(|(stem, n)| format!("{stem}: {n} samples")).collect();
        if !clipped.is_empty() {
            notes.push(format!(
                "clipped at full scale ({}; peak {:+.1} dBFS), so the stems no longer sum to the input: \
                 use --fit or --format f32",
                clipped.join(", "),
                20.0 * pass.peak.log10()
            ));
        }
        Ok(Outcome { dir, notes, incomplete: pass.incomplete })
    }

    /// Separates what `reader` decodes with `engine` into the stem files in `dir`, times `gain`.
    fn write(
        &self,
        mut reader: Reader,
        engine: &mut Engine,
        dir: &Path,
        gain: f32,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Pass> {
        let sources = engine.sources().to_vec();
        let wanted = self.stems.clone().unwrap_or_else(|| sources.clone());
        let mut picked = Vec::new();
        for stem in &wanted {
            let Some(index) = sources.iter().position(|s| s == stem) else {
                let made: Vec<&str> = sources.iter().map(|s| s.name()).collect();
                bail!("the engine makes no {stem} stem (it makes {})", made.join(", "));
            };
            picked.push(index);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let (rate, channels) = (reader.sample_rate, reader.channels);
        let mut writers = wanted
            .iter()
            .map(|stem| StemWriter::create(&dir.join(format!("{stem}.wav")), rate, channels, self.format))
            .collect::<Result<Vec<_>>>()?;
        let mut failed = None;
        let mut sink = |block: StemBlock<'_>| {
            for (writer, &index) in writers.iter_mut().zip(&picked) {
                let [left, right] = &block[index];
                let planar: [&[f32]; 2] = [left, right];
                if let Err(e) = writer.write(&planar[..channels], gain) {
                    failed.get_or_insert(e);
                }
            }
        };
        let expected = reader.expected_frames.unwrap_or(0).max(1) as f32;
        let mut aligned = Aligned::new(&mut *engine.separator);
        while let Some(block) = reader.next_block()? {
            let right = block.last().expect("one or two channels");
            aligned.push(&block[0], right, &mut sink);
            progress((reader.frames_read() as f32 / expected).min(1.0));
        }
        aligned.finish(&mut sink);
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(why) = engine.separator.failure() {
            // What a failed model gave is not audio: no stem of this song is kept.
            drop(writers);
            for stem in &wanted {
                let _ = std::fs::remove_file(dir.join(format!("{stem}.wav")));
            }
            bail!("the model failed: {why}; no stems were written for this song");
        }
        let clipped = wanted.iter().zip(&writers).map(|(&stem, writer)| (stem, writer.clipped)).collect();
        let peak = writers.iter().map(|writer| writer.peak).fold(0.0, f32::max);
        writers.into_iter().try_for_each(StemWriter::finish)?;
        Ok(Pass { clipped, peak, incomplete: reader.ended_early() })
    }
}
