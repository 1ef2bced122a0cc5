//! The HTTP/1.1 front: accepts connections (up to a cap per client),
//! keeps them alive, reads each request's body ahead under its deadline
//! and within the memory budget, hands the request to a [`Handler`] under
//! the request deadline, writes the response under the write deadline,
//! logs one line per request (every line of a request in a span that
//! carries its request id), counts it in the metrics, and shuts down gracefully (stop accepting,
//! let requests in flight finish within a grace period).
//!
//! It knows nothing of wasm: it serves any [`Handler`], which keeps it
//! testable with a native handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::Instrument;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admission::{
    BodySize, ClientConnection, ClientConnections, MemoryBudget, MemoryCharge, TooManyConnections,
    estimated_memory,
};
use crate::authority::{self, HostError, RequestAuthority};
use crate::body::{ReadAhead, RequestBody, body_size, read_ahead};
use crate::limits::Limits;
use crate::metrics::{Metrics, Rejection};
use crate::problem::{Problem, internal_error};
use crate::write_deadline::{DeadlineIo, TimedBody, WriteDeadline};

/// The response body type the server writes.
pub type ResponseBody = HyperOutgoingBody;

/// How long a connection refused at its client's cap may take to send the
/// request head that gets the refusal.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// When a request must have its response head, and when all its work,
/// including writing the response body, must be over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Request head plus `request_timeout`.
    pub respond_by: Instant,
    /// `respond_by` plus `write_timeout`.
    pub finish_by: Instant,
}

/// Why a handler gave no response.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Capacity, not failure: answered 503 with Retry-After.
    #[error("no instance became free within {0:?}")]
    NoInstance(Duration),
    /// Answered 500; the text goes to the log only.
    #[error("{0:#}")]
    Failed(wasmtime::Error),
}

/// Something that answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`, whose body the server has read ahead (or left
    /// unread when it is over the body limit). Dropping the future before
    /// it returns cancels the request and frees what it holds; the
    /// response body must end by `deadlines.finish_by`.
    fn handle(
        &self,
        request: Request<RequestBody>,
        deadlines: Deadlines,
    ) -> impl Future<Output = Result<Response<ResponseBody>, HandleError>> + Send;
}

impl Handler for crate::runtime::Runtime {
    fn handle(
        &self,
        request: Request<RequestBody>,
        deadlines: Deadlines,
    ) -> impl Future<Output = Result<Response<ResponseBody>, HandleError>> + Send {
        crate::runtime::Runtime::handle(self, request, deadlines)
    }
}

/// A response body from bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

/// What every connection's requests share.
struct Shared<H> {
    handler: Arc<H>,
    limits: Limits,
    memory: MemoryBudget,
    metrics: Arc<Metrics>,
}

/// What one connection's requests share.
struct Connection {
    /// The address the client connected to: the authority of requests
    /// that name none.
    local: SocketAddr,
    write_deadline: Arc<WriteDeadline>,
}

impl Server {
    /// Binds `addr` (`host:port`; port 0 picks a free one).
    pub async fn bind(addr: &str) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
            metrics: Arc::default(),
        })
    }

    /// Counts requests in `metrics` (by default in a registry of its own
    /// that nothing serves).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves under `limits` until `shutdown` completes, then stops
    /// accepting and waits up to `grace` for open requests. Returns whether
    /// all of them finished.
    pub async fn run<H: Handler>(
        self,
        handler: Arc<H>,
        limits: Limits,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> bool {
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let mut refusing = http1::Builder::new();
        refusing
            .keep_alive(false)
            .timer(TokioTimer::new())
            .header_read_timeout(REFUSAL_HEADER_TIMEOUT.min(limits.header_timeout));
        let clients = ClientConnections::new(limits.max_connections_per_ip);
        let shared = Arc::new(Shared {
            handler,
            memory: MemoryBudget::new(limits.memory_budget),
            limits,
            metrics: self.metrics.clone(),
        });
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually out of file descriptors: back off a little
                        // instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            match clients.try_open(peer.ip()) {
                Ok(client) => serve_connection(&http, &graceful, &shared, stream, peer, client),
                Err(refused) => {
                    shared.metrics.rejected(Rejection::Connections);
                    refuse_connection(&refusing, stream, peer, refused);
                }
            }
        }
        drop(self.listener);
        let open = graceful.count();
        tracing::info!(open_connections = open, "shutting down");
        match tokio::time::timeout(grace, graceful.shutdown()).await {
            Ok(()) => {
                tracing::info!("all requests finished");
                true
            }
            Err(_) => {
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "requests still running after the grace period; stopping anyway"
                );
                false
            }
        }
    }
}

