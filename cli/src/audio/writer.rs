//! Writing stems as WAV: plain RIFF/WAVE while the file fits 32-bit sizes, RF64 past 4 GiB.
//!
//! As EBU Tech 3306 describes, every file starts as RIFF/WAVE with a `JUNK` chunk where the
//! `ds64` chunk would go; a file whose sizes pass 32 bits becomes RF64 when it is finished (the
//! `JUNK` turns into `ds64`, which carries the 64-bit sizes), so files under 4 GiB stay plain WAV
//! that every program reads. No maintained crate writes RF64 this way (hound and symphonia do not
//! know it; bwavfile 2.0.1 pads every file to 16 KiB and rewrites the header on every write).
//!
//! An `INFO` list names the writer (`ISFT`), so that the tool knows its own stems when it walks
//! a folder ([`is_own_stem`]).

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// The `ISFT` value of the stems the tool writes; see [`is_own_stem`].
const SOFTWARE: &str = concat!("Demixer ", env!("CARGO_PKG_VERSION"));

/// Bytes of a `ds64` chunk's body without a table: RIFF size, data size, sample count (64 bits
/// each) and the table's length (32 bits).
const DS64_LEN: u32 = 28;

/// The largest RIFF or data size a plain WAV may state; 0xFFFFFFFF means "unknown" (a pipe).
const PLAIN_LIMIT: u64 = u32::MAX as u64 - 1;

