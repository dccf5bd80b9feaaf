//! Reading audio files block by block (any format symphonia knows; hound for a WAV layout
//! symphonia misreads), and writing stems as WAV.
//!
//! A file that is cut short (an interrupted recording or download) or streamed without a length
//! (a WAV written to a pipe has sizes 0xFFFFFFFF) is read as far as it goes: [`Reader::ended_early`]
//! says how much was read when that was less than the header promised.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

/// File extensions the tool picks up when given a folder.
pub const AUDIO_EXTENSIONS: [&str; 5] = ["wav", "flac", "mp3", "ogg", "oga"];

/// Frames read from a file at a time, roughly.
const BLOCK_FRAMES: usize = 8192;

/// What a WAV header says, as far as choosing a decoder and knowing the length go.
#[derive(Debug, Clone, Copy)]
struct WavHeader {
    format_tag: u16,
    channels: u16,
    block_align: u16,
    bits: u16,
    /// Bytes of sample data; 0xFFFFFFFF when the writer could not know (a pipe).
    data_len: u32,
    /// Where the sample data starts, in bytes from the start of the file.
    data_start: u64,
}

/// The largest `fmt ` chunk read; real ones are 16 to 40 bytes.
const MAX_FMT_CHUNK: u32 = 1 << 16;

impl WavHeader {
    /// Reads the RIFF header and the chunks up to `data`; `None` for anything that is not WAV.
    fn read(path: &Path) -> Option<WavHeader> {
        let mut file = BufReader::new(File::open(path).ok()?);
        let mut word = [0u8; 12];
        file.read_exact(&mut word).ok()?;
        if &word[..4] != b"RIFF" || &word[8..] != b"WAVE" {
            return None;
        }
        let mut fmt = None;
        let mut position = 12u64;
        loop {
            let mut chunk = [0u8; 8];
            file.read_exact(&mut chunk).ok()?;
            position += 8;
            let len = u32::from_le_bytes(chunk[4..].try_into().ok()?);
            // Chunks are padded to an even length.
            let padded = u64::from(len) + u64::from(len % 2);
            match &chunk[..4] {
                b"data" => {
                    let (format_tag, channels, block_align, bits) = fmt?;
                    let data_start = position;
                    return Some(WavHeader { format_tag, channels, block_align, bits, data_len: len, data_start });
                }
                b"fmt " if len <= MAX_FMT_CHUNK => {
                    let mut body = vec![0u8; padded as usize];
                    file.read_exact(&mut body).ok()?;
                    let field = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
                    fmt = (len >= 16).then(|| (field(0), field(2), field(12), field(14)));
                }
                _ => {
                    std::io::copy(&mut (&mut file).take(padded), &mut std::io::sink()).ok()?;
                }
            }
            position += padded;
        }
    }

    /// 24-bit samples in 4-byte containers under the plain PCM tag (ALSA's S24_LE: block align 8
    /// for stereo), which symphonia reads as packed 3-byte samples.
    fn is_s24_in_32(&self) -> bool {
        self.format_tag == 1 && self.bits == 24 && u32::from(self.block_align) == 4 * u32::from(self.channels)
    }

    /// Frames the header promises, when it says: for uncompressed layouts (PCM, float, A-law,
    /// µ-law, extensible) with a data size the writer knew. For compressed ones the container
    /// (symphonia) knows better.
    fn frames(&self) -> Option<u64> {
        let uncompressed = matches!(self.format_tag, 1 | 3 | 6 | 7 | 0xFFFE);
        let known = self.data_len != u32::MAX && self.block_align > 0;
        (uncompressed && known).then(|| u64::from(self.data_len / u32::from(self.block_align)))
    }
}

enum Decoder {
    Symphonia { format: Box<dyn FormatReader>, decoder: Box<dyn AudioDecoder>, track_id: u32, block: Vec<f32> },
    Hound { samples: hound::WavIntoSamples<BufReader<File>, i32>, scale: f32 },
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
}

