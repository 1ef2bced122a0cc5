//! The one contract between the item store's sans-IO HTTP protocols
//! (`dynamodb-protocol`, `firestore-protocol`) and the transports that
//! carry them (reqwest natively, wasi:http in an adapter component).
//!
//! - An [`Operation`] is a store call as a state machine: it hands out
//!   [`Outgoing`] requests ([`Step::Send`]), each saying whether a second
//!   application is harmless and how long to [`Pause`] first, and takes the
//!   responses back until it is [`Step::Done`].
//! - A [`Protocol`] is what a backend decides for every request of its
//!   operations: the credentials of each attempt ([`Protocol::authorize`]:
//!   DynamoDB signs every attempt with SigV4, Firestore sets a bearer token
//!   that may have been renewed), whether an answer may be retried
//!   ([`Protocol::classify`], a [`Retry`]), and the error for a request that
//!   got no answer. Retry safety is the protocol's decision, never the
//!   transport's.
//! - A [`RetryPolicy`] says how often and how patiently: capped exponential
//!   backoff with full jitter. Each protocol crate publishes its own
//!   numbers (`RETRY_POLICY`), used by its native store and its component.
//! - The [`Driver`] runs the retry loop once, as a state machine of its
//!   own; [`drive_blocking`] (adapter components, over component-http) and
//!   [`drive_async`] (native stores, over `sansio-reqwest`) only do what it
//!   asks: send, sleep, report.
//!
//! This crate opens no socket and needs no runtime: transports come in
//! through [`BlockingTransport`] and [`AsyncTransport`]. The reqwest
//! transport lives in the separate crate `sansio-reqwest` rather than
//! behind a feature of this one, so that no build of a component can pull
//! reqwest in through cargo's feature unification.

mod driver;
mod operation;
mod retry;

pub use driver::{
    Action, AsyncTransport, Attempt, BlockingTransport, Driver, Event, Observer, drive_async,
    drive_async_observed, drive_blocking,
};
pub use item_model::StoreError;
pub use operation::{Operation, Outgoing, Pause, Protocol, Step, mark_resent, was_resent};
pub use retry::{Retry, RetryPolicy, TransportError};

/// An HTTP request as operations build it and transports send it.
pub type Request = http::Request<Vec<u8>>;
/// An HTTP response as transports read it and operations take it.
pub type Response = http::Response<Vec<u8>>;

/// A response with `status` and `body` and no headers, for transports and
/// tests that build one from parts.
pub fn response(status: u16, body: impl Into<Vec<u8>>) -> Response {
    let mut response = http::Response::new(body.into());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}
