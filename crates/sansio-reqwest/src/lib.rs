//! The native stores' transport for `sansio`'s [`drive_async`]: one pooled
//! keep-alive reqwest client, tokio's timer for pauses and `rand` for the
//! jitter.
//!
//! A crate of its own rather than a feature of `sansio`: cargo unifies
//! features across a build, and a component built together with a native
//! store would otherwise be asked to compile reqwest for wasm32.
//!
//! [`drive_async`]: sansio::drive_async

use std::time::Duration;

use rand::Rng;
use sansio::{AsyncTransport, Request, Response, TransportError};

/// Sends with one reqwest client (share it: clones share the pool).
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    timeout: Duration,
}

impl ReqwestTransport {
    /// Over `client`, whose whole-request timeout is `timeout` (named in
    /// [`TransportError::Timeout`]).
    pub fn new(client: reqwest::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    async fn exchange(&self, request: Request) -> Result<Response, TransportError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|_| TransportError::Refused("the request cannot be sent as it is".into()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| self.failure(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| self.failure(&e))?;
        let mut answer = http::Response::new(body.to_vec());
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }

    /// Sorted by what a retry may do, in our words: reqwest's text could
    /// quote the URL.
    fn failure(&self, error: &reqwest::Error) -> TransportError {
        if error.is_connect() {
            TransportError::Connect("connection refused or unreachable".into())
        } else if error.is_timeout() {
            TransportError::Timeout(self.timeout)
        } else if error.is_body() || error.is_decode() {
            TransportError::Broken("the response broke off".into())
        } else {
            TransportError::Broken("the connection failed".into())
        }
    }
}

impl AsyncTransport for ReqwestTransport {
    fn send(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Response, TransportError>> + Send {
        self.exchange(request)
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    fn random_u64(&self) -> u64 {
        rand::rng().random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> ReqwestTransport {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        ReqwestTransport::new(client, Duration::from_secs(2))
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure_that_names_no_url() {
        // Port 9 (discard) is closed on a test machine.
        let request = http::Request::get("http://127.0.0.1:9/secret-path")
            .body(Vec::new())
            .unwrap();
        let error = transport().send(request).await.unwrap_err();
        assert!(matches!(&error, TransportError::Connect(_)), "{error:?}");
        assert!(!error.to_string().contains("secret-path"));
    }

    #[tokio::test]
    async fn an_answer_keeps_status_headers_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let answer = "HTTP/1.1 429 Too Many\r\nretry-after: 1\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow";
            let _ = socket.write_all(answer.as_bytes()).await;
        });
        let request = http::Request::get(format!("http://{address}/"))
            .body(Vec::new())
            .unwrap();
        let response = transport().send(request).await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.body(), b"slow");
        let random = transport().random_u64();
        assert!(random != 0 || transport().random_u64() != 0);
    }
}