impl Reader {
    /// Opens `path` and decodes its first packet. Refuses files with more than two channels.
    pub fn open(path: &Path) -> Result<Reader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let header = WavHeader::read(path);
        if let Some(header) = header.filter(|h| h.data_len == 0) {
            let length = file.metadata().map(|m| m.len()).unwrap_or(0);
            if length > header.data_start {
                bail!(
                    "the WAV header says it holds no audio, but {} bytes follow it (a recording whose header was \
                     never finished): not read",
                    length - header.data_start
                );
            }
        }
        if let Some(header) = header.filter(WavHeader::is_s24_in_32) {
            let reader = hound::WavReader::new(BufReader::new(file)).context("not a readable WAV file")?;
            let spec = reader.spec();
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            let decoder = Decoder::Hound { samples: reader.into_samples(), scale };
            return Reader::start(decoder, spec.sample_rate, spec.channels as usize, header.frames());
        }
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
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
        let expected = match header {
            Some(header) if header.frames().is_some() || header.data_len == u32::MAX => header.frames(),
            _ => track.num_frames,
        };
        let decoder = Decoder::Symphonia { format, decoder, track_id, block: Vec::new() };
        Reader::start(decoder, sample_rate, channels, expected)
    }

    /// Decodes the first stretch, which settles the rate and channel count where the header did
    /// not state them.
    fn start(decoder: Decoder, sample_rate: u32, channels: usize, expected_frames: Option<u64>) -> Result<Reader> {
        let mut reader =
            Reader { decoder, sample_rate, channels, expected_frames, frames: 0, pending: Vec::new(), stopped: None };
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
        match &mut self.decoder {
            Decoder::Hound { samples, scale } => {
                let mut any = false;
                for sample in samples.by_ref().take(BLOCK_FRAMES * self.channels.max(1)) {
                    match sample {
                        Ok(x) => self.pending.push(x as f32 * *scale),
                        Err(e) => {
                            self.stopped = Some((e.to_string(), false));
                            break;
                        }
                    }
                    any = true;
                }
                Ok(any)
            }
            Decoder::Symphonia { format, decoder, track_id, block } => loop {
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
                self.pending.extend_from_slice(block);
                return Ok(true);
            },
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

/// A stem file being written, block by block, with a count of the samples that did not fit.
pub struct StemWriter {
    writer: hound::WavWriter<std::io::BufWriter<File>>,
    format: SampleFormat,
    scale: f32,
    /// Samples beyond full scale, clipped in integer formats.
    pub clipped: u64,
    /// The largest magnitude written, before any clipping.
    pub peak: f32,
}

impl StemWriter {
    /// Creates `path` for `channels` channels at `sample_rate`.
    pub fn create(path: &Path, sample_rate: u32, channels: usize, format: SampleFormat) -> Result<Self> {
        let (bits, sample_format) = match format {
            SampleFormat::F32 => (32, hound::SampleFormat::Float),
            SampleFormat::I24 => (24, hound::SampleFormat::Int),
            SampleFormat::I16 => (16, hound::SampleFormat::Int),
        };
        let spec = hound::WavSpec { channels: channels as u16, sample_rate, bits_per_sample: bits, sample_format };
        let writer =
            hound::WavWriter::create(path, spec).with_context(|| format!("cannot write {}", path.display()))?;
        let scale = ((1i64 << (bits - 1)) - 1) as f32;
        Ok(Self { writer, format, scale, clipped: 0, peak: 0.0 })
    }

    /// Appends planar `channels` (as many as the file has), times `gain`.
    pub fn write(&mut self, channels: &[&[f32]], gain: f32) -> Result<()> {
        for t in 0..channels.first().map_or(0, |c| c.len()) {
            for channel in channels {
                let x = channel[t] * gain;
                self.peak = self.peak.max(x.abs());
                match self.format {
                    SampleFormat::F32 => self.writer.write_sample(x)?,
                    _ => {
                        self.clipped += u64::from(x.abs() > 1.0);
                        self.writer.write_sample((x.clamp(-1.0, 1.0) * self.scale).round() as i32)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Finishes the file (its header gets the final sizes).
    pub fn finish(self) -> Result<()> {
        self.writer.finalize().context("cannot finish a stem file")
    }
}
