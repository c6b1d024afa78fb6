//! Host tests of the shadow engine against the reference walker (`crate::testing`).

mod helpers;
mod malformed;
mod mmio_cache;
mod prop;
mod root_cache;
mod step_down;
mod writes;
