//! WAV-family headers: RIFF/WAVE, its 64-bit forms RF64 and BW64 (EBU Tech 3306, ITU-R BS.2088:
//! a `ds64` chunk carries the sizes that do not fit 32 bits) and Sony Wave64 (GUID chunk ids,
//! 64-bit sizes), and a plain RIFF view of any of them for symphonia, which reads only RIFF.
//!
//! The view is also how 24-bit samples in 4-byte containers under the plain PCM tag are read:
//! their format chunk is presented as 32-bit PCM, and [`S24In32`] says how to scale what
//! symphonia decodes, decided from the samples themselves.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::io::ReadOnlySource;

/// The largest `fmt ` or `LIST` chunk read; real ones are 16 to 40 bytes and a few hundred.
const MAX_SMALL_CHUNK: u64 = 1 << 16;

/// The 12 bytes that follow the four-character code in every Wave64 GUID but `riff`'s.
const W64_SUFFIX: [u8; 12] = [0xF3, 0xAC, 0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A];
/// The Wave64 file GUID (`riff`).
const W64_RIFF: [u8; 16] = *b"riff\x2E\x91\xCF\x11\xA5\xD6\x28\xDB\x04\xC1\x00\x00";

/// The 14 bytes after the format tag in every `KSDATAFORMAT_SUBTYPE_*` GUID of an extensible
/// format chunk.
const KSDATAFORMAT_SUFFIX: [u8; 14] =
    [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

/// The size RIFF writers put where they could not know it (a WAV written to a pipe).
const UNKNOWN_SIZE: u32 = u32::MAX;

/// Which member of the WAV family a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// RIFF/WAVE, 32-bit sizes.
    Riff,
    /// RF64 or BW64: RIFF with a `ds64` chunk for 64-bit sizes.
    Rf64,
    /// Sony Wave64.
    Wave64,
}

/// What a WAV-family header says, as far as choosing a decoder and knowing the length go.
#[derive(Debug, Clone)]
pub struct WavHeader {
    /// The container.
    pub container: Container,
    /// The `fmt ` chunk's body.
    fmt: Vec<u8>,
    /// `wFormatTag`: 1 PCM, 3 float, 6 A-law, 7 µ-law, 0xFFFE extensible, ...
    pub format_tag: u16,
    /// Channels.
    pub channels: u16,
    /// Bytes per frame.
    pub block_align: u16,
    /// Bits per sample (the container's, for PCM).
    pub bits: u16,
    /// Bytes of sample data; `None` where the writer could not know (a pipe).
    pub data_len: Option<u64>,
    /// Where the sample data starts, in bytes from the start of the file.
    pub data_start: u64,
    /// Set for a RIFF file over 4 GiB whose 32-bit sizes wrapped (a writer without RF64): its
    /// data is taken to run to the end of the file.
    pub wrapped: bool,
    /// The program that wrote the file, from an `INFO` list's `ISFT` before the data.
    pub software: Option<String>,
}

/// How 24-bit samples sit in 4-byte containers under the plain PCM tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S24In32 {
    /// In the high three bytes, the low byte zero: what the RIFF specification prescribes
    /// (`wBitsPerSample` 24, `nBlockAlign` 4 per channel, samples left-aligned).
    MsbAligned,
    /// In the low three bytes, sign-extended into the high byte: ALSA's `S24_LE`.
    LsbAligned,
    /// Every sample fits both (its low byte is zero and its high byte the sign), and not all are
    /// zero: 16-bit audio in ALSA's layout, or the RIFF layout below −48 dBFS throughout. Read as
    /// ALSA's, the likelier, with a note.
    Both,
}

impl S24In32 {
    /// The factor that turns the samples read as 32-bit PCM (full scale ±1) into the 24-bit ones.
    pub fn gain(self) -> f32 {
        match self {
            S24In32::MsbAligned => 1.0,
            S24In32::LsbAligned | S24In32::Both => 256.0,
        }
    }
}

/// A plain RIFF/WAVE stream over a file's sample data: see [`WavHeader::riff_view`].
pub type RiffView = ReadOnlySource<io::Chain<Cursor<Vec<u8>>, io::Take<BufReader<File>>>>;

/// One chunk's header: its four-character code (a Wave64 GUID's first four bytes), where its
/// body starts and how long it is.
struct Chunk {
    id: [u8; 4],
    start: u64,
    len: u64,
}

