//! Spectrogram models run by ONNX Runtime: Deezer's Spleeter as `demixer models` converts it, and
//! any model that follows the same contract (see [`crate::engines::spectrogram`] for what Demixer does
//! around the model).
//!
//! **Contract**: one input, float32 `[1 | batch, 2, T, F]`: the magnitude spectrogram of a stereo
//! chunk, channels first, `T` frames of `F` bins (bin 0 up, `F` at most `n_fft / 2 + 1`); `T` fixed,
//! or free (`frames` in the metadata is then the chunk the model was trained on, and any multiple
//! of `frame_multiple` runs). One output, float32 `[1 | batch, S, 2, T, F]`: per source, its
//! magnitude estimate (`output` = `magnitudes`, the default: Demixer forms ratio masks with the
//! exponent `separation_exponent`, default 2) or its mask (`output` = `masks`). Metadata (or the
//! sidecar `<model>.json`): `n_fft` and `hop` (samples, required), `sources`, `sample_rate`
//! (default 44100), `frames`, `frame_multiple` (default 1). A source named `accompaniment` is
//! the complement of the others; Demixer completes models without the four stems with HPSS
//! ([`crate::compose::completed`]).

use std::path::Path;

use ort::session::Session;
use ort::value::TensorRef;

use super::OnnxError;
use super::contract::{DEFAULT_SAMPLE_RATE, declared_text, float_dims, parse_positive, parse_sources};
use super::model::ModelFile;
use crate::engines::segments::{InferenceError, check_output};
use crate::engines::spectrogram::{Chunking, Estimates, SpectrogramModel, SpectrogramSpec};

/// The contract as users read it in error messages.
pub const EXPECTED: &str = "a spectrogram model: input float32 [1, 2, T, F] (magnitudes), output float32 \
                            [1, S, 2, T, F], metadata `n_fft` and `hop`";

/// What Demixer knows about a spectrogram model.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrogramDeclared {
    /// STFT, bins, sources, estimates.
    pub layout: SpectrogramSpec,
    /// The rate it works at, in Hz.
    pub sample_rate: usize,
    /// Frames of the chunks it was trained on (and the reference separation's chunks).
    pub frames: usize,
    /// Frame counts it accepts are multiples of this (1 where `T` is fixed: only `frames` runs).
    pub frame_multiple: usize,
    /// Whether `T` is free.
    pub free_frames: bool,
    /// The input's and output's names.
    pub input: String,
    /// The output's name.
    pub output: String,
}

impl SpectrogramDeclared {
    /// The chunking for offline work: the model's own chunks, as its reference implementation
    /// separates a song.
    pub fn reference_chunking(&self) -> Chunking {
        Chunking::reference(self.frames)
    }

    /// The chunking for real time: the smallest window of at least 4 frames the model accepts (a
    /// multiple of `frame_multiple`, where `T` is free), sliding by half of it ([`Chunking::live`]).
    pub fn live_chunking(&self) -> Chunking {
        let window = if self.free_frames { 4usize.next_multiple_of(self.frame_multiple) } else { self.frames };
        Chunking::live(window)
    }
}

fn positive(session: &Session, path: &Path, key: &str) -> Result<Option<usize>, String> {
    declared_text(session, path, key)?.map(|text| parse_positive(&text, key)).transpose()
}

