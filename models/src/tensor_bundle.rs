//! TensorFlow checkpoints read without TensorFlow: the *tensor bundle* format of `tf.train.Saver`
//! (`model.index` + `model.data-00000-of-00001`).
//!
//! The index is a LevelDB-format SSTable (TensorFlow's `core/lib/io/table`: data blocks of
//! prefix-compressed entries with restart points, an index block, a metaindex block, and a
//! 48-byte footer ending in the magic number `0xdb4775248b80fb57`; each block is followed by a
//! compression byte and a masked CRC-32C of the block and that byte). Its keys are variable names;
//! the empty key holds the `BundleHeaderProto`, every other value a `BundleEntryProto` (dtype 1,
//! shape 2, shard 3, offset 4, size 5, crc32c 6: TensorFlow's `tensor_bundle.proto`) that says
//! where the tensor lies in the data shard, little-endian, and the masked CRC-32C of its bytes.
//!
//! Everything is checked: block checksums, the footer, every tensor's size against its shape and
//! its checksum, so a cut, damaged or substituted checkpoint is refused with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;

/// The last eight bytes of an SSTable (LevelDB's `kTableMagicNumber`).
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer: two block handles padded to 40 bytes, then the magic number.
const FOOTER_LEN: usize = 48;
/// After each block: a compression type byte and a masked CRC-32C.
const BLOCK_TRAILER_LEN: usize = 5;
/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: i32 = 1;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// LevelDB's and TensorFlow's masked CRC-32C (`crc32c::Mask`): the rotated CRC plus a constant,
/// so that a CRC stored beside data is not itself a likely CRC.
fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = CRC32C.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "2")]
    dim: Vec<Dim>,
    #[prost(bool, tag = "3")]
    unknown_rank: bool,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
struct Dim {
    #[prost(int64, tag = "1")]
    size: i64,
}

/// `tensorflow.BundleEntryProto` (the fields Demixer reads).
#[derive(Clone, PartialEq, prost::Message)]
struct BundleEntryProto {
    #[prost(int32, tag = "1")]
    dtype: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
    #[prost(int32, tag = "3")]
    shard_id: i32,
    #[prost(int64, tag = "4")]
    offset: i64,
    #[prost(int64, tag = "5")]
    size: i64,
    #[prost(fixed32, tag = "6")]
    crc32c: u32,
}

/// Why a checkpoint cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        error: std::io::Error,
    },
    /// The index is not a tensor bundle index, or it is damaged.
    #[error("{} is not a TensorFlow checkpoint index: {why}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A variable the caller needs is not in the checkpoint.
    #[error("the checkpoint has no variable `{0}`")]
    Missing(String),
    /// A variable cannot be read as float32.
    #[error("the checkpoint's `{name}` {why}")]
    Tensor {
        /// The variable.
        name: String,
        /// What is wrong.
        why: String,
    },
}

/// A float32 tensor: its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub values: Vec<f32>,
}

/// Where one variable lies in the data shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// TensorFlow's dtype number (1: float32).
    pub dtype: i32,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    offset: u64,
    size: u64,
    crc32c: u32,
}

/// A checkpoint: its variables, read from the index; tensors are read from the data shard on
/// demand and checked.
#[derive(Debug, Clone)]
pub struct Bundle {
    entries: BTreeMap<String, Entry>,
    data: PathBuf,
    data_bytes: Vec<u8>,
}

/// Reads a varint from the front of `bytes`, advancing it.
fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A block's offset and size in the table.
fn block_handle(bytes: &mut &[u8]) -> Option<(usize, usize)> {
    Some((usize::try_from(varint(bytes)?).ok()?, usize::try_from(varint(bytes)?).ok()?))
}

/// The contents of the block at `handle`, its trailer checked.
fn block<'a>(table: &'a [u8], (offset, size): (usize, usize)) -> Result<&'a [u8], String> {
    let end = offset.checked_add(size).and_then(|e| e.checked_add(BLOCK_TRAILER_LEN));
    let Some(whole) = end.and_then(|end| table.get(offset..end)) else {
        return Err(format!("a block at {offset} of {size} bytes lies beyond the file's {} bytes", table.len()));
    };
    let (contents, trailer) = whole.split_at(size);
    if trailer[0] != 0 {
        return Err(format!("the block at {offset} is compressed (type {}), which Demixer does not read", trailer[0]));
    }
    let stored = u32::from_le_bytes(trailer[1..5].try_into().expect("four bytes"));
    if masked_crc32c(&whole[..=size]) != stored {
        return Err(format!("the block at {offset} fails its CRC-32C: the file is damaged"));
    }
    Ok(contents)
}

