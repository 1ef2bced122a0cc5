//! The transport the storage adapter components share (Firestore,
//! DynamoDB): everything a sans-IO protocol crate needs from the outside
//! world, over WASI 0.2 imports only, so the component runs under any
//! runtime with wasi:http (`wasmtime serve`, Spin, our host).
//!
//! - [`send`]: one HTTP exchange over `wasi:http/outgoing-handler`, with a
//!   deadline for the whole exchange ([`Options::timeout`]) and a cap on the
//!   response body ([`Options::max_response_bytes`]).
//! - [`WasiHttp`]: `sansio`'s [`BlockingTransport`](sansio::BlockingTransport)
//!   (send, sleep, wasi:random), so an adapter runs its protocol's
//!   operations with [`sansio::drive_blocking`]; what is retried is the
//!   protocol's decision, and the loop is `sansio`'s.
//! - [`sleep`], [`now_unix`], [`env`]: a pause (`wasi:clocks`), the wall
//!   clock and configuration from `wasi:cli/environment` (`wasmtime serve
//!   --env`, Spin's `environment`, our host's settings).
//!
//! ```text
//! let mut transport = WasiHttp::new(Options::default());
//! let item = sansio::drive_blocking(&protocol, RETRY_POLICY, &mut transport, operation)?;
//! ```
//!
//! Natively (not wasm32) the crate compiles so that the workspace can be
//! linted and tested as a whole, but [`send`] returns
//! [`TransportError::Refused`].

mod error;
mod request;

#[cfg(target_arch = "wasm32")]
mod wasi;
#[cfg(target_arch = "wasm32")]
use wasi as platform;

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(all(feature = "spin-variables", target_arch = "wasm32"))]
mod spin_variables;
#[cfg(not(target_arch = "wasm32"))]
use native as platform;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::{Retry, TransportError};
pub use sansio::RetryPolicy;

/// Limits of one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The whole exchange: connecting, sending, the answer's head and its
    /// whole body. The component enforces it itself, since runtimes differ
    /// in which `request-options` they honour.
    pub timeout: Duration,
    /// Connecting alone (passed to the runtime as `connect-timeout`), so
    /// that an unreachable server fails fast and can be retried.
    pub connect_timeout: Duration,
    /// The largest response body accepted; a larger one is
    /// [`TransportError::TooLarge`], so a misbehaving server cannot exhaust
    /// the instance's memory.
    pub max_response_bytes: usize,
}

impl Default for Options {
    /// 30 s in all, 5 s to connect, 32 MiB of body: the native stores'
    /// settings, and more than any answer of a 1000-item page.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The setting that bounds one backend request, in every adapter and in
/// our host (`--backend-timeout`): a duration (`item_model::duration`).
pub const BACKEND_TIMEOUT: &str = "EDGE_ITEMS_BACKEND_TIMEOUT";

impl Options {
    /// These options with the timeout of [`BACKEND_TIMEOUT`] when it is set
    /// to a duration above zero (and the connect timeout at most that); an
    /// unusable value is reported on stderr and ignored.
    pub fn with_env_timeout(self) -> Self {
        self.with_timeout_setting(env(BACKEND_TIMEOUT))
    }

    /// [`Options::with_env_timeout`] with the setting's value given.
    pub fn with_timeout_setting(self, value: Option<String>) -> Self {
        let Some(text) = value else {
            return self;
        };
        match item_model::duration::parse(&text) {
            Some(timeout) if !timeout.is_zero() => Self {
                timeout,
                connect_timeout: self.connect_timeout.min(timeout),
                ..self
            },
            _ => {
                eprintln!(
                    "{BACKEND_TIMEOUT}={text:?} is not a duration above zero (like 2s or 500ms); using {:?}",
                    self.timeout
                );
                self
            }
        }
    }
}

/// Sends `request` and reads the whole response.
///
/// The URI must be absolute (`https://host/path`). A `host` header is
/// dropped (the runtime derives it from the URI's authority, and wasi:http
/// forbids setting it), as are hop-by-hop headers the runtime forbids
/// (`connection`, `transfer-encoding`, ...); a `content-length` is added
/// for a body. Nothing is retried here; see [`WasiHttp`].
pub fn send(
    request: http::Request<Vec<u8>>,
    options: &Options,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    platform::send(request, options)
}

/// `sansio`'s blocking transport over [`send`], [`sleep`] and the
/// runtime's random source (`wasi:random`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasiHttp {
    /// Timeouts and limits of every request it sends.
    pub options: Options,
}

