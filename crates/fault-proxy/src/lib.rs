//! For tests only: a fault-injecting HTTP/1.1 reverse proxy between our
//! service (or its adapter components) and DynamoDB Local or the Firestore
//! emulator. Exactly-once writes are only shown by breaking the exchange
//! where it hurts: an error instead of the write, a reset before it, and
//! above all a reset after it, when the write was applied but its answer is
//! lost. The proxy forwards every request to one upstream unchanged (the
//! Host header too, which SigV4 signs) and, on a seeded schedule, injects
//! a [`Fault`] instead; the same seed and order of requests give the same
//! faults, so a failing chaos run can be replayed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fault_proxy::ProxyError> {
//! use fault_proxy::{Backend, Fault, FaultProxy, Schedule, Settings};
//! let schedule = Schedule::new(7, 0.2)
//!     .with_kinds([(Fault::ResetAfterForwarding, 3), (Fault::Throttle, 1)])
//!     .only_writes();
//! let proxy = FaultProxy::start("http://127.0.0.1:8000", Backend::DynamoDb, schedule, Settings::default()).await?;
//! // ... point the service at proxy.url(), run the workload ...
//! proxy.set_enabled(false); // check the final state without faults
//! println!("faults injected: {}", serde_json::to_string(&proxy.stats()).unwrap());
//! # Ok(()) }
//! ```

mod backend;
mod error;
mod proxy;
mod schedule;
mod stats;

pub use backend::{Backend, MARKER_HEADER, RequestView};
pub use error::{ParseError, ProxyError};
pub use proxy::{FaultProxy, Settings};
pub use schedule::{Fault, Filter, Predicate, Schedule};
pub use stats::{FaultCounts, Injection, Stats};
