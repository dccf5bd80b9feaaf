//! Separated stems kept by host timeline position, so that a looped or revisited stretch plays
//! its stems at once instead of waiting for the engine again (DJ software keeps its separations
//! the same way).
//!
//! The cache lives on the stream's worker thread ([`crate::stream`]); the audio thread never
//! touches it. A host's position is a hint, not the truth, so the cache keeps, per [`PAGE`] of
//! the timeline, a *record* of the input played there (a 16-bit fingerprint of every
//! [`STRIDE`]-th frame): a jump the host reports is only taken as one where the input that follows
//! matches the record at the new place ([`TimelineCache::verify`]), within a couple of samples of
//! where the host said.
//!
//! Stems are kept where they are likely to play again: where the input was played twice,
//! unchanged (the record says so), within the loop the host reports
//! ([`CacheShared::set_host_loop`]), and within a loop the stream saw (a verified jump back from
//! the end of a stretch into it, [`TimelineCache::loop_region`]). They are 32-bit floats (exact:
//! a replayed loop equals the engine's output bit for bit), each frame with its input's
//! fingerprint. When the input at a position changes (an edited clip, another take, a plugin
//! upstream), every cached stem that could depend on it, `reach` frames either side, is dropped
//! before it plays: input is checked as it arrives, a cached frame only plays once the input its
//! engine looked ahead at has arrived, and only for input with its own fingerprint.
//!
//! Memory is bounded by the cache's budget and by its [`CachePool`]'s, read from
//! [`CacheShared`] (the host side may change it or ask for a clear at any time); the least
//! recently used pages go first. At 44.1 kHz with four stereo stems a minute of stems takes
//! 90 MB; a minute of record takes 0.4 MB.

mod page;
mod pool;

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

pub use page::{PAGE, STRIDE};
use page::{Page, Stems};
pub use pool::{CachePool, CacheShared};

/// Frames of input after a jump that must match the record for the jump to be taken as one.
pub const VERIFY: usize = 4 * STRIDE;
/// How far either side of the host's position a jump's input is looked for in the record.
pub const SNAP: i64 = 2;

/// The fingerprint of one stereo input frame: 16 bits of SplitMix64 (Steele et al. 2014) over
/// the two samples' bit patterns. Any change to a frame is missed with odds 1 in 65 536, an
/// edited stretch of frames practically never.
pub fn fingerprint(left: f32, right: f32) -> u16 {
    let mut z = (u64::from(left.to_bits()) << 32 | u64::from(right.to_bits())).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u16
}

fn split(position: i64) -> (i64, usize) {
    (position.div_euclid(PAGE as i64), position.rem_euclid(PAGE as i64) as usize)
}

/// `len` frames from `position` on, cut where pages begin: each piece's first position and its
/// frames, counted from `position`.
fn pages(position: i64, len: usize) -> impl Iterator<Item = (i64, Range<usize>)> {
    let mut done = 0;
    std::iter::from_fn(move || {
        (done < len).then(|| {
            let at = position + done as i64;
            let n = (PAGE - split(at).1).min(len - done);
            done += n;
            (at, done - n..done)
        })
    })
}

/// The record, and stems by timeline position (see the module docs). Not real-time safe: the
/// worker's.
pub struct TimelineCache {
    /// Samples per frame: every output's left and right.
    out_frame: usize,
    /// Frames either side of a changed input frame whose stems are dropped.
    reach: usize,
    pages: HashMap<i64, Page>,
    /// The pages by when they were last used, least recently first: `(used, key)`.
    order: BTreeSet<(u64, i64)>,
    /// Bytes the pages take.
    bytes: usize,
    /// Frames with stems.
    frames: u64,
    /// The last loop seen: stems within it are kept.
    region: Option<Range<i64>>,
    shared: Arc<CacheShared>,
    clears_seen: u64,
}

