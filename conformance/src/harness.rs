//! Starts a real server (our host, `wasmtime serve` or `spin up`) with the
//! real api component on a free port, against a fresh store, and talks to
//! it over real HTTP.
//!
//! A [`Backend`] is data: a runtime, a store and the fixture providing that
//! store. The fixture prepares the store ([`fixtures`]), the runtime's
//! module says how to start it ([`host`], [`wasmtime_serve`], [`spin`]), and
//! [`Server`] starts it, restarts it and stops it; [`client`] is what the
//! cases do with it.

mod artefacts;
mod backend;
mod client;
mod fixtures;
mod host;
mod interop;
mod moto;
mod server;
mod spin;
mod wasmtime_serve;

pub use artefacts::{api_wasm, composed_wasm, workspace_root};
pub use backend::{Backend, Fixture, Runtime, Store};
pub use client::Response;
pub use fixtures::{AwsKey, unique};
pub use interop::{
    assert_guarded_rename, assert_python_types, ids, list_all, normalised_time, python,
};
pub use moto::{moto_keys, moto_service_user_without};
pub use server::Server;
pub use spin::ROUTE_ARG as SPIN_ROUTE_ARG;