impl WasiHttp {
    /// A transport sending with `options`.
    pub fn new(options: Options) -> Self {
        Self { options }
    }
}

impl sansio::BlockingTransport for WasiHttp {
    fn send(&mut self, request: sansio::Request) -> Result<sansio::Response, TransportError> {
        send(request, &self.options)
    }

    fn sleep(&mut self, duration: Duration) {
        sleep(duration);
    }

    fn random_u64(&mut self) -> u64 {
        platform::random_u64()
    }
}

/// Pauses the instance (`wasi:clocks/monotonic-clock`); natively, the thread.
pub fn sleep(duration: Duration) {
    platform::sleep(duration);
}

/// Seconds since the Unix epoch by the wall clock (0 if the clock is
/// before 1970), for token lifetimes and request signing.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A configuration value from the environment (`wasi:cli/environment`
/// inside a component): `None` when unset, blank or not UTF-8, so that an
/// empty `--env NAME=` counts as unset.
///
/// With the `spin-variables` feature, the Spin variable of the lowercased
/// name comes first (`AWS_REGION`: `aws_region`), since Spin gives a
/// component only its manifest's fixed `environment`, while settings and
/// secrets come from `spin up`'s variables (`SPIN_VARIABLE_*`, runtime
/// config, a cloud's secret store). An undefined or blank variable falls
/// back to the environment.
pub fn env(name: &str) -> Option<String> {
    #[cfg(all(feature = "spin-variables", target_arch = "wasm32"))]
    if let Some(value) = spin_variables::get(name) {
        return Some(value);
    }
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_backend_timeout_setting_bounds_both_timeouts() {
        let base = super::Options::default();
        let set = base.with_timeout_setting(Some("2s".into()));
        assert_eq!(set.timeout, Duration::from_secs(2));
        assert_eq!(set.connect_timeout, Duration::from_secs(2));
        let long = base.with_timeout_setting(Some("1m".into()));
        assert_eq!(long.connect_timeout, base.connect_timeout);
        for ignored in [None, Some("0".into()), Some("soon".into())] {
            let kept = base.with_timeout_setting(ignored);
            assert_eq!(
                (kept.timeout, kept.connect_timeout),
                (base.timeout, base.connect_timeout)
            );
        }
    }

    use super::*;

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn send_needs_a_component() {
        let request = http::Request::get("http://127.0.0.1:9/").body(Vec::new());
        let result = send(request.unwrap(), &Options::default());
        assert_eq!(result.unwrap_err(), error::not_in_component());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_transport_sleeps_draws_and_refuses_natively() {
        use sansio::BlockingTransport;
        let mut transport = WasiHttp::new(Options::default());
        let request = http::Request::get("http://127.0.0.1:9/").body(Vec::new());
        let error = transport.send(request.unwrap()).unwrap_err();
        assert_eq!(error.retry(), Retry::No);
        transport.sleep(Duration::from_millis(1));
        let draws: Vec<u64> = (0..4).map(|_| transport.random_u64()).collect();
        assert!(draws.windows(2).any(|w| w[0] != w[1]), "{draws:?}");
    }

    #[test]
    fn blank_settings_count_as_unset() {
        assert_eq!(env("COMPONENT_HTTP_SURELY_UNSET_VARIABLE"), None);
        // PATH is set in any test environment.
        assert!(env("PATH").is_some());
    }

    #[test]
    fn the_clock_is_after_2020() {
        assert!(now_unix() > 1_577_836_800);
    }
}
