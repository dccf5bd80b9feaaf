//! A fitted refinement of the stem masks: per bin, a softmax over the four stems whose logits are
//! the engine's own masks (their logarithms) plus a linear function of what the engine measured
//! there (stereo position, the voice comb and its voicing gate, how tonal, percussive and loud the
//! bin is, its share before the comb). The weights vary smoothly with frequency (triangular bands,
//! an octave apart, on a log-frequency axis); with zero weights the masks would be the engine's,
//! up to the floor of 10⁻³ that every stem keeps (−60 dB).
//!
//! This is supervised time-frequency mask estimation in its smallest form: a generalised linear
//! model on hand-made measures instead of a network. The masks are trained as ratio masks are
//! (Wang, Narayanan & Wang 2014, "On training targets for supervised speech separation", IEEE/ACM
//! TASLP 22(12)), by the phase-sensitive loss: the squared error of the masked mixture spectrum
//! against the true stem's, which is what the MDX SDR measures (Erdogan, Hershey, Watanabe &
//! Le Roux 2015, "Phase-sensitive and recognition-boosted speech separation using deep recurrent
//! neural networks", ICASSP). The weights were fit by `bench/mask_fit.py` on the "fit" and "vfit"
//! splits of bench/songs.py's dataset (what the engine saw there, through `dsp/examples/hpss_tap.rs`),
//! each stem of each song weighted by one over its energy, at the normal preset and 44.1 kHz; the
//! measures were chosen on the development splits. The bands are in Hz, so other rates read the
//! same weights at their own bins, and the other presets use them too.

use super::masks::{StemMasks, smooth_step};
use crate::signal::median_network::LANES;

/// Centres of the triangular bands, in Hz: an octave apart. Below the first and above the last
/// the weights are constant.
const BAND_HZ: [f32; BANDS] = [40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 5120.0, 10240.0];
const BANDS: usize = 9;
/// Measures per bin (listed in `MaskRefiner::measure`).
const FEATURES: usize = 16;
/// The smallest mask whose logarithm is a logit: a stem the engine gave nothing can still gain.
const FLOOR: f32 = 1e-3;
/// The vocals' adjustment fades in between these frequencies, in Hz (the voice comb's lowest pitch
/// is 90 Hz): no voice sounds lower, and a low tone unlike the fit's songs must not gain vocals.
const VOICE_LOWEST_HZ: (f32, f32) = (60.0, 90.0);
/// Bounds of the log-ratios among the measures (`bench/mask_fit.py`'s clips).
const RATIO_RANGE: (f32, f32) = (-4.0, 2.0);
const LEVEL_RANGE: (f32, f32) = (-6.0, 6.0);
const PEAK_RANGE: (f32, f32) = (-4.0, 4.0);
/// A bin's peak measure compares it with the bins this far below and above it.
const PEAK_REACH: usize = 2;
/// Keeps the log-ratios finite at silent bins.
const TINY: f32 = 1e-9;
/// A bin's level is its magnitude relative to the frame's mean up to this frequency (the fit's
/// Nyquist frequency), so that higher rates, whose extra bins are mostly empty, read alike.
const LEVEL_HZ: f32 = 22_050.0;

/// Per bin, the weights of each fitted stem's measures (drums, bass, vocals; "other" keeps the
/// engine's logit), and the frame's measures and logits; all memory allocated in `new`. Laid out
/// measure by measure (`[measure][bin]`) so that every step is a loop over bins that vectorises.
pub struct MaskRefiner {
    bins: usize,
    /// Length of a row: `bins` rounded up to whole groups of [`LANES`] (the rest zeros), so that
    /// the loops over a row have no remainder.
    stride: usize,
    /// `[stem][measure][bin]`.
    weights: Vec<f32>,
    /// Bins up to [`LEVEL_HZ`], over which a frame's mean magnitude is taken.
    level_bins: usize,
    /// `[measure][bin]`, the first row all ones (the bias).
    measures: Vec<f32>,
    /// `[stem][bin]`: the fitted stems' logits less the engine's, then their exponentials.
    logits: Vec<f32>,
    /// `ln` of each bin's magnitude.
    log_magnitude: Vec<f32>,
}

