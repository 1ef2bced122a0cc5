//! The conformance suite under `spin up` with spin.toml: the api component
//! and the spin-sqlite adapter on Spin's built-in SQLite.

conformance::conformance_suite!(SpinUp, Embedded, Local);
