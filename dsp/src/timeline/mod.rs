//! Separated stems kept by host timeline position, so that a looped or revisited stretch plays
//! its stems at once instead of waiting for the engine again (DJ software keeps its separations
//! the same way).
//!
//! The cache lives on the stream's worker thread ([`crate::stream`]); the audio thread never
//! touches it. Stems are stored per [`PAGE`]-frame page of the timeline as 32-bit floats (exact:
//! a replayed loop equals the engine's output bit for bit), together with a 16-bit fingerprint
//! of the input frame each stem frame came from. When the input at a position changes (an edited
//! clip, another take, a plugin upstream), every cached stem that could depend on it, `reach`
//! frames either side, is dropped before it plays: input is checked as it arrives, and a cached
//! frame only plays once the input its engine looked ahead at has arrived.
//!
//! Memory is bounded by a budget in bytes, read from [`CacheShared`] (the host side may change it
//! or ask for a clear at any time); the least recently used pages go first. At 44.1 kHz with four
//! stereo stems a minute takes 90 MB (stems, fingerprints and page headers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Frames per page: the unit of storage and eviction.
pub const PAGE: usize = 4096;
const WORDS: usize = PAGE / 64;

/// The cache's settings and figures, shared between the worker (which owns the cache) and the
/// host side, all atomics.
#[derive(Debug)]
pub struct CacheShared {
    budget_bytes: AtomicU64,
    clear_requests: AtomicU64,
    used_bytes: AtomicU64,
    cached_frames: AtomicU64,
}

impl CacheShared {
    /// A cache allowed `budget_bytes` (0 turns caching off).
    pub fn new(budget_bytes: u64) -> Self {
        Self {
            budget_bytes: AtomicU64::new(budget_bytes),
            clear_requests: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            cached_frames: AtomicU64::new(0),
        }
    }

    /// Sets the memory budget in bytes; the worker evicts down to it. Real-time safe.
    pub fn set_budget(&self, bytes: u64) {
        self.budget_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The memory budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget_bytes.load(Ordering::Relaxed)
    }

    /// Asks the worker to drop everything cached. Real-time safe.
    pub fn clear(&self) {
        self.clear_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes the cache holds now.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes.load(Ordering::Relaxed)
    }

    /// Frames (timeline samples) whose stems are cached now.
    pub fn cached_frames(&self) -> u64 {
        self.cached_frames.load(Ordering::Relaxed)
    }
}

/// The fingerprint of one stereo input frame: 16 bits of SplitMix64 (Steele et al. 2014) over
/// the two samples' bit patterns. Any change to a frame is missed with odds 1 in 65 536, an
/// edited stretch of frames practically never.
pub fn fingerprint(left: f32, right: f32) -> u16 {
    let mut z = (u64::from(left.to_bits()) << 32 | u64::from(right.to_bits())).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u16
}

struct Page {
    /// Interleaved `[frame][output][channel]`.
    stems: Box<[f32]>,
    /// Input fingerprint of each frame with stems.
    inputs: Box<[u16]>,
    /// Which frames hold stems.
    valid: [u64; WORDS],
    /// Frames that hold stems.
    count: usize,
    /// When last read or written, in the cache's ticks.
    used: u64,
}

impl Page {
    fn has(&self, i: usize) -> bool {
        self.valid[i / 64] >> (i % 64) & 1 == 1
    }

    /// How many frames from `offset` on hold stems without a gap, within this page.
    fn run_from(&self, offset: usize) -> usize {
        let mut n = 0;
        let mut word = offset / 64;
        let mut bits = self.valid[word] >> (offset % 64);
        let mut left = 64 - offset % 64;
        loop {
            let ones = (bits.trailing_ones() as usize).min(left);
            n += ones;
            if ones < left || word + 1 == WORDS {
                return n;
            }
            word += 1;
            (bits, left) = (self.valid[word], 64);
        }
    }

