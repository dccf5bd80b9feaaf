//! Streams start one worker thread each and stop it when dropped (its own test binary, so that
//! no other test's threads are counted).

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::stream::{self, StreamConfig};
use demixer_dsp::{Engine, EngineKind, Routing, Separator, Stem, StereoOut};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The HPSS engine, recording the thread that drops it.
struct Probe {
    inner: HpssSeparator,
    dropped_on: Arc<Mutex<Option<ThreadId>>>,
}

impl Separator for Probe {
    fn sources(&self) -> &[Stem] {
        self.inner.sources()
    }
    fn latency_samples(&self) -> usize {
        self.inner.latency_samples()
    }
    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        self.inner.process(left, right, stems);
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
    }
}

/// The engines live on the worker and come back only through its join: if dropping the stream
/// returns with the engine already dropped on this thread, the worker was joined. (Counting
/// `/proc/self/task` after the join is racy: the kernel lists an exited thread for a moment after
/// `pthread_join` returns, which once failed CI on a loaded machine.)
#[test]
fn dropping_a_stream_joins_its_worker() {
    let before = threads();
    for _ in 0..10 {
        let dropped_on = Arc::new(Mutex::new(None));
        let probe = Probe {
            inner: HpssSeparator::new(HpssConfig::preset(Preset::Low, 48_000.0).unwrap()),
            dropped_on: Arc::clone(&dropped_on),
        };
        let config = StreamConfig { max_block: 512, margin: 1024 };
        let stream = stream::spawn(
            vec![Engine::new(EngineKind::Hpss(Preset::Normal), Box::new(probe))],
            EngineKind::Hpss(Preset::Normal),
            config,
            Routing::identity(&Stem::ALL),
        )
        .unwrap();
        assert!(threads() > before, "the stream started a worker");
        assert_eq!(*dropped_on.lock().unwrap(), None, "the worker owns the engine");
        drop(stream);
        assert_eq!(
            *dropped_on.lock().unwrap(),
            Some(std::thread::current().id()),
            "dropping the stream returned before the worker handed its engine back"
        );
    }
}
