//! Medians of eight values at once with a sorting network.
//!
//! Eight medians that need the same number of inputs are eight lanes of one network: every
//! compare-exchange is a `min` and a `max` over eight lanes, which the compiler turns into two
//! vector instructions, with no branch on the data. The streaming HPSS engine takes both its
//! medians this way: over time for eight neighbouring bins, and over frequency for eight
//! neighbouring windows of a frame ([`NetworkMedianFilter`]).

use crate::signal::median::reflect_index;

/// Medians computed together (one AVX register of `f32`).
pub const LANES: usize = 8;
/// Most values one median can take: the network sorts up to this many (plus one, a power of two).
pub const MAX_KERNEL: usize = 63;
const NETWORK_SIZE: usize = MAX_KERNEL + 1;

/// One value per lane.
pub type Lanes = [f32; LANES];

/// A median-selection network for a fixed odd number of values.
pub struct MedianNetwork {
    kernel: usize,
    /// Compare-exchange pairs `(low, high)` of Batcher's odd-even merge sort that can change the
    /// median slot, among the first `kernel` slots (the others would hold +∞ and never move).
    pairs: Vec<(u8, u8)>,
    /// The values being sorted as their bit patterns, one row per input (a fixed array: indexing
    /// it needs no bounds checks once the index is masked).
    slots: Box<[[u32; LANES]; NETWORK_SIZE]>,
}

/// Batcher's odd-even merge sort network for `n` (a power of two) inputs.
fn batcher_pairs(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            for j in (k % p..n - k).step_by(2 * k) {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.push((i + j, i + j + k));
                    }
                }
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

impl MedianNetwork {
    /// A network for medians of `kernel` values (odd, at most [`MAX_KERNEL`]).
    pub fn new(kernel: usize) -> Self {
        assert!(kernel % 2 == 1 && kernel <= MAX_KERNEL, "median kernel must be odd and at most {MAX_KERNEL}");
        let sorting: Vec<_> =
            batcher_pairs(kernel.next_power_of_two()).into_iter().filter(|&(_, high)| high < kernel).collect();
        // Walking back from the median slot, keep only the exchanges whose result reaches it.
        let mut needed = [false; NETWORK_SIZE];
        needed[kernel / 2] = true;
        let mut pairs: Vec<(u8, u8)> = Vec::new();
        for &(low, high) in sorting.iter().rev() {
            if needed[low] || needed[high] {
                needed[low] = true;
                needed[high] = true;
                pairs.push((low as u8, high as u8));
            }
        }
        pairs.reverse();
        Self { kernel, pairs, slots: Box::new([[0; LANES]; NETWORK_SIZE]) }
    }

    /// Lane by lane, the median of `row(0) ..= row(kernel - 1)`, which must be non-negative.
    ///
    /// Non-negative floats order like their bit patterns as unsigned integers, and integer
    /// `min`/`max` are single vector instructions with no NaN handling (the float forms need
    /// three, and a float compare-and-select may become masked stores that stall the next loads).
    #[inline(always)]
    pub fn median(&mut self, row: impl Fn(usize) -> Lanes) -> Lanes {
        let slots = &mut *self.slots;
        for (j, slot) in slots[..self.kernel].iter_mut().enumerate() {
            let values = row(j);
            debug_assert!(values.iter().all(|v| *v >= 0.0), "medians of non-negative values only");
            *slot = values.map(f32::to_bits);
        }
        for &(low, high) in &self.pairs {
            let (low, high) = (low as usize % NETWORK_SIZE, high as usize % NETWORK_SIZE);
            let (a, b) = (slots[low], slots[high]);
            slots[low] = std::array::from_fn(|l| a[l].min(b[l]));
            slots[high] = std::array::from_fn(|l| a[l].max(b[l]));
        }
        slots[self.kernel / 2].map(f32::from_bits)
    }
}

/// Centred median filter with `reflect` boundaries (scipy.ndimage's `reflect` mode) for a fixed
/// odd kernel and input length: eight neighbouring outputs per network pass. All memory is
/// allocated at construction.
pub struct NetworkMedianFilter {
    network: MedianNetwork,
    len: usize,
    /// The input extended by reflection: `kernel / 2` values before, the rest after, plus slack so
    /// that the last group of lanes reads in bounds.
    padded: Vec<f32>,
}

impl NetworkMedianFilter {
    /// A filter of odd length `kernel` (at most [`MAX_KERNEL`]) for inputs of `len` values.
    pub fn new(kernel: usize, len: usize) -> Self {
        Self { network: MedianNetwork::new(kernel), len, padded: vec![0.0; len.next_multiple_of(LANES) + kernel] }
    }

    /// `out[i] = median(input[i - kernel/2 ..= i + kernel/2])`, reflecting at the ends. `input`
    /// (non-negative, such as magnitudes) and `out` must have the length given at construction.
    #[inline(always)]
    pub fn apply(&mut self, input: &[f32], out: &mut [f32]) {
        assert!(input.len() == self.len && out.len() == self.len, "input length fixed at construction");
        let half = self.network.kernel / 2;
        let interior = half..half + self.len;
        self.padded[interior.clone()].copy_from_slice(input);
        // Only the ends reflect (`reflect_index` divides).
        for i in (0..half).chain(interior.end..self.padded.len()) {
            self.padded[i] = input[reflect_index(i as isize - half as isize, self.len)];
        }
        let padded = &self.padded;
        for (group, chunk) in out.chunks_mut(LANES).enumerate() {
            let start = group * LANES;
            let medians =
                self.network.median(|j| padded[start + j..start + j + LANES].try_into().expect("eight lanes"));
            chunk.copy_from_slice(&medians[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::median::median_filter_reflect;

    #[test]
    fn batcher_network_sorts() {
        let pairs = batcher_pairs(16);
        let mut state = 3u32;
        for _ in 0..200 {
            let mut v: Vec<u32> = (0..16)
                .map(|_| {
                    state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                    state >> 28
                })
                .collect();
            for &(a, b) in &pairs {
                if v[a] > v[b] {
                    v.swap(a, b);
                }
            }
            assert!(v.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn equals_the_sliding_median_for_every_kernel_and_length() {
        let mut state = 7u32;
        for len in [1, 5, 8, 13, 64, 1025] {
            let input: Vec<f32> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                    ((state >> 24) % 23) as f32 * 0.5
                })
                .collect();
            for kernel in (1..=MAX_KERNEL).step_by(4).filter(|&k| k / 2 < len.max(1) || k == 1) {
                let mut network = NetworkMedianFilter::new(kernel, len);
                let mut out = vec![0.0; len];
                network.apply(&input, &mut out);
                let mut expected = vec![0.0; len];
                median_filter_reflect(&input, &mut vec![0.0; kernel], &mut expected);
                assert_eq!(out, expected, "kernel {kernel}, length {len}");
            }
        }
    }
}
