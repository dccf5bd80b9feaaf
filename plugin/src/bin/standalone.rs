//! Demixer as a standalone application: `demixer-standalone --backend dummy` opens the mixer
//! without a DAW (the GUI check in CI takes its screenshot this way).

fn main() {
    nice_plug::prelude::nice_export_standalone::<demixer::Demixer>();
}