impl WavHeader {
    /// Reads the header and the chunks up to the sample data; `None` for anything that is not a
    /// WAV-family file with a format chunk before its data.
    pub fn read(path: &Path) -> Option<WavHeader> {
        let file = File::open(path).ok()?;
        let file_len = file.metadata().ok()?.len();
        let mut file = BufReader::new(file);
        let mut magic = [0u8; 16];
        file.read_exact(&mut magic[..12]).ok()?;
        let container = match (&magic[..4], &magic[8..12]) {
            (b"RIFF", b"WAVE") => Container::Riff,
            (b"RF64" | b"BW64", b"WAVE") => Container::Rf64,
            _ if magic[..12] == W64_RIFF[..12] => {
                file.read_exact(&mut magic[12..]).ok()?;
                let mut wave = [0u8; 24];
                file.read_exact(&mut wave).ok()?;
                (magic == W64_RIFF && wave[8..12] == *b"wave" && wave[12..] == W64_SUFFIX)
                    .then_some(Container::Wave64)?
            }
            _ => return None,
        };
        let mut header = WavHeader {
            container,
            fmt: Vec::new(),
            format_tag: 0,
            channels: 0,
            block_align: 0,
            bits: 0,
            data_len: None,
            data_start: 0,
            wrapped: false,
            software: None,
        };
        let mut ds64_data_len = None;
        let mut position = if container == Container::Wave64 { 40 } else { 12 };
        loop {
            let chunk = next_chunk(&mut file, container, &mut position)?;
            match &chunk.id {
                b"data" => {
                    if header.fmt.len() < 16 {
                        return None;
                    }
                    header.data_start = chunk.start;
                    header.data_len = match container {
                        Container::Wave64 => Some(chunk.len),
                        Container::Rf64 if chunk.len == u64::from(UNKNOWN_SIZE) => ds64_data_len,
                        _ if chunk.len == u64::from(UNKNOWN_SIZE) => None,
                        _ => Some(chunk.len),
                    };
                    header.unwrap_sizes(file_len);
                    return Some(header);
                }
                b"ds64" if container == Container::Rf64 && chunk.len >= 16 => {
                    let body = read_body(&mut file, &chunk, &mut position)?;
                    ds64_data_len = Some(u64::from_le_bytes(body[8..16].try_into().ok()?));
                }
                b"fmt " if chunk.len <= MAX_SMALL_CHUNK => {
                    let body = read_body(&mut file, &chunk, &mut position)?;
                    let field = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
                    if body.len() >= 16 {
                        (header.format_tag, header.channels) = (field(0), field(2));
                        (header.block_align, header.bits) = (field(12), field(14));
                    }
                    header.fmt = body;
                }
                b"LIST" if container != Container::Wave64 && chunk.len <= MAX_SMALL_CHUNK => {
                    let body = read_body(&mut file, &chunk, &mut position)?;
                    header.software = header.software.or_else(|| info_software(&body));
                }
                _ => {}
            }
            let end = chunk.start + padded(chunk.len, container);
            file.seek_relative(i64::try_from(end - position).ok()?).ok()?;
            position = end;
        }
    }

    /// A RIFF file over 4 GiB whose data runs to its end, where the data size is the true size
    /// less a multiple of 2³²: the sizes wrapped, and the data is taken whole.
    fn unwrap_sizes(&mut self, file_len: u64) {
        let Some(len) = self.data_len else { return };
        let rest = file_len.saturating_sub(self.data_start);
        if self.container == Container::Riff && file_len > 1 << 32 && rest > len && (rest - len).is_multiple_of(1 << 32)
        {
            self.data_len = Some(rest);
            self.wrapped = true;
        }
    }

    /// 24-bit samples in 4-byte containers under the plain PCM tag (`nBlockAlign` 4 per channel),
    /// which symphonia reads as packed 3-byte samples.
    pub fn is_s24_in_32(&self) -> bool {
        self.format_tag == 1 && self.bits == 24 && u32::from(self.block_align) == 4 * u32::from(self.channels)
    }

    /// The A-law (6) or µ-law (7) tag of an extensible format chunk's sub-format, which
    /// symphonia 0.6 does not read (it takes µ-law's GUID to be 4).
    fn extensible_law(&self) -> Option<u16> {
        let guid = self.fmt.get(24..40).filter(|_| self.format_tag == 0xFFFE)?;
        let tag = u16::from_le_bytes([guid[0], guid[1]]);
        (guid[2..] == KSDATAFORMAT_SUFFIX && matches!(tag, 6 | 7)).then_some(tag)
    }