/// What the refinement reads of one frame besides its masks.
pub struct FrameMeasures<'a> {
    /// Each bin's [`centre_measure`](super::masks::centre_measure), as the stem masks used it.
    pub centre: &'a [f32],
    /// The mid magnitude `sqrt((|L|² + |R|²) / 2)` per bin.
    pub magnitudes: &'a [f32],
    /// The time and frequency medians per bin.
    pub harmonic: &'a [f32],
    pub percussive: &'a [f32],
    /// The masks before the voice comb.
    pub before_comb: &'a [StemMasks],
    /// The comb's weights per bin and the frame's voicing gate.
    pub comb: &'a [f32],
    pub gate: f32,
}

impl MaskRefiner {
    /// Weights for `bins` bins of an `fft_size`-point transform at `sample_rate`.
    pub fn new(bins: usize, fft_size: usize, sample_rate: f32) -> Self {
        assert!(bins > 2 * PEAK_REACH, "the peak measure needs bins on both sides");
        let bin_hz = sample_rate / fft_size as f32;
        let band = |bin: usize, b: usize| {
            let hz = (bin as f32 * bin_hz).max(BAND_HZ[0]);
            let octave = (hz / BAND_HZ[0]).log2().clamp(0.0, (BANDS - 1) as f32);
            (1.0 - (octave - b as f32).abs()).max(0.0)
        };
        let reach = |stem: usize, bin: usize| {
            if stem == 2 { smooth_step(bin as f32 * bin_hz, VOICE_LOWEST_HZ.0, VOICE_LOWEST_HZ.1) } else { 1.0 }
        };
        let stride = bins.next_multiple_of(LANES);
        let weights = WEIGHTS
            .iter()
            .enumerate()
            .flat_map(|(stem, per_measure)| per_measure.iter().map(move |per_band| (stem, per_band)))
            .flat_map(|(stem, per_band)| {
                (0..stride).map(move |bin| {
                    let weight = (0..BANDS).map(|b| band(bin, b) * per_band[b]).sum::<f32>();
                    if bin < bins { reach(stem, bin) * weight } else { 0.0 }
                })
            })
            .collect();
        let mut measures = vec![0.0; FEATURES * stride];
        measures[..bins].fill(1.0);
        Self {
            bins,
            stride,
            weights,
            level_bins: bins.min((LEVEL_HZ / bin_hz).floor() as usize + 1),
            measures,
            logits: vec![0.0; 3 * stride],
            log_magnitude: vec![0.0; bins],
        }
    }

    /// Replaces `masks` (the engine's, after the voice comb) by their refinement; they still sum
    /// to one.
    #[inline(always)]
    pub fn apply(&mut self, masks: &mut [StemMasks], frame: &FrameMeasures<'_>) {
        self.measure(masks, frame);
        let stride = self.stride;
        // Row by row: each stem's logits gain one measure times its weights at a time, then
        // become the factor `e^logit` on the engine's mask.
        for (logits, weights) in self.logits.chunks_exact_mut(stride).zip(self.weights.chunks_exact(FEATURES * stride))
        {
            logits.fill(0.0);
            for (row, weights) in self.measures.chunks_exact(stride).zip(weights.chunks_exact(stride)) {
                for ((logit, &x), &w) in logits.iter_mut().zip(row).zip(weights) {
                    *logit += w * x;
                }
            }
            for logit in logits.iter_mut() {
                *logit = exp(*logit);
            }
        }
        let (drums, rest) = self.logits.split_at(stride);
        let (bass, vocals) = rest.split_at(stride);
        for (m, ((&d, &b), &v)) in masks.iter_mut().zip(drums.iter().zip(bass).zip(vocals)) {
            let [drums, bass, vocals] = [m.drums.max(FLOOR) * d, m.bass.max(FLOOR) * b, m.vocals.max(FLOOR) * v];
            let scale = 1.0 / (drums + bass + vocals + m.other.max(FLOOR));
            *m = StemMasks::with_other(drums * scale, bass * scale, vocals * scale);
        }
    }

