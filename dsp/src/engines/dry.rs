//! The engine of last resort: no separation, the input as the Other stem. It plays where no
//! engine can run (a host rate outside every engine's reach), so that the stems still sum to the
//! input and the plugin keeps playing.

use crate::separator::{Separator, StereoOut};
use crate::signal::denormals::clean;
use crate::stem::Stem;

/// Passes the input to [`Stem::Other`], with no latency.
#[derive(Debug, Default)]
pub struct Dry;

impl Separator for Dry {
    fn sources(&self) -> &[Stem] {
        &[Stem::Other]
    }

    fn latency_samples(&self) -> usize {
        0
    }

    fn process(&mut self, left: &[f32], right: &[f32], stems: &mut [StereoOut<'_>]) {
        for (out, input) in stems[0].iter_mut().zip([left, right]) {
            out.iter_mut().zip(input).for_each(|(o, &x)| *o = clean(x));
        }
    }

    fn reset(&mut self) {}
}