/// Whether `software` (a header's `ISFT`) says the file is a stem this tool wrote.
pub fn is_own_stem(software: &str) -> bool {
    software.starts_with("Demixer ")
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

impl SampleFormat {
    /// Bytes per sample.
    fn bytes(self) -> u16 {
        match self {
            SampleFormat::F32 => 4,
            SampleFormat::I24 => 3,
            SampleFormat::I16 => 2,
        }
    }
}

/// A stem file being written, block by block, with a count of the samples that did not fit.
pub struct StemWriter {
    out: BufWriter<File>,
    format: SampleFormat,
    /// Bytes per frame.
    block_align: u16,
    /// Where the data chunk's size field is.
    data_size_at: u64,
    /// Bytes of sample data written.
    data_len: u64,
    /// The largest RIFF size of a plain WAV; larger files become RF64.
    plain_limit: u64,
    /// Full scale of the integer formats.
    scale: f32,
    /// Encoded samples of the block being written.
    bytes: Vec<u8>,
    /// Samples beyond full scale, clipped in integer formats.
    pub clipped: u64,
    /// The largest magnitude written, before any clipping.
    pub peak: f32,
}

impl StemWriter {
    /// Starts a WAV file of `channels` channels at `sample_rate` in `file` (empty, just created).
    ///
    /// # Errors
    /// The header cannot be written.
    pub fn new(file: File, sample_rate: u32, channels: usize, format: SampleFormat) -> io::Result<Self> {
        let channels = channels as u16;
        let block_align = channels * format.bytes();
        let bits = 8 * format.bytes();
        let tag: u16 = if format == SampleFormat::F32 { 3 } else { 1 };
        let mut isft = SOFTWARE.as_bytes().to_vec();
        isft.push(0);
        let isft_len = isft.len() as u32;
        isft.resize(isft.len().next_multiple_of(2), 0);
        let mut header = Vec::with_capacity(128);
        header.extend_from_slice(b"RIFF\0\0\0\0WAVEJUNK");
        header.extend_from_slice(&DS64_LEN.to_le_bytes());
        header.resize(header.len() + DS64_LEN as usize, 0);
        header.extend_from_slice(b"fmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&tag.to_le_bytes());
        header.extend_from_slice(&channels.to_le_bytes());
        header.extend_from_slice(&sample_rate.to_le_bytes());
        header.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
        header.extend_from_slice(&block_align.to_le_bytes());
        header.extend_from_slice(&bits.to_le_bytes());
        header.extend_from_slice(b"LIST");
        header.extend_from_slice(&(12 + isft.len() as u32).to_le_bytes());
        header.extend_from_slice(b"INFOISFT");
        header.extend_from_slice(&isft_len.to_le_bytes());
        header.extend_from_slice(&isft);
        header.extend_from_slice(b"data\0\0\0\0");
        let mut out = BufWriter::with_capacity(1 << 16, file);
        out.write_all(&header)?;
        let scale = ((1i64 << (bits - 1)) - 1) as f32;
        Ok(StemWriter {
            out,
            format,
            block_align,
            data_size_at: header.len() as u64 - 4,
            data_len: 0,
            plain_limit: PLAIN_LIMIT,
            scale,
            bytes: Vec::new(),
            clipped: 0,
            peak: 0.0,
        })
    }

    /// Appends planar `channels` (as many as the file has, all of one length), times `gain`;
    /// no channels append nothing.
    ///
    /// # Errors
    /// The write fails (a full disk).
    pub fn write(&mut self, channels: &[&[f32]], gain: f32) -> io::Result<()> {
        let Some(frames) = channels.first().map(|c| c.len()) else {
            return Ok(());
        };
        debug_assert!(channels.iter().all(|c| c.len() == frames), "channels of one length");
        let width = usize::from(self.format.bytes());
        self.bytes.clear();
        self.bytes.resize(frames * channels.len() * width, 0);
        // One loop per format, the peak and the clip count in locals: the encoding of a
        // sample then has no branch (this loop was a tenth of a separation's CPU time).
        let (mut peak, mut clipped) = (self.peak, 0u64);
        let frames_out = self.bytes.chunks_exact_mut(width * channels.len()).enumerate();
        if let (SampleFormat::F32, [left, right]) = (self.format, channels) {
            // Stereo float, the default: no index, so the loop vectorises.
            for ((out, &l), &r) in self.bytes.chunks_exact_mut(8).zip(*left).zip(*right) {
                let (l, r) = (l * gain, r * gain);
                peak = peak.max(l.abs()).max(r.abs());
                out[..4].copy_from_slice(&l.to_le_bytes());
                out[4..].copy_from_slice(&r.to_le_bytes());
            }
        } else if self.format == SampleFormat::F32 {
            for (t, frame) in frames_out {
                for (out, channel) in frame.chunks_exact_mut(4).zip(channels) {
                    let x = channel[t] * gain;
                    peak = peak.max(x.abs());
                    out.copy_from_slice(&x.to_le_bytes());
                }
            }
        } else {
            for (t, frame) in frames_out {
                for (out, channel) in frame.chunks_exact_mut(width).zip(channels) {
                    let x = channel[t] * gain;
                    peak = peak.max(x.abs());
                    clipped += u64::from(x.abs() > 1.0);
                    let value = (x.clamp(-1.0, 1.0) * self.scale).round() as i32;
                    out.copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
        }
        (self.peak, self.clipped) = (peak, self.clipped + clipped);
        self.out.write_all(&self.bytes)?;
        self.data_len += self.bytes.len() as u64;
        Ok(())
    }

    /// Finishes the file: the header gets the final sizes (RF64 where they pass 32 bits) and
    /// the file is flushed to the disk. Returns it.
    ///
    /// # Errors
    /// A write fails.
    pub fn finish(mut self) -> io::Result<File> {
        if self.data_len % 2 == 1 {
            self.out.write_all(&[0])?;
        }
        let file_len = self.data_size_at + 4 + self.data_len.next_multiple_of(2);
        let riff_len = file_len - 8;
        let mut file = self.out.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mut patch = |at: u64, bytes: &[u8]| -> io::Result<()> {
            file.seek(SeekFrom::Start(at))?;
            file.write_all(bytes)
        };
        if riff_len <= self.plain_limit && self.data_len <= self.plain_limit {
            patch(4, &(riff_len as u32).to_le_bytes())?;
            patch(self.data_size_at, &(self.data_len as u32).to_le_bytes())?;
        } else {
            let frames = self.data_len / u64::from(self.block_align);
            let mut ds64 = b"ds64".to_vec();
            ds64.extend_from_slice(&DS64_LEN.to_le_bytes());
            for size in [riff_len, self.data_len, frames] {
                ds64.extend_from_slice(&size.to_le_bytes());
            }
            ds64.extend_from_slice(&0u32.to_le_bytes());
            patch(0, b"RF64\xFF\xFF\xFF\xFF")?;
            patch(12, &ds64)?;
            patch(self.data_size_at, &u32::MAX.to_le_bytes())?;
        }
        file.sync_all()?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::Reader;
    use crate::audio::header::{Container, WavHeader};

    /// Writes `frames` frames of a stereo ramp with the RF64 switch at `plain_limit` bytes.
    fn write_ramp(path: &std::path::Path, frames: usize, format: SampleFormat, plain_limit: u64) -> Vec<f32> {
        let ramp: Vec<f32> = (0..frames).map(|i| (i as f32 / frames as f32) - 0.5).collect();
        let mut writer = StemWriter::new(File::create(path).unwrap(), 48_000, 2, format).unwrap();
        writer.plain_limit = plain_limit;
        let negated: Vec<f32> = ramp.iter().map(|x| -x).collect();
        for (left, right) in ramp.chunks(1000).zip(negated.chunks(1000)) {
            writer.write(&[left, right], 1.0).unwrap();
        }
        writer.finish().unwrap();
        ramp
    }

    fn read_all(path: &std::path::Path) -> Vec<Vec<f32>> {
        let mut reader = Reader::open(path).unwrap();
        let mut channels = vec![Vec::new(); reader.channels];
        while let Some(block) = reader.next_block().unwrap() {
            channels.iter_mut().zip(block).for_each(|(all, block)| all.extend(block));
        }
        assert_eq!(reader.ended_early(), None);
        channels
    }

    #[test]
    fn a_small_stem_is_plain_wav_that_names_its_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.wav");
        let ramp = write_ramp(&path, 3001, SampleFormat::I24, PLAIN_LIMIT);
        let header = WavHeader::read(&path).unwrap();
        assert_eq!(header.container, Container::Riff);
        assert_eq!((header.data_len, header.frames()), (Some(3001 * 6), Some(3001)));
        assert!(header.software.as_deref().is_some_and(is_own_stem), "{:?}", header.software);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, header.data_start + 3001 * 6);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize, bytes.len() - 8);
        let read = read_all(&path);
        let error = read[0].iter().zip(&ramp).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(error < 1e-6, "{error}");
    }

    /// The RF64 switch, tested with a small file and a low limit: the same header logic a stem
    /// past 4 GiB takes (written and read back by hand: see the README).
    #[test]
    fn a_stem_past_the_plain_limit_becomes_rf64_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wav");
        let ramp = write_ramp(&path, 5000, SampleFormat::F32, 10_000);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..16], b"RF64\xFF\xFF\xFF\xFFWAVEds64");
        let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        assert_eq!((field(20), field(28), field(36)), (bytes.len() as u64 - 8, 40_000, 5000));
        let header = WavHeader::read(&path).unwrap();
        assert_eq!((header.container, header.data_len, header.frames()), (Container::Rf64, Some(40_000), Some(5000)));
        let read = read_all(&path);
        assert_eq!(read[0], ramp);
        assert_eq!(read[1], ramp.iter().map(|x| -x).collect::<Vec<_>>());
    }
}
