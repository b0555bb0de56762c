//! The worker (being written).

pub mod state;
pub mod store;