impl TimelineCache {
    /// A cache of frames of `out_frame` samples, dropping `reach` frames either side of a changed
    /// input frame (the engine's reach: how far its output depends on input, both ways).
    pub fn new(out_frame: usize, reach: usize, shared: Arc<CacheShared>) -> Self {
        let clears_seen = shared.clear_requests();
        let order = BTreeSet::new();
        Self { out_frame, reach, pages: HashMap::new(), order, bytes: 0, frames: 0, region: None, shared, clears_seen }
    }

    /// Whether the cache may hold anything (its budget is not zero).
    pub fn enabled(&self) -> bool {
        self.shared.budget() > 0
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.shared.pool().remove(self.bytes as u64);
        self.pages.clear();
        self.order.clear();
        (self.bytes, self.frames, self.region) = (0, 0, None);
        self.publish();
    }

    /// Serves a pending clear request and evicts down to the cache's budget and, when it holds
    /// the pool's oldest pages, to the pool's. Cheap unless the pool is over its budget; call
    /// often.
    pub fn maintain(&mut self) {
        let requests = self.shared.clear_requests();
        if requests != self.clears_seen {
            self.clears_seen = requests;
            self.clear();
        }
        self.make_room(0);
    }

    /// Evicts until `extra` more bytes fit this cache's budget, and (as far as this cache holds
    /// the pool's oldest pages) the pool's. Returns whether they fit this cache's budget.
    fn make_room(&mut self, extra: usize) -> bool {
        let budget = self.shared.budget();
        while (self.bytes + extra) as u64 > budget && self.evict() {}
        let pool = self.shared.pool().clone();
        while pool.used_bytes() + extra as u64 > pool.budget() && pool.holds_oldest(&self.shared) && self.evict() {}
        (self.bytes + extra) as u64 <= budget
    }

    /// Evicts the least recently used page; `false` when there is none.
    fn evict(&mut self) -> bool {
        let Some((_, key)) = self.order.pop_first() else { return false };
        let page = self.pages.remove(&key).expect("every ordered page exists");
        let bytes = Page::BYTES + page.stems.as_ref().map_or(0, |_| Stems::bytes(self.out_frame));
        self.frames -= page.stems.map_or(0, |stems| stems.count as u64);
        self.release(bytes);
        self.publish();
        true
    }

    fn take(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.shared.pool().add(bytes as u64);
    }

    fn release(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.shared.pool().remove(bytes as u64);
    }

    fn publish(&self) {
        self.shared.publish(self.bytes as u64, self.frames, self.order.first().map(|&(used, _)| used));
    }

    /// Marks the page at `key` used now, by the pool's clock.
    fn touch(&mut self, key: i64) {
        let now = self.shared.pool().now();
        if let Some(page) = self.pages.get_mut(&key)
            && page.used != now
        {
            self.order.remove(&(page.used, key));
            self.order.insert((now, key));
            page.used = now;
            self.publish();
        }
    }

    /// The page holding `key`, made (and room made for it) if missing; `None` when the budget
    /// holds no page.
    fn page(&mut self, key: i64) -> Option<&mut Page> {
        if !self.pages.contains_key(&key) {
            if !self.make_room(Page::BYTES) {
                return None;
            }
            self.take(Page::BYTES);
            let now = self.shared.pool().tick();
            self.pages.insert(key, Page::new(now));
            self.order.insert((now, key));
            self.publish();
        }
        self.pages.get_mut(&key)
    }

    /// Takes note of input frames played from `position` on (their fingerprints, one per frame):
    /// records them, and where one differs from the input cached stems came from, drops the stems
    /// `reach` frames either side of it. Returns whether any stems were dropped.
    pub fn observe(&mut self, position: i64, inputs: &[u16]) -> bool {
        let mut changed = false;
        for (at, inputs) in pages(position, inputs.len()).map(|(at, range)| (at, &inputs[range])) {
            let (key, first) = split(at);
            let mut from = 0;
            while let Some(t) = self.first_change(key, first, &inputs[from..]).map(|t| from + t) {
                let at = at + t as i64;
                self.invalidate(at - self.reach as i64, at + self.reach as i64 + 1);
                changed = true;
                from = t + 1;
            }
            if self.enabled() && (first..first + inputs.len()).any(|offset| offset % STRIDE == 0) {
                let Some(page) = self.page(key) else { continue };
                for t in (0..inputs.len()).filter(|t| (first + t) % STRIDE == 0) {
                    page.record(first + t, inputs[t]);
                }
                self.touch(key);
            }
        }
        changed
    }

