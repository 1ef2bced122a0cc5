//! The proxy itself: accepts connections, reads each request in full, asks
//! the schedule, then forwards or injects.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderMap, HeaderName, Request, Response, StatusCode, Uri, Version, header, request};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::backend::{Backend, MARKER_HEADER, RequestView};
use crate::error::ProxyError;
use crate::schedule::{Dice, Fault, Schedule};
use crate::stats::{Injection, Stats};

/// How the proxy runs, apart from what it injects.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen; the default, `127.0.0.1:0`, takes a free port.
    pub listen: SocketAddr,
    /// How long [`Fault::Latency`] holds an answer back (default 200 ms).
    pub latency: Duration,
    /// How long [`Fault::Hang`] keeps a connection open without answering
    /// (default 30 s: longer than the service's deadlines).
    pub hang: Duration,
    /// How long connecting to the upstream and its whole answer may take
    /// (default 30 s; 504 after it).
    pub forward_timeout: Duration,
    /// The largest request and answer body passed on (default 64 MiB;
    /// 413 and 502 above it): the proxy holds whole bodies in memory.
    pub max_body_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            latency: Duration::from_millis(200),
            hang: Duration::from_secs(30),
            forward_timeout: Duration::from_secs(30),
            max_body_bytes: 64 << 20,
        }
    }
}

/// A running proxy. Dropping it stops it: no new connections, and open
/// ones (a hanging one too) are closed.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Stop,
}

