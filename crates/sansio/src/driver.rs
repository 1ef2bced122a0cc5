//! The drive-and-retry loop, written once as a state machine ([`Driver`]),
//! and the two ways to run it: [`drive_blocking`] and [`drive_async`].
//!
//! For each request an operation hands out, the driver waits its
//! [`Pause`], authorizes a copy (afresh for every attempt), and after each
//! answer asks the protocol whether a repeat may help and is safe
//! ([`Protocol::classify`], or [`TransportError::retry`] when there was no
//! answer). It repeats while that allows it for the request's idempotency
//! and attempts are left, sleeping [`RetryPolicy::backoff`] in between.
//! The last answer goes to the operation, which maps a final 503 or
//! throttling error like any other; a last failure without an answer
//! becomes [`Protocol::unreachable`].

use std::future::Future;
use std::time::{Duration, SystemTime};

use item_model::StoreError;

use crate::{Operation, Outgoing, Pause, Protocol, Request, Response, RetryPolicy, Step};
use crate::{Retry, TransportError};

/// What happened since the driver's last [`Action`].
// One event per step, moved straight into the driver: boxing the response
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// Nothing yet: the first call.
    Start,
    /// The asked-for [`Action::Sleep`] is over.
    Slept,
    /// The answer to [`Action::Send`], or why there is none.
    Answered(Result<Response, TransportError>),
}

/// What the driver wants the transport to do next.
// One action per step, moved straight to the transport: boxing the
// request would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Action<T> {
    /// Wait this long, then report [`Event::Slept`].
    Sleep(Duration),
    /// Send this (authorized) request, then report [`Event::Answered`].
    Send(Request),
    /// The operation's result.
    Done(Result<T, StoreError>),
}

enum State {
    /// Not started, or finished.
    Idle,
    /// Sleeping before an attempt of `outgoing`.
    Waiting { outgoing: Outgoing, attempts: u32 },
    /// An attempt of `outgoing` is on the wire.
    Sending { outgoing: Outgoing, attempts: u32 },
}

/// What came of one attempt, for an [`Observer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's HTTP status, or `None` when there was no answer.
    pub status: Option<u16>,
    /// Why there was no answer: `connect`, `timeout`, `broken`,
    /// `too_large` or `refused`.
    pub failure: Option<&'static str>,
    /// What the protocol said a retry may do.
    pub class: Retry,
    /// Whether the driver is sending it again.
    pub retried: bool,
}

/// Told of every attempt a driver makes (the native host counts backend
/// calls, retries and failures with it). Sans IO like the driver: it only
/// hears what the driver decided.
pub trait Observer: Send + Sync {
    /// One attempt's outcome.
    fn attempt(&self, attempt: &Attempt);
}

/// Runs one operation of one protocol under one retry policy, sans IO:
/// feed it [`Event`]s, do the [`Action`]s it returns.
pub struct Driver<'p, P: ?Sized, O> {
    protocol: &'p P,
    policy: RetryPolicy,
    operation: O,
    state: State,
    observer: Option<&'p dyn Observer>,
}

impl<'p, P: Protocol + ?Sized, O: Operation> Driver<'p, P, O> {
    /// A driver that has not started `operation` yet: the first event is
    /// [`Event::Start`].
    pub fn new(protocol: &'p P, policy: RetryPolicy, operation: O) -> Self {
        Self {
            protocol,
            policy,
            operation,
            state: State::Idle,
            observer: None,
        }
    }

