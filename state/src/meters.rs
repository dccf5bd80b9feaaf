//! Level meters: the code that measures owns the [`MeterWriter`]; it hands [`MeterReader`]s to
//! whoever shows them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use atomic_float::AtomicF32;

/// Peak and RMS of the last block of one signal, linear.
#[derive(Default)]
pub struct Level {
    peak: AtomicF32,
    rms: AtomicF32,
}

impl Level {
    /// The last block's (peak, RMS).
    pub fn load(&self) -> (f32, f32) {
        (self.peak.load(Ordering::Relaxed), self.rms.load(Ordering::Relaxed))
    }
}

/// A set of `count` meters: the one writing end and a reading end that can be cloned.
pub fn meters(count: usize) -> (MeterWriter, MeterReader) {
    let levels: Arc<[Level]> = (0..count).map(|_| Level::default()).collect();
    (MeterWriter(levels.clone()), MeterReader(levels))
}

/// The measuring side: stores levels (atomics only, real-time safe).
pub struct MeterWriter(Arc<[Level]>);

impl MeterWriter {
    /// Publishes meter `index`'s peak and RMS for the last block.
    pub fn store(&self, index: usize, peak: f32, rms: f32) {
        let level = &self.0[index];
        level.peak.store(peak, Ordering::Relaxed);
        level.rms.store(rms, Ordering::Relaxed);
    }

    /// Number of meters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no meters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The showing side.
#[derive(Clone)]
pub struct MeterReader(Arc<[Level]>);

impl MeterReader {
    /// The meters, in the writer's order.
    pub fn levels(&self) -> &[Level] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_what_the_writer_stores() {
        let (writer, reader) = meters(3);
        let other = reader.clone();
        writer.store(2, 0.5, 0.25);
        assert_eq!(reader.levels()[2].load(), (0.5, 0.25));
        assert_eq!(other.levels()[0].load(), (0.0, 0.0));
        assert_eq!(writer.len(), other.levels().len());
    }
}
