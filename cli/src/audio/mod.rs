//! Reading audio files block by block (any format symphonia knows; RF64, BW64, Wave64 and
//! 24-bit samples in 4-byte containers through a plain RIFF view of their data, see [`header`]),
//! and writing stems as WAV ([`writer`]).
//!
//! A file that is cut short (an interrupted recording or download) or streamed without a length
//! (a WAV written to a pipe has sizes 0xFFFFFFFF) is read as far as it goes: [`Reader::ended_early`]
//! says how much was read when that was less than the header promised.

mod header;
mod writer;

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use header::{S24In32, WavHeader};
pub use writer::{SampleFormat, StemWriter};

/// File extensions the tool picks up when given a folder.
pub const AUDIO_EXTENSIONS: [&str; 8] = ["wav", "w64", "rf64", "bwf", "flac", "mp3", "ogg", "oga"];

/// Frames read from a file at a time, roughly.
const BLOCK_FRAMES: usize = 8192;

/// Whether `path` is a stem this tool wrote (its header names the tool as its writer).
pub fn is_own_stem(path: &Path) -> bool {
    WavHeader::read(path).and_then(|h| h.software).is_some_and(|s| writer::is_own_stem(&s))
}

/// The decoder of a file, and the factor its samples take (24-in-32 samples read as 32-bit PCM
/// and right-aligned: 256, checked to stay within full scale).
struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    block: Vec<f32>,
    gain: f32,
}

/// A file being decoded, one block at a time.
pub struct Reader {
    decoder: Decoder,
    /// Samples per second.
    pub sample_rate: u32,
    /// 1 (mono) or 2 (stereo).
    pub channels: usize,
    /// Frames the file's header promises, when it says.
    pub expected_frames: Option<u64>,
    frames: u64,
    /// Interleaved samples decoded but not handed out yet.
    pending: Vec<f32>,
    /// Why decoding stopped, if an error stopped it, and whether that error was only the data
    /// running out.
    stopped: Option<(String, bool)>,
    /// What the user should know about how the file was read.
    pub notes: Vec<String>,
}

