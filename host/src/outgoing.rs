//! The guests' outgoing HTTP (`wasi:http/outgoing-handler`) over one
//! pooled, keep-alive client shared by every instance.
//!
//! wasmtime-wasi-http's default sender opens a new TCP connection (and TLS
//! session) for every request. An adapter component sends each backend
//! call through here, so a composed component under the default paid a
//! connection per store call; reusing them is what lets the composed path
//! approach the native stores (BENCHMARKS.md has the figures). The
//! guest's timeouts still hold: `connect-timeout` through the client's
//! connect timeout (the guests' own is at most 5 s), `first-byte-timeout`
//! on the response head, `between-bytes-timeout` between body frames.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The largest request body a guest may send (the item store's largest
/// backend request, a keyed batch, is a few MiB).
const MAX_REQUEST_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Connecting, when the guest asks for nothing shorter: the guests ask.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The other timeouts when a guest sets none (wasmtime's own default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Idle connections kept per backend host.
const MAX_IDLE_PER_HOST: usize = 64;

/// How guests' outgoing requests are sent (`--outgoing-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Connections {
    /// One pool of keep-alive connections shared by every instance.
    #[default]
    Pooled,
    /// wasmtime-wasi-http's default: a new connection for every request
    /// (for a backend or proxy that mishandles keep-alive, and to measure
    /// what the pool buys).
    PerRequest,
}

/// The shared client; cheap to clone (one pool behind an `Arc`).
#[derive(Clone, Debug)]
pub struct OutgoingClient {
    client: reqwest::Client,
}

impl OutgoingClient {
    /// A client with its own connection pool.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            // Guests follow no redirects: a backend's 3xx is their answer.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { client })
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutgoingClient {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        let client = self.client.clone();
        Box::new(async move {
            let response = send(&client, request, options).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

async fn send(
    client: &reqwest::Client,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<http::Response<WasiBody>, Error> {
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let connect = options.and_then(|o| o.connect_timeout);
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BODY_BYTES)
        .collect()
        .await
        .map_err(|_| Error::HttpRequestBodySize(None))?
        .to_bytes();
    let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    // The head must come within the connect and first-byte timeouts.
    let head = first_byte.saturating_add(connect.unwrap_or(CONNECT_TIMEOUT));
    let response = match tokio::time::timeout(head, client.execute(request)).await {
        Err(_) => return Err(Error::ConnectionReadTimeout),
        Ok(Err(e)) => return Err(error(&e)),
        Ok(Ok(response)) => response,
    };
    let response: http::Response<reqwest::Body> = response.into();
    Ok(response.map(|body| {
        BetweenBytes::new(body.map_err(|e| error(&e)).boxed_unsync(), between_bytes).boxed_unsync()
    }))
}

/// A reqwest error as the wasi:http error the guest sorts by what a retry
/// may do: failing to connect means nothing was sent.
fn error(e: &reqwest::Error) -> Error {
    if e.is_connect() {
        if e.is_timeout() {
            Error::ConnectionTimeout
        } else {
            Error::ConnectionRefused
        }
    } else if e.is_timeout() {
        Error::ConnectionReadTimeout
    } else if e.is_body() || e.is_decode() {
        Error::HttpResponseIncomplete
    } else if e.is_request() {
        Error::ConnectionTerminated
    } else {
        Error::HttpProtocolError
    }
}

/// A response body that fails with a read timeout when no frame comes
/// within `wait` of the last one.
struct BetweenBytes {
    body: WasiBody,
    wait: Duration,
    timer: Pin<Box<Sleep>>,
}

impl BetweenBytes {
    fn new(body: WasiBody, wait: Duration) -> Self {
        Self {
            body,
            wait,
            timer: Box::pin(tokio::time::sleep(wait)),
        }
    }
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.wait;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http_body_util::{Empty, Full};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn request(url: &str, body: &'static str) -> http::Request<WasiBody> {
        http::Request::post(url)
            .body(
                Full::new(Bytes::from_static(body.as_bytes()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn options(timeout: Duration) -> Option<RequestOptions> {
        Some(RequestOptions {
            connect_timeout: Some(timeout),
            first_byte_timeout: Some(timeout),
            between_bytes_timeout: Some(timeout),
        })
    }

    /// A server that answers every request on a connection with 200 and
    /// the count of connections it accepted so far.
    async fn counting_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut accepted = 0u32;
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                accepted += 1;
                let n = accepted;
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 4096];
                    loop {
                        // One small request per read is enough here.
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let body = n.to_string();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://{address}/")
    }

    async fn text(response: http::Response<WasiBody>) -> String {
        let body = response
            .into_body()
            .collect()
            .await
            .ok()
            .unwrap()
            .to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn requests_share_one_kept_alive_connection() {
        let url = counting_server().await;
        let mut hooks = OutgoingClient::new().unwrap();
        for _ in 0..5 {
            let (response, _) = Pin::from(hooks.send_request(
                request(&url, "{}"),
                options(Duration::from_secs(5)),
                Box::new(async { Ok(()) }),
            ))
            .await
            .ok()
            .unwrap();
            assert_eq!(response.status(), 200);
            // Every answer comes from the first connection.
            assert_eq!(text(response).await, "1");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let client = OutgoingClient::new().unwrap();
        let sent = send(&client.client, request(&url, ""), None).await;
        assert!(matches!(sent, Err(Error::ConnectionRefused)), "{sent:?}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_on_the_head_and_between_bytes() {
        // Accepts, reads, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                held.push(socket);
            }
        });
        let client = OutgoingClient::new().unwrap();
        let sent = send(
            &client.client,
            request(&url, ""),
            options(Duration::from_millis(200)),
        )
        .await;
        assert!(
            matches!(sent, Err(Error::ConnectionReadTimeout)),
            "{sent:?}"
        );

        // A head, then a body that stops.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                .await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let response = send(
            &client.client,
            request(&url, ""),
            options(Duration::from_millis(200)),
        )
        .await
        .ok()
        .unwrap();
        let read = response.into_body().collect().await;
        assert!(
            matches!(read, Err(Error::ConnectionReadTimeout)),
            "{:?}",
            read.err()
        );
    }

    #[tokio::test]
    async fn an_oversized_request_body_is_refused() {
        let url = counting_server().await;
        let client = OutgoingClient::new().unwrap();
        let huge = http::Request::post(&url)
            .body(
                Full::new(Bytes::from(vec![b'x'; MAX_REQUEST_BODY_BYTES + 1]))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap();
        let sent = send(&client.client, huge, None).await;
        assert!(
            matches!(sent, Err(Error::HttpRequestBodySize(_))),
            "{sent:?}"
        );
        let empty = http::Request::get(&url)
            .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
            .unwrap();
        assert!(send(&client.client, empty, None).await.is_ok());
    }
}