    /// The first of `inputs` (frames from `first` on in the page at `key`) that differs from the
    /// input of stems cached there.
    fn first_change(&self, key: i64, first: usize, inputs: &[u16]) -> Option<usize> {
        let stems = self.pages.get(&key)?.stems.as_ref()?;
        (0..inputs.len()).find(|&t| stems.valid.has(first + t) && stems.inputs[first + t] != inputs[t])
    }

    /// Where the input frames `inputs` (fingerprints, one per frame) were played before, looking
    /// within [`SNAP`] samples of `position`: the position whose record they match at every
    /// recorded frame, at least [`VERIFY`]` / `[`STRIDE`] of them. `None` when no place matches,
    /// or the frames are all alike (silence matches any silence).
    pub fn verify(&self, position: i64, inputs: &[u16]) -> Option<i64> {
        if inputs.iter().all(|&input| input == inputs[0]) {
            return None;
        }
        let matches = |start: i64| {
            let mut compared = 0;
            for (t, &input) in inputs.iter().enumerate() {
                let (key, offset) = split(start + t as i64);
                if offset % STRIDE != 0 {
                    continue;
                }
                match self.pages.get(&key).and_then(|page| page.recorded(offset)) {
                    Some(recorded) if recorded == input => compared += 1,
                    _ => return false,
                }
            }
            compared >= VERIFY / STRIDE
        };
        [0, -1, 1, -2, 2].into_iter().map(|d| position + d).find(|&start| matches(start))
    }

    /// Notes a loop the stream played: a verified jump back from the end of a stretch to `range`'s
    /// start, within it. Stems within it are kept from now on, even where not yet played twice.
    pub fn loop_region(&mut self, range: Range<i64>) {
        self.region = Some(range);
    }

    /// Stores the stems of frames from `position` on (`stems`: interleaved frames) with the
    /// fingerprints of their input frames (`inputs`, one per frame), replacing what was there,
    /// where they are worth keeping (see the module docs) and the budgets allow.
    pub fn write(&mut self, position: i64, stems: &[f32], inputs: &[u16]) {
        assert_eq!(stems.len(), inputs.len() * self.out_frame, "one fingerprint per frame");
        let of = self.out_frame;
        for (at, range) in pages(position, inputs.len()) {
            let (key, first) = split(at);
            // Worth keeping: within a loop (the host's or the last one seen), or played twice.
            let (region, host_loop) = (self.region.clone().unwrap_or_default(), self.shared.host_loop());
            let keeps = |page: Option<&Page>, t: usize| {
                let at = position + t as i64;
                region.contains(&at)
                    || host_loop.contains(&at)
                    || page.is_some_and(|page| page.replayed(first + t - range.start))
            };
            let page = self.pages.get(&key);
            if !range.clone().any(|t| keeps(page, t)) {
                continue;
            }
            let needs_stems = page.is_none_or(|page| page.stems.is_none());
            if needs_stems && !self.make_room(Stems::bytes(of)) {
                continue;
            }
            let Some(page) = self.page(key) else { continue };
            let added = page.stems.is_none();
            let mut page_stems = page.stems.take().unwrap_or_else(|| Stems::new(of));
            let mut new_frames = 0;
            for t in range.clone().filter(|&t| keeps(Some(page), t)) {
                let offset = first + t - range.start;
                page_stems.samples[offset * of..(offset + 1) * of].copy_from_slice(&stems[t * of..(t + 1) * of]);
                page_stems.inputs[offset] = inputs[t];
                if page_stems.valid.set(offset, true) {
                    new_frames += 1;
                }
            }
            page_stems.count += new_frames;
            page.stems = Some(page_stems);
            self.frames += new_frames as u64;
            if added {
                self.take(Stems::bytes(of));
            }
            self.touch(key);
            self.publish();
        }
    }

