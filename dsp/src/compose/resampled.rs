//! Running a separator at its own sample rate inside a stream at another rate.
//!
//! [`Resampled`] converts each chunk of host-rate input to the engine's rate with `rubato`'s
//! synchronous FFT resampler, separates it, and converts every stem back. Its latency is whole and
//! exact in host samples: the chunking, both resamplers' delays and the engine's latency, padded at
//! the engine's rate until their sum is a whole number of host samples.
//!
//! What the engine cannot see (the band above its Nyquist frequency, the resamplers' ripple) is
//! not lost: the engine's own input also goes back to the host rate, aligned with the stems, and
//! the difference between the delayed host input and it is added to [`Stem::Other`] (a source the
//! wrapper adds when the engine has none). So the stems of a mask-based engine still sum to the
//! delayed input at any host rate.

use audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

use crate::separator::{Separator, StereoOut};
use crate::signal::delay::DelayLine;
use crate::signal::denormals::clean;
use crate::stem::Stem;

/// Host samples per resampling chunk, roughly; the exact size depends on the two rates (a whole,
/// even number of the rates' common units: 320 at 48 kHz for a 44.1 kHz engine). The chunk, the FFT
/// resamplers' delays (half a chunk each way) and the burst it makes are all latency: 1024 made a
/// streaming model 99 ms at 48 kHz against 18 ms at 44.1 kHz.
const CHUNK_HINT: usize = 256;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Why two rates cannot be converted between.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot resample {host_rate} Hz <-> {engine_rate} Hz: {why}")]
pub struct ResampleError {
    /// The stream's rate, in Hz.
    pub host_rate: usize,
    /// The engine's rate, in Hz.
    pub engine_rate: usize,
    /// What the resampler said.
    pub why: String,
}

/// A [`Separator`] at `engine_rate` driven at `host_rate`.
pub struct Resampled {
    inner: Box<dyn Separator>,
    /// The inner engine's sources, then [`Stem::Other`] if it has none.
    sources: Vec<Stem>,
    /// Index of Other in `sources`: where the residual goes.
    other: usize,
    /// The engine's input delayed by its latency, per channel: aligned with its stems.
    seen: [DelayLine; 2],
    /// The host input delayed by the whole latency, per channel.
    delayed: [DelayLine; 2],
    /// Scratch for one stretch of `delayed`'s output.
    delayed_out: [Vec<f32>; 2],
    down: Fft<f32>,
    up: Fft<f32>,
    /// Engine-rate delay that makes the total latency a whole number of host samples.
    pad: [DelayLine; 2],
    latency: usize,
    host_rate: usize,
    engine_rate: usize,
    host_in: Vec<Vec<f32>>,
    filled: usize,
    engine_in: Vec<Vec<f32>>,
    engine_padded: Vec<Vec<f32>>,
    engine_out: Vec<Vec<f32>>,
    host_out: Vec<Vec<f32>>,
    read: usize,
    silence: usize,
}

impl Resampled {
    /// Wraps `inner`, which runs at `engine_rate`, for a stream at `host_rate` (both in Hz).
    ///
    /// # Errors
    /// [`ResampleError`] when a rate is zero or `rubato` cannot convert between the two.
    pub fn new(inner: Box<dyn Separator>, host_rate: usize, engine_rate: usize) -> Result<Self, ResampleError> {
        let error = |why: String| ResampleError { host_rate, engine_rate, why };
        if host_rate == 0 || engine_rate == 0 {
            return Err(error("sample rates must be positive".into()));
        }
        let g = gcd(host_rate, engine_rate);
        let (host_unit, engine_unit) = (host_rate / g, engine_rate / g);
        // An even number of units keeps both resamplers' delays (half an FFT block) whole.
        let units = CHUNK_HINT.div_ceil(host_unit).next_multiple_of(2);
        let (chunk_host, chunk_engine) = (units * host_unit, units * engine_unit);
        let mut sources = inner.sources().to_vec();
        let other = Stem::Other.position_or_push(&mut sources);
        // The inner engine's lanes, then the two of its own input.
        let lanes = 2 * inner.sources().len() + 2;
        let err = |e: rubato::ResamplerConstructionError| error(e.to_string());
        let down = Fft::<f32>::new(host_rate, engine_rate, chunk_host, 2, FixedSync::Both).map_err(err)?;
        let up = Fft::<f32>::new(engine_rate, host_rate, chunk_engine, lanes, FixedSync::Both).map_err(err)?;
        assert_eq!((down.input_frames_next(), down.output_frames_next()), (chunk_host, chunk_engine));
        assert_eq!((up.input_frames_next(), up.output_frames_next()), (chunk_engine, chunk_host));
        // Engine-rate delay before the way back, padded to whole host samples.
        let engine_delay = down.output_delay() + inner.latency_samples();
        let padded = engine_delay.next_multiple_of(engine_unit);
        let pad = padded - engine_delay;
        let latency = chunk_host + padded / engine_unit * host_unit + up.output_delay();
        let inner_latency = inner.latency_samples();
        Ok(Self {
            seen: std::array::from_fn(|_| DelayLine::new(inner_latency, inner_latency)),
            delayed: std::array::from_fn(|_| DelayLine::new(latency, latency)),
            delayed_out: [vec![0.0; chunk_host], vec![0.0; chunk_host]],
            sources,
            other,
            inner,
            down,
            up,
            pad: [DelayLine::new(pad, pad), DelayLine::new(pad, pad)],
            latency,
            host_rate,
            engine_rate,
            host_in: vec![vec![0.0; chunk_host]; 2],
            filled: 0,
            engine_in: vec![vec![0.0; chunk_engine]; 2],
            engine_padded: vec![vec![0.0; chunk_engine]; 2],
            engine_out: vec![vec![0.0; chunk_engine]; lanes],
            host_out: vec![vec![0.0; chunk_host]; lanes],
            read: 0,
            silence: chunk_host,
        })
    }

