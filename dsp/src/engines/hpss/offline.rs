//! Whole-signal HPSS with centred medians, equivalent to `librosa.effects.hpss`: the reference the
//! streaming engine is checked against.

use super::config::HpssConfig;
use super::masks::{Power, softmask};
use crate::signal::median::median_filter_reflect;
use crate::signal::median_network::NetworkMedianFilter;
use crate::signal::stft::{istft_centered, stft_centered};

/// Harmonic and percussive parts of a mono signal.
pub struct HarmonicPercussive {
    /// Steady, tonal content.
    pub harmonic: Vec<f32>,
    /// Transient, broadband content.
    pub percussive: Vec<f32>,
}

/// Separates `signal` as `librosa.effects.hpss(y, kernel_size=(harmonic_frames, percussive_bins),
/// power, margin=(margin_harmonic, margin_percussive), n_fft=fft_size, hop_length=hop)`: centred
/// medians with reflected edges. `lookahead_frames` plays no part.
pub fn hpss(signal: &[f32], config: &HpssConfig) -> HarmonicPercussive {
    let (n, hop, bins) = (config.fft_size, config.hop, config.bins());
    let frames = stft_centered(signal, n, hop);
    let magnitude: Vec<Vec<f32>> = frames.iter().map(|f| f.iter().map(|x| x.norm()).collect()).collect();

    let mut harmonic = vec![vec![0.0; bins]; frames.len()];
    let mut window = vec![0.0; config.harmonic_frames];
    let mut along_time = vec![0.0; frames.len()];
    let mut filtered = vec![0.0; frames.len()];
    for bin in 0..bins {
        along_time.iter_mut().zip(&magnitude).for_each(|(x, frame)| *x = frame[bin]);
        median_filter_reflect(&along_time, &mut window, &mut filtered);
        harmonic.iter_mut().zip(&filtered).for_each(|(frame, &h)| frame[bin] = h);
    }
    let mut frequency_median = NetworkMedianFilter::new(config.percussive_bins, bins);
    let percussive: Vec<Vec<f32>> = magnitude
        .iter()
        .map(|frame| {
            let mut out = vec![0.0; bins];
            frequency_median.apply(frame, &mut out);
            out
        })
        .collect();

    let split_zeros = config.margin_harmonic == 1.0 && config.margin_percussive == 1.0;
    let masked = |own: &[Vec<f32>], other: &[Vec<f32>], margin: f32| -> Vec<f32> {
        let spectra: Vec<_> = frames
            .iter()
            .zip(own.iter().zip(other))
            .map(|(frame, (o, r))| {
                frame
                    .iter()
                    .zip(o.iter().zip(r))
                    .map(|(x, (&o, &r))| x * softmask(o, r * margin, Power(config.power), split_zeros))
                    .collect()
            })
            .collect();
        istft_centered(&spectra, n, hop, signal.len())
    };
    HarmonicPercussive {
        harmonic: masked(&harmonic, &percussive, config.margin_harmonic),
        percussive: masked(&percussive, &harmonic, config.margin_percussive),
    }
}
