//! The conformance suite under `spin up` with spin.toml: the api component
//! and the spin-sqlite adapter on Spin's built-in SQLite.

use conformance::Backend;

conformance::conformance_suite!(Backend::SpinEmbedded);
