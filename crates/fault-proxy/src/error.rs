//! The library's errors.

use std::io;
use std::net::SocketAddr;

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is not `http://host:port` (or `host:port`).
    #[error("upstream `{0}` is not http://host:port")]
    Upstream(String),
    /// The schedule cannot be drawn from; says why.
    #[error("invalid schedule: {0}")]
    Schedule(String),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The thread or runtime of [`FaultProxy::spawn_thread`](crate::FaultProxy::spawn_thread)
    /// could not be started.
    #[error("cannot start the proxy's thread: {0}")]
    Thread(io::Error),
}

/// A name that is not a fault kind or a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Carries the text.
    #[error(
        "unknown fault `{0}`: expected server-error, unavailable, throttle, reset-before-forwarding, reset-after-forwarding, latency or hang"
    )]
    Fault(String),
    /// Carries the text.
    #[error("unknown backend `{0}`: expected dynamodb or firestore")]
    Backend(String),
}
