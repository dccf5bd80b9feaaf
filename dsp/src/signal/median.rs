//! Median filters built on a sorted sliding window: O(kernel) per step instead of a full sort.
//!
//! Values must be finite. Both HPSS directions use these: the time median keeps one sorted window
//! per frequency bin, the frequency median slides one window along a frame.

/// Replaces one occurrence of `old` in the ascending slice `sorted` by `new`, keeping it sorted.
///
/// `old` must be present (bit-exact) in `sorted`.
#[inline(always)]
pub fn replace_sorted(sorted: &mut [f32], old: f32, new: f32) {
    // Branch-free counts in one pass (it vectorises) beat binary searches on windows this short.
    let (below_old, below_new) =
        sorted.iter().fold((0u32, 0u32), |(a, b), &v| (a + u32::from(v < old), b + u32::from(v < new)));
    let from = below_old as usize;
    debug_assert!(from < sorted.len() && sorted[from] == old, "value to replace is not in the window");
    if new > old {
        let to = below_new as usize - 1;
        sorted.copy_within(from + 1..=to, from);
        sorted[to] = new;
    } else {
        let to = below_new as usize;
        sorted.copy_within(to..from, to + 1);
        sorted[to] = new;
    }
}

/// Index into a signal of length `len` extended by half-sample symmetric reflection
/// (`d c b a | a b c d | d c b a`, scipy.ndimage's `reflect` mode).
pub fn reflect_index(i: isize, len: usize) -> usize {
    let len = len as isize;
    let period = 2 * len;
    let m = i.rem_euclid(period);
    (if m < len { m } else { period - 1 - m }) as usize
}

/// Centred median filter of odd length `window.len()` with `reflect` boundaries:
/// `out[i] = median(input[i - k/2 ..= i + k/2])`. `window` is scratch space whose length sets the
/// kernel; `input` and `out` must have the same length.
#[inline(always)]
pub fn median_filter_reflect(input: &[f32], window: &mut [f32], out: &mut [f32]) {
    let k = window.len();
    debug_assert!(k % 2 == 1, "median kernel must be odd");
    debug_assert_eq!(input.len(), out.len());
    let n = input.len();
    if n == 0 {
        return;
    }
    let half = (k / 2) as isize;
    for (j, w) in window.iter_mut().enumerate() {
        *w = input[reflect_index(j as isize - half, n)];
    }
    window.sort_unstable_by(f32::total_cmp);
    out[0] = window[k / 2];
    // Reflect only near the edges: `reflect_index` divides.
    let at = |i: isize| if (0..n as isize).contains(&i) { input[i as usize] } else { input[reflect_index(i, n)] };
    for i in 1..n as isize {
        let (old, new) = (at(i - 1 - half), at(i + half));
        replace_sorted(window, old, new);
        out[i as usize] = window[k / 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_median(input: &[f32], k: usize) -> Vec<f32> {
        let half = (k / 2) as isize;
        (0..input.len() as isize)
            .map(|i| {
                let mut w: Vec<f32> = (-half..=half).map(|d| input[reflect_index(i + d, input.len())]).collect();
                w.sort_by(f32::total_cmp);
                w[k / 2]
            })
            .collect()
    }

    #[test]
    fn reflect_matches_scipy_convention() {
        let idx: Vec<usize> = (-4..8).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(idx, vec![3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]);
    }

    #[test]
    fn sliding_median_equals_sorting_each_window() {
        let mut state = 12345u32;
        let input: Vec<f32> = (0..300)
            .map(|_| {
                state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                // Coarse values so that ties occur often.
                ((state >> 24) % 17) as f32
            })
            .collect();
        for k in [1, 3, 5, 17, 31] {
            let mut window = vec![0.0; k];
            let mut out = vec![0.0; input.len()];
            median_filter_reflect(&input, &mut window, &mut out);
            assert_eq!(out, naive_median(&input, k), "kernel {k}");
        }
    }

    #[test]
    fn replace_keeps_order() {
        let mut w = vec![1.0, 2.0, 2.0, 5.0, 9.0];
        replace_sorted(&mut w, 2.0, 7.0);
        assert_eq!(w, vec![1.0, 2.0, 5.0, 7.0, 9.0]);
        replace_sorted(&mut w, 9.0, 0.5);
        assert_eq!(w, vec![0.5, 1.0, 2.0, 5.0, 7.0]);
    }
}