    /// Whether symphonia must be given [`WavHeader::riff_view`] rather than the file.
    pub fn needs_view(&self) -> bool {
        self.container != Container::Riff || self.wrapped || self.is_s24_in_32() || self.extensible_law().is_some()
    }

    /// The format chunk as symphonia reads it: 24-in-32 as 32-bit PCM; an extensible A-law or
    /// µ-law format as the plain one; a non-PCM format with its `cbSize` (0 where Wave64 omits
    /// it) and as many extra bytes as that says (Wave64 pads chunks to 8 bytes).
    fn riff_format(&self) -> Vec<u8> {
        let mut fmt = self.fmt.clone();
        if self.is_s24_in_32() {
            fmt[14..16].copy_from_slice(&32u16.to_le_bytes());
        }
        if let Some(tag) = self.extensible_law() {
            fmt.truncate(16);
            fmt[..2].copy_from_slice(&tag.to_le_bytes());
        }
        if u16::from_le_bytes([fmt[0], fmt[1]]) != 1 {
            fmt.resize(fmt.len().max(18), 0);
            let extra = usize::from(u16::from_le_bytes([fmt[16], fmt[17]]));
            fmt.truncate(18 + extra);
        }
        fmt
    }

    /// Frames the header promises, when it says: for uncompressed layouts (PCM, float, A-law,
    /// µ-law, extensible) with a data size the writer knew. For compressed ones the container
    /// (symphonia) knows better.
    pub fn frames(&self) -> Option<u64> {
        let uncompressed = matches!(self.format_tag, 1 | 3 | 6 | 7 | 0xFFFE);
        let len = self.data_len.filter(|_| uncompressed && self.block_align > 0)?;
        Some(len / u64::from(self.block_align))
    }

    /// The file's sample data behind a plain RIFF/WAVE header with this file's format chunk (as
    /// 32-bit PCM for 24-in-32 samples), as symphonia reads it. Data sizes past 32 bits are
    /// given as unknown; the view then ends where the data does.
    pub fn riff_view(&self, mut file: File) -> io::Result<RiffView> {
        let mut fmt = self.riff_format();
        let fmt_len = fmt.len() as u32 + fmt.len() as u32 % 2;
        fmt.resize(fmt_len as usize, 0);
        let data_len = self.data_len.and_then(|len| u32::try_from(len).ok()).filter(|&len| len != UNKNOWN_SIZE);
        let riff_len = data_len.and_then(|len| len.checked_add(20 + fmt_len)).unwrap_or(UNKNOWN_SIZE);
        let mut view = Vec::with_capacity(44 + fmt.len());
        view.extend_from_slice(b"RIFF");
        view.extend_from_slice(&riff_len.to_le_bytes());
        view.extend_from_slice(b"WAVEfmt ");
        view.extend_from_slice(&fmt_len.to_le_bytes());
        view.extend_from_slice(&fmt);
        view.extend_from_slice(b"data");
        view.extend_from_slice(&data_len.unwrap_or(UNKNOWN_SIZE).to_le_bytes());
        file.seek(SeekFrom::Start(self.data_start))?;
        let data = BufReader::new(file).take(self.data_len.unwrap_or(u64::MAX));
        Ok(ReadOnlySource::new(Cursor::new(view).chain(data)))
    }

    /// Tells the two layouts of 24-in-32 samples apart from the data: the first sample whose low
    /// byte is not zero makes it [`S24In32::LsbAligned`] (it must then be a sign-extended 24-bit
    /// value); the first sample that is not a sign-extended 24-bit value makes it
    /// [`S24In32::MsbAligned`] (its low byte must then be zero). Where no sample decides, the
    /// data is silent (read as either) or [`S24In32::Both`].
    ///
    /// # Errors
    /// The file cannot be read, or a sample fits neither layout (says which).
    pub fn s24_in_32_layout(&self, path: &Path) -> io::Result<S24In32> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(self.data_start))?;
        let mut data = BufReader::with_capacity(1 << 16, file).take(self.data_len.unwrap_or(u64::MAX));
        let mut sample = [0u8; 4];
        let (mut index, mut silent) = (0u64, true);
        while data.read_exact(&mut sample).is_ok() {
            let value = i32::from_le_bytes(sample);
            let sign_extended = value >> 23 == 0 || value >> 23 == -1;
            match (sign_extended, sample[0] == 0) {
                (true, false) => return Ok(S24In32::LsbAligned),
                (false, true) => return Ok(S24In32::MsbAligned),
                (false, false) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "24-bit samples in 4 bytes, but sample {index} ({value:#010x}) is neither left-aligned \
                             (low byte zero) nor right-aligned (sign-extended)"
                        ),
                    ));
                }
                (true, true) => (index, silent) = (index + 1, silent && value == 0),
            }
        }
        Ok(if silent { S24In32::LsbAligned } else { S24In32::Both })
    }
}