    /// Fills `measures` for the frame, in the order of [`WEIGHTS`] (and of `bench/mask_fit.py`'s
    /// `FEATURES`); the bias row stays as `new` set it.
    #[inline(always)]
    fn measure(&mut self, masks: &[StemMasks], frame: &FrameMeasures<'_>) {
        let bins = self.bins;
        let m = frame.magnitudes;
        for (l, &m) in self.log_magnitude.iter_mut().zip(m) {
            *l = ln(m + TINY);
        }
        let log_mean = ln(m[..self.level_bins].iter().sum::<f32>() / self.level_bins as f32 + TINY);
        let mut rows = self.measures.chunks_exact_mut(self.stride).map(|row| &mut row[..bins]);
        #[rustfmt::skip]
        let [_bias, centre, centre2, comb, gate, on_comb, tonal, percussive, level, centred_voice, on_comb_centre2,
            drums, peak, bass_before, tonal_centre2, centre8]: [&mut [f32]; FEATURES] =
            std::array::from_fn(|_| rows.next().expect("FEATURES rows of `bins` measures"));
        let log_magnitude = &self.log_magnitude[..bins];
        let log_ratio = |out: &mut [f32], x: &[f32]| {
            for ((out, &x), &l) in out.iter_mut().zip(x).zip(log_magnitude) {
                *out = (ln(x + TINY) - l).clamp(RATIO_RANGE.0, RATIO_RANGE.1);
            }
        };
        log_ratio(tonal, frame.harmonic);
        log_ratio(percussive, frame.percussive);
        for (out, &l) in level.iter_mut().zip(log_magnitude) {
            *out = (l - log_mean).clamp(LEVEL_RANGE.0, LEVEL_RANGE.1);
        }
        // A bin against the mean of the bins PEAK_REACH below and above it (the edges repeat the
        // first and last bin).
        let inner = PEAK_REACH..bins.saturating_sub(PEAK_REACH).max(PEAK_REACH);
        for bin in (0..PEAK_REACH).chain(inner.end..bins) {
            let neighbours = 0.5 * (m[bin.saturating_sub(PEAK_REACH)] + m[(bin + PEAK_REACH).min(bins - 1)]);
            peak[bin] = (log_magnitude[bin] - ln(neighbours + TINY)).clamp(PEAK_RANGE.0, PEAK_RANGE.1);
        }
        let (below, above) = (&m[..inner.len()], &m[2 * PEAK_REACH..]);
        for (((out, &l), &below), &above) in
            peak[inner.clone()].iter_mut().zip(&log_magnitude[inner]).zip(below).zip(above)
        {
            *out = (l - ln(0.5 * (below + above) + TINY)).clamp(PEAK_RANGE.0, PEAK_RANGE.1);
        }
        centre.copy_from_slice(frame.centre);
        for (((c2, c8), t), (&c, &tonal)) in
            centre2.iter_mut().zip(centre8.iter_mut()).zip(tonal_centre2.iter_mut()).zip(centre.iter().zip(&*tonal))
        {
            *c2 = c * c;
            *c8 = (*c2 * *c2) * (*c2 * *c2);
            *t = tonal * *c2;
        }
        gate.fill(frame.gate);
        comb.copy_from_slice(frame.comb);
        for (((on, on_c2), &k), &c2) in
            on_comb.iter_mut().zip(on_comb_centre2.iter_mut()).zip(frame.comb).zip(&*centre2)
        {
            *on = k * frame.gate;
            *on_c2 = *on * c2;
        }
        for (((v, b), d), (before, now)) in centred_voice
            .iter_mut()
            .zip(bass_before.iter_mut())
            .zip(drums.iter_mut())
            .zip(frame.before_comb.iter().zip(masks))
        {
            (*v, *b, *d) = (before.vocals, before.bass, now.drums);
        }
    }
}

