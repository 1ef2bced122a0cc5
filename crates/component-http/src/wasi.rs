//! The component side: wasi:http/outgoing-handler, wasi:clocks, wasi:random.
//!
//! Resources are children of others (a pollable of its stream, a stream of
//! its body, a body of its request or response); the runtime traps when a
//! parent goes before its child, so children are dropped explicitly first.

use std::time::Duration;

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme, http_error_code,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::request::{Parts, declared_length, parts, response};
use crate::{Options, TransportError};

/// Most bytes asked of a stream per read.
const READ_CHUNK: u64 = 64 * 1024;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub(crate) fn sleep(duration: Duration) {
    if !duration.is_zero() {
        monotonic_clock::subscribe_duration(nanos(duration)).block();
    }
}

pub(crate) fn random_u64() -> u64 {
    wasip2::random::random::get_random_u64()
}

/// The point on the monotonic clock by which the exchange must be done.
struct Deadline {
    at: monotonic_clock::Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Self {
            at: monotonic_clock::now().saturating_add(nanos(timeout)),
            timeout,
        }
    }

    /// Blocks until `pollable` is ready, or fails when the deadline comes
    /// first.
    fn wait(&self, pollable: &Pollable) -> Result<(), TransportError> {
        if pollable.ready() {
            return Ok(());
        }
        let timer = monotonic_clock::subscribe_instant(self.at);
        let ready = poll(&[pollable, &timer]);
        if ready.contains(&0) {
            Ok(())
        } else {
            Err(TransportError::Timeout(self.timeout))
        }
    }
}

pub(crate) fn send(
    request: http::Request<Vec<u8>>,
    options: &Options,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let deadline = Deadline::after(options.timeout);
    let parts = parts(request)?;
    let (outgoing, body) = outgoing_request(&parts)?;
    let stream = body
        .write()
        .map_err(|()| TransportError::Broken("the request body stream is not available".into()))?;
    // What the runtime accepts at once goes in before `handle`: a body that
    // fits (every request of ours) is then whole when the runtime writes the
    // request head, and both leave in one write. Written after `handle`, the
    // body left as a second TCP segment, which a runtime that keeps Nagle's
    // algorithm on its connections (Spin 4) held back until the peer's
    // delayed ACK: 40 ms stalls at one request at a time. A larger body
    // still streams after `handle` instead of blocking.
    let early = write_available(&stream, &parts.body).map_err(|e| stream_error(e, &deadline))?;
    let rest = &parts.body[early..];
    // A failed finish (the body did not match its length) fails the
    // exchange too, so the answer below carries it.
    let finish = |stream: OutputStream, body: OutgoingBody| {
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    };
    let unsent = if rest.is_empty() {
        if early > 0 {
            start_flush(&stream).map_err(|e| stream_error(e, &deadline))?;
        }
        finish(stream, body);
        None
    } else {
        Some((stream, body))
    };
    let future = outgoing_handler::handle(outgoing, Some(request_options(options)))
        .map_err(|code| error(&code, &deadline))?;
    let written = match unsent {
        None => Ok(()),
        Some((stream, body)) => {
            let written = write_all(&stream, rest, &deadline);
            finish(stream, body);
            written
        }
    };
    let answer = wait_for_response(&future, &deadline);
    drop(future);
    // An answer is what counts, even when writing the body failed (a
    // server may answer early). A failed exchange names its own reason,
    // except that a timeout after a failed write is reported as the write's
    // failure, the cause.
    let incoming = match answer {
        Ok(incoming) => incoming,
        Err(e @ TransportError::Timeout(_)) => return Err(written.err().unwrap_or(e)),
        Err(e) => return Err(e),
    };

    let status = incoming.status();
    let headers = incoming.headers().entries();
    let body = read_body(&incoming, &headers, options.max_response_bytes, &deadline);
    drop(incoming);
    response(status, headers, body?)
}

