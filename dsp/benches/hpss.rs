//! Speed of the streaming four-stem HPSS engine: 10 s of stereo 44.1 kHz audio in 512-sample
//! blocks, per preset. `bench/speed.py` runs this and librosa on the same audio and writes the
//! real-time factors to BENCHMARKS.md.

use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, StereoOut};

const SAMPLE_RATE: f32 = 44_100.0;
const SECONDS: usize = 10;
const BLOCK: usize = 512;

fn main() {
    divan::main();
}

/// The example song, looped to [`SECONDS`].
fn song() -> [Vec<f32>; 2] {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/song.wav");
    let reader = hound::WavReader::open(path).expect("run bench/speed.py, which writes benches/song.wav");
    let samples: Vec<f32> = reader.into_samples::<f32>().map(Result::unwrap).collect();
    let len = SECONDS * SAMPLE_RATE as usize;
    let channel = |c: usize| samples.iter().skip(c).step_by(2).copied().cycle().take(len).collect();
    [channel(0), channel(1)]
}

#[divan::bench(args = Preset::ALL.map(|p| p.name()), sample_count = 5, sample_size = 1)]
fn ten_seconds(bencher: divan::Bencher, preset: &str) {
    let preset = Preset::from_name(preset).unwrap();
    let input = song();
    let mut engine = HpssSeparator::new(HpssConfig::preset(preset, SAMPLE_RATE).unwrap());
    let mut buffers: [[Vec<f32>; 2]; 4] = std::array::from_fn(|_| [vec![0.0; BLOCK], vec![0.0; BLOCK]]);
    bencher.bench_local(|| {
        for (l, r) in input[0].chunks(BLOCK).zip(input[1].chunks(BLOCK)) {
            let mut outs: [StereoOut<'_>; 4] = buffers.each_mut().map(|[a, b]| [&mut a[..l.len()], &mut b[..l.len()]]);
            engine.process(l, r, &mut outs);
        }
        divan::black_box(&buffers);
    });
}
