//! Where a stream's sources go: each stem into one of its stereo outputs, or nowhere.

use super::MAX_SOURCES;
use crate::stem::Stem;

/// Where the sources of a stream's engines go: each [`Stem`] into one of the stream's stereo
/// outputs (summed with the other stems routed there), or nowhere. The caller decides: the plugin
/// folds a six-stem model's guitar and piano into its Other port, a file tool writes every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    outputs: usize,
    targets: [Option<usize>; MAX_SOURCES],
}

impl Routing {
    /// `outputs` stereo outputs; `target` names the output each stem goes to (`None`: dropped).
    ///
    /// # Panics
    /// If `target` names an output at or beyond `outputs`.
    pub fn new(outputs: usize, target: impl Fn(Stem) -> Option<usize>) -> Self {
        let targets = Stem::KNOWN.map(|stem| {
            let output = target(stem);
            assert!(output.is_none_or(|o| o < outputs), "{stem} routed to output {output:?} of {outputs}");
            output
        });
        Self { outputs, targets }
    }

    /// One output per entry of `sources`, in that order; other stems are dropped.
    pub fn identity(sources: &[Stem]) -> Self {
        Self::new(sources.len(), |stem| sources.iter().position(|&s| s == stem))
    }

    /// Number of stereo outputs.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The output `stem` goes to, if any.
    pub fn target(&self, stem: Stem) -> Option<usize> {
        self.targets[stem.index()]
    }
}
