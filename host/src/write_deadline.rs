//! The response write deadline. A client that stops reading makes the
//! connection's writes wait; hyper then stops pulling the response body,
//! and the component, blocked writing into that body, keeps its instance.
//! So the deadline is enforced on the connection's writes themselves
//! ([`DeadlineIo`]): once it has passed, the next write (or the one
//! waiting) fails, hyper closes the connection and drops the body, the
//! component's writes fail, and its instance ends.
//!
//! The deadline is armed when a response head is ready, and disarmed once
//! its body has ended ([`TimedBody`] dropped) and everything written has
//! been flushed to the socket. Kept-alive connections between responses
//! are left to the header timeout.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::admission::MemoryCharge;

/// The write deadline of the response a connection is sending, shared by
/// the connection's I/O and the response body.
#[derive(Debug, Default)]
pub struct WriteDeadline {
    state: Mutex<DeadlineState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct DeadlineState {
    at: Option<Instant>,
    body_done: bool,
}

impl WriteDeadline {
    /// A response head is ready: its whole body must be written by `at`.
    pub fn arm(&self, at: Instant) {
        *self.lock() = DeadlineState {
            at: Some(at),
            body_done: false,
        };
    }

    fn body_done(&self) {
        self.lock().body_done = true;
    }

    fn flushed(&self) {
        let mut state = self.lock();
        if state.body_done {
            state.at = None;
        }
    }

    fn current(&self) -> Option<Instant> {
        self.lock().at
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DeadlineState> {
        // The state is two plain fields, consistent after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's I/O whose writes fail once the current response's
/// write deadline has passed.
pub struct DeadlineIo<T> {
    inner: T,
    deadline: Arc<WriteDeadline>,
    peer: SocketAddr,
    /// Wakes a write that waits for the client past the deadline.
    timer: Option<Pin<Box<Sleep>>>,
    cut_off: bool,
}

impl<T> DeadlineIo<T> {
    /// Wraps a connection; `peer` names the client in the log line of a
    /// cut-off.
    pub fn new(inner: T, deadline: Arc<WriteDeadline>, peer: SocketAddr) -> Self {
        Self {
            inner,
            deadline,
            peer,
            timer: None,
            cut_off: false,
        }
    }

    fn expired(&mut self) -> io::Error {
        if !self.cut_off {
            self.cut_off = true;
            tracing::info!(
                peer = %self.peer,
                "the client did not take the response within the write timeout; closing the connection"
            );
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the response write deadline passed",
        )
    }

    /// Fails at once when the deadline has passed.
    fn check(&mut self) -> io::Result<()> {
        match self.deadline.current() {
            Some(at) if Instant::now() >= at => Err(self.expired()),
            _ => Ok(()),
        }
    }

    /// A write is waiting for the client: wake it at the deadline, and
    /// fail it if that has come.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(at) = self.deadline.current() else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.expired()),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Runs a write operation under the deadline.
    fn guarded<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>>
    where
        T: Unpin,
    {
        self.check()?;
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Pending => self.wait(cx).map(Err),
            ready => ready,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeadlineIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeadlineIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = this.guarded(cx, |inner, cx| inner.poll_flush(cx));
        if let Poll::Ready(Ok(())) = flushed {
            this.deadline.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A response body under the write deadline. It also holds the request's
/// share of the memory budget: the component's memory lives until it has
/// written this body.
pub struct TimedBody<B> {
    inner: B,
    deadline: Arc<WriteDeadline>,
    _charge: Option<MemoryCharge>,
}

impl<B> TimedBody<B> {
    /// Wraps a response body; `charge` is released when the body is dropped.
    pub fn new(inner: B, deadline: Arc<WriteDeadline>, charge: Option<MemoryCharge>) -> Self {
        Self {
            inner,
            deadline,
            _charge: charge,
        }
    }
}

impl<B> Drop for TimedBody<B> {
    fn drop(&mut self) {
        self.deadline.body_done();
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for TimedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[tokio::test]
    async fn writes_without_a_deadline_pass() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut io = DeadlineIo::new(client, Arc::default(), peer());
        io.write_all(b"hello").await.unwrap();
        io.flush().await.unwrap();
        let mut got = [0u8; 5];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }

    #[tokio::test]
    async fn a_write_waiting_for_the_reader_fails_at_the_deadline() {
        let (client, _server) = tokio::io::duplex(16);
        let deadline = Arc::new(WriteDeadline::default());
        let mut io = DeadlineIo::new(client, deadline.clone(), peer());
        let start = Instant::now();
        deadline.arm(start + Duration::from_millis(200));
        // The reader never reads: the duplex fills up and the write waits.
        let error = io.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(200));
        // Later writes fail at once.
        assert!(io.write_all(b"x").await.is_err());
    }

    #[tokio::test]
    async fn a_finished_and_flushed_response_disarms_the_deadline() {
        let (client, mut server) = tokio::io::duplex(1024);
        let deadline = Arc::new(WriteDeadline::default());
        let mut io = DeadlineIo::new(client, deadline.clone(), peer());
        deadline.arm(Instant::now() + Duration::from_millis(100));
        let body = TimedBody::new(
            http_body_util::Empty::<Bytes>::new(),
            deadline.clone(),
            None,
        );
        io.write_all(b"response").await.unwrap();
        // Flushed before the body ended: still armed.
        io.flush().await.unwrap();
        assert!(deadline.current().is_some());
        drop(body);
        io.flush().await.unwrap();
        assert!(deadline.current().is_none());
        // An idle connection long after is not cut off.
        tokio::time::sleep(Duration::from_millis(300)).await;
        io.write_all(b"next").await.unwrap();
        let mut got = [0u8; 12];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"responsenext");
    }
}
