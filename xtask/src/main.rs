//! `cargo xtask bundle demixer --release`: builds the CLAP and VST3 bundles with nice-plug-xtask.
fn main() -> nice_plug_xtask::Result<()> {
    nice_plug_xtask::main()
}