impl Reader {
    /// Opens `path` and decodes its first packet. Refuses files with more than two channels.
    pub fn open(path: &Path) -> Result<Reader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let header = WavHeader::read(path);
        if let Some(header) = header.as_ref().filter(|h| h.data_len == Some(0)) {
            let length = file.metadata().map(|m| m.len()).unwrap_or(0);
            if length > header.data_start {
                bail!(
                    "the WAV header says it holds no audio, but {} bytes follow it (a recording whose header was \
                     never finished): not read",
                    length - header.data_start
                );
            }
        }
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let mut notes = Vec::new();
        let (source, gain): (Box<dyn MediaSource>, f32) = match &header {
            Some(header) if header.needs_view() => {
                let layout = match header.is_s24_in_32() {
                    true => header.s24_in_32_layout(path).context("not a readable WAV file")?,
                    false => S24In32::MsbAligned,
                };
                if layout == S24In32::Both {
                    notes.push(
                        "its 24-bit samples in 4 bytes fit both layouts (every low byte zero, every high byte the \
                         sign): read as right-aligned (ALSA's S24_LE, 16-bit audio); were they left-aligned (the \
                         RIFF rule), the song would be 48 dB quieter"
                            .to_string(),
                    );
                }
                if header.wrapped {
                    notes.push(
                        "the WAV header's 32-bit sizes wrapped (a file over 4 GiB written without RF64): read to \
                         the end of the file"
                            .to_string(),
                    );
                }
                hint.with_extension("wav");
                (Box::new(header.riff_view(file).context("not a readable WAV file")?), layout.gain())
            }
            _ => (Box::new(file), 1.0),
        };
        let stream = MediaSourceStream::new(source, Default::default());
        let format = symphonia::default::get_probe()
            .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
            .context("not a readable audio file (unknown or corrupt format)")?;
        let track = format.default_track(TrackType::Audio).context("the file has no audio track")?;
        let params =
            track.codec_params.as_ref().and_then(|p| p.audio()).context("the audio track has no codec parameters")?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .context("unsupported audio codec")?;
        let (track_id, sample_rate) = (track.id, params.sample_rate.unwrap_or(0));
        let channels = params.channels.as_ref().map_or(0, |c| c.count());
        let expected = match &header {
            Some(header) if header.frames().is_some() || header.data_len.is_none() => header.frames(),
            _ => track.num_frames,
        };
        let decoder = Decoder { format, decoder, track_id, block: Vec::new(), gain };
        let mut reader = Reader::start(decoder, sample_rate, channels, expected)?;
        reader.notes = notes;
        Ok(reader)
    }

    /// Decodes the first stretch, which settles the rate and channel count where the header did
    /// not state them.
    fn start(decoder: Decoder, sample_rate: u32, channels: usize, expected_frames: Option<u64>) -> Result<Reader> {
        let mut reader = Reader {
            decoder,
            sample_rate,
            channels,
            expected_frames,
            frames: 0,
            pending: Vec::new(),
            stopped: None,
            notes: Vec::new(),
        };
        reader.decode_more()?;
        if reader.sample_rate == 0 || reader.channels == 0 {
            bail!("the file holds no audio");
        }
        if !(1..=2).contains(&reader.channels) {
            bail!("{} channels are not supported (mono or stereo only)", reader.channels);
        }
        Ok(reader)
    }

    /// Decodes at least one more packet into `pending`; returns false at the end (or where the
    /// file stops making sense: see [`Reader::ended_early`]).
    fn decode_more(&mut self) -> Result<bool> {
        if self.stopped.is_some() {
            return Ok(false);
        }
        let Decoder { format, decoder, track_id, block, gain } = &mut self.decoder;
        loop {
            let packet = match format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(false),
                Err(e) => {
                    let data_ran_out =
                        matches!(&e, DecodeError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
                    self.stopped = Some((e.to_string(), data_ran_out));
                    return Ok(false);
                }
            };
            if packet.track_id != *track_id {
                continue;
            }
            let decoded = match decoder.decode(&packet) {
                Ok(decoded) => decoded,
                // A damaged packet in a lossy stream: skip it as players do.
                Err(DecodeError::DecodeError(_)) => continue,
                Err(e) => {
                    self.stopped = Some((e.to_string(), false));
                    return Ok(false);
                }
            };
            let spec = (decoded.spec().rate(), decoded.spec().channels().count());
            if self.sample_rate == 0 || self.channels == 0 {
                (self.sample_rate, self.channels) = spec;
            }
            if spec != (self.sample_rate, self.channels) {
                bail!("the sample rate or channel count changes within the file");
            }
            block.resize(decoded.samples_interleaved(), 0.0);
            decoded.copy_to_slice_interleaved(&mut *block);
            if *gain != 1.0 {
                block.iter_mut().for_each(|x| *x *= *gain);
                if let Some(at) = block.iter().position(|x| x.abs() > 1.0) {
                    let sample = self.frames * self.channels as u64 + (self.pending.len() + at) as u64;
                    bail!(
                        "24-bit samples in 4 bytes, right-aligned (ALSA's layout), but sample {sample} is not a \
                         sign-extended 24-bit value"
                    );
                }
            }
            self.pending.extend_from_slice(block);
            return Ok(true);
        }
    }

    /// The next stretch of audio as planar channels (their count is [`Reader::channels`]), or
    /// `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<Vec<Vec<f32>>>> {
        while self.pending.len() < BLOCK_FRAMES * self.channels && self.decode_more()? {}
        let frames = self.pending.len() / self.channels;
        if frames == 0 {
            return Ok(None);
        }
        let interleaved = &self.pending[..frames * self.channels];
        let planar = (0..self.channels).map(|c| interleaved.iter().skip(c).step_by(self.channels).copied().collect());
        let planar = planar.collect();
        self.pending.drain(..frames * self.channels);
        self.frames += frames as u64;
        Ok(Some(planar))
    }

    /// Frames handed out so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// When the file held less than its header promised, or decoding failed partway: how much
    /// was read, and why it stopped. Call it after the last block. A file without a stated length
    /// (streamed) ends where its data runs out.
    pub fn ended_early(&self) -> Option<String> {
        let seconds = |frames: u64| frames as f64 / f64::from(self.sample_rate);
        let read = self.frames;
        let why = self.stopped.as_ref().map(|(why, _)| format!("; the decoder said: {why}")).unwrap_or_default();
        match self.expected_frames {
            Some(expected) if read < expected => Some(format!(
                "the file ends early: read {:.2} s of {:.2} s ({read} of {expected} frames){why}",
                seconds(read),
                seconds(expected)
            )),
            None if self.stopped.as_ref().is_some_and(|(_, data_ran_out)| !data_ran_out) => {
                Some(format!("decoding stopped after {:.2} s ({read} frames){why}", seconds(read)))
            }
            _ => None,
        }
    }
}
