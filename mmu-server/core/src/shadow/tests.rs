//! Host tests of the shadow engine against the reference walker (`crate::testing`).

mod counters_and_flush;
mod direct_tables;
mod encodings;
mod eviction_order;
mod guest_walk;
mod helpers;
mod invlpg;
mod leaf_bits;
mod leaves_only;
mod malformed;
mod mmio_cache;
mod pool_counters;
mod prefetch;
mod prop;
mod protect_existing_leaves;
mod root_cache;
mod root_reuse;
mod step_down;
mod step_down_edges;
mod test_doubles;
mod wp0_leaf_rights;
mod writes;