    /// The same driver, telling `observer` of every attempt.
    pub fn observed(mut self, observer: Option<&'p dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// The next action after `event`, at wall-clock time `now` (for
    /// credentials), with `random` (any u64 from the platform's random
    /// source, for the jitter of a backoff).
    pub fn next(&mut self, event: Event, now: SystemTime, random: u64) -> Action<O::Output> {
        match (std::mem::replace(&mut self.state, State::Idle), event) {
            (State::Idle, Event::Start) => {
                let step = self.operation.start();
                self.step(step, now, random)
            }
            (State::Waiting { outgoing, attempts }, Event::Slept) => {
                self.attempt(outgoing, attempts, now)
            }
            (State::Sending { outgoing, attempts }, Event::Answered(outcome)) => {
                self.answered(outgoing, attempts, outcome, now, random)
            }
            _ => Action::Done(Err(StoreError::Backend(
                "the HTTP driver was given an event it did not ask for".into(),
            ))),
        }
    }

    fn step(&mut self, step: Step<O::Output>, now: SystemTime, random: u64) -> Action<O::Output> {
        match step {
            Step::Done(result) => Action::Done(result),
            Step::Send(outgoing) => {
                let wait = match outgoing.pause {
                    Pause::None => Duration::ZERO,
                    Pause::Backoff(n) => self.policy.backoff(n, random),
                    Pause::Poll(wait) => wait,
                };
                self.wait_then_send(outgoing, 0, wait, now)
            }
        }
    }

    fn wait_then_send(
        &mut self,
        outgoing: Outgoing,
        attempts: u32,
        wait: Duration,
        now: SystemTime,
    ) -> Action<O::Output> {
        if wait.is_zero() {
            return self.attempt(outgoing, attempts, now);
        }
        self.state = State::Waiting { outgoing, attempts };
        Action::Sleep(wait)
    }

    fn attempt(&mut self, outgoing: Outgoing, attempts: u32, now: SystemTime) -> Action<O::Output> {
        let mut request = outgoing.request.clone();
        if let Err(error) = self.protocol.authorize(&mut request, now) {
            return Action::Done(Err(error));
        }
        self.state = State::Sending {
            outgoing,
            attempts: attempts.saturating_add(1),
        };
        Action::Send(request)
    }

    fn answered(
        &mut self,
        outgoing: Outgoing,
        attempts: u32,
        outcome: Result<Response, TransportError>,
        now: SystemTime,
        random: u64,
    ) -> Action<O::Output> {
        let class: Retry = match &outcome {
            Ok(response) => self.protocol.classify(response),
            Err(error) => error.retry(),
        };
        let retry = attempts < self.policy.max_attempts && class.allows(outgoing.idempotent);
        if let Some(observer) = self.observer {
            observer.attempt(&Attempt {
                status: outcome.as_ref().ok().map(|r| r.status().as_u16()),
                failure: outcome.as_ref().err().map(TransportError::kind),
                class,
                retried: retry,
            });
        }
        if retry {
            let wait = self.policy.backoff(attempts, random);
            return self.wait_then_send(outgoing, attempts, wait, now);
        }
        match outcome {
            Ok(mut response) => {
                if attempts > 1 {
                    crate::mark_resent(&mut response);
                }
                let step = self.operation.resume(&response);
                self.step(step, now, random)
            }
            Err(error) => Action::Done(Err(self.protocol.unreachable(&outgoing.request, &error))),
        }
    }
}

/// A transport that blocks: an adapter component's (component-http over
/// wasi:http, wasi:clocks and wasi:random).
pub trait BlockingTransport {
    /// Sends one attempt and reads the whole response, whatever its status.
    fn send(&mut self, request: Request) -> Result<Response, TransportError>;
    /// Blocks for a backoff or poll pause.
    fn sleep(&mut self, duration: Duration);
    /// Any u64, for the jitter of backoffs; need not be cryptographic.
    fn random_u64(&mut self) -> u64;
    /// The wall clock, for credentials.
    fn now(&mut self) -> SystemTime {
        SystemTime::now()
    }
}

/// A transport with futures: a native store's (`sansio-reqwest`).
pub trait AsyncTransport {
    /// Sends one attempt and reads the whole response, whatever its status.
    fn send(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send;
    /// Waits out a backoff or poll pause without blocking the thread.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send;
    /// Any u64, for the jitter of backoffs; need not be cryptographic.
    fn random_u64(&self) -> u64;
    /// The wall clock, for credentials.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Runs `operation` to its result over a blocking transport.
pub fn drive_blocking<P, O>(
    protocol: &P,
    policy: RetryPolicy,
    transport: &mut impl BlockingTransport,
    operation: O,
) -> Result<O::Output, StoreError>
where
    P: Protocol + ?Sized,
    O: Operation,
{
    let mut driver = Driver::new(protocol, policy, operation);
    let mut event = Event::Start;
    loop {
        let (now, random) = (transport.now(), transport.random_u64());
        event = match driver.next(event, now, random) {
            Action::Done(result) => return result,
            Action::Sleep(duration) => {
                transport.sleep(duration);
                Event::Slept
            }
            Action::Send(request) => Event::Answered(transport.send(request)),
        };
    }
}

/// Runs `operation` to its result over an async transport.
pub async fn drive_async<P, O>(
    protocol: &P,
    policy: RetryPolicy,
    transport: &impl AsyncTransport,
    operation: O,
) -> Result<O::Output, StoreError>
where
    P: Protocol + ?Sized,
    O: Operation,
{
    drive_async_observed(protocol, policy, transport, operation, None).await
}

/// [`drive_async`], telling `observer` of every attempt.
pub async fn drive_async_observed<P, O>(
    protocol: &P,
    policy: RetryPolicy,
    transport: &impl AsyncTransport,
    operation: O,
    observer: Option<&dyn Observer>,
) -> Result<O::Output, StoreError>
where
    P: Protocol + ?Sized,
    O: Operation,
{
    let mut driver = Driver::new(protocol, policy, operation).observed(observer);
    let mut event = Event::Start;
    loop {
        let (now, random) = (transport.now(), transport.random_u64());
        event = match driver.next(event, now, random) {
            Action::Done(result) => return result,
            Action::Sleep(duration) => {
                transport.sleep(duration).await;
                Event::Slept
            }
            Action::Send(request) => Event::Answered(transport.send(request).await),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;
    use crate::response;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(8),
        max_delay: Duration::from_millis(20),
    };

    /// Authorizes with the attempt's time; 429 means "not applied", 503
    /// "maybe applied".
    struct TestProtocol;

    impl Protocol for TestProtocol {
        fn authorize(&self, request: &mut Request, now: SystemTime) -> Result<(), StoreError> {
            let secs = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|_| StoreError::Backend("clock".into()))?
                .as_secs();
            if secs == 0 {
                return Err(StoreError::Unauthorized("no clock, no token".into()));
            }
            let value = http::HeaderValue::from_str(&format!("token-{secs}"))
                .map_err(|_| StoreError::Backend("header".into()))?;
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, value);
            Ok(())
        }

        fn classify(&self, response: &Response) -> Retry {
            match response.status().as_u16() {
                429 => Retry::Always,
                503 => Retry::IfIdempotent,
                _ => Retry::No,
            }
        }

        fn unreachable(&self, _request: &Request, error: &TransportError) -> StoreError {
            StoreError::Unavailable(format!("test backend: {error}"))
        }
    }

    /// Sends its requests in order, then reports the last status.
    struct Requests {
        pending: VecDeque<Outgoing>,
    }

    impl Requests {
        fn one(idempotent: bool) -> Self {
            Self::of(vec![(idempotent, Pause::None)])
        }

        fn of(requests: Vec<(bool, Pause)>) -> Self {
            let pending = requests
                .into_iter()
                .enumerate()
                .map(|(i, (idempotent, pause))| {
                    let request = http::Request::post(format!("http://test/{i}"))
                        .body(Vec::new())
                        .unwrap();
                    Outgoing::new(request, idempotent).paused(pause)
                })
                .collect();
            Self { pending }
        }
    }

    impl Operation for Requests {
        type Output = u16;

        fn start(&mut self) -> Step<u16> {
            match self.pending.pop_front() {
                Some(outgoing) => Step::Send(outgoing),
                None => Step::Done(Err(StoreError::Backend("nothing to send".into()))),
            }
        }

        fn resume(&mut self, response: &Response) -> Step<u16> {
            match self.pending.pop_front() {
                Some(outgoing) => Step::Send(outgoing),
                None => Step::Done(Ok(response.status().as_u16())),
            }
        }
    }

    /// Answers from a script and records what it was asked to do; its
    /// clock moves on a second per reading.
    #[derive(Default)]
    struct Scripted {
        answers: VecDeque<Result<Response, TransportError>>,
        /// The authorization header and path of every request sent.
        sent: Vec<(String, String)>,
        slept: Vec<Duration>,
        clock: u64,
        stopped_clock: bool,
    }

    impl Scripted {
        fn new(answers: Vec<Result<u16, TransportError>>) -> Self {
            Self {
                answers: answers
                    .into_iter()
                    .map(|a| a.map(|status| response(status, Vec::new())))
                    .collect(),
                ..Self::default()
            }
        }

        fn record(&mut self, request: &Request) -> Result<Response, TransportError> {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            self.sent
                .push((authorization, request.uri().path().to_owned()));
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(TransportError::Refused("script ended".into())))
        }

        fn tick(&mut self) -> SystemTime {
            if !self.stopped_clock {
                self.clock += 1;
            }
            SystemTime::UNIX_EPOCH + Duration::from_secs(self.clock)
        }

        fn attempts(&self) -> usize {
            self.sent.len()
        }
    }

