//! The item store on SQLite, written once for both SQLite stores: the
//! host's embedded store (`crates/store-embedded`, rusqlite) and the Spin
//! adapter (`components/spin-sqlite-adapter`, Spin's SQLite). Both keep
//! their items in the same file layout, so a file written by one is read by
//! the other.
//!
//! The core does no IO. A store hands it an [`Executor`], which runs one SQL
//! statement and returns its rows; everything else is here:
//!
//! - [`schema`]: the tables, their version (`PRAGMA user_version`) and the
//!   migrations that reach it.
//! - `codec`: the `attributes` column.
//! - `row`: the column list, parameters and row mapping.
//! - [`Items`]: every operation of `wit/item-store.wit` (conditions,
//!   expiry, paging by item_model's cursor, batches), each write as one
//!   statement whose `WHERE` carries its condition, so that it is atomic
//!   on any SQLite, also a remote one (Turso/libSQL) where a transaction
//!   cannot span two calls.
//!
//! A database without the tables gets them on first use: a statement that
//! fails for a missing table or column migrates and runs again.

mod codec;
mod executor;
mod items;
mod row;
pub mod schema;

#[cfg(any(feature = "rusqlite", all(test, not(target_arch = "wasm32"))))]
mod rusqlite_executor;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use codec::DecodeError;
pub use executor::{Executor, Row, SqlError, SqlValue};
pub use items::Items;
pub use schema::{MigrateError, migrate};
