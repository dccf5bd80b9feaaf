//! The plugin's stems, written once: each is a stereo output port, a channel strip (parameters
//! and meter) and a colour, in this order. Everything else follows from [`STEMS`].

use demixer_dsp::{Routing, Stem};

/// One stem as the plugin presents it.
#[derive(Debug, Clone, Copy)]
pub struct StemPort {
    /// The source it carries.
    pub stem: Stem,
    /// Prefix of its parameters' IDs (saved in projects: never change it).
    pub id: &'static str,
    /// Port, strip and parameter-group name, as hosts and the mixer show it.
    pub name: &'static str,
    /// Strip and meter colour, RGB.
    pub colour: [u8; 3],
}

/// The stem ports, in port order.
pub const STEMS: [StemPort; 4] = [
    StemPort { stem: Stem::Drums, id: "drums", name: "Drums", colour: [240, 140, 50] },
    StemPort { stem: Stem::Bass, id: "bass", name: "Bass", colour: [70, 150, 240] },
    StemPort { stem: Stem::Other, id: "other", name: "Other", colour: [90, 200, 110] },
    StemPort { stem: Stem::Vocals, id: "vocals", name: "Vocals", colour: [220, 90, 200] },
];

/// Number of stem ports.
pub const STEM_COUNT: usize = STEMS.len();

/// The ports' names, for the host.
pub const PORT_NAMES: [&str; STEM_COUNT] = {
    let mut names = [""; STEM_COUNT];
    let mut i = 0;
    while i < STEM_COUNT {
        names[i] = STEMS[i].name;
        i += 1;
    }
    names
};

/// The port that carries whatever source has no port of its own (a six-stem model's guitar and
/// piano), so that the ports still sum to the mix.
const CATCH_ALL: Stem = Stem::Other;

/// Position of `stem`'s port, or the catch-all port's.
fn port_of(stem: Stem) -> usize {
    let own = STEMS.iter().position(|port| port.stem == stem);
    own.or_else(|| STEMS.iter().position(|port| port.stem == CATCH_ALL)).expect("the catch-all stem has a port")
}

/// Where every engine's sources go in the plugin's stream.
pub fn routing() -> Routing {
    Routing::new(STEM_COUNT, |stem| Some(port_of(stem)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_stem_reaches_a_port_and_the_four_their_own() {
        let routing = routing();
        for (i, port) in STEMS.iter().enumerate() {
            assert_eq!(routing.target(port.stem), Some(i));
        }
        assert_eq!(routing.target(Stem::Guitar), Some(2));
        assert_eq!(routing.target(Stem::Piano), Some(2));
        assert_eq!(PORT_NAMES, ["Drums", "Bass", "Other", "Vocals"]);
    }
}
