//! Test signals shared by the engine tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use demixer_dsp::{Separator, StereoOut};

/// A file of `dsp/tests/fixtures/onnx`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx").join(name)
}

/// The channels of a float WAV fixture, planar.
pub fn read_wav(name: &str) -> Vec<Vec<f32>> {
    let mut reader = hound::WavReader::open(fixture(name)).unwrap();
    let channels = reader.spec().channels as usize;
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    (0..channels).map(|c| samples.iter().skip(c).step_by(channels).copied().collect()).collect()
}

/// Deterministic pseudo-random numbers in [-1, 1).
pub struct Lcg(pub u32);

impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1664525).wrapping_add(1013904223);
        (self.0 >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// A few seconds of something music-like in stereo: a panned chord, a centred vibrato "voice",
/// a bass line, kick and hi-hat hits.
pub fn music(sample_rate: f32, seconds: f32) -> [Vec<f32>; 2] {
    let len = (sample_rate * seconds) as usize;
    let mut noise = Lcg(99);
    let (mut left, mut right) = (vec![0.0; len], vec![0.0; len]);
    let beat = (sample_rate * 0.25) as usize;
    for i in 0..len {
        let t = i as f32 / sample_rate;
        let tau = std::f32::consts::TAU;
        let bar = (t / 2.0) as usize % 2;
        let chord: f32 = [261.6, 329.6, 392.0].iter().map(|f| (tau * f * (1.0 + 0.12 * bar as f32) * t).sin()).sum();
        let voice_f = 440.0 * (1.0 + 0.01 * (tau * 5.5 * t).sin());
        let voice: f32 = (1..5).map(|h| (tau * voice_f * h as f32 * t).sin() / h as f32).sum();
        let bass = (tau * [55.0, 73.4][bar] * t).sin();
        let since_beat = (i % beat) as f32 / sample_rate;
        let kick = if (i / beat).is_multiple_of(2) {
            (tau * 60.0 * since_beat).sin() * (-since_beat * 30.0).exp()
        } else {
            0.0
        };
        let hat = noise.next() * (-since_beat * 80.0).exp();
        let centre = 0.15 * voice + 0.3 * bass + 0.5 * kick + 0.1 * hat;
        left[i] = centre + 0.08 * chord;
        right[i] = centre + 0.03 * chord;
    }
    [left, right]
}

/// Runs `engine` over a stereo signal in blocks of `block` samples, returning `[stem][channel]`.
pub fn separate(engine: &mut dyn Separator, input: &[Vec<f32>; 2], block: usize) -> Vec<[Vec<f32>; 2]> {
    let len = input[0].len();
    let mut stems: Vec<[Vec<f32>; 2]> = engine.sources().iter().map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut start = 0;
    while start < len {
        let end = (start + block).min(len);
        let mut outs: Vec<StereoOut<'_>> =
            stems.iter_mut().map(|[l, r]| [&mut l[start..end], &mut r[start..end]]).collect();
        engine.process(&input[0][start..end], &input[1][start..end], &mut outs);
        start = end;
    }
    stems
}

/// `‖a − b‖ / ‖b‖`.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (num / den).sqrt()
}
