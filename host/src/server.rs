//! The HTTP/1.1 front: accepts connections, keeps them alive, logs one line
//! per request, and shuts down gracefully (stop accepting, let requests in
//! flight finish within a grace period).
//!
//! It knows nothing of wasm: it serves any [`Handler`], which keeps it
//! testable with a native handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The response body type the server writes.
pub type ResponseBody = HyperOutgoingBody;

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Something that answers requests. An error becomes a 500 response; its
/// text goes to the log only.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = wasmtime::Result<Response<ResponseBody>>> + Send;
}

impl Handler for crate::runtime::Runtime {
    fn handle(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = wasmtime::Result<Response<ResponseBody>>> + Send {
        crate::runtime::Runtime::handle(self, request)
    }
}

/// A response body from bytes.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// The 500 answer when the handler fails, in the API's problem format.
fn internal_error() -> Response<ResponseBody> {
    let body = r#"{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"the request could not be handled; see the server log"}"#;
    let mut response = Response::new(full_body(body));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A bound listener, ready to serve.
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Binds `addr` (`host:port`; port 0 picks a free one).
    pub async fn bind(addr: &str) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up
    /// to `grace` for open requests. Returns whether all of them finished.
    pub async fn run<H: Handler>(
        self,
        handler: Arc<H>,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) -> bool {
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
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
            let handler = handler.clone();
            let service = hyper::service::service_fn(move |request| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(respond(&*handler, request).await) }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
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

/// Handles one request and writes its log line (never bodies, never the
/// query string, which may carry cursors).
async fn respond<H: Handler>(handler: &H, request: Request<Incoming>) -> Response<ResponseBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match handler.handle(request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(%method, path, error = %format!("{e:#}"), "request failed");
            internal_error()
        }
    };
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
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
    use tokio::net::TcpStream;

    /// Answers `/slow` after a while, fails on `/fail`, and echoes the path
    /// otherwise.
    struct Native;

    impl Handler for Native {
        async fn handle(
            &self,
            request: Request<Incoming>,
        ) -> wasmtime::Result<Response<ResponseBody>> {
            match request.uri().path() {
                "/slow" => {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    Ok(Response::new(full_body("slow done")))
                }
                "/fail" => Err(wasmtime::format_err!("the handler failed")),
                path => Ok(Response::new(full_body(path.to_owned()))),
            }
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

    async fn start() -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<bool>,
    ) {
        let server = Server::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(
            Arc::new(Native),
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn keeps_connections_alive_and_maps_failures_to_500() {
        let (addr, stop, task) = start().await;
        let mut sender = connect(addr).await;
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
        stop.send(()).unwrap();
        assert!(task.await.unwrap());
    }

    #[tokio::test]
    async fn shutdown_lets_requests_in_flight_finish() {
        let (addr, stop, task) = start().await;
        let mut sender = connect(addr).await;
        let idle = connect(addr).await;
        let in_flight = tokio::spawn(async move { get(&mut sender, "/slow").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        assert_eq!(
            in_flight.await.unwrap(),
            (StatusCode::OK, "slow done".to_owned())
        );
        // The idle keep-alive connection did not hold the shutdown up.
        assert!(task.await.unwrap());
        drop(idle);
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "no longer accepting"
        );
    }
}
