//! Offline HPSS against `librosa.effects.hpss` (golden data from fixtures/make_hpss_golden.py).

mod common;

use common::relative_error;
use demixer_dsp::hpss::{HpssConfig, offline};

fn golden() -> Vec<Vec<f32>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hpss_librosa.wav");
    let mut reader = hound::WavReader::open(path).expect("golden fixture");
    let channels = reader.spec().channels as usize;
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    (0..channels).map(|c| samples.iter().skip(c).step_by(channels).copied().collect()).collect()
}

/// The settings of the script's case: n_fft 1024, hop 256, kernel (17, 31).
fn config(power: f32, margin_harmonic: f32, margin_percussive: f32) -> HpssConfig {
    let config = HpssConfig {
        sample_rate: 22_050.0,
        fft_size: 1024,
        hop: 256,
        harmonic_frames: 17,
        percussive_bins: 31,
        lookahead_frames: 0,
        power,
        margin_harmonic,
        margin_percussive,
        kick: 0.0,
        refine: false,
    };
    config.validate().unwrap();
    config
}

#[test]
fn offline_hpss_matches_librosa() {
    let data = golden();
    let cases = [(config(2.0, 1.0, 1.0), 1), (config(1.0, 2.0, 3.0), 3)];
    for (config, first) in cases {
        let out = offline::hpss(&data[0], &config);
        let h = relative_error(&out.harmonic, &data[first]);
        let p = relative_error(&out.percussive, &data[first + 1]);
        assert!(h <= 1e-3 && p <= 1e-3, "{config:?}: harmonic error {h}, percussive error {p}");
    }
}