/// The key/value entries of a block (prefix-compressed, then the restart array).
fn block_entries(contents: &[u8]) -> Result<Vec<(Vec<u8>, &[u8])>, String> {
    let damaged = || "a block's entries are damaged".to_string();
    let tail = contents.len().checked_sub(4).ok_or_else(damaged)?;
    let restarts = u32::from_le_bytes(contents[tail..].try_into().expect("four bytes")) as usize;
    let entries_end = restarts.checked_mul(4).and_then(|r| tail.checked_sub(r)).ok_or_else(damaged)?;
    let mut rest = &contents[..entries_end];
    let mut key: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let shared = varint(&mut rest).ok_or_else(damaged)? as usize;
        let unshared = varint(&mut rest).ok_or_else(damaged)? as usize;
        let value_len = varint(&mut rest).ok_or_else(damaged)? as usize;
        if shared > key.len() || unshared.saturating_add(value_len) > rest.len() {
            return Err(damaged());
        }
        key.truncate(shared);
        key.extend_from_slice(&rest[..unshared]);
        out.push((key.clone(), &rest[unshared..unshared + value_len]));
        rest = &rest[unshared + value_len..];
    }
    Ok(out)
}

/// Every key/value of an SSTable, in key order.
fn table_entries(table: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
    let Some(footer) = table.len().checked_sub(FOOTER_LEN).map(|at| &table[at..]) else {
        return Err(format!("{} bytes are too few for a table", table.len()));
    };
    if u64::from_le_bytes(footer[40..].try_into().expect("eight bytes")) != TABLE_MAGIC {
        return Err("the table's magic number is missing (a cut or foreign file)".into());
    }
    let mut handles = &footer[..40];
    let _metaindex = block_handle(&mut handles).ok_or("the footer is damaged")?;
    let index = block_handle(&mut handles).ok_or("the footer is damaged")?;
    let mut entries = Vec::new();
    for (_, mut handle) in block_entries(block(table, index)?)? {
        let handle = block_handle(&mut handle).ok_or("an index entry is damaged")?;
        for (key, value) in block_entries(block(table, handle)?)? {
            entries.push((key, value.to_vec()));
        }
    }
    Ok(entries)
}