    /// Drops the stems of timeline positions `from..to`.
    pub fn invalidate(&mut self, from: i64, to: i64) {
        let mut at = from;
        while at < to {
            let (key, offset) = split(at);
            let n = (PAGE - offset).min((to - at) as usize);
            if let Some(page) = self.pages.get_mut(&key)
                && let Some(stems) = &mut page.stems
            {
                self.frames -= stems.drop_range(offset..offset + n) as u64;
                if stems.count == 0 {
                    page.stems = None;
                    self.release(Stems::bytes(self.out_frame));
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
            let Some(stems) = self.pages.get(&key).and_then(|page| page.stems.as_ref()) else { break };
            let run = stems.valid.run_from(offset);
            n += run;
            if offset + run < PAGE {
                break;
            }
        }
        n.min(max)
    }

    /// Copies the stems of the frame at `position` into `out` (one frame) if they came from
    /// input with fingerprint `input`; `false` when there are none such.
    pub fn read(&mut self, position: i64, input: u16, out: &mut [f32]) -> bool {
        let (key, offset) = split(position);
        let of = self.out_frame;
        let stems = self.pages.get(&key).and_then(|page| page.stems.as_ref());
        let Some(stems) = stems.filter(|stems| stems.valid.has(offset) && stems.inputs[offset] == input) else {
            return false;
        };
        out.copy_from_slice(&stems.samples[offset * of..(offset + 1) * of]);
        self.touch(key);
        true
    }

    /// Frames whose stems are cached.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes the pages take.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for TimelineCache {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: usize = 2;

    fn cache_in(pool: &Arc<CachePool>, bytes: u64, reach: usize) -> TimelineCache {
        TimelineCache::new(OUT, reach, CacheShared::in_pool(bytes, pool.clone()))
    }

    /// A cache of its own pool with room for `pages` pages of stems (and their records).
    fn cache(pages: u64, reach: usize) -> TimelineCache {
        let page = (Page::BYTES + Stems::bytes(OUT)) as u64;
        cache_in(&CachePool::new(), pages * page, reach)
    }

    fn ramp(from: usize, len: usize) -> (Vec<f32>, Vec<u16>) {
        let stems = (from..from + len).flat_map(|t| [t as f32, -(t as f32)]).collect();
        let inputs = (from..from + len).map(|t| fingerprint(t as f32, 0.5)).collect();
        (stems, inputs)
    }

    /// Writes ramp stems for `len` frames from `from` at the same position, inside a loop region.
    fn keep(cache: &mut TimelineCache, from: usize, len: usize) -> Vec<u16> {
        let (stems, inputs) = ramp(from, len);
        cache.loop_region(from as i64..(from + len) as i64);
        cache.write(from as i64, &stems, &inputs);
        inputs
    }

    #[test]
    fn stems_come_back_by_position_across_pages_and_below_zero() {
        let mut cache = cache(4, 0);
        let (stems, inputs) = ramp(0, 2 * PAGE);
        cache.loop_region(-100..2 * PAGE as i64);
        cache.write(-100, &stems, &inputs);
        assert_eq!(cache.frames(), 2 * PAGE as u64);
        let mut frame = [0.0; OUT];
        assert!(cache.read(-100 + 5000, inputs[5000], &mut frame));
        assert_eq!(frame, [5000.0, -5000.0]);
        assert!(!cache.read(-100 + 5000, inputs[5000] ^ 1, &mut frame), "other input: not its stems");
        assert!(!cache.read(-101, inputs[0], &mut frame));
        assert_eq!(cache.covered(-100, 3 * PAGE), 2 * PAGE);
        assert_eq!(cache.covered(-101, 10), 0);
    }

    #[test]
    fn stems_are_kept_where_the_input_was_played_twice_or_within_the_loop_only() {
        let mut cache = cache(8, 0);
        let (stems, inputs) = ramp(0, 3 * PAGE);
        cache.observe(0, &inputs);
        cache.write(0, &stems, &inputs);
        assert_eq!(cache.frames(), 0, "played once: only recorded");
        let mut changed = inputs.clone();
        changed[..PAGE].iter_mut().for_each(|print| *print ^= 1);
        cache.observe(0, &changed);
        cache.write(0, &stems, &inputs);
        assert_eq!(cache.covered(0, 3 * PAGE), 0, "the first page's input changed: not played twice");
        assert_eq!(cache.covered(PAGE as i64, 3 * PAGE), 2 * PAGE, "played twice, unchanged");
        cache.loop_region(0..100);
        cache.write(0, &stems, &inputs);
        assert_eq!(cache.covered(0, PAGE), 100, "and within the loop");
    }

    #[test]
    fn stems_within_the_loop_the_host_reports_are_kept_from_its_first_pass() {
        let mut cache = cache(8, 0);
        let (stems, inputs) = ramp(0, 2 * PAGE);
        cache.shared.set_host_loop(Some(1000..3000));
        cache.observe(0, &inputs);
        cache.write(0, &stems, &inputs);
        assert_eq!((cache.covered(0, PAGE), cache.covered(1000, 2 * PAGE)), (0, 2000));
        cache.shared.set_host_loop(None);
        cache.clear();
        cache.observe(0, &inputs);
        cache.write(0, &stems, &inputs);
        assert_eq!(cache.frames(), 0, "no loop any more");
    }

    #[test]
    fn a_jump_is_verified_against_the_record_within_a_couple_of_samples() {
        let mut cache = cache(8, 0);
        let (_, inputs) = ramp(0, 2 * PAGE);
        cache.observe(1000, &inputs);
        let played = &inputs[3000..3000 + VERIFY];
        assert_eq!(cache.verify(4000, played), Some(4000));
        assert_eq!(cache.verify(4002, played), Some(4000), "the host's position is off by two");
        assert_eq!(cache.verify(4003, played), None, "too far off");
        assert_eq!(cache.verify(4000, &inputs[3001..3001 + VERIFY]), Some(4001), "a sample later");
        assert_eq!(cache.verify(4000, &inputs[5000..5000 + VERIFY]), None, "other input");
        assert_eq!(cache.verify(4000, &inputs[3000..3000 + STRIDE]), None, "too little input");
        assert_eq!(cache.verify(100_000, played), None, "never played there");
        let silence = vec![fingerprint(0.0, 0.0); VERIFY];
        cache.observe(20_000, &silence);
        assert_eq!(cache.verify(20_000, &silence), None, "silence matches any silence");
    }

    #[test]
    fn a_changed_input_frame_drops_the_stems_within_reach_and_no_others() {
        let mut cache = cache(8, 100);
        let inputs = keep(&mut cache, 0, 3 * PAGE);
        assert!(!cache.observe(1000, &inputs[1000..2000]), "the same input keeps everything");
        assert_eq!(cache.frames(), 3 * PAGE as u64);
        let mut changed = inputs[5000..5001].to_vec();
        changed[0] ^= 1;
        assert!(cache.observe(5000, &changed));
        assert_eq!(cache.covered(0, 3 * PAGE), 4900);
        assert_eq!(cache.covered(5101, 3 * PAGE), 3 * PAGE - 5101);
        assert_eq!(cache.frames(), 3 * PAGE as u64 - 201);
        // Input where no stems are cached says nothing.
        assert!(!cache.observe(10 * PAGE as i64, &changed));
    }

    #[test]
    fn the_budget_holds_and_the_least_recently_used_pages_go_first() {
        let mut cache = cache(3, 0);
        for page in 0..3 {
            keep(&mut cache, page * PAGE, PAGE);
        }
        let mut frame = [0.0; OUT];
        assert!(cache.read(10, fingerprint(10.0, 0.5), &mut frame), "page 0 is used again");
        keep(&mut cache, 3 * PAGE, PAGE);
        assert!(cache.bytes() <= cache.shared.budget() as usize);
        assert_eq!(cache.covered(0, PAGE), PAGE, "recently read: kept");
        assert_eq!(cache.covered(PAGE as i64, PAGE), 0, "least recently used: evicted");
        assert_eq!(cache.covered(2 * PAGE as i64, 2 * PAGE), 2 * PAGE);
        // A smaller budget and a clear take effect at the next maintenance.
        cache.shared.set_budget((Page::BYTES + Stems::bytes(OUT)) as u64);
        cache.maintain();
        assert_eq!(cache.frames(), PAGE as u64);
        assert_eq!(cache.shared.used_bytes(), (Page::BYTES + Stems::bytes(OUT)) as u64);
        cache.shared.clear();
        cache.maintain();
        assert_eq!((cache.frames(), cache.shared.cached_frames(), cache.shared.used_bytes()), (0, 0, 0));
        assert_eq!(cache.shared.pool().used_bytes(), 0);
    }

    #[test]
    fn the_caches_of_a_pool_share_its_largest_budget_and_the_oldest_pages_go_first() {
        let pool = CachePool::new();
        let page = (Page::BYTES + Stems::bytes(OUT)) as u64;
        let mut caches: Vec<TimelineCache> = (0..3).map(|_| cache_in(&pool, 4 * page, 0)).collect();
        for (i, cache) in caches.iter_mut().enumerate() {
            keep(cache, 0, 2 * PAGE);
            assert_eq!(cache.frames(), 2 * PAGE as u64, "cache {i} within its own budget");
        }
        assert_eq!(pool.budget(), 4 * page, "the largest budget of any member");
        assert!(pool.used_bytes() > pool.budget());
        // The newest member maintains first: it holds no oldest page, so it keeps its own.
        for cache in caches.iter_mut().rev() {
            cache.maintain();
        }
        assert!(pool.used_bytes() <= pool.budget(), "{} of {}", pool.used_bytes(), pool.budget());
        let frames: Vec<u64> = caches.iter().map(TimelineCache::frames).collect();
        assert_eq!(frames, [0, 2 * PAGE as u64, 2 * PAGE as u64], "the first cache's pages were the oldest");
        // A larger budget on one member raises the pool's; a member that goes releases its bytes.
        caches[0].shared.set_budget(16 * page);
        assert_eq!(pool.budget(), 16 * page);
        caches.truncate(1);
        assert_eq!(pool.used_bytes(), 0);
    }

    #[test]
    fn a_minute_of_four_stereo_stems_at_44_1_khz_takes_90_mb_and_its_record_half_a_megabyte() {
        let shared = CacheShared::in_pool(u64::MAX, CachePool::new());
        let mut cache = TimelineCache::new(8, 0, shared.clone());
        let minute: usize = 60 * 44_100;
        let inputs: Vec<u16> = (0..PAGE).map(|t| t as u16).collect();
        for page in 0..minute.div_ceil(PAGE) {
            cache.observe((page * PAGE) as i64, &inputs);
        }
        let record = shared.used_bytes() as f64 / 1e6;
        assert!(record < 0.5, "{record} MB of record per minute");
        let stems = vec![0.25; 8 * PAGE];
        cache.loop_region(0..minute as i64);
        for page in 0..minute.div_ceil(PAGE) {
            cache.write((page * PAGE) as i64, &stems, &inputs);
        }
        let megabytes = shared.used_bytes() as f64 / 1e6;
        assert!((89.0..91.0).contains(&megabytes), "{megabytes} MB per minute");
    }

    #[test]
    fn a_zero_budget_caches_and_records_nothing() {
        let mut cache = cache(0, 0);
        let (stems, inputs) = ramp(0, 10);
        cache.observe(0, &inputs);
        keep(&mut cache, 0, 10);
        cache.write(0, &stems, &inputs);
        assert_eq!((cache.frames(), cache.bytes()), (0, 0));
    }

    #[test]
    fn fingerprints_tell_frames_apart() {
        let distinct: std::collections::HashSet<u16> = (0..1000).map(|i| fingerprint(i as f32 * 1e-3, 0.0)).collect();
        assert!(distinct.len() > 990);
        assert_ne!(fingerprint(0.0, 0.0), fingerprint(-0.0, 0.0));
    }
}
