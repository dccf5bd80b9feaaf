//! The stems Demixer separates a mix into.

use std::fmt;

/// One separated source: the four of MUSDB18 ([`Stem::ALL`]), and the two that six-stem models add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stem {
    /// Drums and other percussive sounds.
    Drums,
    /// Bass lines: low-pitched tonal content.
    Bass,
    /// Everything else: keys, guitars, pads, strings.
    Other,
    /// The lead voice.
    Vocals,
    /// Guitars, from six-stem models (HT-Demucs 6s) only.
    Guitar,
    /// Piano, from six-stem models and Spleeter's 5-stem model.
    Piano,
    /// Everything but the sources a model names (Spleeter's 2-stem "accompaniment"): Demixer
    /// splits it further where the model gives fewer than the four stems (`crate::compose::completed`).
    Accompaniment,
}

impl Stem {
    /// The four stems of MUSDB18, in the order the HPSS engine and four-source models write them.
    pub const ALL: [Stem; 4] = [Stem::Drums, Stem::Bass, Stem::Other, Stem::Vocals];

    /// Every stem a model may produce: the four, the six-stem extras, then the complement of
    /// two-stem models.
    pub const KNOWN: [Stem; 7] =
        [Stem::Drums, Stem::Bass, Stem::Other, Stem::Vocals, Stem::Guitar, Stem::Piano, Stem::Accompaniment];

    /// The sources of six-stem models (HT-Demucs 6s), in their order.
    pub const SIX: [Stem; 6] = [Stem::Drums, Stem::Bass, Stem::Other, Stem::Vocals, Stem::Guitar, Stem::Piano];

    /// Position in [`Stem::KNOWN`] (and, for the four, in [`Stem::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Where `self` is in `sources`, appended where it is missing (an engine's output list that
    /// must hold it: the residual's Other, a completed model's stems).
    pub(crate) fn position_or_push(self, sources: &mut Vec<Stem>) -> usize {
        sources.iter().position(|&s| s == self).unwrap_or_else(|| {
            sources.push(self);
            sources.len() - 1
        })
    }

    /// Lower-case name, as used for file names, model metadata and command-line options.
    pub fn name(self) -> &'static str {
        match self {
            Stem::Drums => "drums",
            Stem::Bass => "bass",
            Stem::Other => "other",
            Stem::Vocals => "vocals",
            Stem::Guitar => "guitar",
            Stem::Piano => "piano",
            Stem::Accompaniment => "accompaniment",
        }
    }

    /// Parses a stem name, ignoring case.
    pub fn from_name(name: &str) -> Option<Stem> {
        Stem::KNOWN.into_iter().find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Stem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
