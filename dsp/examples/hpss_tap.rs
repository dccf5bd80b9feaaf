//! Runs the HPSS engine on a mixture and on its true stems and writes what it saw per frame, for
//! `bench/mask_fit.py`: `hpss_tap PRESET EVERY OUT.f32 MIXTURE.wav [STEM.wav ...]` writes every
//! `EVERY`-th frame as little-endian f32: the mixture's frames × bins × `TAP_COLUMNS` values, then
//! each stem's frames × bins × 4 (its spectra, on the mixture's frame grid), and prints
//! `frames bins` on stdout.

use demixer_dsp::hpss::{HpssConfig, HpssSeparator, Preset};
use demixer_dsp::{Separator, StereoOut};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [preset, every, out, inputs @ ..] = args.as_slice() else {
        panic!("usage: hpss_tap PRESET EVERY OUT.f32 MIXTURE.wav [STEM.wav ...]");
    };
    let every: usize = every.parse().expect("EVERY is a whole number");
    let preset = Preset::from_name(preset).expect("low, normal or high");
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).expect("output file"));
    let mut shape = None;
    for (i, input) in inputs.iter().enumerate() {
        let mut reader = hound::WavReader::open(input).expect("a WAV file");
        let spec = reader.spec();
        let samples: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
            hound::SampleFormat::Int => {
                let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
                reader.samples::<i32>().map(|s| s.unwrap() as f32 / scale).collect()
            }
        };
        assert_eq!(spec.channels, 2, "stereo input");
        let (left, right): (Vec<f32>, Vec<f32>) = samples.chunks_exact(2).map(|s| (s[0], s[1])).unzip();
        let config = HpssConfig::preset(preset, spec.sample_rate as f32).expect("a supported rate");
        let bins = config.bins();
        let mut engine = HpssSeparator::new(config);
        let mut outputs = vec![vec![0.0f32; left.len()]; 8];
        let mut channels = outputs.iter_mut();
        let mut stems: Vec<StereoOut<'_>> = (0..4)
            .map(|_| [channels.next().unwrap().as_mut_slice(), channels.next().unwrap().as_mut_slice()])
            .collect();
        engine.process(&left, &right, &mut stems);
        let rows = engine.take_tap();
        let columns = demixer_dsp::hpss::TAP_COLUMNS;
        let kept = if i == 0 { columns } else { 4 };
        let frames: Vec<&[f32]> = rows.chunks_exact(bins * columns).step_by(every).collect();
        assert!(shape.is_none_or(|s| s == (frames.len(), bins)), "inputs of one length");
        shape = Some((frames.len(), bins));
        for row in frames.iter().flat_map(|frame| frame.chunks_exact(columns)) {
            for value in &row[..kept] {
                file.write_all(&value.to_le_bytes()).expect("write");
            }
        }
    }
    let (frames, bins) = shape.expect("at least one input");
    println!("{frames} {bins}");
}
