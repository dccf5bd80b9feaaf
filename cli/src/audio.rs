//! Reading audio files of any format symphonia knows, and writing stems as WAV.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// File extensions the tool picks up when given a folder.
pub const AUDIO_EXTENSIONS: [&str; 5] = ["wav", "flac", "mp3", "ogg", "oga"];

/// A decoded file: one vector per channel (1 or 2) at `sample_rate`.
pub struct Audio {
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel signals, all the same length.
    pub channels: Vec<Vec<f32>>,
}

/// Decodes a whole file. Refuses files with more than two channels.
pub fn read(path: &Path) -> Result<Audio> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .context("not a readable audio file (unknown or corrupt format)")?;
    let track = format.default_track(TrackType::Audio).context("the file has no audio track")?;
    let params =
        track.codec_params.as_ref().and_then(|p| p.audio()).context("the audio track has no codec parameters")?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .context("unsupported audio codec")?;
    let track_id = track.id;

    let mut interleaved: Vec<f32> = Vec::new();
    let mut block: Vec<f32> = Vec::new();
    let mut layout: Option<(u32, usize)> = None;
    while let Some(packet) = format.next_packet().context("cannot read the file")? {
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged packet in a lossy stream: skip it as players do.
            Err(DecodeError::DecodeError(_)) => continue,
            Err(e) => return Err(e).context("cannot decode the file"),
        };
        let spec = (decoded.spec().rate(), decoded.spec().channels().count());
        if *layout.get_or_insert(spec) != spec {
            bail!("the sample rate or channel count changes within the file");
        }
        block.resize(decoded.samples_interleaved(), 0.0);
        decoded.copy_to_slice_interleaved(&mut block);
        interleaved.extend_from_slice(&block);
    }
    let (sample_rate, count) = layout.context("the file holds no audio")?;
    if !(1..=2).contains(&count) {
        bail!("{count} channels are not supported (mono or stereo only)");
    }
    let channels = (0..count).map(|c| interleaved.iter().skip(c).step_by(count).copied().collect()).collect();
    Ok(Audio { sample_rate, channels })
}

/// Sample formats for written stems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SampleFormat {
    /// 32-bit float (lossless, no clipping).
    F32,
    /// 24-bit integer.
    I24,
    /// 16-bit integer.
    I16,
}

/// Writes channel signals as an interleaved WAV file.
pub fn write_wav(path: &Path, sample_rate: u32, channels: &[&[f32]], format: SampleFormat) -> Result<()> {
    let (bits, sample_format) = match format {
        SampleFormat::F32 => (32, hound::SampleFormat::Float),
        SampleFormat::I24 => (24, hound::SampleFormat::Int),
        SampleFormat::I16 => (16, hound::SampleFormat::Int),
    };
    let spec = hound::WavSpec { channels: channels.len() as u16, sample_rate, bits_per_sample: bits, sample_format };
    let mut writer =
        hound::WavWriter::create(path, spec).with_context(|| format!("cannot write {}", path.display()))?;
    let scale = ((1i64 << (bits - 1)) - 1) as f32;
    for t in 0..channels.first().map_or(0, |c| c.len()) {
        for channel in channels {
            match format {
                SampleFormat::F32 => writer.write_sample(channel[t])?,
                _ => writer.write_sample((channel[t].clamp(-1.0, 1.0) * scale).round() as i32)?,
            }
        }
    }
    writer.finalize().with_context(|| format!("cannot finish {}", path.display()))?;
    Ok(())
}
