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

/// `x`, or silence where `x` is NaN, infinite or subnormal: what every engine does to its input and
/// output, so that one bad sample can neither poison an engine's state nor reach a host.
pub fn clean(x: f32) -> f32 {
    if x.is_finite() && x.abs() >= f32::MIN_POSITIVE { x } else { 0.0 }
}