    /// Drops the stems of frames `range` of this page; returns how many were there.
    fn drop_range(&mut self, range: std::ops::Range<usize>) -> usize {
        let mut dropped = 0;
        for i in range {
            if self.has(i) {
                self.valid[i / 64] &= !(1 << (i % 64));
                dropped += 1;
            }
        }
        self.count -= dropped;
        dropped
    }
}

/// Stems by timeline position (see the module docs). Not real-time safe: the worker's.
pub struct TimelineCache {
    /// Samples per frame: every output's left and right.
    out_frame: usize,
    /// Frames either side of a changed input frame whose stems are dropped.
    reach: usize,
    pages: HashMap<i64, Page>,
    tick: u64,
    frames: u64,
    shared: std::sync::Arc<CacheShared>,
    clears_seen: u64,
}

fn split(position: i64) -> (i64, usize) {
    (position.div_euclid(PAGE as i64), position.rem_euclid(PAGE as i64) as usize)
}

impl TimelineCache {
    /// A cache of frames of `out_frame` samples, dropping `reach` frames either side of a changed
    /// input frame (the engine's reach: how far its output depends on input, both ways).
    pub fn new(out_frame: usize, reach: usize, shared: std::sync::Arc<CacheShared>) -> Self {
        let clears_seen = shared.clear_requests.load(Ordering::Relaxed);
        Self { out_frame, reach, pages: HashMap::new(), tick: 0, frames: 0, shared, clears_seen }
    }

    /// Bytes one page takes.
    pub fn page_bytes(&self) -> usize {
        PAGE * (self.out_frame * size_of::<f32>() + size_of::<u16>()) + size_of::<Page>() + size_of::<i64>()
    }

    fn max_pages(&self) -> usize {
        (self.shared.budget() / self.page_bytes() as u64) as usize
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.pages.clear();
        self.frames = 0;
        self.publish();
    }

    /// Serves a pending clear request and evicts down to the budget. Cheap; call often.
    pub fn maintain(&mut self) {
        let requests = self.shared.clear_requests.load(Ordering::Relaxed);
        if requests != self.clears_seen {
            self.clears_seen = requests;
            self.clear();
        }
        let max = self.max_pages();
        while self.pages.len() > max {
            self.evict();
        }
    }

    fn evict(&mut self) {
        let oldest = self.pages.iter().min_by_key(|(_, page)| page.used).map(|(&key, _)| key);
        if let Some(page) = oldest.and_then(|key| self.pages.remove(&key)) {
            self.frames -= page.count as u64;
        }
        self.publish();
    }

    fn publish(&self) {
        self.shared.used_bytes.store((self.pages.len() * self.page_bytes()) as u64, Ordering::Relaxed);
        self.shared.cached_frames.store(self.frames, Ordering::Relaxed);
    }

    /// Stores the stems of frames from `position` on (`stems`: interleaved frames) with the
    /// fingerprints of their input frames (`inputs`, one per frame), replacing what was there.
    /// Evicts the least recently used pages to stay within the budget; stores nothing when the
    /// budget holds no page.
    pub fn write(&mut self, position: i64, stems: &[f32], inputs: &[u16]) {
        assert_eq!(stems.len(), inputs.len() * self.out_frame, "one fingerprint per frame");
        if self.max_pages() == 0 {
            return;
        }
        self.tick += 1;
        let mut done = 0;
        while done < inputs.len() {
            let (key, offset) = split(position + done as i64);
            let n = (PAGE - offset).min(inputs.len() - done);
            if !self.pages.contains_key(&key) {
                while self.pages.len() >= self.max_pages() {
                    self.evict();
                }
                let page = Page {
                    stems: vec![0.0; PAGE * self.out_frame].into_boxed_slice(),
                    inputs: vec![0; PAGE].into_boxed_slice(),
                    valid: [0; WORDS],
                    count: 0,
                    used: 0,
                };
                self.pages.insert(key, page);
            }
            let page = self.pages.get_mut(&key).expect("inserted above");
            page.used = self.tick;
            let of = self.out_frame;
            page.stems[offset * of..(offset + n) * of].copy_from_slice(&stems[done * of..(done + n) * of]);
            page.inputs[offset..offset + n].copy_from_slice(&inputs[done..done + n]);
            for i in offset..offset + n {
                if !page.has(i) {
                    page.valid[i / 64] |= 1 << (i % 64);
                    page.count += 1;
                    self.frames += 1;
                }
            }
            done += n;
        }
        self.publish();
    }