    impl BlockingTransport for Scripted {
        fn send(&mut self, request: Request) -> Result<Response, TransportError> {
            self.record(&request)
        }
        fn sleep(&mut self, duration: Duration) {
            self.slept.push(duration);
        }
        fn random_u64(&mut self) -> u64 {
            7
        }
        fn now(&mut self) -> SystemTime {
            self.tick()
        }
    }

    fn run(operation: Requests, transport: &mut Scripted) -> Result<u16, StoreError> {
        drive_blocking(&TestProtocol, POLICY, transport, operation)
    }

    #[test]
    fn not_applied_failures_are_repeated_for_every_request() {
        let mut transport = Scripted::new(vec![
            Ok(429),
            Err(TransportError::Connect("x".into())),
            Ok(200),
        ]);
        assert_eq!(run(Requests::one(false), &mut transport), Ok(200));
        assert_eq!(transport.attempts(), 3);
        // Full jitter under a doubling ceiling, drawn with the script's 7.
        assert_eq!(
            transport.slept,
            [POLICY.backoff(1, 7), POLICY.backoff(2, 7)]
        );
        assert_eq!(transport.slept[0], Duration::from_millis(7));
    }

    #[test]
    fn ambiguous_failures_are_repeated_only_for_idempotent_requests() {
        let mut transport = Scripted::new(vec![Ok(503), Ok(200)]);
        assert_eq!(run(Requests::one(false), &mut transport), Ok(503));
        assert_eq!(transport.attempts(), 1);

        let mut transport = Scripted::new(vec![Ok(503), Ok(200)]);
        assert_eq!(run(Requests::one(true), &mut transport), Ok(200));
        assert_eq!(transport.attempts(), 2);

        let timeout = TransportError::Timeout(Duration::from_secs(1));
        let mut transport = Scripted::new(vec![Err(timeout.clone()), Ok(200)]);
        let error = run(Requests::one(false), &mut transport).unwrap_err();
        assert_eq!(
            error,
            StoreError::Unavailable(format!("test backend: {timeout}"))
        );
        assert_eq!(transport.attempts(), 1);
    }

