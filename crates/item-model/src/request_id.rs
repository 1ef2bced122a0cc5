//! Request ids (`X-Request-Id`): the one rule for which ids a client may
//! choose, shared by the api component (which echoes the id and names it in
//! problem bodies under every runtime) and our host (which checks or makes
//! the id before the component runs, so its log lines and the component's
//! answer carry the same one).

/// The header, in the lowercase form HTTP/2 and wasi:http use.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a client, in bytes: enough for a UUID, a W3C
/// trace id or a load balancer's id, short enough to log on every line.
pub const MAX_LEN: usize = 128;

/// Prefix of a problem's `instance`: `urn:edge-items:request:<id>`, a URN
/// under the same namespace as the problem `type`s, since a request id is
/// not a resource one could fetch.
pub const INSTANCE_PREFIX: &str = "urn:edge-items:request:";

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_LEN`] bytes of
/// visible ASCII (`!` to `~`, so no spaces, controls or non-ASCII, which
/// could forge or break log lines). Anything else is replaced by a fresh id.
pub fn is_valid(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The client's id when [`is_valid`], else a fresh one made from `random`
/// (called only then).
pub fn accept_or_new(client: Option<&[u8]>, random: impl FnOnce() -> [u8; 16]) -> String {
    match client {
        Some(id) if is_valid(id) => String::from_utf8_lossy(id).into_owned(),
        _ => new_id(random()),
    }
}

/// A fresh id: 16 random bytes as a UUID v4.
pub fn new_id(bytes: [u8; 16]) -> String {
    crate::uuid_v4(bytes)
}

/// The problem `instance` (RFC 9457 3.1.5) of request `id`: the id after
/// [`INSTANCE_PREFIX`], with every byte outside RFC 3986's unreserved set
/// percent-encoded so that the whole is a valid URI.
pub fn instance(id: &str) -> String {
    let mut uri = String::with_capacity(INSTANCE_PREFIX.len() + id.len());
    uri.push_str(INSTANCE_PREFIX);
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_others_replaced() {
        for good in ["a", "abc-123", "0af7651916cd43dd8448eb211c80319c", "!~\"{}"] {
            assert!(is_valid(good.as_bytes()), "{good}");
            assert_eq!(
                accept_or_new(Some(good.as_bytes()), || unreachable!()),
                good
            );
        }
        let long = "x".repeat(MAX_LEN + 1);
        for bad in [
            "",
            " ",
            "a b",
            "a\nb",
            "a\tb",
            "é",
            "a, b",
            "\u{7f}",
            long.as_str(),
        ] {
            assert!(!is_valid(bad.as_bytes()), "{bad:?}");
            let fresh = accept_or_new(Some(bad.as_bytes()), || [7; 16]);
            assert_eq!(fresh, "07070707-0707-4707-8707-070707070707");
        }
        assert!(is_valid("x".repeat(MAX_LEN).as_bytes()));
        assert!(!accept_or_new(None, || [0; 16]).is_empty());
    }

    #[test]
    fn fresh_ids_are_uuid_v4_and_valid() {
        let id = new_id([0xff; 16]);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert!(is_valid(id.as_bytes()));
    }

    #[test]
    fn instance_is_a_urn_with_the_id_encoded() {
        assert_eq!(instance("abc-1.2_3~"), "urn:edge-items:request:abc-1.2_3~");
        assert_eq!(
            instance("a/b%\"<>"),
            "urn:edge-items:request:a%2Fb%25%22%3C%3E"
        );
    }
}
