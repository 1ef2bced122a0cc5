//! The request's authority (RFC 9112 §3.2 and §3.3), checked before the
//! component runs: wasi:http needs one for every request.
//!
//! - HTTP/1.1 without Host, with Host repeated, or with a Host that is not
//!   `host[:port]`: 400, as §3.2 requires ("A server MUST respond with a
//!   400 (Bad Request) status code to any HTTP/1.1 request message that
//!   lacks a Host header field and to any request message that contains
//!   more than one Host header field line or a Host header field with an
//!   invalid field value").
//! - HTTP/1.0 without Host (which 1.0 clients need not send), or any
//!   request with an empty Host: the authority is empty, and §3.3 lets the
//!   server use "a configured default that is consistent with the incoming
//!   connection's context": the address the connection arrived on.

use std::net::SocketAddr;
use std::str::FromStr;

use http::uri::{Authority, Scheme, Uri};
use http::{HeaderMap, Version};

/// Why a request's Host is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// HTTP/1.1 without Host (RFC 9112 3.2).
    #[error("the HTTP/1.1 request has no Host header")]
    Missing,
    /// More than one Host header; carries how many.
    #[error("the request has {0} Host headers; it must have one")]
    Repeated(usize),
    /// Not a host name or address with an optional port.
    #[error("the Host header is not a host name or address with an optional port")]
    Invalid,
}

/// What the request needs before the component may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAuthority {
    /// Its URI or its Host names it.
    Named,
    /// Nothing names it: use the connection's local address.
    FromConnection,
}

/// Checks the Host rules above for a request of `version` with `headers`
/// and target `uri`.
pub fn check(
    version: Version,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<RequestAuthority, HostError> {
    let hosts: Vec<_> = headers.get_all(http::header::HOST).iter().collect();
    match hosts.as_slice() {
        [] if version >= Version::HTTP_11 => Err(HostError::Missing),
        [] => Ok(if uri.authority().is_some() {
            RequestAuthority::Named
        } else {
            RequestAuthority::FromConnection
        }),
        [host] => {
            let text = host.to_str().map_err(|_| HostError::Invalid)?;
            if text.is_empty() {
                return Ok(if uri.authority().is_some() {
                    RequestAuthority::Named
                } else {
                    RequestAuthority::FromConnection
                });
            }
            // An authority without userinfo is exactly `host[:port]`.
            match Authority::from_str(text) {
                Ok(authority) if !authority.as_str().contains('@') => Ok(RequestAuthority::Named),
                _ => Err(HostError::Invalid),
            }
        }
        many => Err(HostError::Repeated(many.len())),
    }
}

/// `uri` with `local` as its authority (and `http` as its scheme), or
/// `None` when the target cannot carry one (`OPTIONS *`).
pub fn with_default(uri: &Uri, local: SocketAddr) -> Option<Uri> {
    let path_and_query = uri
        .path_and_query()
        .filter(|path| path.as_str().starts_with('/'))?
        .clone();
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(local.to_string())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(hosts: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for host in hosts {
            map.append(
                http::header::HOST,
                http::HeaderValue::from_bytes(host).unwrap(),
            );
        }
        map
    }

    fn origin(path: &str) -> Uri {
        path.parse().unwrap()
    }

    #[test]
    fn http_11_needs_exactly_one_valid_host() {
        let v11 = Version::HTTP_11;
        let path = origin("/items");
        assert_eq!(check(v11, &headers(&[]), &path), Err(HostError::Missing));
        assert_eq!(
            check(v11, &headers(&[b"a", b"b"]), &path),
            Err(HostError::Repeated(2))
        );
        for good in [
            &b"example.com"[..],
            b"example.com:8080",
            b"127.0.0.1:80",
            b"[::1]:8080",
        ] {
            assert_eq!(
                check(v11, &headers(&[good]), &path),
                Ok(RequestAuthority::Named),
                "{good:?}"
            );
        }
        for bad in [
            &b"user@example.com"[..],
            b"exa mple.com",
            b"example.com/path",
            b"\xff",
        ] {
            assert_eq!(
                check(v11, &headers(&[bad]), &path),
                Err(HostError::Invalid),
                "{bad:?}"
            );
        }
        // Absolute form still needs Host in HTTP/1.1.
        let absolute = origin("http://example.com/items");
        assert_eq!(
            check(v11, &headers(&[]), &absolute),
            Err(HostError::Missing)
        );
    }

    #[test]
    fn http_10_and_empty_hosts_use_the_default() {
        let path = origin("/healthz");
        assert_eq!(
            check(Version::HTTP_10, &headers(&[]), &path),
            Ok(RequestAuthority::FromConnection)
        );
        assert_eq!(
            check(Version::HTTP_10, &headers(&[]), &origin("http://h/healthz")),
            Ok(RequestAuthority::Named)
        );
        assert_eq!(
            check(Version::HTTP_11, &headers(&[b""]), &path),
            Ok(RequestAuthority::FromConnection)
        );
        // HTTP/1.0 with two Hosts is still refused.
        assert!(check(Version::HTTP_10, &headers(&[b"a", b"a"]), &path).is_err());
    }

    #[test]
    fn default_authority_is_the_local_address() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let uri = with_default(&origin("/items?limit=2"), local).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:8080/items?limit=2");
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(
            with_default(&origin("/"), v6).unwrap().authority().unwrap(),
            "[::1]:80"
        );
        assert_eq!(with_default(&origin("*"), local), None);
    }
}
