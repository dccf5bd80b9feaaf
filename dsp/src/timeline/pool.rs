//! One memory budget for every loop cache in the process: a host with forty instances of the
//! plugin gives them one budget together, not forty.
//!
//! Each cache has its own budget (the plugin's Loop Cache parameter) and is a member of a
//! [`CachePool`]; all members together stay within the largest budget of any member, the least
//! recently used pages (of whichever member) going first. A member's worker evicts its own pages
//! only: when the pool is over its budget, the member holding the oldest page evicts, at its next
//! maintenance (a worker at rest looks every 50 ms), so the pool may run over for that long.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// The caches of one process (or of one test), their bytes and their budget.
#[derive(Debug, Default)]
pub struct CachePool {
    /// Bytes every member's cache holds.
    used: AtomicU64,
    /// A coarse clock for least-recently-used order across members: it advances whenever any
    /// member adds a page.
    clock: AtomicU64,
    /// The largest of the members' budgets, valid while `stale` is not set.
    budget: AtomicU64,
    stale: AtomicBool,
    members: Mutex<Vec<Weak<CacheShared>>>,
}

impl CachePool {
    /// A pool of its own (tests); the plugin's caches share [`CachePool::process`].
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The pool every cache made by [`CacheShared::new`] joins.
    pub fn process() -> &'static Arc<CachePool> {
        static POOL: OnceLock<Arc<CachePool>> = OnceLock::new();
        POOL.get_or_init(CachePool::new)
    }

    /// Bytes all members' caches hold now.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The pool's budget in bytes: the largest budget of any member. Takes a lock when a member's
    /// budget changed or a member left since the last call; not for the audio thread.
    pub fn budget(&self) -> u64 {
        if self.stale.swap(false, Ordering::AcqRel) {
            let mut members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            members.retain(|member| member.strong_count() > 0);
            let largest = members.iter().filter_map(Weak::upgrade).map(|member| member.budget()).max();
            self.budget.store(largest.unwrap_or(0), Ordering::Relaxed);
        }
        self.budget.load(Ordering::Relaxed)
    }

    /// Whether `member` holds the pool's least recently used page (or ties with it).
    pub(super) fn holds_oldest(&self, member: &CacheShared) -> bool {
        let mine = member.oldest.load(Ordering::Relaxed);
        let members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        members.iter().filter_map(Weak::upgrade).all(|other| other.oldest.load(Ordering::Relaxed) >= mine)
    }

    /// The clock's time now.
    pub(super) fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Advances the clock (a page was added) and returns the new time.
    pub(super) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn add(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn remove(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One cache's settings and figures, shared between the stream's worker (which owns the cache)
/// and the host side, all atomics; a member of a [`CachePool`].
#[derive(Debug)]
pub struct CacheShared {
    pool: Arc<CachePool>,
    budget_bytes: AtomicU64,
    clear_requests: AtomicU64,
    used_bytes: AtomicU64,
    cached_frames: AtomicU64,
    /// When this cache's least recently used page was last used, by the pool's clock
    /// (`u64::MAX`: no page).
    oldest: AtomicU64,
    /// The loop the host reports, start and end in timeline samples (equal: none).
    host_loop: [AtomicI64; 2],
}

impl CacheShared {
    /// A cache allowed `budget_bytes` (0 turns caching off), in the process's pool.
    pub fn new(budget_bytes: u64) -> Arc<Self> {
        Self::in_pool(budget_bytes, CachePool::process().clone())
    }

    /// A cache allowed `budget_bytes`, in `pool`.
    pub fn in_pool(budget_bytes: u64, pool: Arc<CachePool>) -> Arc<Self> {
        let shared = Arc::new(Self {
            pool: pool.clone(),
            budget_bytes: AtomicU64::new(budget_bytes),
            clear_requests: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            cached_frames: AtomicU64::new(0),
            oldest: AtomicU64::new(u64::MAX),
            host_loop: [AtomicI64::new(0), AtomicI64::new(0)],
        });
        pool.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::downgrade(&shared));
        pool.stale.store(true, Ordering::Release);
        shared
    }

    /// The pool this cache is a member of.
    pub fn pool(&self) -> &Arc<CachePool> {
        &self.pool
    }

    /// Sets this cache's budget in bytes; the worker evicts down to it. Real-time safe.
    pub fn set_budget(&self, bytes: u64) {
        if self.budget_bytes.swap(bytes, Ordering::Relaxed) != bytes {
            self.pool.stale.store(true, Ordering::Release);
        }
    }

    /// This cache's budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget_bytes.load(Ordering::Relaxed)
    }

    /// Sets the loop the host reports (its cycle range, in timeline samples; `None` while it does
    /// not loop): stems within it are kept from its first pass on. A hint like any position: what
    /// plays from the cache is still verified. Real-time safe.
    pub fn set_host_loop(&self, range: Option<Range<i64>>) {
        let Range { start, end } = range.unwrap_or(0..0);
        self.host_loop[0].store(start, Ordering::Relaxed);
        self.host_loop[1].store(end, Ordering::Relaxed);
    }

    /// The loop the host reports, if any.
    pub(super) fn host_loop(&self) -> Range<i64> {
        self.host_loop[0].load(Ordering::Relaxed)..self.host_loop[1].load(Ordering::Relaxed)
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

    pub(super) fn clear_requests(&self) -> u64 {
        self.clear_requests.load(Ordering::Relaxed)
    }

    /// Publishes what the cache holds: bytes, frames with stems, and when its least recently
    /// used page was last used (`None`: no page), for the pool to find the member that evicts.
    pub(super) fn publish(&self, bytes: u64, frames: u64, oldest: Option<u64>) {
        self.used_bytes.store(bytes, Ordering::Relaxed);
        self.cached_frames.store(frames, Ordering::Relaxed);
        self.oldest.store(oldest.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Drop for CacheShared {
    fn drop(&mut self) {
        self.pool.stale.store(true, Ordering::Release);
    }
}