fn serve_connection<H: Handler>(
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    shared: &Arc<Shared<H>>,
    stream: TcpStream,
    peer: SocketAddr,
    client: ClientConnection,
) {
    let connection = Arc::new(Connection {
        local: stream.local_addr().unwrap_or(peer),
        write_deadline: Arc::default(),
    });
    let io = DeadlineIo::new(stream, connection.write_deadline.clone(), peer);
    let shared = shared.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let connection = connection.clone();
        async move { Ok::<_, Infallible>(respond(&shared, &connection, request).await) }
    });
    let served = graceful.watch(http.serve_connection(TokioIo::new(io), service));
    tokio::spawn(async move {
        if let Err(e) = served.await {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
        drop(client);
    });
}

/// Answers the one request of a connection over its client's cap with 429
/// and closes it. The first refusal of an episode is logged; the rest
/// would only repeat it.
fn refuse_connection(
    http: &http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    refused: TooManyConnections,
) {
    if refused.first {
        tracing::warn!(
            client = %refused.client,
            max = refused.max,
            "a client reached its connection limit; its further connections get 429 until it \
             closes some (logged once per episode)"
        );
    } else {
        tracing::debug!(%peer, "connection refused: its client is at its connection limit");
    }
    let max = refused.max;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| async move {
        let request_id = request_id(&request);
        let mut response = Problem::too_many_connections(max).into_response(&request_id);
        set_request_id(response.headers_mut(), &request_id);
        Ok::<_, Infallible>(response)
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::spawn(async move {
        let _ = connection.await;
    });
}

/// The request's id: its `X-Request-Id` when sane, else a new one
/// (`item_model::request_id`, the rule the component applies too).
fn request_id<B>(request: &Request<B>) -> String {
    item_model::request_id::accept_or_new(
        request
            .headers()
            .get(item_model::request_id::HEADER)
            .map(http::HeaderValue::as_bytes),
        rand::random,
    )
}

/// Puts the request id in `X-Request-Id`, replacing any other value.
fn set_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    // A valid id is visible ASCII, so always a valid header value.
    if let Ok(value) = http::HeaderValue::from_str(request_id) {
        headers.insert(item_model::request_id::HEADER, value);
    }
}

/// Handles one request and writes its log line (never bodies, never the
/// query string, which may carry cursors). The request id is checked or
/// made here and given to the component in `X-Request-Id`, so that its
/// answer, the response header and every log line of the request (the
/// `request` span's `request_id`) agree.
async fn respond<H: Handler>(
    shared: &Shared<H>,
    connection: &Connection,
    mut request: Request<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let request_id = request_id(&request);
    set_request_id(request.headers_mut(), &request_id);
    let span = tracing::info_span!("request", request_id = %request_id);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (mut response, charge) = answer(
        shared,
        connection,
        request,
        started,
        &method,
        &path,
        &request_id,
    )
    .instrument(span.clone())
    .await;
    set_request_id(response.headers_mut(), &request_id);
    let latency = started.elapsed();
    shared
        .metrics
        .request(&method, &path, response.status(), latency);
    span.in_scope(|| {
        tracing::info!(
            %method,
            path,
            status = response.status().as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request"
        );
    });
    let deadline = connection.write_deadline.clone();
    deadline.arm(Instant::now() + shared.limits.write_timeout);
    response.map(|body| TimedBody::new(body, deadline, charge).boxed_unsync())
}