    /// Checks input frames arriving at `position` on (their fingerprints) against what the cached
    /// stems came from; where one differs, drops the stems `reach` frames either side of it.
    /// Returns whether anything was dropped.
    pub fn check_input(&mut self, position: i64, inputs: &[u16]) -> bool {
        let mut changed = false;
        for (t, &input) in inputs.iter().enumerate() {
            let at = position + t as i64;
            let (key, offset) = split(at);
            let differs = self.pages.get(&key).is_some_and(|page| page.has(offset) && page.inputs[offset] != input);
            if differs {
                self.invalidate(at - self.reach as i64, at + self.reach as i64 + 1);
                changed = true;
            }
        }
        changed
    }

    /// Drops the stems of timeline positions `from..to`.
    pub fn invalidate(&mut self, from: i64, to: i64) {
        let mut at = from;
        while at < to {
            let (key, offset) = split(at);
            let n = (PAGE - offset).min((to - at) as usize);
            if let Some(page) = self.pages.get_mut(&key) {
                self.frames -= page.drop_range(offset..offset + n) as u64;
                if page.count == 0 {
                    self.pages.remove(&key);
                }
            }
            at += n as i64;
        }
        self.publish();
    }

    /// How many frames from `position` on, up to `max`, hold stems without a gap.
    pub fn covered(&self, position: i64, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let (key, offset) = split(position + n as i64);
            let Some(page) = self.pages.get(&key) else { break };
            let run = page.run_from(offset);
            n += run;
            if offset + run < PAGE {
                break;
            }
        }
        n.min(max)
    }

    /// Copies the stems of the frame at `position` into `out` (one frame); `false` when there are
    /// none.
    pub fn read(&mut self, position: i64, out: &mut [f32]) -> bool {
        let (key, offset) = split(position);
        let Some(page) = self.pages.get_mut(&key).filter(|page| page.has(offset)) else { return false };
        self.tick += 1;
        page.used = self.tick;
        out.copy_from_slice(&page.stems[offset * self.out_frame..(offset + 1) * self.out_frame]);
        true
    }

    /// Frames whose stems are cached.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes the pages take.
    pub fn bytes(&self) -> usize {
        self.pages.len() * self.page_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const OUT: usize = 2;

    fn cache(pages: u64, reach: usize) -> TimelineCache {
        let probe = TimelineCache::new(OUT, reach, Arc::new(CacheShared::new(0)));
        TimelineCache::new(OUT, reach, Arc::new(CacheShared::new(pages * probe.page_bytes() as u64)))
    }

    fn ramp(from: usize, len: usize) -> (Vec<f32>, Vec<u16>) {
        let stems = (from..from + len).flat_map(|t| [t as f32, -(t as f32)]).collect();
        let inputs = (from..from + len).map(|t| fingerprint(t as f32, 0.5)).collect();
        (stems, inputs)
    }

    #[test]
    fn stems_come_back_by_position_across_pages_and_below_zero() {
        let mut cache = cache(4, 0);
        let (stems, inputs) = ramp(0, 2 * PAGE);
        cache.write(-100, &stems, &inputs);
        assert_eq!(cache.frames(), 2 * PAGE as u64);
        let mut frame = [0.0; OUT];
        assert!(cache.read(-100 + 5000, &mut frame));
        assert_eq!(frame, [5000.0, -5000.0]);
        assert!(!cache.read(-101, &mut frame));
        assert_eq!(cache.covered(-100, 3 * PAGE), 2 * PAGE);
        assert_eq!(cache.covered(-101, 10), 0);
    }

    #[test]
    fn a_changed_input_frame_drops_the_stems_within_reach_and_no_others() {
        let mut cache = cache(8, 100);
        let (stems, inputs) = ramp(0, 3 * PAGE);
        cache.write(0, &stems, &inputs);
        assert!(!cache.check_input(1000, &inputs[1000..2000]), "the same input keeps everything");
        assert_eq!(cache.frames(), 3 * PAGE as u64);
        let mut changed = inputs[5000..5001].to_vec();
        changed[0] ^= 1;
        assert!(cache.check_input(5000, &changed));
        assert_eq!(cache.covered(0, 3 * PAGE), 4900);
        assert_eq!(cache.covered(5101, 3 * PAGE), 3 * PAGE - 5101);
        assert_eq!(cache.frames(), 3 * PAGE as u64 - 201);
        // Input where no stems are cached says nothing.
        assert!(!cache.check_input(10 * PAGE as i64, &changed));
    }

    #[test]
    fn the_budget_holds_and_the_least_recently_used_pages_go_first() {
        let mut cache = cache(3, 0);
        for page in 0..3 {
            let (stems, inputs) = ramp(page * PAGE, PAGE);
            cache.write((page * PAGE) as i64, &stems, &inputs);
        }
        let mut frame = [0.0; OUT];
        assert!(cache.read(10, &mut frame), "page 0 is used again");
        let (stems, inputs) = ramp(3 * PAGE, PAGE);
        cache.write(3 * PAGE as i64, &stems, &inputs);
        assert!(cache.bytes() <= cache.shared.budget() as usize);
        assert_eq!(cache.covered(0, PAGE), PAGE, "recently read: kept");
        assert_eq!(cache.covered(PAGE as i64, PAGE), 0, "least recently used: evicted");
        assert_eq!(cache.covered(2 * PAGE as i64, 2 * PAGE), 2 * PAGE);
        // A smaller budget and a clear take effect at the next maintenance.
        cache.shared.set_budget(cache.page_bytes() as u64);
        cache.maintain();
        assert_eq!(cache.frames(), PAGE as u64);
        assert_eq!(cache.shared.used_bytes(), cache.page_bytes() as u64);
        cache.shared.clear();
        cache.maintain();
        assert_eq!((cache.frames(), cache.shared.cached_frames(), cache.shared.used_bytes()), (0, 0, 0));
    }

    #[test]
    fn a_minute_of_four_stereo_stems_at_44_1_khz_takes_90_mb() {
        let shared = Arc::new(CacheShared::new(u64::MAX));
        let mut cache = TimelineCache::new(8, 0, shared.clone());
        let minute: usize = 60 * 44_100;
        let (stems, inputs) = (vec![0.25; 8 * PAGE], vec![7; PAGE]);
        for page in 0..minute.div_ceil(PAGE) {
            cache.write((page * PAGE) as i64, &stems, &inputs);
        }
        let megabytes = shared.used_bytes() as f64 / 1e6;
        assert!((89.0..91.0).contains(&megabytes), "{megabytes} MB per minute");
    }

    #[test]
    fn a_zero_budget_caches_nothing() {
        let mut cache = cache(0, 0);
        let (stems, inputs) = ramp(0, 10);
        cache.write(0, &stems, &inputs);
        assert_eq!(cache.frames(), 0);
    }

    #[test]
    fn fingerprints_tell_frames_apart() {
        let distinct: std::collections::HashSet<u16> = (0..1000).map(|i| fingerprint(i as f32 * 1e-3, 0.0)).collect();
        assert!(distinct.len() > 990);
        assert_ne!(fingerprint(0.0, 0.0), fingerprint(-0.0, 0.0));
    }
}