impl Bundle {
    /// Reads the checkpoint whose index is `<prefix>.index` and whose single data shard is
    /// `<prefix>.data-00000-of-00001` (`prefix` as TensorFlow's `checkpoint` file names it, e.g.
    /// `.../2stems/model`).
    ///
    /// # Errors
    /// [`BundleError::Io`], or [`BundleError::Index`] for a damaged or foreign index, a checkpoint
    /// in several shards, or a data shard shorter than the index says.
    pub fn open(prefix: &Path) -> Result<Bundle, BundleError> {
        let index = PathBuf::from(format!("{}.index", prefix.display()));
        let data = PathBuf::from(format!("{}.data-00000-of-00001", prefix.display()));
        let read = |path: &Path| std::fs::read(path).map_err(|error| BundleError::Io { path: path.into(), error });
        let refuse = |why: String| BundleError::Index { path: index.clone(), why };
        let table = read(&index)?;
        let mut entries = BTreeMap::new();
        for (key, value) in table_entries(&table).map_err(refuse)? {
            if key.is_empty() {
                continue; // The header: shard count, endianness, version.
            }
            let name = String::from_utf8(key).map_err(|_| refuse("a variable name is not UTF-8".into()))?;
            let proto = BundleEntryProto::decode(value.as_slice())
                .map_err(|e| refuse(format!("the entry of `{name}` is damaged: {e}")))?;
            if proto.shard_id != 0 {
                return Err(refuse(format!("`{name}` lies in shard {}; Demixer reads one shard", proto.shard_id)));
            }
            let shape = proto.shape.unwrap_or_default();
            let shape = shape
                .dim
                .iter()
                .map(|d| usize::try_from(d.size))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| refuse(format!("`{name}` has a negative dimension")))?;
            let (offset, size) = (u64::try_from(proto.offset), u64::try_from(proto.size));
            let (Ok(offset), Ok(size)) = (offset, size) else {
                return Err(refuse(format!("`{name}` has a negative offset or size")));
            };
            entries.insert(name, Entry { dtype: proto.dtype, shape, offset, size, crc32c: proto.crc32c });
        }
        let data_bytes = read(&data)?;
        let end = entries.values().map(|e| e.offset.saturating_add(e.size)).max().unwrap_or(0);
        if end > data_bytes.len() as u64 {
            return Err(refuse(format!(
                "its variables reach byte {end} of {}, which has {} bytes (cut?)",
                data.display(),
                data_bytes.len()
            )));
        }
        Ok(Bundle { entries, data, data_bytes })
    }

    /// The variables, by name.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// The float32 variable `name`, its size and CRC-32C checked.
    ///
    /// # Errors
    /// [`BundleError::Missing`], or [`BundleError::Tensor`] when it is not float32, its size does
    /// not match its shape, or its bytes fail their checksum.
    pub fn tensor(&self, name: &str) -> Result<Tensor, BundleError> {
        let entry = self.entries.get(name).ok_or_else(|| BundleError::Missing(name.into()))?;
        let refuse = |why: String| BundleError::Tensor { name: name.into(), why };
        if entry.dtype != DT_FLOAT {
            return Err(refuse(format!("has dtype {} (float32 expected)", entry.dtype)));
        }
        let count: usize = entry.shape.iter().product();
        if entry.size != 4 * count as u64 {
            return Err(refuse(format!("holds {} bytes for a shape {:?}", entry.size, entry.shape)));
        }
        let bytes = &self.data_bytes[entry.offset as usize..(entry.offset + entry.size) as usize];
        if masked_crc32c(bytes) != entry.crc32c {
            return Err(refuse(format!("fails its CRC-32C in {}: the file is damaged", self.data.display())));
        }
        let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("four bytes"))).collect();
        Ok(Tensor { shape: entry.shape.clone(), values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 2-source checkpoint TensorFlow wrote (models/tests/fixtures/spleeter/make_checkpoints.py).
    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spleeter/unet2")
    }

    /// A copy of the fixture in a temporary folder, with `damage` applied to (index, data).
    fn damaged(damage: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut index = std::fs::read(fixture().join("model.index")).unwrap();
        let mut data = std::fs::read(fixture().join("model.data-00000-of-00001")).unwrap();
        damage(&mut index, &mut data);
        std::fs::write(dir.path().join("model.index"), index).unwrap();
        std::fs::write(dir.path().join("model.data-00000-of-00001"), data).unwrap();
        let prefix = dir.path().join("model");
        (dir, prefix)
    }

    #[test]
    fn tensorflow_s_checkpoint_reads_with_its_names_shapes_and_values() {
        let bundle = Bundle::open(&fixture().join("model")).unwrap();
        // Two U-Nets: 7 convolutions, 6 transposed ones and 12 normalisations each.
        let count = |prefix: &str, part: &str| {
            bundle.entries().keys().filter(|k| k.starts_with(prefix) && k.ends_with(part)).count()
        };
        assert_eq!(count("conv2d_transpose", "/kernel"), 12);
        assert_eq!(count("conv2d", "/bias"), 26);
        assert_eq!(count("batch_normalization", "/moving_variance"), 24);
        let kernel = bundle.tensor("conv2d/kernel").unwrap();
        assert_eq!(kernel.shape, [5, 5, 2, 4]);
        assert!(kernel.values.iter().all(|v| v.is_finite()) && kernel.values.iter().any(|&v| v != 0.0));
        let variance = bundle.tensor("batch_normalization_3/moving_variance").unwrap();
        assert!(variance.values.iter().all(|&v| (0.5..=2.0).contains(&v)), "{variance:?}");
        assert!(matches!(bundle.tensor("conv2d_99/kernel"), Err(BundleError::Missing(_))));
    }

    #[test]
    fn damaged_cut_or_foreign_checkpoints_are_refused_with_the_reason() {
        let (_dir, prefix) = damaged(|_, data| data[100] ^= 0x40);
        let bundle = Bundle::open(&prefix).unwrap();
        let refused: Vec<String> =
            bundle.entries().keys().filter_map(|name| bundle.tensor(name).err()).map(|e| e.to_string()).collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("fails its CRC-32C"), "{refused:?}");

        let (_dir, prefix) = damaged(|index, _| index[40] ^= 0x01);
        let error = Bundle::open(&prefix).unwrap_err().to_string();
        assert!(error.contains("CRC-32C") || error.contains("damaged"), "{error}");

        let (_dir, prefix) = damaged(|index, _| index.truncate(index.len() - 10));
        assert!(Bundle::open(&prefix).unwrap_err().to_string().contains("magic number"));

        let (_dir, prefix) = damaged(|_, data| data.truncate(data.len() / 2));
        assert!(Bundle::open(&prefix).unwrap_err().to_string().contains("cut?"));

        let (_dir, prefix) = damaged(|index, _| *index = b"not a table".repeat(10));
        assert!(Bundle::open(&prefix).unwrap_err().to_string().contains("not a TensorFlow checkpoint index"));
    }
}
