//! A fixed delay line, allocation-free after construction.

/// Delays one channel by a number of samples chosen at run time, up to a capacity fixed at
/// construction.
pub struct DelayLine {
    buffer: Vec<f32>,
    delay: usize,
    position: usize,
}

impl DelayLine {
    /// A delay of `delay` samples that can later be set to anything up to `capacity`.
    pub fn new(delay: usize, capacity: usize) -> Self {
        assert!(delay <= capacity, "delay {delay} exceeds capacity {capacity}");
        Self { buffer: vec![0.0; capacity.max(1)], delay, position: 0 }
    }

    /// Changes the delay (at most the capacity) and forgets the past.
    pub fn set_delay(&mut self, delay: usize) {
        assert!(delay <= self.buffer.len(), "delay {delay} exceeds capacity {}", self.buffer.len());
        self.delay = delay;
        self.reset();
    }

    /// Writes `input` delayed into `out` (same length). Non-finite input is stored as silence.
    pub fn process(&mut self, input: &[f32], out: &mut [f32]) {
        if self.delay == 0 {
            out.copy_from_slice(input);
            return;
        }
        let mut done = 0;
        while done < input.len() {
            let n = (self.delay - self.position).min(input.len() - done);
            let slots = &mut self.buffer[self.position..self.position + n];
            out[done..done + n].copy_from_slice(slots);
            for (slot, &x) in slots.iter_mut().zip(&input[done..done + n]) {
                *slot = if x.is_finite() { x } else { 0.0 };
            }
            self.position = (self.position + n) % self.delay;
            done += n;
        }
    }

    /// Fills the line with silence.
    pub fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.position = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_by_exactly_the_delay_across_blocks() {
        let input: Vec<f32> = (1..=50).map(|i| i as f32).collect();
        for delay in [0, 1, 7, 13] {
            let mut line = DelayLine::new(delay, 20);
            let mut out = vec![0.0; input.len()];
            for (i, o) in input.chunks(6).zip(out.chunks_mut(6)) {
                line.process(i, o);
            }
            for t in 0..input.len() {
                assert_eq!(out[t], if t < delay { 0.0 } else { input[t - delay] }, "delay {delay}, t {t}");
            }
        }
        let mut line = DelayLine::new(3, 10);
        line.set_delay(10);
        let mut out = vec![1.0; 12];
        line.process(&input[..12], &mut out);
        assert_eq!(out[9..], [0.0, 1.0, 2.0]);
    }
}