/// The response, and the request's share of the memory budget, which the
/// response body holds until it ends.
async fn answer<H: Handler>(
    shared: &Shared<H>,
    connection: &Connection,
    request: Request<Incoming>,
    started: Instant,
    method: &Method,
    path: &str,
    request_id: &str,
) -> (Response<ResponseBody>, Option<MemoryCharge>) {
    let limits = &shared.limits;
    let (mut parts, body) = request.into_parts();
    match authority::check(parts.version, &parts.headers, &parts.uri) {
        Ok(RequestAuthority::Named) => {}
        Ok(RequestAuthority::FromConnection) => {
            match authority::with_default(&parts.uri, connection.local) {
                Some(uri) => parts.uri = uri,
                None => {
                    let problem = Problem::invalid_host("this request target needs a Host header");
                    return (problem.into_response(request_id), None);
                }
            }
        }
        Err(refused) => {
            tracing::debug!(%method, path, reason = %refused, "request refused: its Host header");
            let problem = match refused {
                HostError::Missing => Problem::missing_host(),
                other => Problem::invalid_host(&other.to_string()),
            };
            return (problem.into_response(request_id), None);
        }
    }

    let size = body_size(&body);
    let charge = match shared
        .memory
        .try_charge(estimated_memory(size, limits.max_body_bytes))
    {
        Ok(charge) => charge,
        Err(full) => {
            tracing::debug!(%method, path, wanted = full.wanted, "request refused: memory budget");
            shared.metrics.rejected(Rejection::Memory);
            return (
                Problem::no_memory(size != BodySize::Empty).into_response(request_id),
                None,
            );
        }
    };

    let request_timeout = limits.request_timeout;
    let body: RequestBody = match size {
        BodySize::Empty => ReadAhead::default().into_request_body(),
        // The component refuses it by its length without reading it.
        BodySize::Declared(length) if length > limits.max_body_bytes => body.boxed_unsync(),
        BodySize::Declared(_) | BodySize::Unknown => {
            let body_timeout = limits.body_timeout.min(request_timeout);
            let read = read_ahead(body, limits.max_body_bytes);
            match tokio::time::timeout_at(started + body_timeout, read).await {
                Ok(read) => read.into_request_body(),
                Err(_) => {
                    return (
                        Problem::body_timeout(body_timeout).into_response(request_id),
                        None,
                    );
                }
            }
        }
    };

    let respond_by = started + request_timeout;
    let deadlines = Deadlines {
        respond_by,
        finish_by: respond_by + limits.write_timeout,
    };
    let request = Request::from_parts(parts, body);
    let handled = shared.handler.handle(request, deadlines);
    match tokio::time::timeout_at(respond_by, handled).await {
        Ok(Ok(response)) => (response, Some(charge)),
        Ok(Err(HandleError::NoInstance(waited))) => {
            shared.metrics.rejected(Rejection::Instances);
            (Problem::no_instance(waited).into_response(request_id), None)
        }
        Ok(Err(HandleError::Failed(e))) => {
            tracing::error!(%method, path, error = %format!("{e:#}"), "request failed");
            (internal_error(request_id), None)
        }
        Err(_) => {
            tracing::warn!(%method, path, "no response within the request timeout; request stopped");
            (
                Problem::request_timeout(request_timeout).into_response(request_id),
                None,
            )
        }
    }
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are
/// installed by this call, not on first poll, so a signal that arrives
/// right after start-up is not lost (nor fatal).
#[cfg(unix)]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("received Ctrl-C");
        } else {
            std::future::pending::<()>().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use hyper::StatusCode;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sets its flag when dropped: shows that the server let go of
    /// something (a cancelled handler, a response body).
    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Answers by path: `/slow` after a while, `/fail` fails, `/busy` has
    /// no instance, `/hang` never answers, `/len` gives its body's length,
    /// `/authority` its URI's authority, `/endless` streams forever;
    /// anything else echoes the path.
    #[derive(Default)]
    struct Native {
        hang_dropped: Arc<AtomicBool>,
        endless_dropped: Arc<AtomicBool>,
        /// The `X-Request-Id` of the last request handled.
        last_id: std::sync::Mutex<Option<String>>,
    }

    impl Handler for Native {
        async fn handle(
            &self,
            request: Request<RequestBody>,
            _deadlines: Deadlines,
        ) -> Result<Response<ResponseBody>, HandleError> {
            *self.last_id.lock().unwrap() = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = |text: String| Ok(Response::new(full_body(text)));
            match request.uri().path() {
                "/slow" => {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    text("slow done".into())
                }
                "/fail" => Err(HandleError::Failed(wasmtime::format_err!(
                    "the handler failed"
                ))),
                "/busy" => Err(HandleError::NoInstance(Duration::from_millis(10))),
                "/hang" => {
                    let _flag = DropFlag(self.hang_dropped.clone());
                    std::future::pending::<Result<Response<ResponseBody>, HandleError>>().await
                }
                "/len" => {
                    let body = request.into_body().collect().await;
                    text(body.map_or("error".into(), |b| b.to_bytes().len().to_string()))
                }
                "/authority" => text(
                    request
                        .uri()
                        .authority()
                        .map_or("none".into(), |a| a.to_string()),
                ),
                "/endless" => {
                    let endless = Endless {
                        chunk: Bytes::from(vec![b'x'; 64 << 10]),
                        _flag: DropFlag(self.endless_dropped.clone()),
                    };
                    Ok(Response::new(endless.boxed_unsync()))
                }
                path => text(path.to_owned()),
            }
        }
    }

    /// A response body that never ends.
    struct Endless {
        chunk: Bytes,
        _flag: DropFlag,
    }

    impl hyper::body::Body for Endless {
        type Data = Bytes;
        type Error = wasmtime_wasi_http::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(self.chunk.clone()))))
        }
    }

    type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

    async fn connect(addr: SocketAddr) -> Sender {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    async fn get(sender: &mut Sender, path: &str) -> (StatusCode, String) {
        let request = Request::get(path)
            .header("host", "test")
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Sends `request` as is and reads until the server closes or stops
    /// sending for two seconds.
    async fn raw(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        read_all(&mut stream).await
    }

    /// Checks that `answer` is the server's problem `slug` with `status`.
    fn assert_problem(answer: &str, status: u16, slug: &str) {
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        assert!(
            answer.contains("content-type: application/problem+json\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains(&format!("\"type\":\"urn:edge-items:problem:{slug}\"")),
            "{answer}"
        );
    }

    async fn read_all(stream: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    struct Running {
        addr: SocketAddr,
        native: Arc<Native>,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<bool>,
    }

    async fn start_with(limits: Limits) -> Running {
        let server = Server::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let native = Arc::new(Native::default());
        let task = tokio::spawn(server.run(
            native.clone(),
            limits,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Running {
            addr,
            native,
            stop,
            task,
        }
    }

    async fn start() -> Running {
        start_with(Limits::default()).await
    }

    #[tokio::test]
    async fn keeps_connections_alive_and_maps_failures_to_500() {
        let server = start().await;
        let mut sender = connect(server.addr).await;
        assert_eq!(
            get(&mut sender, "/a").await,
            (StatusCode::OK, "/a".to_owned())
        );
        // Same connection, second request.
        assert_eq!(
            get(&mut sender, "/b").await,
            (StatusCode::OK, "/b".to_owned())
        );
        let (status, body) = get(&mut sender, "/fail").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("\"status\":500"), "{body}");
        assert!(
            !body.contains("the handler failed"),
            "details stay in the log"
        );
        server.stop.send(()).unwrap();
        assert!(server.task.await.unwrap());
    }

    #[tokio::test]
    async fn shutdown_lets_requests_in_flight_finish() {
        let server = start().await;
        let mut sender = connect(server.addr).await;
        let idle = connect(server.addr).await;
        let in_flight = tokio::spawn(async move { get(&mut sender, "/slow").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.stop.send(()).unwrap();
        assert_eq!(
            in_flight.await.unwrap(),
            (StatusCode::OK, "slow done".to_owned())
        );
        // The idle keep-alive connection did not hold the shutdown up.
        assert!(server.task.await.unwrap());
        drop(idle);
        assert!(
            TcpStream::connect(server.addr).await.is_err(),
            "no longer accepting"
        );
    }

    #[tokio::test]
    async fn bodies_are_read_ahead_and_capped_one_byte_over_the_limit() {
        let server = start_with(Limits {
            max_body_bytes: 10,
            ..Limits::default()
        })
        .await;
        let answer = raw(
            server.addr,
            b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        )
        .await;
        assert!(answer.ends_with("\r\n\r\n5"), "{answer}");
        // Chunked, 40 bytes: the handler gets 11, enough to refuse it.
        let chunked = format!(
            "POST /len HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{}0\r\n\r\n",
            "a\r\n0123456789\r\n".repeat(4)
        );
        let answer = raw(server.addr, chunked.as_bytes()).await;
        assert!(answer.ends_with("\r\n\r\n11"), "{answer}");
        // Declared over the limit: left unread for the handler.
        let answer = raw(
            server.addr,
            b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 20\r\nconnection: close\r\n\r\n01234567890123456789",
        )
        .await;
        assert!(answer.ends_with("\r\n\r\n20"), "{answer}");
    }

    #[tokio::test]
    async fn a_stalled_body_gets_408_at_its_deadline() {
        let server = start_with(Limits {
            body_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        let started = Instant::now();
        let answer = raw(
            server.addr,
            b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\nabcdef",
        )
        .await;
        assert_problem(&answer, 408, "body-timeout");
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn host_rules_of_rfc_9112() {
        let server = start().await;
        let answer = raw(server.addr, b"GET /a HTTP/1.1\r\n\r\n").await;
        assert_problem(&answer, 400, "missing-host");
        let answer = raw(
            server.addr,
            b"GET /a HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        )
        .await;
        assert_problem(&answer, 400, "invalid-host");
        let answer = raw(server.addr, b"GET /a HTTP/1.1\r\nhost: u@h\r\n\r\n").await;
        assert_problem(&answer, 400, "invalid-host");
        // HTTP/1.0 may leave Host out: the connection's address stands in.
        let answer = raw(server.addr, b"GET /authority HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        assert!(answer.ends_with(&server.addr.to_string()), "{answer}");
        // With a Host, the target is left as it came (wasi:http reads Host).
        let answer = raw(
            server.addr,
            b"GET /authority HTTP/1.1\r\nhost: h:1\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.ends_with("\r\n\r\nnone"), "{answer}");
    }

    #[tokio::test]
    async fn a_handler_past_the_request_deadline_is_stopped_with_504() {
        let server = start_with(Limits {
            request_timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        let mut sender = connect(server.addr).await;
        let (status, body) = get(&mut sender, "/hang").await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert!(
            body.contains("urn:edge-items:problem:request-timeout"),
            "{body}"
        );
        assert!(
            server.native.hang_dropped.load(Ordering::SeqCst),
            "cancelled"
        );
        // The connection is still good.
        assert_eq!(get(&mut sender, "/a").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn no_instance_is_503_with_retry_after() {
        let server = start().await;
        let answer = raw(
            server.addr,
            b"GET /busy HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_problem(&answer, 503, "server-busy");
        assert!(answer.contains("retry-after: 1\r\n"), "{answer}");
    }

    #[tokio::test]
    async fn own_answers_carry_the_request_id_kept_or_replaced() {
        let server = start().await;
        let answer = raw(
            server.addr,
            b"GET /busy HTTP/1.1\r\nhost: t\r\nx-request-id: client-42\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.contains("x-request-id: client-42\r\n"), "{answer}");
        assert!(
            answer.contains("\"instance\":\"urn:edge-items:request:client-42\""),
            "{answer}"
        );
        // Too long: replaced by a generated UUID.
        let long = "x".repeat(129);
        let answer = raw(
            server.addr,
            format!(
                "GET /a HTTP/1.1\r\nhost: t\r\nx-request-id: {long}\r\nconnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
        assert!(!answer.contains(&long), "{answer}");
        let id = answer
            .lines()
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .expect("an id");
        assert_eq!(id.len(), 36, "{id}");
        // The handler saw the same id the client got.
        assert_eq!(server.native.last_id.lock().unwrap().as_deref(), Some(id));
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_cut_off_at_the_write_deadline() {
        let server = start_with(Limits {
            write_timeout: Duration::from_millis(500),
            ..Limits::default()
        })
        .await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /endless HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        // Never read; the body is let go of once the deadline has passed.
        let started = Instant::now();
        while !server.native.endless_dropped.load(Ordering::SeqCst) {
            assert!(started.elapsed() < Duration::from_secs(10), "still writing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    #[tokio::test]
    async fn connections_are_capped_per_client() {
        let server = start_with(Limits {
            max_connections_per_ip: 2,
            ..Limits::default()
        })
        .await;
        let mut first = connect(server.addr).await;
        let _second = connect(server.addr).await;
        assert_eq!(get(&mut first, "/a").await.0, StatusCode::OK);
        let answer = raw(server.addr, b"GET /a HTTP/1.1\r\nhost: t\r\n\r\n").await;
        assert_problem(&answer, 429, "too-many-connections");
        drop(first);
        // Room again once a connection has closed.
        let started = Instant::now();
        loop {
            let answer = raw(
                server.addr,
                b"GET /a HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
            )
            .await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{answer}");
        }
    }

    #[tokio::test]
    async fn large_bodies_beyond_the_memory_budget_get_503_while_small_ones_pass() {
        let server = start_with(Limits {
            memory_budget: 1000 * crate::admission::MEMORY_PER_BODY_BYTE,
            max_body_bytes: 1000,
            ..Limits::default()
        })
        .await;
        // A body of 900 bytes that does not come yet holds 90 % of the budget.
        let mut holder = TcpStream::connect(server.addr).await.unwrap();
        holder
            .write_all(b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 900\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = raw(
            server.addr,
            b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 500\r\nexpect: 100-continue\r\n\r\n",
        )
        .await;
        assert_problem(&answer, 503, "server-busy");
        assert!(
            answer.contains("retry-after: 1\r\nconnection: close\r\n"),
            "{answer}"
        );
        let answer = raw(
            server.addr,
            b"POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi",
        )
        .await;
        assert!(answer.ends_with("\r\n\r\n2"), "{answer}");
        // The holder's body ends: its share comes back.
        holder.write_all(&[b'x'; 900]).await.unwrap();
        let held = read_all(&mut holder).await;
        assert!(held.contains("\r\n\r\n900"), "{held}");
        drop(holder);
        let answer = raw(
            server.addr,
            format!(
                "POST /len HTTP/1.1\r\nhost: t\r\ncontent-length: 500\r\nconnection: close\r\n\r\n{}",
                "y".repeat(500)
            )
            .as_bytes(),
        )
        .await;
        assert!(answer.ends_with("\r\n\r\n500"), "{answer}");
    }
}