/// Checks `session` (loaded from `path`) against the spectrogram contract and reads its spec.
pub(crate) fn read_spec(session: &Session, path: &Path) -> Result<SpectrogramDeclared, String> {
    let refuse = |why: String| Err(format!("{why}; expected {EXPECTED}"));
    let ([input], [output]) = (session.inputs(), session.outputs()) else {
        return refuse(format!(
            "the model has {} inputs and {} outputs",
            session.inputs().len(),
            session.outputs().len()
        ));
    };
    let (in_dims, out_dims) = (float_dims(input.dtype()), float_dims(output.dtype()));
    let (frames_dim, bins) = match in_dims.as_deref() {
        Some(&[-1 | 1, 2, t, f]) if f > 0 => (t, f as usize),
        dims => return refuse(format!("the input `{}` is {dims:?}", input.name())),
    };
    let count = match out_dims.as_deref() {
        Some(&[-1 | 1, s, 2, t, f]) if s > 0 && f == bins as i64 && (t == frames_dim || t < 0) => s as usize,
        dims => return refuse(format!("the output `{}` is {dims:?} for an input {in_dims:?}", output.name())),
    };
    let (Some(n_fft), Some(hop)) = (positive(session, path, "n_fft")?, positive(session, path, "hop")?) else {
        return refuse("the metadata does not give `n_fft` and `hop`".into());
    };
    // A squared Hann window sums to a constant at a quarter of its length or less (Spleeter's
    // 4096/1024): at half, the separated sources would ripple in level.
    if !n_fft.is_power_of_two() || !n_fft.is_multiple_of(hop) || n_fft < 4 * hop || bins > n_fft / 2 + 1 {
        return Err(format!("n_fft {n_fft}, hop {hop} and {bins} bins do not make an STFT Demixer runs"));
    }
    let free_frames = frames_dim < 0;
    let declared_frames = positive(session, path, "frames")?;
    let frames = match (free_frames, declared_frames) {
        (false, _) => frames_dim as usize,
        (true, Some(frames)) => frames,
        (true, None) => return Err("the input's frames are free: the metadata must give `frames`".into()),
    };
    let frame_multiple = if free_frames { positive(session, path, "frame_multiple")?.unwrap_or(1) } else { frames };
    if !frames.is_multiple_of(frame_multiple) {
        return Err(format!("its {frames} frames are not a multiple of its frame_multiple {frame_multiple}"));
    }
    let sources = match declared_text(session, path, "sources")? {
        Some(list) => parse_sources(&list)?,
        None => return Err(format!("the model's {count} sources are not named: add metadata `sources`")),
    };
    if sources.len() != count || (1..count).any(|i| sources[..i].contains(&sources[i])) {
        return Err(format!("the model outputs {count} sources but names {sources:?}"));
    }
    let estimates = match declared_text(session, path, "output")?.as_deref() {
        None | Some("magnitudes") => {
            let exponent = positive(session, path, "separation_exponent")?.unwrap_or(2);
            Estimates::Magnitudes { exponent: i32::try_from(exponent).map_err(|_| "a huge separation_exponent")? }
        }
        Some("masks") => Estimates::Masks,
        Some(other) => return Err(format!("unknown `output` '{other}' (magnitudes or masks)")),
    };
    let sample_rate = positive(session, path, "sample_rate")?.unwrap_or(DEFAULT_SAMPLE_RATE);
    Ok(SpectrogramDeclared {
        layout: SpectrogramSpec { n_fft, hop, bins, sources, estimates },
        sample_rate,
        frames,
        frame_multiple,
        free_frames,
        input: input.name().to_string(),
        output: output.name().to_string(),
    })
}

/// A loaded spectrogram model.
pub struct SpectrogramOnnx {
    opened: ModelFile,
    declared: SpectrogramDeclared,
}

impl SpectrogramOnnx {
    /// Checks an open session against the spectrogram contract.
    pub(crate) fn from_session(opened: ModelFile) -> Result<Self, OnnxError> {
        let contract = |why| OnnxError::Contract { path: opened.path().to_path_buf(), why };
        let declared = read_spec(&opened.session, opened.path()).map_err(contract)?;
        Ok(Self { opened, declared })
    }

    /// Its session, file and device.
    pub fn opened(&self) -> &ModelFile {
        &self.opened
    }

    /// What the model declares.
    pub fn declared(&self) -> &SpectrogramDeclared {
        &self.declared
    }
}

impl SpectrogramModel for SpectrogramOnnx {
    fn spec(&self) -> &SpectrogramSpec {
        &self.declared.layout
    }

    fn run(&mut self, magnitude: &[f32], frames: usize, out: &mut [f32]) -> Result<(), InferenceError> {
        let failed = |e: ort::Error| InferenceError(e.to_string());
        let bins = self.declared.layout.bins;
        let input = TensorRef::from_array_view(([1usize, 2, frames, bins], magnitude)).map_err(failed)?;
        let outputs = self.opened.session.run(ort::inputs![self.declared.input.as_str() => input]).map_err(failed)?;
        let (shape, data) = outputs[self.declared.output.as_str()].try_extract_tensor::<f32>().map_err(failed)?;
        if data.len() != out.len() {
            return Err(InferenceError(format!("the model returned {shape:?} for {frames} frames")));
        }
        check_output(magnitude, data)?;
        out.copy_from_slice(data);
        Ok(())
    }
}
