//! `http` types to and from the plain parts wasi:http takes and gives. Kept
//! apart from the imports so the rules are unit-tested natively.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

use crate::TransportError;

/// Headers the runtime sets itself and wasi:http forbids guests to set
/// (wasmtime refuses the whole request with any of them). `host` comes
/// from the URI's authority.
const FORBIDDEN: [&str; 9] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// A request as wasi:http's `outgoing-request` wants it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parts {
    pub method: Method,
    /// `http`, `https` or another scheme as written.
    pub scheme: String,
    pub authority: String,
    pub path_with_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Splits a request; refuses one without an absolute URI.
pub(crate) fn parts(request: http::Request<Vec<u8>>) -> Result<Parts, TransportError> {
    let (head, body) = request.into_parts();
    let (Some(scheme), Some(authority)) = (head.uri.scheme_str(), head.uri.authority()) else {
        return Err(TransportError::Refused(
            "the request URI must be absolute (scheme://host/path)".into(),
        ));
    };
    let mut headers: Vec<(String, Vec<u8>)> = head
        .headers
        .iter()
        .filter(|(name, _)| {
            !FORBIDDEN.contains(&name.as_str()) && *name != http::header::CONTENT_LENGTH
        })
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    // An explicit length, also for an empty POST: some servers (and
    // proxies) refuse a body-carrying method without one, and without it
    // the runtime would send the body chunked.
    let carries_body = matches!(head.method, Method::POST | Method::PUT | Method::PATCH);
    if !body.is_empty() || carries_body {
        headers.push((
            http::header::CONTENT_LENGTH.as_str().to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    Ok(Parts {
        method: head.method,
        scheme: scheme.to_owned(),
        authority: authority.as_str().to_owned(),
        path_with_query: head
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers,
        body,
    })
}

/// The `content-length` a response declares, if any and valid.
// Responses exist only inside a component (and in the tests).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn declared_length(headers: &[(String, Vec<u8>)]) -> Option<u64> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| std::str::from_utf8(value).ok())
        .and_then(|text| text.trim().parse().ok())
}

/// Assembles the response. A header the `http` crate cannot represent is
/// dropped rather than failing the exchange: callers read only a few.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn response(
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> Result<Response<Vec<u8>>, TransportError> {
    let status = StatusCode::from_u16(status)
        .map_err(|_| TransportError::Broken(format!("the server answered status {status}")))?;
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            map.append(name, value);
        }
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = map;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a [u8]> {
        parts
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn splits_an_absolute_request() {
        let request = http::Request::post("https://example.test:8443/v1/x:commit?a=b%20c")
            .header("host", "example.test:8443")
            .header("connection", "keep-alive")
            .header("content-type", "application/json")
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-length", "999")
            .body(b"{}".to_vec())
            .unwrap();
        let parts = parts(request).unwrap();
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.scheme, "https");
        assert_eq!(parts.authority, "example.test:8443");
        assert_eq!(parts.path_with_query, "/v1/x:commit?a=b%20c");
        assert_eq!(header(&parts, "host"), None);
        assert_eq!(header(&parts, "connection"), None);
        assert_eq!(
            header(&parts, "content-type"),
            Some(&b"application/json"[..])
        );
        assert_eq!(
            header(&parts, "x-amz-target"),
            Some(&b"DynamoDB_20120810.GetItem"[..])
        );
        // The length is the body's, whatever the request said.
        assert_eq!(header(&parts, "content-length"), Some(&b"2"[..]));
        assert_eq!(parts.body, b"{}");
    }

    #[test]
    fn lengths_for_bodies_and_body_methods_only() {
        let get = parts(http::Request::get("http://h/").body(Vec::new()).unwrap()).unwrap();
        assert_eq!(header(&get, "content-length"), None);
        let post = parts(http::Request::post("http://h/").body(Vec::new()).unwrap()).unwrap();
        assert_eq!(header(&post, "content-length"), Some(&b"0"[..]));
        let bare = parts(http::Request::get("http://h").body(Vec::new()).unwrap()).unwrap();
        assert_eq!(bare.path_with_query, "/");
    }

    #[test]
    fn a_relative_uri_is_refused() {
        let request = http::Request::get("/only/a/path").body(Vec::new()).unwrap();
        assert!(matches!(parts(request), Err(TransportError::Refused(_))));
    }

    #[test]
    fn responses_are_assembled() {
        let headers = vec![
            ("Content-Length".to_owned(), b" 12 ".to_vec()),
            ("x-amzn-requestid".to_owned(), b"abc".to_vec()),
            ("bad name".to_owned(), b"dropped".to_vec()),
            ("set-cookie".to_owned(), b"a".to_vec()),
            ("set-cookie".to_owned(), b"b".to_vec()),
        ];
        assert_eq!(declared_length(&headers), Some(12));
        let response = response(429, headers, b"slow down".to_vec()).unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["x-amzn-requestid"], "abc");
        assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(response.headers().len(), 4);
        assert_eq!(response.body(), b"slow down");
        assert!(matches!(
            super::response(1000, Vec::new(), Vec::new()),
            Err(TransportError::Broken(_))
        ));
        assert_eq!(declared_length(&[]), None);
    }
}
