//! What an operation hands out and takes back, and what its protocol
//! decides for every request.

use std::time::{Duration, SystemTime};

use item_model::StoreError;

use crate::{Request, Response, Retry, TransportError};

/// What the transport waits before the first attempt of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Send at once.
    None,
    /// The operation is backing off for the n-th time in a row (from 1),
    /// for example resending work the server left unprocessed: wait
    /// [`crate::RetryPolicy::backoff`]`(n)`.
    Backoff(u32),
    /// Polling (a table becoming ready): wait this long.
    Poll(Duration),
}

/// One HTTP request of an operation, without credentials (the
/// [`Protocol`] adds them to each attempt).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The request as the operation built it, unsigned.
    pub request: Request,
    /// Whether applying it twice does no harm, so that a transport may
    /// repeat it after a failure that leaves open whether it was applied
    /// ([`Retry::IfIdempotent`]).
    pub idempotent: bool,
    /// What to wait before its first attempt (retries wait on their own).
    pub pause: Pause,
}

impl Outgoing {
    /// A request to send at once.
    pub fn new(request: Request, idempotent: bool) -> Self {
        Self {
            request,
            idempotent,
            pause: Pause::None,
        }
    }

    /// The same request, sent after `pause`.
    pub fn paused(mut self, pause: Pause) -> Self {
        self.pause = pause;
        self
    }
}

/// What an operation wants next.
// One step per round trip, moved straight to the driver: boxing the
// request would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step<T> {
    /// Send this request and resume with its response.
    Send(Outgoing),
    /// The store call's result; the operation is finished.
    Done(Result<T, StoreError>),
}

/// A store call as a state machine over HTTP requests. Call
/// [`Operation::start`] once, then [`Operation::resume`] with the response
/// to each request until it returns [`Step::Done`].
pub trait Operation {
    /// What the store call returns on success.
    type Output;

    /// The first step.
    fn start(&mut self) -> Step<Self::Output>;

    /// The step after the response to the last request sent (any status:
    /// the operation maps errors itself).
    fn resume(&mut self, response: &Response) -> Step<Self::Output>;
}

/// Marks a response as the answer to a resend: the driver sent the same
/// request more than once, after a failure that left open whether an
/// earlier attempt was applied.
#[derive(Debug, Clone, Copy)]
struct Resent;

/// Marks `response` as the answer to a resend (the driver does this; tests
/// of operations too).
pub fn mark_resent(response: &mut Response) {
    response.extensions_mut().insert(Resent);
}

/// Whether `response` answers a resend. Only then may an operation take a
/// refusal that finds its own write as that write's success: on a first
/// attempt, the same write found there is someone else's (two writers can
/// share a timestamp, each in its own instance).
pub fn was_resent(response: &Response) -> bool {
    response.extensions().get::<Resent>().is_some()
}

/// What one backend decides for every request of its operations.
pub trait Protocol {
    /// Adds the credentials of one attempt to `request`, at wall-clock
    /// time `now`. Called before every attempt, so that a signature is
    /// fresh and a renewed token is used.
    fn authorize(&self, request: &mut Request, now: SystemTime) -> Result<(), StoreError>;

    /// Whether `response` may be retried, and for which requests.
    fn classify(&self, response: &Response) -> Retry;

    /// The store error for `request`, which got no answer.
    fn unreachable(&self, request: &Request, error: &TransportError) -> StoreError;
}
