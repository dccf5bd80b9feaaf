//! What idle instances cost: 16 streams with the normal HPSS engine (what 16 plugin instances
//! run), no audio flowing (transport stopped, host not processing), their CPU time over a few
//! seconds as a share of one core. Prints one JSON line.
//!
//!     cargo bench -p demixer-dsp --bench idle

use std::time::{Duration, Instant};

use demixer_dsp::hpss::Preset;
use demixer_dsp::stream::{self, StreamConfig};
use demixer_dsp::{EngineKind, EngineSpec, Routing, Stem};

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    let instances = 16;
    let rate = 48_000.0;
    let config = StreamConfig::new(512, rate, Duration::from_millis(5));
    let routing = Routing::new(4, |stem: Stem| Some(stem.index().min(3)));
    let streams: Vec<_> = (0..instances)
        .map(|_| {
            let engine = demixer_dsp::build(&EngineSpec::Hpss(Preset::Normal), rate).unwrap();
            stream::spawn(vec![engine], EngineKind::Hpss(Preset::Normal), config, routing.clone()).unwrap()
        })
        .collect();
    // Past the moment a worker counts as idle.
    std::thread::sleep(Duration::from_secs(1));
    let (cpu, wall) = (cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let share = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    println!("{{\"instances\": {instances}, \"idle_share_of_one_core\": {share:.4}}}");
    drop(streams);
}
