//! Streams start one worker thread each and stop it when dropped (its own test binary, so that
//! no other test's threads are counted).

use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::stream::{self, StreamConfig};
use demixer_dsp::{Engine, EngineKind, Routing, Stem};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn dropping_a_stream_joins_its_worker() {
    let before = threads();
    for _ in 0..10 {
        let engine = HpssSeparator::new(HpssConfig::preset(Preset::Low, 48_000.0).unwrap());
        let config = StreamConfig { max_block: 512, margin: 1024 };
        let stream = stream::spawn(
            vec![Engine::new(EngineKind::Hpss(Preset::Normal), Box::new(engine))],
            EngineKind::Hpss(Preset::Normal),
            config,
            Routing::identity(&Stem::ALL),
        )
        .unwrap();
        assert_eq!(threads(), before + 1, "one worker per stream");
        drop(stream);
        assert_eq!(threads(), before, "the worker outlived its stream");
    }
}
