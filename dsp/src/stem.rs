//! The stems Demixer separates a mix into.

use std::fmt;

/// One separated source. The plugin has one stereo output port per variant, in this order.
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
}

impl Stem {
    /// The four stems in port order.
    pub const ALL: [Stem; 4] = [Stem::Drums, Stem::Bass, Stem::Other, Stem::Vocals];

    /// Position in [`Stem::ALL`], which is also the plugin's port order.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as used for file names and command-line options.
    pub fn name(self) -> &'static str {
        match self {
            Stem::Drums => "drums",
            Stem::Bass => "bass",
            Stem::Other => "other",
            Stem::Vocals => "vocals",
        }
    }

    /// Parses a lower-case or capitalised stem name.
    pub fn from_name(name: &str) -> Option<Stem> {
        Stem::ALL.into_iter().find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Stem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
