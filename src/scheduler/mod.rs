//! (being written)
pub mod state;
