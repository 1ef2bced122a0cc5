//! The conformance suite every storage backend must pass, end to end: the
//! real `edge-items` host serving the real api component over real HTTP.
//!
//! A backend's test file is one line, `conformance_suite!(Backend::X);`
//! (see `tests/embedded.rs`), so every backend runs the same cases
//! unchanged.

pub mod cases;
pub mod harness;

pub use harness::{Backend, Server};
