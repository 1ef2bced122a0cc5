//! The wasi:http edge: reads the incoming request (body capped at the
//! configured limit) and writes a [`Response`]. Everything else in the crate
//! works on plain data.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method as WasiMethod, OutgoingBody, OutgoingResponse,
    ResponseOutparam,
};
use wasip2::io::streams::StreamError;

use crate::mount::{self, Mounted};
use crate::problem::{Kind, Problem};
use crate::response::Response;
use crate::router::Method;

/// Default for `EDGE_ITEMS_MAX_BODY_BYTES`: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The body limit's setting, the same name as our host's flag.
pub const MAX_BODY_BYTES: &str = "EDGE_ITEMS_MAX_BODY_BYTES";
/// Its former name, still read when the new one is unset.
pub const DEPRECATED_MAX_BODY_BYTES: &str = "ITEMS_MAX_BODY_BYTES";

/// Most bytes asked of the stream per read.
const READ_CHUNK: u64 = 64 * 1024;

/// The body limit from the component's environment (wasi:cli/environment).
/// An unparsable value falls back to the default, with a note on stderr,
/// rather than failing every request.
pub fn max_body_bytes() -> u64 {
    let (name, value) = body_limit_setting(|name| std::env::var(name).ok());
    let Some(text) = value else {
        return DEFAULT_MAX_BODY_BYTES;
    };
    if name == DEPRECATED_MAX_BODY_BYTES {
        eprintln!("api: {DEPRECATED_MAX_BODY_BYTES} is deprecated; set {MAX_BODY_BYTES} instead");
    }
    parse_limit(&text).unwrap_or_else(|| {
        eprintln!("{name}={text:?} is not a whole number of bytes; using {DEFAULT_MAX_BODY_BYTES}");
        DEFAULT_MAX_BODY_BYTES
    })
}

/// Which setting holds the body limit, and its value: the new name first,
/// then the deprecated one.
pub fn body_limit_setting(
    lookup: impl Fn(&str) -> Option<String>,
) -> (&'static str, Option<String>) {
    match lookup(MAX_BODY_BYTES) {
        Some(value) => (MAX_BODY_BYTES, Some(value)),
        None => (DEPRECATED_MAX_BODY_BYTES, lookup(DEPRECATED_MAX_BODY_BYTES)),
    }
}

