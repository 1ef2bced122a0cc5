//! Request bodies are read by the server before the request takes an
//! instance: a client that sends its body slowly (or never) then holds a
//! connection and a bounded buffer, not one of the instances every client
//! shares, and the body deadline is the server's alone to enforce.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::admission::BodySize;

/// The body a handler gets: read ahead, or left unread when it declares
/// more than the component accepts (which then refuses it by its length).
pub type RequestBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What the request's head says about its body.
pub fn body_size(body: &Incoming) -> BodySize {
    if body.is_end_stream() {
        return BodySize::Empty;
    }
    match body.size_hint().exact() {
        Some(0) => BodySize::Empty,
        Some(length) => BodySize::Declared(length),
        None => BodySize::Unknown,
    }
}

/// A body read ahead: its bytes, then the error that ended reading (a
/// client that went away, a malformed chunk), as the component would have
/// met them reading the connection itself.
#[derive(Debug, Default)]
pub struct ReadAhead {
    data: Option<Bytes>,
    error: Option<hyper::Error>,
}

impl ReadAhead {
    /// Bytes read ahead (the error, if any, is not counted).
    pub fn len(&self) -> usize {
        self.data.as_ref().map_or(0, Bytes::len)
    }

    /// Whether no byte was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body the component reads: the bytes, then the error.
    pub fn into_request_body(self) -> RequestBody {
        self.boxed_unsync()
    }
}

impl Body for ReadAhead {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(data) = this.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(this.error.take().map(Err))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.error.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.error {
            None => SizeHint::with_exact(self.len() as u64),
            Some(_) => SizeHint::default(),
        }
    }
}

/// Reads `body` until its end, an error, or `max_body_bytes + 1` bytes:
/// one byte over the limit is all the component needs to refuse it, so
/// the buffer stays bounded however much a chunked body carries.
pub async fn read_ahead(mut body: Incoming, max_body_bytes: u64) -> ReadAhead {
    let cap = usize::try_from(max_body_bytes.saturating_add(1)).unwrap_or(usize::MAX);
    let declared = body.size_hint().exact().unwrap_or(0);
    let mut bytes = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0).min(cap));
    let mut error = None;
    while bytes.len() < cap {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                error = Some(e);
                break;
            }
        }
    }
    bytes.truncate(cap);
    ReadAhead {
        data: (!bytes.is_empty()).then(|| bytes.freeze()),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_ahead_body_replays_its_bytes_once() {
        let body = ReadAhead {
            data: Some(Bytes::from_static(b"{}")),
            error: None,
        };
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"{}");
        let empty = ReadAhead::default();
        assert!(empty.is_end_stream());
        assert!(empty.is_empty());
    }
}
