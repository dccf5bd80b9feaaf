//! A separator at one rate driven at another: the latency it reports is exact in host samples.

mod common;

use common::{relative_error, separate};
use demixer_dsp::DelayLine;
use demixer_dsp::Resampled;
use demixer_dsp::{Separator, Stem, StereoOut};

/// Puts the input, delayed, into drums (left) and vocals (right); the rest stays silent.
struct Passthrough {
    delay: [DelayLine; 2],
    latency: usize,
}

impl Passthrough {
    fn new(latency: usize) -> Self {
        Self { delay: [DelayLine::new(latency, latency), DelayLine::new(latency, latency)], latency }
    }
}

impl Separator for Passthrough {
    fn sources(&self) -> &[Stem] {
        &Stem::ALL
    }
    fn latency_samples(&self) -> usize {
        self.latency
    }
    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        for out in stems.iter_mut().flat_map(|s| s.iter_mut()) {
            out.fill(0.0);
        }
        self.delay[0].process(left, stems[Stem::Drums.index()][0]);
        self.delay[1].process(right, stems[Stem::Vocals.index()][1]);
    }
    fn reset(&mut self) {
        self.delay.iter_mut().for_each(DelayLine::reset);
    }
}

/// Band-limited test tones well inside both rates' bands.
fn tones(rate: usize, len: usize, frequencies: &[f32]) -> Vec<f32> {
    (0..len)
        .map(|i| {
            frequencies.iter().map(|f| (std::f32::consts::TAU * f * i as f32 / rate as f32).sin()).sum::<f32>() * 0.3
        })
        .collect()
}

#[test]
fn round_trip_through_another_rate_is_delayed_by_exactly_the_reported_latency() {
    for (host, engine_rate, inner_latency) in [
        (48_000, 44_100, 1000),
        (96_000, 44_100, 4096),
        (22_050, 44_100, 333),
        (88_200, 44_100, 5),
        (44_100, 48_000, 77),
    ] {
        let mut engine = Resampled::new(Box::new(Passthrough::new(inner_latency)), host, engine_rate).unwrap();
        let latency = engine.latency_samples();
        let len = latency + host;
        let input = [tones(host, len, &[220.0, 1234.5]), tones(host, len, &[3000.0, 97.0])];
        for block in [64, 1000] {
            let stems = separate(&mut engine, &input, block);
            engine.reset();
            let settled = latency + host / 10;
            for (stem, channel) in [(Stem::Drums, 0), (Stem::Vocals, 1)] {
                let got = &stems[stem.index()][channel][settled..];
                let expected = &input[channel][settled - latency..len - latency];
                let error = relative_error(got, expected);
                assert!(error < 2e-3, "{host} Hz via {engine_rate} Hz, block {block}: {stem} error {error}");
                // One sample early or late would be far off at these frequencies.
                let early = &input[channel][settled - latency + 1..len - latency + 1];
                assert!(relative_error(got, early) > 20.0 * error);
            }
            assert!(stems[Stem::Bass.index()].iter().all(|c| c.iter().all(|x| x.abs() < 1e-6)));
        }
    }
}

#[test]
fn resampling_between_44_1_and_48_khz_costs_a_streaming_model_little_latency() {
    // All the stream waits for beyond the engine's own latency: the resamplers' delays and chunk,
    // and the chunk the stream's margin covers as a burst. A 1024-sample chunk made a 1.5 ms
    // streaming model 99 ms at 48 kHz against 18 ms at 44.1 kHz.
    for (host, engine_rate) in [(48_000, 44_100), (44_100, 48_000)] {
        let engine = Resampled::new(Box::new(Passthrough::new(0)), host, engine_rate).unwrap();
        let added = engine.latency_samples() + engine.burst_samples();
        let ms = added as f64 * 1000.0 / host as f64;
        assert!(ms < 25.0, "{host} Hz via {engine_rate} Hz adds {ms:.1} ms");
    }
}