/// `ln(x)` for positive normal `x`, within 3.1e-6 of it (absolute; up to 8e-6 near 10^28; not for
/// zero, subnormals, infinities or NaN, which every caller's `+ TINY` and the engine's input
/// cleaning rule out): `x = 2^e · m` with `m` in [1, 2), and
/// `ln(m) = 2·atanh((m − 1)/(m + 1))` by its series to the ninth power (plain arithmetic on
/// the bits, so that the loops over bins vectorise; `f32::ln` is a library call).
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = 1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0))));
    exponent * std::f32::consts::LN_2 + 2.0 * t * series
}

/// `e^x` within 4.4e-6 of it (relative; 1.7e-6 for |x| ≤ 15, and the fitted logits stay within
/// about ±12) for `x` in [−80, 80], clamped there: `2^(n + f)` with
/// `2^f` by its Taylor series to the seventh power and `2^n` built in the exponent bits: `n + 127`
/// is read off the bits of `n + 127 + 2^23` (an integer below 2^23 added to 2^23 lands in the
/// mantissa), which avoids a float-to-integer conversion that would not vectorise.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const TWO_TO_23: f32 = 8_388_608.0;
    let y = x.clamp(-80.0, 80.0) * std::f32::consts::LOG2_E;
    let n = y.floor();
    let f = (y - n) * std::f32::consts::LN_2;
    let series = 1.0
        + f * (1.0
            + f * (1.0 / 2.0
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f / 5040.0))))));
    let biased = (n + 127.0 + TWO_TO_23).to_bits() - TWO_TO_23.to_bits();
    series * f32::from_bits(biased << 23)
}