    #[test]
    fn attempts_run_out_and_the_last_answer_goes_to_the_operation() {
        let mut transport = Scripted::new(vec![Ok(429); 10]);
        assert_eq!(run(Requests::one(true), &mut transport), Ok(429));
        assert_eq!(transport.attempts(), 4);
        assert_eq!(transport.slept.len(), 3);
        for (retry, slept) in (1..).zip(&transport.slept) {
            assert!(*slept <= POLICY.ceiling(retry));
        }

        let mut transport = Scripted::new(vec![Err(TransportError::Connect("refused".into())); 10]);
        let error = run(Requests::one(true), &mut transport).unwrap_err();
        assert!(matches!(&error, StoreError::Unavailable(m) if m.contains("refused")));
        assert_eq!(transport.attempts(), 4);
    }

    /// One idempotent request; its output is whether the answer was marked
    /// as a resend's.
    struct SeesResends;

    impl Operation for SeesResends {
        type Output = bool;
        fn start(&mut self) -> Step<bool> {
            match Requests::one(true).start() {
                Step::Send(outgoing) => Step::Send(outgoing),
                Step::Done(_) => unreachable!("one request to send"),
            }
        }
        fn resume(&mut self, response: &Response) -> Step<bool> {
            Step::Done(Ok(crate::was_resent(response)))
        }
    }

    #[test]
    fn an_operation_knows_whether_its_answer_came_to_a_resend() {
        let run = |transport: &mut Scripted| {
            drive_blocking(&TestProtocol, POLICY, transport, SeesResends)
        };
        assert_eq!(run(&mut Scripted::new(vec![Ok(409)])), Ok(false));
        assert_eq!(run(&mut Scripted::new(vec![Ok(503), Ok(409)])), Ok(true));
        let lost = TransportError::Timeout(Duration::from_secs(1));
        assert_eq!(run(&mut Scripted::new(vec![Err(lost), Ok(200)])), Ok(true));
    }

    #[test]
    fn final_failures_are_not_repeated() {
        let mut transport = Scripted::new(vec![
            Err(TransportError::Refused("not allowed".into())),
            Ok(200),
        ]);
        assert!(run(Requests::one(true), &mut transport).is_err());
        assert_eq!(transport.attempts(), 1);
        let mut transport = Scripted::new(vec![Ok(409), Ok(200)]);
        assert_eq!(run(Requests::one(true), &mut transport), Ok(409));
        assert_eq!(transport.attempts(), 1);
    }