fn request_options(options: &Options) -> RequestOptions {
    let request_options = RequestOptions::new();
    // A runtime that does not support one says so with an error; the
    // deadline still holds, so that is fine.
    let _ = request_options.set_connect_timeout(Some(nanos(options.connect_timeout)));
    let _ = request_options.set_first_byte_timeout(Some(nanos(options.timeout)));
    let _ = request_options.set_between_bytes_timeout(Some(nanos(options.timeout)));
    request_options
}

fn outgoing_request(parts: &Parts) -> Result<(OutgoingRequest, OutgoingBody), TransportError> {
    let refused = |what: &str| TransportError::Refused(what.to_owned());
    let headers = Fields::from_list(&parts.headers)
        .map_err(|_| refused("a request header is invalid or forbidden"))?;
    let request = OutgoingRequest::new(headers);
    let method = match parts.method.as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_owned()),
    };
    let scheme = match parts.scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    request
        .set_method(&method)
        .map_err(|()| refused("invalid method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("invalid scheme"))?;
    request
        .set_authority(Some(&parts.authority))
        .map_err(|()| refused("invalid authority"))?;
    request
        .set_path_with_query(Some(&parts.path_with_query))
        .map_err(|()| refused("invalid path"))?;
    let body = request
        .body()
        .map_err(|()| refused("the request body is not available"))?;
    Ok((request, body))
}

/// Writes as much of `bytes` as the stream accepts without waiting;
/// returns how many bytes that was.
fn write_available(stream: &OutputStream, bytes: &[u8]) -> Result<usize, StreamError> {
    let mut written = 0;
    while written < bytes.len() {
        let permitted = stream.check_write()?;
        if permitted == 0 {
            break;
        }
        let n = usize::try_from(permitted)
            .unwrap_or(usize::MAX)
            .min(bytes.len() - written);
        stream.write(&bytes[written..written + n])?;
        written += n;
    }
    Ok(written)
}

/// Asks the stream to flush what was written, without waiting for it.
/// Closed is success too: the runtime closes the stream once it has the
/// whole content-length, so the body is complete.
fn start_flush(stream: &OutputStream) -> Result<(), StreamError> {
    match stream.flush() {
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_all(
    stream: &OutputStream,
    mut bytes: &[u8],
    deadline: &Deadline,
) -> Result<(), TransportError> {
    let pollable = stream.subscribe();
    let result = (|| {
        loop {
            let n = write_available(stream, bytes).map_err(|e| stream_error(e, deadline))?;
            bytes = &bytes[n..];
            if bytes.is_empty() {
                break;
            }
            deadline.wait(&pollable)?;
        }
        // Everything is written. The flush is done when the stream accepts
        // writes again, or when the runtime closes it (see `start_flush`):
        // both are success.
        start_flush(stream).map_err(|e| stream_error(e, deadline))?;
        loop {
            match stream.check_write() {
                Ok(0) => deadline.wait(&pollable)?,
                Ok(_) | Err(StreamError::Closed) => return Ok(()),
                Err(e) => return Err(stream_error(e, deadline)),
            }
        }
    })();
    drop(pollable);
    result
}

fn wait_for_response(
    future: &FutureIncomingResponse,
    deadline: &Deadline,
) -> Result<IncomingResponse, TransportError> {
    let pollable = future.subscribe();
    let result = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break Ok(response),
            Some(Ok(Err(code))) => break Err(error(&code, deadline)),
            Some(Err(())) => {
                break Err(TransportError::Broken(
                    "the response was already taken".into(),
                ));
            }
            None => {
                if let Err(e) = deadline.wait(&pollable) {
                    break Err(e);
                }
            }
        }
    };
    drop(pollable);
    result
}

fn read_body(
    incoming: &IncomingResponse,
    headers: &[(String, Vec<u8>)],
    limit: usize,
    deadline: &Deadline,
) -> Result<Vec<u8>, TransportError> {
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared_length(headers).is_some_and(|n| n > limit_u64) {
        return Err(TransportError::TooLarge(limit));
    }
    let body = incoming
        .consume()
        .map_err(|()| TransportError::Broken("the response body was already taken".into()))?;
    let stream = match body.stream() {
        Ok(stream) => stream,
        Err(()) => {
            drop(body);
            return Err(TransportError::Broken(
                "the response body stream is not available".into(),
            ));
        }
    };
    let bytes = read_all(&stream, limit, deadline);
    drop(stream);
    // The trailers are not needed; finishing releases the body.
    drop(IncomingBody::finish(body));
    bytes
}

fn read_all(
    stream: &InputStream,
    limit: usize,
    deadline: &Deadline,
) -> Result<Vec<u8>, TransportError> {
    let pollable = stream.subscribe();
    let mut bytes = Vec::new();
    let result = loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => {
                if let Err(e) = deadline.wait(&pollable) {
                    break Err(e);
                }
            }
            Ok(chunk) => {
                if bytes.len().saturating_add(chunk.len()) > limit {
                    break Err(TransportError::TooLarge(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break Ok(()),
            Err(e) => break Err(stream_error(e, deadline)),
        }
    };
    drop(pollable);
    result.map(|()| bytes)
}

fn stream_error(e: StreamError, deadline: &Deadline) -> TransportError {
    match e {
        StreamError::Closed => TransportError::Broken("the connection closed early".into()),
        StreamError::LastOperationFailed(io) => match http_error_code(&io) {
            Some(code) => error(&code, deadline),
            None => TransportError::Broken("the body stream failed".into()),
        },
    }
}

/// A wasi:http error code, sorted by what a retry may do.
fn error(code: &ErrorCode, deadline: &Deadline) -> TransportError {
    use ErrorCode as E;
    let connect = |what: &str| TransportError::Connect(what.to_owned());
    let broken = |what: &str| TransportError::Broken(what.to_owned());
    let refused = |what: &str| TransportError::Refused(what.to_owned());
    match code {
        E::DnsTimeout | E::DnsError(_) => connect("the host name could not be resolved"),
        E::DestinationNotFound => connect("the host was not found"),
        E::DestinationUnavailable | E::DestinationIpUnroutable => {
            connect("the host is unreachable")
        }
        E::ConnectionRefused => connect("connection refused"),
        E::ConnectionTimeout => connect("connecting timed out"),
        E::ConnectionLimitReached => connect("too many connections"),
        E::TlsProtocolError | E::TlsAlertReceived(_) => connect("the TLS handshake failed"),
        E::TlsCertificateError => connect("the server's TLS certificate was not accepted"),
        E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout => {
            TransportError::Timeout(deadline.timeout)
        }
        E::ConnectionTerminated => broken("the connection was closed"),
        E::HttpResponseIncomplete => broken("the response broke off"),
        E::HttpProtocolError | E::HttpUpgradeFailed => broken("an HTTP protocol error"),
        E::HttpResponseHeaderSectionSize(_)
        | E::HttpResponseHeaderSize(_)
        | E::HttpResponseBodySize(_)
        | E::HttpResponseTrailerSectionSize(_)
        | E::HttpResponseTrailerSize(_)
        | E::HttpResponseTransferCoding(_)
        | E::HttpResponseContentCoding(_) => broken("the response is malformed or too large"),
        E::HttpRequestDenied | E::DestinationIpProhibited => {
            refused("the host is not allowed (check the runtime's allowed outbound hosts)")
        }
        E::HttpRequestLengthRequired
        | E::HttpRequestBodySize(_)
        | E::HttpRequestMethodInvalid
        | E::HttpRequestUriInvalid
        | E::HttpRequestUriTooLong
        | E::HttpRequestHeaderSectionSize(_)
        | E::HttpRequestHeaderSize(_)
        | E::HttpRequestTrailerSectionSize(_)
        | E::HttpRequestTrailerSize(_) => refused("the request is malformed or too large"),
        E::LoopDetected => refused("a request loop was detected"),
        E::ConfigurationError => refused("the runtime's HTTP configuration"),
        // The runtime's own words, which name no secret of ours (the URL
        // carries none); shortened so a log line stays a line.
        E::InternalError(text) => TransportError::Broken(match text {
            Some(text) => format!(
                "runtime error: {}",
                text.chars().take(200).collect::<String>()
            ),
            None => "runtime error".into(),
        }),
    }
}
