//! One page of the timeline: the record of the input played there, and the stems kept there.

/// Frames per page: the unit of storage and eviction.
pub const PAGE: usize = 4096;
/// Timeline positions per recorded input fingerprint.
pub const STRIDE: usize = 16;
const WORDS: usize = PAGE / 64;
const SLOTS: usize = PAGE / STRIDE;
const SLOT_WORDS: usize = SLOTS / 64;

/// A set of bits, one per index, in 64-bit words.
#[derive(Debug, Clone, Copy)]
pub struct Bits<const N: usize>([u64; N]);

impl<const N: usize> Bits<N> {
    const NONE: Self = Self([0; N]);

    pub fn has(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets or clears bit `i`; returns whether it changed.
    pub fn set(&mut self, i: usize, on: bool) -> bool {
        let was = self.has(i);
        if on {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
        was != on
    }

    /// How many bits from `from` on are set without a gap.
    pub fn run_from(&self, from: usize) -> usize {
        let mut n = 0;
        let mut word = from / 64;
        let mut bits = self.0[word] >> (from % 64);
        let mut left = 64 - from % 64;
        loop {
            let ones = (bits.trailing_ones() as usize).min(left);
            n += ones;
            if ones < left || word + 1 == N {
                return n;
            }
            word += 1;
            (bits, left) = (self.0[word], 64);
        }
    }
}

/// The stems of a page's frames.
pub struct Stems {
    /// Interleaved `[frame][output][channel]`.
    pub samples: Box<[f32]>,
    /// Input fingerprint of each frame with stems.
    pub inputs: Box<[u16]>,
    /// Which frames hold stems.
    pub valid: Bits<WORDS>,
    /// Frames that hold stems.
    pub count: usize,
}

impl Stems {
    pub fn new(out_frame: usize) -> Box<Self> {
        Box::new(Self {
            samples: vec![0.0; PAGE * out_frame].into_boxed_slice(),
            inputs: vec![0; PAGE].into_boxed_slice(),
            valid: Bits::NONE,
            count: 0,
        })
    }

    /// Bytes a page's stems take for frames of `out_frame` samples.
    pub fn bytes(out_frame: usize) -> usize {
        PAGE * (out_frame * size_of::<f32>() + size_of::<u16>()) + size_of::<Self>()
    }

    /// Drops the stems of frames `range` of this page; returns how many were there.
    pub fn drop_range(&mut self, range: std::ops::Range<usize>) -> usize {
        let dropped = range.filter(|&i| self.valid.set(i, false)).count();
        self.count -= dropped;
        dropped
    }
}

/// A page: the fingerprints of the input last played at every [`STRIDE`]-th position, which of
/// them were played again unchanged, and the stems kept here.
pub struct Page {
    record: [u16; SLOTS],
    recorded: Bits<SLOT_WORDS>,
    replayed: Bits<SLOT_WORDS>,
    pub stems: Option<Box<Stems>>,
    /// When last read or written, by the pool's clock.
    pub used: u64,
}

impl Page {
    pub fn new(used: u64) -> Self {
        Self { record: [0; SLOTS], recorded: Bits::NONE, replayed: Bits::NONE, stems: None, used }
    }

    /// Bytes a page without stems takes (with its key in the map).
    pub const BYTES: usize = size_of::<Self>() + size_of::<i64>();

    /// Notes that input with fingerprint `print` was played at `offset` (a multiple of
    /// [`STRIDE`]): replayed when it was recorded there before, unchanged.
    pub fn record(&mut self, offset: usize, print: u16) {
        let slot = offset / STRIDE;
        let again = self.recorded.has(slot) && self.record[slot] == print;
        self.record[slot] = print;
        self.recorded.set(slot, true);
        self.replayed.set(slot, again);
    }

    /// The fingerprint recorded at `offset` (a multiple of [`STRIDE`]), if any.
    pub fn recorded(&self, offset: usize) -> Option<u16> {
        let slot = offset / STRIDE;
        self.recorded.has(slot).then_some(self.record[slot])
    }

    /// Whether the input around `offset` was played at least twice, unchanged.
    pub fn replayed(&self, offset: usize) -> bool {
        self.replayed.has(offset / STRIDE)
    }
}
