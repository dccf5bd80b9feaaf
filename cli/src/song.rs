//! Separating one song file into stem files, with any engine of the registry.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use demixer_dsp::{Aligned, StemBlock};
use demixer_dsp::{Engine, Stem};

use crate::audio::{Reader, SampleFormat, StemWriter};
use crate::engines::Engines;
use crate::inputs::Identities;
use crate::output::SongStems;

/// With `--fit`, the loudest stem sample after scaling, a hair under full scale so that rounding
/// cannot clip it.
const FIT_PEAK: f32 = 0.999;

/// What separating one song gave.
pub struct Outcome {
    /// The song's folder of stems.
    pub dir: PathBuf,
    /// Things the user should know: clipping, the gain `--fit` applied, how the file was read.
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
    /// Replace the stems a song's folder holds already (else the song is refused).
    pub overwrite: bool,
    /// The batch's inputs, never written over.
    pub inputs: Identities,
}

impl Job {
    /// Separates `input` into `<out_dir>/<song>/<stem>.wav`, streaming it (memory stays bounded
    /// by the engine, not the song). `progress` receives the fraction done, from 0 to 1. With
    /// [`Job::fit`] and an integer format, a song whose stems would clip is written again with
    /// one gain for all its stems. The stems appear under their names only when all are complete
    /// (see [`SongStems`]).
    pub fn run(&self, input: &Path, song: &str, progress: &mut dyn FnMut(f32)) -> Result<Outcome> {
        let reader = Reader::open(input)?;
        let rate = reader.sample_rate;
        let mut engine = self.engines.take(rate)?;
        let dir = self.out_dir.join(song);
        let result = self.separate(reader, input, &mut engine, &dir, progress);
        self.engines.give_back(rate, engine);
        let (pass, gain, mut notes) = result?;
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

    /// The stems to write and where each is among the engine's sources.
    fn pick(&self, engine: &Engine) -> Result<(Vec<Stem>, Vec<usize>)> {
        let sources = engine.sources();
        let wanted = self.stems.clone().unwrap_or_else(|| sources.to_vec());
        let mut picked = Vec::new();
        for stem in &wanted {
            let Some(index) = sources.iter().position(|s| s == stem) else {
                let made: Vec<&str> = sources.iter().map(|s| s.name()).collect();
                bail!("the engine makes no {stem} stem (it makes {})", made.join(", "));
            };
            picked.push(index);
        }
        Ok((wanted, picked))
    }

    /// Writes the song's stems into `dir` (a second pass with `--fit`) and puts them in place.
    /// Returns the pass, the `--fit` gain and what the reader had to say.
    fn separate(
        &self,
        reader: Reader,
        input: &Path,
        engine: &mut Engine,
        dir: &Path,
        progress: &mut dyn FnMut(f32),
    ) -> Result<(Pass, Option<f32>, Vec<String>)> {
        let (wanted, picked) = self.pick(engine)?;
        let mut stems = SongStems::prepare(dir, &wanted, self.overwrite, &self.inputs)?;
        let notes = reader.notes.clone();
        let mut pass = self.write(reader, engine, &mut stems, (&wanted, &picked), 1.0, progress)?;
        let mut gain = None;
        if self.fit && pass.peak > 1.0 && self.format != SampleFormat::F32 {
            let fit = FIT_PEAK / pass.peak;
            pass = self.write(Reader::open(input)?, engine, &mut stems, (&wanted, &picked), fit, progress)?;
            gain = Some(fit);
        }
        stems.commit()?;
        Ok((pass, gain, notes))
    }

    /// Separates what `reader` decodes with `engine` into new files of `stems`, times `gain`: the
    /// stems wanted and their indices among the engine's sources.
    fn write(
        &self,
        mut reader: Reader,
        engine: &mut Engine,
        stems: &mut SongStems,
        (wanted, picked): (&[Stem], &[usize]),
        gain: f32,
        progress: &mut dyn FnMut(f32),
    ) -> Result<Pass> {
        let (rate, channels) = (reader.sample_rate, reader.channels);
        let mut writers = wanted
            .iter()
            .map(|&stem| Ok(StemWriter::new(stems.create(stem)?, rate, channels, self.format)?))
            .collect::<Result<Vec<_>>>()?;
        let mut failed = None;
        let mut sink = |block: StemBlock<'_>| {
            for (writer, &index) in writers.iter_mut().zip(picked) {
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
            return Err(e).context("cannot write a stem file");
        }
        if let Some(why) = engine.separator.failure() {
            // What a failed model gave is not audio: the song's unfinished stems are dropped.
            bail!("the model failed: {why}; no stems were written for this song");
        }
        let clipped = wanted.iter().zip(&writers).map(|(&stem, writer)| (stem, writer.clipped)).collect();
        let peak = writers.iter().map(|writer| writer.peak).fold(0.0, f32::max);
        for writer in writers {
            writer.finish().context("cannot finish a stem file")?;
        }
        Ok(Pass { clipped, peak, incomplete: reader.ended_early() })
    }
}