/// A byte count such as `1048576`.
pub fn parse_limit(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// An incoming request: what routing needs, plus lazy access to the body.
pub struct Request {
    /// The method, as the router distinguishes them.
    pub method: Method,
    /// The path the api routes on, without the query string and without
    /// the prefix the app is mounted at ([`crate::mount`]).
    pub path: String,
    /// The prefix the app is mounted at: empty, or `/a` under a Spin route
    /// `/a/...`; URLs the api writes start with it.
    pub base: String,
    /// The query string, without `?` (empty when absent).
    pub query: String,
    headers: Fields,
    incoming: IncomingRequest,
    /// SHA-256 of the body as read, kept for a request with an
    /// `Idempotency-Key` (its fingerprint covers the body).
    body_digest: std::cell::Cell<Option<[u8; 32]>>,
}

impl Request {
    /// Reads the head; the body stays unread until a handler asks for it.
    pub fn new(incoming: IncomingRequest) -> Self {
        let method = match incoming.method() {
            WasiMethod::Get => Method::Get,
            WasiMethod::Post => Method::Post,
            WasiMethod::Put => Method::Put,
            WasiMethod::Patch => Method::Patch,
            WasiMethod::Delete => Method::Delete,
            WasiMethod::Head => Method::Head,
            WasiMethod::Connect => Method::Other("CONNECT".into()),
            WasiMethod::Options => Method::Options,
            WasiMethod::Trace => Method::Other("TRACE".into()),
            WasiMethod::Other(other) => Method::Other(other),
        };
        let target = incoming.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_string(), query.to_string()),
            None => (target, String::new()),
        };
        let headers = incoming.headers();
        let path_info = headers
            .get(mount::PATH_INFO_HEADER)
            .first()
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let Mounted { base, path } = mount::mount(&path, path_info.as_deref());
        Self {
            method,
            path,
            base,
            query,
            headers,
            incoming,
            body_digest: std::cell::Cell::new(None),
        }
    }

    /// SHA-256 of the body, once read, when the request has an
    /// `Idempotency-Key`; `None` before (or without) either.
    pub fn body_digest(&self) -> Option<[u8; 32]> {
        self.body_digest.get()
    }

    /// A header's value; repeated header lines are joined with `, `.
    pub fn header(&self, name: &str) -> Option<String> {
        let values = self.headers.get(name);
        if values.is_empty() {
            return None;
        }
        let texts: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        Some(texts.join(", "))
    }

    /// Every value of a header, one per header line.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Reads the whole body, refusing (413) one over `limit` bytes: by its
    /// Content-Length before reading, or while streaming, reading at most
    /// `limit + 1` bytes so memory stays bounded.
    pub fn read_body(&self, limit: u64) -> Result<Vec<u8>, Problem> {
        let too_large = || {
            Problem::new(
                Kind::BodyTooLarge,
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        };
        if let Some(length) = self.header("content-length")
            && length.trim().parse::<u64>().is_ok_and(|n| n > limit)
        {
            return Err(too_large());
        }
        let unreadable = |why: &str| Problem::new(Kind::UnreadableBody, why.to_string());
        let body = self
            .incoming
            .consume()
            .map_err(|()| unreadable("the request body was already read"))?;
        let stream = body
            .stream()
            .map_err(|()| unreadable("the request body stream is not available"))?;
        let mut bytes = Vec::new();
        loop {
            let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            let want = limit
                .saturating_add(1)
                .saturating_sub(read)
                .clamp(1, READ_CHUNK);
            match stream.blocking_read(want) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
                        return Err(too_large());
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(_)) => {
                    return Err(unreadable(
                        "the connection failed while the request body was being read",
                    ));
                }
            }
        }
        // The stream is a child of the body: drop it before finishing.
        drop(stream);
        drop(IncomingBody::finish(body));
        if self.header(crate::idempotency::HEADER).is_some() {
            self.body_digest
                .set(Some(crate::idempotency::body_digest(&bytes)));
        }
        Ok(bytes)
    }
}

/// Writes a response. Failures here mean the client is gone; there is no
/// one left to tell, so they end the request quietly. The answer to a HEAD
/// request has the GET answer's headers but no body, and no
/// Content-Length (RFC 9110 9.3.2 allows leaving it out; runtimes check
/// a declared length against the bytes written).
pub fn send(response: Response, out: ResponseOutparam, head: bool) {
    let response = if head {
        Response {
            body: Vec::new(),
            ..response
        }
    } else {
        response
    };
    let headers = Fields::new();
    for (name, value) in &response.headers {
        if headers.append(name, value.as_bytes()).is_err() {
            eprintln!("dropped response header {name}: its value is not a valid header value");
        }
    }
    let has_body = !response.body.is_empty();
    if has_body {
        let _ = headers.append("content-length", response.body.len().to_string().as_bytes());
    }
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else {
        ResponseOutparam::set(out, Ok(outgoing));
        return;
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if has_body && let Ok(mut stream) = body.write() {
        // io::Write (from wasip2's std support) honours check-write.
        let _ = stream
            .write_all(&response.body)
            .and_then(|()| std::io::Write::flush(&mut stream));
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_name_wins_and_the_old_one_still_works() {
        let both = |name: &str| match name {
            MAX_BODY_BYTES => Some("10".to_string()),
            DEPRECATED_MAX_BODY_BYTES => Some("20".to_string()),
            _ => None,
        };
        assert_eq!(
            body_limit_setting(both),
            (MAX_BODY_BYTES, Some("10".into()))
        );
        let old = |name: &str| (name == DEPRECATED_MAX_BODY_BYTES).then(|| "20".to_string());
        assert_eq!(
            body_limit_setting(old),
            (DEPRECATED_MAX_BODY_BYTES, Some("20".into()))
        );
        assert_eq!(body_limit_setting(|_| None).1, None);
    }
}
