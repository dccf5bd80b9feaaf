//! Engines made of engines, as types: one resampled to run at its own rate inside a stream at
//! another ([`resampled`]), one made later on purpose so that two line up ([`padded`]), a model
//! that gives fewer than the four stems completed by HPSS ([`completed`]).

pub(crate) mod completed;
pub(crate) mod padded;
pub(crate) mod resampled;
