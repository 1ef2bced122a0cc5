//! The conformance suite every backend must pass, end to end: a real
//! runtime serving the real api component over real HTTP, on a real store.
//!
//! A backend's test file is one line, `conformance_suite!(RUNTIME, STORE,
//! FIXTURE);` (see `tests/embedded.rs` and [`Backend`]), so every backend
//! runs the same cases unchanged.

// A test suite, not a published API: each case is named for what it checks,
// and the harness (`Server::get`, `Response::header`, ...) reads as it is.
#![allow(missing_docs)]

pub mod auth_cases;
pub mod cases;
pub mod chaos;
pub mod harness;
pub mod hostile_cases;
pub mod idempotency_cases;
pub mod tokens;

pub use harness::{Backend, Fixture, Runtime, Server, Store};