    #[test]
    fn every_attempt_is_authorized_afresh() {
        let mut transport = Scripted::new(vec![Ok(429), Ok(503), Ok(200)]);
        assert_eq!(run(Requests::one(true), &mut transport), Ok(200));
        let tokens: Vec<&str> = transport.sent.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(tokens.len(), 3);
        assert!(tokens.windows(2).all(|w| w[0] != w[1]), "{tokens:?}");
        assert!(tokens.iter().all(|t| t.starts_with("token-")));

        // A refused authorization ends the operation before sending.
        let mut transport = Scripted::new(vec![Ok(200)]);
        transport.stopped_clock = true;
        assert!(matches!(
            run(Requests::one(true), &mut transport),
            Err(StoreError::Unauthorized(_))
        ));
        assert_eq!(transport.attempts(), 0);
    }

    #[test]
    fn pauses_are_waited_before_the_first_attempt() {
        let operation = Requests::of(vec![
            (true, Pause::None),
            (true, Pause::Poll(Duration::from_millis(500))),
            (true, Pause::Backoff(2)),
            (true, Pause::Poll(Duration::ZERO)),
        ]);
        let mut transport = Scripted::new(vec![Ok(200); 4]);
        assert_eq!(run(operation, &mut transport), Ok(200));
        let paths: Vec<&str> = transport.sent.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["/0", "/1", "/2", "/3"]);
        assert_eq!(
            transport.slept,
            [Duration::from_millis(500), POLICY.backoff(2, 7)]
        );
    }

    #[test]
    fn an_event_out_of_order_ends_the_operation() {
        let mut driver = Driver::new(&TestProtocol, POLICY, Requests::one(true));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        assert!(matches!(
            driver.next(Event::Slept, now, 0),
            Action::Done(Err(_))
        ));
    }

    /// The async driver over the same script, its futures always ready.
    struct ScriptedAsync(RefCell<Scripted>);

    impl AsyncTransport for ScriptedAsync {
        fn send(
            &self,
            request: Request,
        ) -> impl Future<Output = Result<Response, TransportError>> + Send {
            std::future::ready(self.0.borrow_mut().record(&request))
        }
        fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
            self.0.borrow_mut().slept.push(duration);
            std::future::ready(())
        }
        fn random_u64(&self) -> u64 {
            0
        }
        fn now(&self) -> SystemTime {
            self.0.borrow_mut().tick()
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
                return output;
            }
        }
    }

    #[test]
    fn the_async_driver_follows_the_same_rules() {
        let transport = ScriptedAsync(RefCell::new(Scripted::new(vec![Ok(503), Ok(429), Ok(200)])));
        let result = block_on(drive_async(
            &TestProtocol,
            POLICY,
            &transport,
            Requests::one(false),
        ));
        assert_eq!(result, Ok(503));
        assert_eq!(transport.0.borrow().attempts(), 1);

        let result = block_on(drive_async(
            &TestProtocol,
            POLICY,
            &transport,
            Requests::one(false),
        ));
        assert_eq!(result, Ok(200));
        let scripted = transport.0.borrow();
        assert_eq!(scripted.attempts(), 3);
        // Jitter drawn as zero: no sleep is asked for.
        assert!(scripted.slept.is_empty());
        assert_ne!(scripted.sent[1].0, scripted.sent[2].0);
    }

    /// Records what it is told.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<Attempt>>);

    impl Observer for Recorder {
        fn attempt(&self, attempt: &Attempt) {
            self.0.lock().unwrap().push(*attempt);
        }
    }

    #[test]
    fn observers_hear_every_attempt_and_whether_it_is_repeated() {
        let transport = ScriptedAsync(RefCell::new(Scripted::new(vec![
            Ok(429),
            Err(TransportError::Connect("x".into())),
            Ok(503),
        ])));
        let recorder = Recorder::default();
        let result = block_on(drive_async_observed(
            &TestProtocol,
            POLICY,
            &transport,
            Requests::one(false),
            Some(&recorder),
        ));
        assert_eq!(result, Ok(503));
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen.iter()
                .map(|a| (a.status, a.failure, a.retried))
                .collect::<Vec<_>>(),
            [
                (Some(429), None, true),
                (None, Some("connect"), true),
                (Some(503), None, false),
            ]
        );
        assert_eq!(seen[0].class, Retry::Always);
    }
}