    fn chunk_host(&self) -> usize {
        self.host_in[0].len()
    }

    /// Separates the full input chunk into `host_out`.
    fn run_chunk(&mut self) {
        let (chunk_host, chunk_engine, lanes) = (self.chunk_host(), self.engine_in[0].len(), self.engine_out.len());
        let input = SequentialSliceOfVecs::new(&self.host_in, 2, chunk_host).expect("sized in new");
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.engine_in, 2, chunk_engine).expect("sized in new");
        self.down.process_into_buffer(&input, &mut output, None).expect("chunk sizes fixed in new");
        for ((delay, input), output) in self.pad.iter_mut().zip(&self.engine_in).zip(&mut self.engine_padded) {
            delay.process(input, output);
        }
        let [left, right] = [&self.engine_padded[0], &self.engine_padded[1]];
        let (stem_lanes, seen) = self.engine_out.split_at_mut(lanes - 2);
        let mut stems: Vec<StereoOut<'_>> = Vec::with_capacity(lanes / 2);
        let mut lanes_out = stem_lanes.iter_mut();
        while let (Some(l), Some(r)) = (lanes_out.next(), lanes_out.next()) {
            stems.push([l.as_mut_slice(), r.as_mut_slice()]);
        }
        self.inner.process(left, right, &mut stems);
        for ((delay, input), out) in self.seen.iter_mut().zip([left, right]).zip(seen) {
            delay.process(input, out);
        }
        let input = SequentialSliceOfVecs::new(&self.engine_out, lanes, chunk_engine).expect("sized in new");
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.host_out, lanes, chunk_host).expect("sized in new");
        self.up.process_into_buffer(&input, &mut output, None).expect("chunk sizes fixed in new");
        self.read = 0;
        self.filled = 0;
    }

    /// Writes the next `len` output samples at `at` in `stems`, for the last `len` samples of
    /// input; that input's delayed copy minus what the engine saw goes to Other.
    fn emit(&mut self, stems: &mut [StereoOut<'_>], at: usize, len: usize) {
        let quiet = self.silence.min(len);
        self.silence -= quiet;
        let (from, count) = (self.read, len - quiet);
        let (stem_lanes, seen) = self.host_out.split_at(self.host_out.len() - 2);
        for (lane, host_out) in stem_lanes.iter().enumerate() {
            let out = &mut stems[lane / 2][lane % 2][at..at + len];
            out[..quiet].fill(0.0);
            // The way back can turn tiny values subnormal: clean them here, once.
            out[quiet..].iter_mut().zip(&host_out[from..from + count]).for_each(|(o, &x)| *o = clean(x));
        }
        if self.other * 2 == stem_lanes.len() {
            stems[self.other].iter_mut().for_each(|out| out[at..at + len].fill(0.0));
        }
        let input = self.filled - len..self.filled;
        for (channel, (delay, seen)) in self.delayed.iter_mut().zip(seen).enumerate() {
            let delayed = &mut self.delayed_out[channel][..len];
            delay.process(&self.host_in[channel][input.clone()], delayed);
            let out = &mut stems[self.other][channel][at..at + len];
            for (t, (o, d)) in out.iter_mut().zip(delayed.iter()).enumerate() {
                let seen = if t < quiet { 0.0 } else { seen[from + t - quiet] };
                *o = clean(*o + d - seen);
            }
        }
        self.read += count;
    }
}

impl Separator for Resampled {
    fn sources(&self) -> &[Stem] {
        &self.sources
    }

    fn latency_samples(&self) -> usize {
        self.latency
    }

    /// The inner engine's history at the host rate, plus one chunk (its input is resampled in
    /// chunks).
    fn history_samples(&self) -> usize {
        (self.inner.history_samples() * self.host_rate).div_ceil(self.engine_rate) + self.chunk_host()
    }

    /// The inner engine's bursts at the host rate, plus one chunk.
    fn burst_samples(&self) -> usize {
        (self.inner.burst_samples() * self.host_rate).div_ceil(self.engine_rate) + self.chunk_host()
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        let chunk = self.chunk_host();
        let mut done = 0;
        while done < left.len() {
            let n = (left.len() - done).min(chunk - self.filled);
            for (host_in, input) in self.host_in.iter_mut().zip([left, right]) {
                let host_in = &mut host_in[self.filled..self.filled + n];
                host_in.iter_mut().zip(&input[done..done + n]).for_each(|(h, &x)| *h = clean(x));
            }
            self.filled += n;
            self.emit(stems, done, n);
            done += n;
            if self.filled == chunk {
                self.run_chunk();
            }
        }
    }

    fn failure(&self) -> Option<&str> {
        self.inner.failure()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.down.reset();
        self.up.reset();
        self.pad.iter_mut().chain(&mut self.seen).chain(&mut self.delayed).for_each(DelayLine::reset);
        self.filled = 0;
        self.read = 0;
        self.silence = self.chunk_host();
        self.host_out.iter_mut().for_each(|lane| lane.fill(0.0));
    }
}