enum Stop {
    /// The accept loop on the caller's runtime.
    Task(tokio::task::JoinHandle<()>),
    /// The proxy's own thread and runtime.
    Thread {
        signal: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port` or `host:port`) on
    /// the current tokio runtime, which must have IO and time enabled (as
    /// `#[tokio::test]`'s has); it stops with that runtime at the latest.
    pub async fn start(
        upstream: &str,
        backend: Backend,
        schedule: Schedule,
        settings: Settings,
    ) -> Result<FaultProxy, ProxyError> {
        let (listener, shared) = prepare(upstream, backend, schedule, settings)?;
        let listen = shared.settings.listen;
        let listener = TcpListener::from_std(listener).map_err(|source| ProxyError::Listen {
            addr: listen,
            source,
        })?;
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            addr: shared.addr,
            shared,
            stop: Stop::Task(task),
        })
    }

    /// As [`FaultProxy::start`], but on a thread of its own with its own
    /// runtime, for synchronous tests (and runtimes that must not be
    /// shared); blocks until it listens.
    pub fn spawn_thread(
        upstream: &str,
        backend: Backend,
        schedule: Schedule,
        settings: Settings,
    ) -> Result<FaultProxy, ProxyError> {
        let (listener, shared) = prepare(upstream, backend, schedule, settings)?;
        let listen = shared.settings.listen;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ProxyError::Thread)?;
        let (ready, started) = std::sync::mpsc::channel();
        let (signal, stopped) = oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    tokio::select! {
                        () = accept_loop(listener, serving) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here ends every connection.
            })
            .map_err(ProxyError::Thread)?;
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(ProxyError::Listen {
                    addr: listen,
                    source,
                });
            }
            Err(_) => {
                return Err(ProxyError::Thread(io::Error::other(
                    "the proxy's thread ended before it listened",
                )));
            }
        }
        Ok(FaultProxy {
            addr: shared.addr,
            shared,
            stop: Stop::Thread {
                signal: Some(signal),
                thread: Some(thread),
            },
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: a DynamoDB endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`: a `FIRESTORE_EMULATOR_HOST`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> Stats {
        self.shared
            .record
            .lock()
            .expect("record lock")
            .stats
            .clone()
    }

    /// Every fault injected so far, oldest first.
    pub fn injections(&self) -> Vec<Injection> {
        self.shared
            .record
            .lock()
            .expect("record lock")
            .injections
            .clone()
    }

    /// Pauses (`false`) or resumes (`true`) injection; while paused every
    /// request is forwarded and the schedule does not advance, so resuming
    /// continues its sequence. Requests already decided are not affected.
    pub fn set_enabled(&self, on: bool) {
        self.shared.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether injection is on (it is at start).
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        match &mut self.stop {
            Stop::Task(task) => task.abort(),
            Stop::Thread { signal, thread } => {
                if let Some(signal) = signal.take() {
                    let _ = signal.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("backend", &self.shared.backend)
            .field("enabled", &self.is_enabled())
            .finish_non_exhaustive()
    }
}

/// What the connections share.
struct Shared {
    addr: SocketAddr,
    upstream: Authority,
    backend: Backend,
    schedule: Schedule,
    settings: Settings,
    enabled: AtomicBool,
    draws: Mutex<Draws>,
    record: Mutex<Record>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The schedule's state: one lock, so that the order of draws is the order
/// of decisions.
struct Draws {
    dice: Dice,
    throttles: u64,
}

#[derive(Default)]
struct Record {
    stats: Stats,
    injections: Vec<Injection>,
}

/// Checks everything and binds, without a runtime: errors come back to the
/// caller either way.
fn prepare(
    upstream: &str,
    backend: Backend,
    schedule: Schedule,
    settings: Settings,
) -> Result<(StdListener, Arc<Shared>), ProxyError> {
    let upstream = parse_upstream(upstream)?;
    schedule.validate()?;
    let listen = settings.listen;
    let listener = StdListener::bind(listen).map_err(|source| ProxyError::Listen {
        addr: listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ProxyError::Listen {
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ProxyError::Listen {
        addr: listen,
        source,
    })?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.forward_timeout));
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        // Shorter than common server idle timeouts, so that a pooled
        // connection is rarely closed under a request.
        .pool_idle_timeout(Duration::from_secs(5))
        .http1_preserve_header_case(true)
        .build(connector);
    let shared = Shared {
        addr,
        upstream,
        backend,
        draws: Mutex::new(Draws {
            dice: Dice::new(schedule.seed),
            throttles: 0,
        }),
        schedule,
        settings,
        enabled: AtomicBool::new(true),
        record: Mutex::default(),
        client,
    };
    Ok((listener, Arc::new(shared)))
}

/// `http://host:port`, `http://host:port/` or `host:port`.
fn parse_upstream(text: &str) -> Result<Authority, ProxyError> {
    let bad = || ProxyError::Upstream(text.to_string());
    let trimmed = text.trim();
    let full = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let uri: Uri = full.parse().map_err(|_| bad())?;
    let authority = uri.authority().ok_or_else(bad)?;
    let plain = uri.scheme_str() == Some("http")
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
        && !authority.as_str().contains('@')
        && !authority.host().is_empty();
    if !plain {
        return Err(bad());
    }
    Ok(authority.clone())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Owned here, so that stopping the loop ends every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Err(error) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Connection {
        stream,
        reset: reset.clone(),
    });
    let service = hyper::service::service_fn(move |request| {
        let (shared, reset) = (shared.clone(), reset.clone());
        async move { handle(&shared, request, &reset).await }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .preserve_header_case(true)
        .serve_connection(io, service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%error, "connection closed");
    }
}

/// Returned by the service to make hyper drop the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Hangup(&'static str);

type Answer = Response<Full<Bytes>>;

async fn handle(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    reset: &AtomicBool,
) -> Result<Answer, Hangup> {
    let number = shared.note(|stats| {
        stats.requests += 1;
        stats.requests
    });
    let (parts, body) = request.into_parts();
    let limit = shared.settings.max_body_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => {
            shared.note(|stats| stats.failed += 1);
            let mut answer = Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {limit} bytes"),
            )
            .answer();
            // The rest of the body is not read.
            answer
                .headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            return Ok(answer);
        }
        Err(error) => {
            tracing::debug!(%error, "the request body did not arrive");
            return Err(Hangup("the request body did not arrive"));
        }
    };
    let view = RequestView {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        body: &body,
    };
    let Some((fault, turn)) = shared.decide(&view) else {
        return Ok(shared
            .forward(parts, body)
            .await
            .unwrap_or_else(Failure::answer));
    };
    let injection = Injection {
        request: number,
        fault,
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        target: view.target().map(str::to_string),
    };
    match fault {
        Fault::ServerError | Fault::Unavailable | Fault::Throttle => {
            let answer = shared
                .backend
                .fault_answer(fault, turn)
                .expect("these faults have an answer");
            shared.injected(injection);
            Ok(answer)
        }
        Fault::ResetBeforeForwarding => {
            shared.injected(injection);
            reset.store(true, Ordering::SeqCst);
            Err(Hangup("reset before forwarding (injected)"))
        }
        Fault::ResetAfterForwarding => match shared.forward(parts, body).await {
            Ok(_) => {
                shared.injected(injection);
                reset.store(true, Ordering::SeqCst);
                Err(Hangup("reset after forwarding (injected)"))
            }
            Err(failed) => Ok(failed.answer()),
        },
        Fault::Latency => match shared.forward(parts, body).await {
            Ok(answer) => {
                shared.injected(injection);
                tokio::time::sleep(shared.settings.latency).await;
                Ok(answer)
            }
            Err(failed) => Ok(failed.answer()),
        },
        Fault::Hang => {
            shared.injected(injection);
            tokio::time::sleep(shared.settings.hang).await;
            Err(Hangup("hung up (injected)"))
        }
    }
}

