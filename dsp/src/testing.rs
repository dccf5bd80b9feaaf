//! Test signals for the library's unit tests.

/// `len` samples of deterministic noise in [-1, 1) (a linear congruential generator from `seed`).
pub fn noise(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}
