//! The sans-IO shape: an operation is an [`Exchange`] that hands out
//! [`Call`]s and consumes the responses, until it is done. A transport (for
//! example reqwest natively, wasi:http in a component) signs each call with
//! [`crate::DynamoDb::sign`], sends it, and feeds the response back:
//!
//! ```text
//! let mut step = exchange.start();
//! loop {
//!     match step {
//!         Step::Done(result) => return result,
//!         Step::Send(call) => {
//!             // wait for call.pause, sign, send, retry per call.idempotent
//!             step = exchange.on_response(&response);
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::time::Duration;

use item_model::StoreError;

/// A signed HTTP request, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    /// Lower-case names. No `host`: transports derive it from the URL, as
    /// the signature did.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| match k.as_str() {
                "authorization" | "x-amz-security-token" => (k.as_str(), "<redacted>"),
                _ => (k.as_str(), v.as_str()),
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The parts of an HTTP response an exchange reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// What the transport should wait before sending a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Send at once.
    None,
    /// Resending work DynamoDB left unprocessed (BatchWriteItem's
    /// `UnprocessedItems`), or retrying a conditional write that lost a
    /// race, for the n-th time in a row (from 1): back off exponentially,
    /// with jitter, before sending.
    Backoff(u32),
    /// Polling (a table becoming ACTIVE): wait this long.
    Poll(Duration),
}

/// One DynamoDB API call, not yet signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The API action, such as `GetItem` (the `x-amz-target` suffix).
    pub action: &'static str,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Whether resending after an ambiguous failure (5xx, timeout, broken
    /// connection) is safe: true for reads and for writes whose condition
    /// or content makes a second application harmless; false for the
    /// increment and delete. Throttled calls (never applied) may always be
    /// resent.
    pub idempotent: bool,
    pub pause: Pause,
}

impl Call {
    /// A call of any action, for what the operations here do not cover
    /// (tests write items as other clients would, for example).
    pub fn new(action: &'static str, body: serde_json::Value, idempotent: bool) -> Self {
        Self {
            action,
            body: body.to_string().into_bytes(),
            idempotent,
            pause: Pause::None,
        }
    }

    pub(crate) fn paused(mut self, pause: Pause) -> Self {
        self.pause = pause;
        self
    }
}

/// What an exchange wants next.
#[derive(Debug)]
pub enum Step<T> {
    Send(Call),
    Done(Result<T, StoreError>),
}

/// A store operation as a state machine over DynamoDB calls.
pub trait Exchange {
    type Output;

    /// The first step.
    fn start(&mut self) -> Step<Self::Output>;

    /// The step after the response to the last call sent (any status:
    /// the exchange maps errors itself).
    fn on_response(&mut self, response: &HttpResponse) -> Step<Self::Output>;
}