impl Shared {
    fn note<T>(&self, change: impl FnOnce(&mut Stats) -> T) -> T {
        change(&mut self.record.lock().expect("record lock").stats)
    }

    fn injected(&self, injection: Injection) {
        tracing::info!(
            request = injection.request,
            fault = %injection.fault,
            method = %injection.method,
            uri = %injection.uri,
            target = injection.target.as_deref().unwrap_or(""),
            "injected"
        );
        let mut record = self.record.lock().expect("record lock");
        record.stats.injected.add(injection.fault);
        record.injections.push(injection);
    }

    /// The fault for this request, with the number of throttles before it
    /// (their variants take turns); `None` to forward it.
    fn decide(&self, request: &RequestView<'_>) -> Option<(Fault, u64)> {
        if !self.enabled.load(Ordering::SeqCst)
            || !self.schedule.only.accepts(self.backend, request)
        {
            return None;
        }
        self.note(|stats| stats.eligible += 1);
        let mut draws = self.draws.lock().expect("draws lock");
        let fault = draws.dice.draw(&self.schedule)?;
        let turn = draws.throttles;
        if fault == Fault::Throttle {
            draws.throttles += 1;
        }
        Some((fault, turn))
    }

    /// Sends the request upstream and reads its whole answer; `Err` says
    /// why there is none. The exchange runs in a task of its own,
    /// so that a client giving up does not cut it short: `forwarded`
    /// counts what the upstream processed.
    async fn forward(
        self: &Arc<Self>,
        parts: request::Parts,
        body: Bytes,
    ) -> Result<Answer, Failure> {
        let shared = self.clone();
        match tokio::spawn(async move { shared.exchange(parts, body).await }).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::error!(%error, "the forwarding task failed");
                Err(Failure::new(
                    StatusCode::BAD_GATEWAY,
                    "the forwarding task failed",
                ))
            }
        }
    }

    async fn exchange(&self, parts: request::Parts, body: Bytes) -> Result<Answer, Failure> {
        let outcome = match self.upstream_request(parts, body) {
            Ok(request) => {
                tokio::time::timeout(self.settings.forward_timeout, self.send(request)).await
            }
            Err(failed) => Ok(Err(failed)),
        };
        match outcome {
            Ok(Ok(answer)) => {
                self.note(|stats| stats.forwarded += 1);
                Ok(answer)
            }
            Ok(Err(failed)) => {
                self.note(|stats| stats.failed += 1);
                Err(failed)
            }
            Err(_) => {
                self.note(|stats| stats.failed += 1);
                tracing::warn!(timeout = ?self.settings.forward_timeout, "the upstream did not answer in time");
                Err(Failure::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the upstream did not answer in time",
                ))
            }
        }
    }

    /// The request as it came, to the upstream: same method, path and
    /// query, headers (Host included) and body; only hop-by-hop headers
    /// go, and `expect` (the body is already here).
    fn upstream_request(
        &self,
        parts: request::Parts,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Failure> {
        let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.clone())
            .path_and_query(path)
            .build()
            .map_err(|_| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    "cannot forward this request target",
                )
            })?;
        let mut request = Request::from_parts(parts, Full::new(body));
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        strip_hop_by_hop(request.headers_mut());
        request.headers_mut().remove(header::EXPECT);
        Ok(request)
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let bad_gateway = |what: &str, error: &dyn std::fmt::Display| {
            tracing::warn!(upstream = %self.upstream, %error, "{what}");
            Failure::new(StatusCode::BAD_GATEWAY, format!("{what}: {error}"))
        };
        let answer = self
            .client
            .request(request)
            .await
            .map_err(|error| bad_gateway("the upstream failed", &error))?;
        let (mut parts, body) = answer.into_parts();
        let body = Limited::new(body, self.settings.max_body_bytes)
            .collect()
            .await
            .map_err(|error| bad_gateway("the upstream's answer failed", &error))?
            .to_bytes();
        strip_hop_by_hop(&mut parts.headers);
        parts.version = Version::HTTP_11;
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