/// Fit by `python3 bench/mask_fit.py` (its last lines): per fitted stem, per measure, per band.
#[rustfmt::skip]
#[allow(clippy::excessive_precision)]
const WEIGHTS: [[[f32; BANDS]; FEATURES]; 3] = [
    // drums
    [
        [-2.528431e-01, 1.087391e-02, -7.210589e-02, -3.161524e-01, -2.920150e-01, -1.489176e-01, -9.125855e-02, 2.620353e-01, 4.936074e-01], // bias
        [-1.668288e-01, 1.439810e-01, 1.084532e-01, -1.264176e-03, -4.728899e-03, 9.766720e-02, 2.381449e-01, 4.201490e-01, 3.916292e-01], // centre
        [-1.501606e-01, 1.438352e-01, 9.925856e-02, 3.260761e-02, 2.549455e-02, 1.436060e-01, 2.925384e-01, 4.265473e-01, 3.669853e-01], // centre2
        [-2.199951e-04, 2.077637e-02, 8.633417e-02, 4.503542e-02, -4.735179e-02, -6.689032e-02, -2.019773e-01, -8.955008e-02, 6.989951e-02], // comb
        [-1.566517e-01, -6.879839e-02, -1.035422e-01, -1.629886e-01, -1.383232e-01, -8.477556e-02, -1.137250e-01, 1.360218e-01, 3.371772e-01], // gate
        [-2.799659e-04, -1.309635e-02, 2.743595e-02, 1.514217e-02, -1.795012e-02, -6.296944e-02, -2.019433e-01, -1.201265e-01, 4.487990e-02], // comb*gate
        [1.347696e-01, 5.017090e-01, 1.823590e-01, 4.268081e-01, 4.794342e-01, 5.943759e-01, 6.621570e-01, 5.319614e-01, -8.229854e-03], // tonal
        [2.277917e-01, -3.235215e-01, -7.085221e-01, -5.615102e-01, -1.136897e-01, -1.985923e-02, -4.751979e-02, -2.824840e-01, -3.720773e-01], // percussive
        [-7.139103e-01, -1.876236e-01, -2.819969e-02, -4.092210e-01, -4.279709e-01, -2.579437e-01, -3.924402e-01, 2.818269e-02, 1.626424e-02], // level
        [0.000000e+00, -1.069083e-07, 6.293466e-03, 9.733392e-04, 2.656736e-02, 1.413365e-01, 2.754128e-01, 3.614842e-01, 4.755215e-02], // centred voice
        [-2.672383e-04, -1.146738e-02, 3.644549e-02, 4.376081e-02, 2.470514e-02, 4.157268e-02, -1.307570e-02, -2.367009e-02, 5.224955e-02], // comb*gate*centre2
        [-1.045492e-01, -8.256045e-02, -1.739356e-01, -3.001181e-01, -2.952293e-01, -2.451542e-01, -2.593632e-01, -1.407944e-01, 8.688037e-02], // drums
        [1.544490e-01, -3.926699e-01, 1.753019e-01, 1.163245e-01, 1.418304e-01, 1.588455e-01, 2.240065e-01, 2.924839e-01, 3.105238e-01], // peak
        [-1.482939e-01, 8.805919e-02, 1.037257e-01, 5.660448e-02, 1.773935e-02, 9.347784e-04, 2.046389e-05, 0.000000e+00, 0.000000e+00], // bass before comb
        [8.377276e-02, 3.151141e-01, 3.338181e-02, 1.182297e-01, 2.362152e-02, 7.080282e-02, 1.269531e-01, 2.624711e-01, -3.125310e-02], // tonal*centre2
        [-1.102631e-01, 4.980465e-02, 4.647717e-02, 1.005760e-01, 6.605973e-02, 1.981534e-01, 3.257531e-01, 3.803243e-01, 3.102421e-01], // centre8
    ],
    // bass
    [
        [-2.588068e-01, -1.208719e-01, 1.021762e-01, 3.549676e-01, 4.642385e-01, 3.879836e-01, 5.685406e-02, 6.751059e-03, 6.133151e-04], // bias
        [-2.847364e-01, -2.140866e-01, -4.679278e-03, 1.756816e-01, 3.653166e-01, 3.472266e-01, 5.297024e-02, 6.026777e-03, 4.866874e-04], // centre
        [-2.648570e-01, -2.107582e-01, -9.430293e-02, -1.831713e-02, 2.990309e-01, 3.296645e-01, 5.053393e-02, 5.788941e-03, 4.583266e-04], // centre2
        [2.194619e-04, -2.401668e-02, 6.527766e-02, 2.004163e-01, 2.032422e-01, 1.310706e-01, 3.825866e-02, 4.362705e-03, 2.637369e-04], // comb
        [-2.210278e-01, 9.082870e-02, 1.045606e-01, 1.829999e-01, -3.172533e-02, 8.281091e-02, 3.232110e-02, 4.490542e-03, 4.336591e-04], // gate
        [2.731452e-04, 1.173177e-02, 2.630913e-02, 2.205040e-01, 1.041894e-02, -4.565458e-02, 2.095055e-02, 2.927988e-03, 1.882776e-04], // comb*gate
        [-2.898244e-01, -2.733016e-01, -4.785794e-02, 1.275690e-01, 9.046864e-02, -4.212117e-02, -1.642557e-02, -4.988594e-03, -2.806883e-04], // tonal
        [7.669344e-01, 3.721053e-01, 1.859938e-01, 6.367655e-01, 3.707617e-01, -4.960893e-02, -9.697929e-02, -9.219821e-03, -7.771896e-04], // percussive
        [-9.204493e-01, -2.530033e-01, 3.991049e-01, 7.072080e-02, 5.651558e-02, 3.525495e-01, 1.179912e-01, 1.096333e-02, 4.096752e-04], // level
        [0.000000e+00, 7.165398e-08, 7.774140e-02, 1.612303e-01, 1.749058e-01, 2.265327e-01, 4.502885e-02, 4.254210e-03, 1.261674e-04], // centred voice
        [2.610176e-04, 1.112360e-02, -3.160761e-02, 8.690272e-02, -1.596427e-02, -4.844727e-02, 2.089688e-02, 2.769725e-03, 1.687672e-04], // comb*gate*centre2
        [1.740232e-01, 1.921008e-02, 5.947773e-02, 1.193348e-01, 1.617217e-01, 1.038036e-01, 9.041401e-03, 2.064922e-03, 1.535621e-04], // drums
        [-3.345306e-02, 3.336405e-01, 5.173645e-01, 3.883474e-01, 1.985378e-01, 3.475731e-01, 1.001348e-01, 7.309800e-03, 6.244762e-04], // peak
        [-4.328300e-01, -1.260553e-01, -2.513324e-01, -2.582635e-01, -1.158050e-02, 1.870050e-02, 4.640143e-05, 0.000000e+00, 0.000000e+00], // bass before comb
        [-2.400051e-01, -9.391225e-02, 4.612849e-02, 1.581081e-01, 1.220442e-01, -5.383437e-03, -9.663377e-03, -3.677602e-03, -2.114872e-04], // tonal*centre2
        [-1.833431e-01, -1.081163e-01, -1.848191e-01, -3.265592e-01, 2.223501e-01, 2.908433e-01, 4.301441e-02, 4.944509e-03, 3.882194e-04], // centre8
    ],
    // vocals
    [
        [6.617233e-04, 4.459796e-02, 4.181235e-02, -5.028188e-02, -4.653848e-03, -2.731991e-02, -7.450395e-02, -6.454550e-02, -1.737511e-02], // bias
        [6.794016e-04, 4.300522e-02, 8.237332e-02, 1.575859e-01, -3.824036e-01, -2.783051e-01, 7.670365e-02, 7.387934e-03, -7.518328e-03], // centre
        [6.848985e-04, 4.242729e-02, 7.383732e-02, 1.721449e-01, -1.607016e-01, -4.903432e-02, 1.336554e-01, 3.751581e-02, -4.989982e-03], // centre2
        [-1.996275e-07, 4.429808e-04, 1.344609e-03, -1.248838e-01, 5.133045e-02, -1.236386e-01, -1.624744e-01, -1.044759e-01, -2.032505e-02], // comb
        [-8.495105e-05, -2.855931e-02, -1.886917e-02, -4.216022e-01, -8.079628e-01, -5.266422e-01, -1.477153e-01, -7.876540e-02, -1.599995e-02], // gate
        [2.377406e-07, 1.042643e-04, -3.522570e-02, -4.476192e-01, -6.698560e-01, -5.425287e-01, -2.097056e-01, -1.108955e-01, -1.860151e-02], // comb*gate
        [-3.015187e-03, -8.984434e-02, 1.169648e-04, -6.937124e-02, -4.985708e-01, -1.774346e-01, -2.996315e-02, -1.886471e-01, -2.917333e-03], // tonal
        [-4.522242e-05, -5.779961e-02, -2.772047e-01, -4.563758e-01, -5.984025e-02, 3.079948e-01, 3.454087e-01, 4.355127e-01, 6.123059e-02], // percussive
        [2.785383e-03, 2.355135e-01, 2.363890e-01, 3.465363e-02, 7.643097e-01, 9.756454e-01, 1.491472e-01, -9.774107e-02, -4.774554e-02], // level
        [0.000000e+00, 3.733266e-09, 3.791306e-03, 1.543006e-02, -2.073128e-01, -7.955680e-02, 1.237971e-01, -2.247125e-02, -4.727016e-03], // centred voice
        [2.213697e-07, 7.266614e-05, 1.609032e-02, -1.789310e-01, -4.212386e-01, -2.690133e-01, -3.804997e-02, -1.876449e-02, -7.439634e-03], // comb*gate*centre2
        [7.109738e-04, 3.334757e-02, -3.683843e-03, -4.408530e-02, -9.512792e-02, -3.855969e-02, -1.095520e-02, 7.029939e-02, 3.210711e-03], // drums
        [2.414549e-04, 7.702175e-02, 7.993243e-02, -4.209106e-01, -7.912373e-01, -5.894385e-01, -3.241881e-01, -6.448636e-02, -1.299590e-02], // peak
        [-4.925047e-05, 1.108592e-02, 6.350143e-02, 1.737100e-01, 9.941038e-02, 2.989666e-02, -1.946602e-05, 0.000000e+00, 0.000000e+00], // bass before comb
        [-2.964322e-03, -8.673036e-02, -1.816758e-02, -1.621421e-01, -2.561458e-01, -1.613047e-01, -1.785661e-01, -2.110138e-01, -3.698199e-03], // tonal*centre2
        [6.737576e-04, 3.989479e-02, 6.156349e-02, 1.847478e-01, 1.711040e-01, 3.134057e-01, 2.383637e-01, 1.131278e-01, -1.522851e-03], // centre8
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `bins` bins, every bin alike: centred (centre measure 1) or one-sided (0), on the
    /// comb or not, with the given medians relative to a unit magnitude.
    struct Frame {
        centre: Vec<f32>,
        magnitudes: Vec<f32>,
        harmonic: Vec<f32>,
        percussive: Vec<f32>,
        before_comb: Vec<StemMasks>,
        comb: Vec<f32>,
    }

    impl Frame {
        fn new(bins: usize, centred: bool, comb: f32, harmonic: f32, percussive: f32) -> Self {
            let magnitude = if centred { 1.0 } else { 0.5f32.sqrt() };
            Self {
                centre: vec![if centred { 1.0 } else { 0.0 }; bins],
                magnitudes: vec![magnitude; bins],
                harmonic: vec![harmonic * magnitude; bins],
                percussive: vec![percussive * magnitude; bins],
                before_comb: vec![StemMasks::with_other(0.1, 0.1, if centred { 0.6 } else { 0.0 }); bins],
                comb: vec![comb; bins],
            }
        }

        fn measures(&self, gate: f32) -> FrameMeasures<'_> {
            FrameMeasures {
                centre: &self.centre,
                magnitudes: &self.magnitudes,
                harmonic: &self.harmonic,
                percussive: &self.percussive,
                before_comb: &self.before_comb,
                comb: &self.comb,
                gate,
            }
        }
    }

    #[test]
    fn ln_and_exp_on_the_bits_agree_with_the_library() {
        let mut x = 1e-9f32;
        while x < 1e12 {
            assert!((ln(x) - x.ln()).abs() < 3.2e-6, "ln({x}) = {} against {}", ln(x), x.ln());
            x *= 1.013;
        }
        let mut y = -80.0f32;
        while y <= 80.0 {
            let relative = (exp(y) - y.exp()).abs() / y.exp();
            assert!(relative < if y.abs() <= 15.0 { 1.7e-6 } else { 4.5e-6 }, "exp({y}): {relative}");
            y += 0.0371;
        }
        assert_eq!(exp(1e9), exp(80.0), "clamped");
        assert_eq!(exp(-1e9), exp(-80.0), "clamped");
    }

    #[test]
    fn refined_masks_sum_to_one_at_every_rate_and_for_silence() {
        for (bins, fft_size, rate) in [(1025, 2048, 44_100.0), (513, 1024, 8_000.0), (2049, 4096, 192_000.0)] {
            let mut refiner = MaskRefiner::new(bins, fft_size, rate);
            for (centred, comb, gate) in [(true, 1.0, 1.0), (false, 0.0, 0.0), (true, 0.5, 0.3)] {
                let mut frame = Frame::new(bins, centred, comb, 1.0, 0.2);
                let engine = [
                    StemMasks::with_other(0.1, 0.2, 0.3),
                    StemMasks::with_other(1.0, 0.0, 0.0),
                    StemMasks::with_other(0.0, 0.0, 0.0),
                ];
                for masks in engine {
                    for silent in [false, true] {
                        if silent {
                            frame = Frame::new(bins, centred, comb, 0.0, 0.0);
                            frame.magnitudes.fill(0.0);
                            frame.centre.fill(0.0);
                        }
                        let mut refined = vec![masks; bins];
                        refiner.apply(&mut refined, &frame.measures(gate));
                        for m in &refined {
                            assert!((m.sum() - 1.0).abs() < 1e-5 && m.all_in_unit_range(), "{m:?}");
                        }
                        // The fitted weights move the masks: the refinement is not the identity.
                        let moved = refined.iter().map(|m| (m.vocals - masks.vocals).abs()).fold(0.0, f32::max);
                        assert!(moved > 1e-3, "the masks did not move: {masks:?}");
                    }
                }
            }
        }
    }
}
