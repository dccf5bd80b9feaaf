//! Flushing denormal numbers to zero on the current thread.

/// Sets flush-to-zero and denormals-are-zero for this thread's floating-point unit (x86-64;
/// elsewhere a no-op). Denormal arithmetic is up to a hundred times slower.
pub fn flush_to_zero() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only the FTZ (bit 15) and DAZ (bit 6) flags change; SSE is always present on x86-64.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// Largest sample magnitude an engine takes or gives: +120 dBFS, far above any real signal, and
/// small enough that every power an engine forms (squared spectra, summed over a frame and over
/// seconds) stays finite in f32. Louder samples are clipped to it.
pub const MAX_SAMPLE: f32 = 1e6;

/// `x`, or silence where `x` is NaN, infinite or subnormal, clipped to ±[`MAX_SAMPLE`]: what every
/// engine does to its input and output, so that one bad sample can neither poison an engine's state
/// (an absurdly loud one overflowed the HPSS medians) nor reach a host.
pub fn clean(x: f32) -> f32 {
    if x.is_finite() && x.abs() >= f32::MIN_POSITIVE { x.clamp(-MAX_SAMPLE, MAX_SAMPLE) } else { 0.0 }
}