/// Headers about one connection, not the message (RFC 9110, 7.6.1); the
/// body is passed on whole, so its framing is the proxy's.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Why the proxy could not pass a request on.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// The proxy's own error answer: not in the backend's format, since it
    /// is not a fault and tests should not mistake it for one.
    fn answer(self) -> Answer {
        Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(MARKER_HEADER, "failed")
            .body(Full::new(Bytes::from(format!(
                "fault-proxy: {}\n",
                self.message
            ))))
            .expect("a valid answer")
    }
}

/// A client connection that is reset (RST, not FIN) when a fault says so.
struct Connection {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            // Closing with a zero linger sends RST: the client sees the
            // connection reset, as when a load balancer or backend dies.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reset.load(Ordering::SeqCst) {
            // A FIN first would let the client see a clean end.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_plain_http_authorities() {
        for good in [
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "127.0.0.1:8080",
            " http://localhost:8000 ",
            "http://[::1]:8000",
        ] {
            assert!(parse_upstream(good).is_ok(), "{good}");
        }
        assert_eq!(
            parse_upstream("http://localhost:8000").unwrap().as_str(),
            "localhost:8000"
        );
        for bad in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://127.0.0.1:8000/v1",
            "http://127.0.0.1:8000?x=1",
            "http://user@127.0.0.1:8000",
            "",
            "http://",
        ] {
            assert!(
                matches!(parse_upstream(bad), Err(ProxyError::Upstream(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hop_by_hop_headers_go_the_rest_stays() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("host", "dynamodb.us-east-1.amazonaws.com"),
            ("authorization", "AWS4-HMAC-SHA256 ..."),
            ("x-amz-target", "DynamoDB_20120810.PutItem"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["authorization", "host", "x-amz-target"]);
    }

    #[test]
    fn bad_settings_fail_to_start() {
        let start = |upstream: &str, schedule| {
            FaultProxy::spawn_thread(upstream, Backend::DynamoDb, schedule, Settings::default())
        };
        assert!(matches!(
            start("https://x:1", Schedule::none()),
            Err(ProxyError::Upstream(_))
        ));
        assert!(matches!(
            start("127.0.0.1:1", Schedule::new(0, 2.0)),
            Err(ProxyError::Schedule(_))
        ));
        let taken = StdListener::bind("127.0.0.1:0").unwrap();
        let settings = Settings {
            listen: taken.local_addr().unwrap(),
            ..Settings::default()
        };
        let busy = FaultProxy::spawn_thread(
            "127.0.0.1:1",
            Backend::Firestore,
            Schedule::none(),
            settings,
        );
        assert!(matches!(busy, Err(ProxyError::Listen { .. })), "{busy:?}");
    }
}