/// Reads the next chunk's header, advancing `position` past it.
fn next_chunk(file: &mut impl Read, container: Container, position: &mut u64) -> Option<Chunk> {
    if container == Container::Wave64 {
        let mut head = [0u8; 24];
        file.read_exact(&mut head).ok()?;
        *position += 24;
        let len = u64::from_le_bytes(head[16..].try_into().ok()?).checked_sub(24)?;
        let id = head[..4].try_into().ok()?;
        // Chunks of other families (GUIDs not ending in the WAVE suffix) are skipped as unknown.
        let id = if head[4..16] == W64_SUFFIX { id } else { *b"    " };
        return Some(Chunk { id, start: *position, len });
    }
    let mut head = [0u8; 8];
    file.read_exact(&mut head).ok()?;
    *position += 8;
    Some(Chunk {
        id: head[..4].try_into().ok()?,
        start: *position,
        len: u64::from(u32::from_le_bytes(head[4..].try_into().ok()?)),
    })
}

/// The body of a small chunk, advancing `position` past what was read.
fn read_body(file: &mut impl Read, chunk: &Chunk, position: &mut u64) -> Option<Vec<u8>> {
    let mut body = vec![0u8; chunk.len as usize];
    file.read_exact(&mut body).ok()?;
    *position += chunk.len;
    Some(body)
}

/// A chunk's length with the padding that follows it: RIFF pads to 2 bytes, Wave64 to 8.
fn padded(len: u64, container: Container) -> u64 {
    let align = if container == Container::Wave64 { 8 } else { 2 };
    len.div_ceil(align) * align
}

/// The `ISFT` (software) entry of a `LIST` chunk's body of form `INFO`.
fn info_software(list: &[u8]) -> Option<String> {
    let mut rest = list.strip_prefix(b"INFO")?;
    while rest.len() >= 8 {
        let len = u32::from_le_bytes(rest[4..8].try_into().ok()?) as usize;
        let body = rest.get(8..8 + len)?;
        if &rest[..4] == b"ISFT" {
            let text = body.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = rest.get(8 + len + len % 2..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit stereo WAV header whose 32-bit sizes are those of `data_len` bytes of data,
    /// wrapped as a writer without RF64 wraps them.
    fn wrapped_header(data_len: u64) -> Vec<u8> {
        let mut bytes = b"RIFF".to_vec();
        bytes.extend(((36 + data_len) as u32).to_le_bytes());
        bytes.extend(b"WAVEfmt \x10\0\0\0\x01\0\x02\0\x44\xAC\0\0\x10\xB1\x02\0\x04\0\x10\0data");
        bytes.extend((data_len as u32).to_le_bytes());
        bytes
    }

    /// A 4.33 GB stem whose header claimed 47.6 s (SatDump#339) reads whole: the header logic,
    /// on a sparse file (no data is written).
    #[test]
    fn a_riff_file_over_4_gib_whose_sizes_wrapped_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrapped.wav");
        let data_len = (1u64 << 32) + 4 * 2_100_000;
        std::fs::write(&path, wrapped_header(data_len)).unwrap();
        File::options().write(true).open(&path).unwrap().set_len(44 + data_len).unwrap();
        let header = WavHeader::read(&path).unwrap();
        assert!(header.wrapped && header.needs_view());
        assert_eq!((header.data_len, header.frames()), (Some(data_len), Some(data_len / 4)));

        // A file that ends where its header says is taken as it says.
        let path = dir.path().join("plain.wav");
        std::fs::write(&path, wrapped_header(400)).unwrap();
        File::options().write(true).open(&path).unwrap().set_len(44 + 400).unwrap();
        let header = WavHeader::read(&path).unwrap();
        assert!(!header.wrapped && !header.needs_view());
        assert_eq!(header.frames(), Some(100));
    }
}
