//! The engine allocates nothing while processing (a counting global allocator watches).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::music;
use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, StereoOut};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn processing_and_reset_do_not_allocate() {
    for preset in Preset::ALL {
        let mut engine = HpssSeparator::new(HpssConfig::preset(preset, 48_000.0).unwrap());
        let input = music(48_000.0, 1.0);
        let mut buffers: [[Vec<f32>; 2]; 4] = std::array::from_fn(|_| [vec![0.0; 4096], vec![0.0; 4096]]);
        let mut start = 0;
        let mut block = 1;
        ALLOCATIONS.store(0, Ordering::SeqCst);
        WATCHING.with(|w| w.set(true));
        while start + block <= input[0].len() {
            let mut outs: [StereoOut<'_>; 4] = buffers.each_mut().map(|[l, r]| [&mut l[..block], &mut r[..block]]);
            engine.process(&input[0][start..start + block], &input[1][start..start + block], &mut outs);
            start += block;
            block = (block * 3 + 1) % 4000 + 1;
        }
        engine.reset();
        WATCHING.with(|w| w.set(false));
        assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "{preset:?} allocated while processing");
    }
}

#[test]
fn the_audio_side_of_a_stream_does_not_allocate() {
    use demixer_dsp::stream::{self, StreamConfig};
    use demixer_dsp::{Engine, EngineKind, Routing, Stem, Timing};
    let engine = HpssSeparator::new(HpssConfig::preset(Preset::Normal, 44_100.0).unwrap());
    let config = StreamConfig { max_block: 512, margin: 2048 };
    let cache = demixer_dsp::timeline::CacheShared::new(64 << 20);
    let (mut side, _worker) = stream::spawn_cached(
        vec![Engine::new(EngineKind::Hpss(Preset::Normal), Box::new(engine))],
        EngineKind::Hpss(Preset::Normal),
        config,
        Routing::identity(&Stem::ALL),
        Some(cache.clone()),
    )
    .unwrap();
    let input = music(44_100.0, 1.0);
    let mut buffers: [[Vec<f32>; 2]; 4] = std::array::from_fn(|_| [vec![0.0; 512], vec![0.0; 512]]);
    ALLOCATIONS.store(0, Ordering::SeqCst);
    WATCHING.with(|w| w.set(true));
    for (block, (l, r)) in input[0].chunks(512).zip(input[1].chunks(512)).enumerate() {
        if block == 40 {
            side.restart(EngineKind::Hpss(Preset::Normal));
        }
        if block == 60 {
            cache.clear();
        }
        let mut outs: [StereoOut<'_>; 4] = buffers.each_mut().map(|[a, b]| [&mut a[..l.len()], &mut b[..l.len()]]);
        // A loop of 20 blocks on the timeline, and the transport stopped for a while.
        let position = (block % 50 < 45).then_some((block % 20 * 512) as i64);
        side.process_at(l, r, &mut outs, Timing::Realtime, position);
    }
    WATCHING.with(|w| w.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "the audio side allocated");
}
