//! Wrappers for different plugin types. Each wrapper has an entry point macro that you can pass the
//! name of a type that implements `Plugin` to. The macro will handle the rest.

pub mod clap;
pub(crate) mod state;
pub(crate) mod util;

#[cfg(feature = "standalone")]
pub mod standalone;
#[cfg(feature = "vst3")]
pub mod vst3;

// This is used by the wrappers.
pub use util::setup_logger;

// DEMIXER PATCH (third_party/nice-plug/DEMIXER-PATCHES.md, 3): the host's process mode for the
// block being processed. A VST3 host may say "offline" in each `process()` call without calling
// `setupProcessing` again (Ardour 7 exports this way), so the mode a plugin got at initialization
// can be wrong for the block at hand.
thread_local! {
    static BLOCK_PROCESS_MODE: std::cell::Cell<Option<nice_plug_core::audio_setup::ProcessMode>> =
        const { std::cell::Cell::new(None) };
}

/// The process mode the host gave for the block being processed, inside `Plugin::process()`;
/// `None` outside it. No allocation, lock or system call: a thread-local set by the wrapper
/// around the call (DEMIXER PATCH 3).
pub fn block_process_mode() -> Option<nice_plug_core::audio_setup::ProcessMode> {
    BLOCK_PROCESS_MODE.with(std::cell::Cell::get)
}

/// Sets what [`block_process_mode`] answers on this thread (the wrappers, around `process()`).
pub(crate) fn set_block_process_mode(mode: Option<nice_plug_core::audio_setup::ProcessMode>) {
    BLOCK_PROCESS_MODE.with(|cell| cell.set(mode));
}
