//! The `Idempotency-Key` request header (draft-ietf-httpapi-idempotency-key-header)
//! turned into the store's `once`: which key, which request, kept how long.
//!
//! - The client's key is scoped to the caller (its token's subject when
//!   authentication is on, else one global scope) and hashed, so the store
//!   sees a fixed-size key that no two callers share.
//! - The fingerprint hashes what makes two requests "the same": method,
//!   path, query, `If-Match` and the body bytes. A repeat with another
//!   fingerprint is refused (422), as the draft asks.
//! - Records are kept `EDGE_ITEMS_IDEMPOTENCY_TTL` (default 24 hours).
//!
//! Pure: the header value, the body digest and the settings come in as
//! data, so all of it is tested natively.

use item_model::Once;
use sha2::{Digest, Sha256};

use crate::problem::{Kind, Problem};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header that marks an answer replayed from the record.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The setting for how long records are kept.
pub const TTL_SETTING: &str = "EDGE_ITEMS_IDEMPOTENCY_TTL";
/// Default for [`TTL_SETTING`]: 24 hours, as the draft suggests.
pub const DEFAULT_TTL_SECONDS: i64 = 24 * 60 * 60;
/// Longest record life accepted: 30 days.
pub const MAX_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;
/// Longest client key, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// The client's key from the header value: an RFC 8941 string
/// (`"8e03978e-..."`, as the draft specifies) or, as many clients send it,
/// the bare token. Printable ASCII, 1 to [`MAX_KEY_LEN`] characters.
pub fn parse_key(value: &str) -> Result<String, Problem> {
    let value = value.trim();
    let key = match value.strip_prefix('"') {
        Some(rest) => {
            let inner = rest
                .strip_suffix('"')
                .ok_or_else(|| invalid("the Idempotency-Key string has no closing quote"))?;
            unescape(inner)?
        }
        None => value.to_string(),
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(invalid(&format!(
            "the Idempotency-Key must be 1 to {MAX_KEY_LEN} characters; a UUID is a good choice"
        )));
    }
    if !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid(
            "the Idempotency-Key may hold only printable ASCII characters",
        ));
    }
    Ok(key)
}

/// An RFC 8941 string's content: `\"` and `\\` are the only escapes.
fn unescape(inner: &str) -> Result<String, Problem> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped @ ('"' | '\\')) => out.push(escaped),
                _ => return Err(invalid("the Idempotency-Key string has a bad escape")),
            },
            '"' => return Err(invalid("the Idempotency-Key string has a stray quote")),
            other => out.push(other),
        }
    }
    Ok(out)
}

fn invalid(detail: &str) -> Problem {
    Problem::new(Kind::InvalidIdempotencyKey, detail)
}

/// The store key for the client's `key` in `scope` (the caller's subject,
/// or `None` when authentication is off): hex SHA-256, 64 characters.
pub fn store_key(scope: Option<&str>, key: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"edge-items idempotency key v1\0");
    match scope {
        Some(subject) => {
            hash.update(b"subject\0");
            hash.update(subject.as_bytes());
        }
        None => hash.update(b"global"),
    }
    hash.update(b"\0");
    hash.update(key.as_bytes());
    hex::encode(hash.finalize())
}

/// What makes two requests with one key the same request.
pub struct RequestParts<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// The path the api routes on.
    pub path: &'a str,
    /// The query string.
    pub query: &'a str,
    /// The `If-Match` header, if any.
    pub if_match: Option<&'a str>,
    /// SHA-256 of the body bytes as read (`None`: no body was read).
    pub body_digest: Option<[u8; 32]>,
}

/// The fingerprint of a request: hex SHA-256 of its parts, each framed by
/// its length so that no two different requests can run together.
pub fn fingerprint(parts: &RequestParts<'_>) -> String {
    let mut hash = Sha256::new();
    hash.update(b"edge-items request fingerprint v1");
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(parts.method.as_bytes());
    field(parts.path.as_bytes());
    field(parts.query.as_bytes());
    field(parts.if_match.unwrap_or("").as_bytes());
    match &parts.body_digest {
        Some(digest) => field(digest),
        None => field(b""),
    }
    hex::encode(hash.finalize())
}

/// SHA-256 of a body, for [`RequestParts::body_digest`].
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// How long records are kept, from the setting's value: a duration
/// (`item_model::duration`: `3600`, `90m`, `24h`, `7d`), 1 second to 30
/// days. A bad value
/// falls back to the default with a note on stderr rather than failing
/// every write.
pub fn ttl_seconds(setting: Option<&str>) -> i64 {
    let Some(text) = setting else {
        return DEFAULT_TTL_SECONDS;
    };
    parse_ttl(text).unwrap_or_else(|| {
        eprintln!(
            "{TTL_SETTING}={text:?} is not a duration from 1s to 30d (like 3600, 90m, 24h, 7d); using 24h"
        );
        DEFAULT_TTL_SECONDS
    })
}

fn parse_ttl(text: &str) -> Option<i64> {
    let seconds = i64::try_from(item_model::duration::parse(text)?.as_secs()).ok()?;
    (1..=MAX_TTL_SECONDS).contains(&seconds).then_some(seconds)
}

/// The store's `once` for a request: its scoped key, its fingerprint, and
/// an expiry `ttl` seconds after `now` (Unix seconds).
pub fn once(key: &str, scope: Option<&str>, parts: &RequestParts<'_>, now: i64, ttl: i64) -> Once {
    Once {
        key: store_key(scope, key),
        fingerprint: fingerprint(parts),
        expires_at: now.saturating_add(ttl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(body: &'a [u8], if_match: Option<&'a str>) -> RequestParts<'a> {
        RequestParts {
            method: "POST",
            path: "/items/a/likes",
            query: "",
            if_match,
            body_digest: Some(body_digest(body)),
        }
    }

    #[test]
    fn keys_are_structured_strings_or_bare_tokens() {
        assert_eq!(parse_key("\"8e03978e-40d5\"").unwrap(), "8e03978e-40d5");
        assert_eq!(parse_key("8e03978e-40d5").unwrap(), "8e03978e-40d5");
        assert_eq!(parse_key(r#""a\"b\\c""#).unwrap(), r#"a"b\c"#);
        for bad in [
            "",
            "\"\"",
            "\"open",
            "\"a\"b\"",
            "\"a\\x\"",
            "caf\u{e9}",
            "a\u{7}b",
        ] {
            let problem = parse_key(bad).unwrap_err();
            assert_eq!(problem.kind, Kind::InvalidIdempotencyKey, "{bad:?}");
        }
        assert!(parse_key(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(parse_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn keys_are_scoped_to_the_caller() {
        let global = store_key(None, "k");
        let alice = store_key(Some("alice"), "k");
        let bob = store_key(Some("bob"), "k");
        assert_eq!(global.len(), 64);
        assert!(global.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(global, alice);
        assert_ne!(alice, bob);
        assert_eq!(alice, store_key(Some("alice"), "k"));
        // The framing keeps subject and key apart.
        assert_ne!(store_key(Some("a"), "bk"), store_key(Some("ab"), "k"));
    }

    #[test]
    fn the_fingerprint_changes_with_every_part() {
        let base = fingerprint(&parts(b"{\"by\":1}", None));
        assert_eq!(base, fingerprint(&parts(b"{\"by\":1}", None)));
        assert_ne!(base, fingerprint(&parts(b"{\"by\":2}", None)));
        assert_ne!(base, fingerprint(&parts(b"{\"by\":1}", Some("\"3\""))));
        let other_path = RequestParts {
            path: "/items/b/likes",
            ..parts(b"{\"by\":1}", None)
        };
        assert_ne!(base, fingerprint(&other_path));
        let other_method = RequestParts {
            method: "PATCH",
            ..parts(b"{\"by\":1}", None)
        };
        assert_ne!(base, fingerprint(&other_method));
        let unread = RequestParts {
            body_digest: None,
            ..parts(b"", None)
        };
        assert_ne!(fingerprint(&unread), fingerprint(&parts(b"", None)));
    }

    #[test]
    fn the_ttl_setting_takes_seconds_or_units_within_bounds() {
        assert_eq!(ttl_seconds(None), DEFAULT_TTL_SECONDS);
        assert_eq!(ttl_seconds(Some("3600")), 3600);
        assert_eq!(ttl_seconds(Some("90m")), 5400);
        assert_eq!(ttl_seconds(Some("24h")), 86_400);
        assert_eq!(ttl_seconds(Some("7d")), 7 * 86_400);
        for bad in ["0", "0.5", "31d", "1w", "-5", "h", ""] {
            assert_eq!(ttl_seconds(Some(bad)), DEFAULT_TTL_SECONDS, "{bad:?}");
        }
    }

    #[test]
    fn once_carries_key_fingerprint_and_expiry() {
        let once = once("k", Some("alice"), &parts(b"", None), 1_000, 60);
        assert_eq!(once.key, store_key(Some("alice"), "k"));
        assert_eq!(once.expires_at, 1_060);
        assert_eq!(once.fingerprint.len(), 64);
        item_model::validate::once(&once).expect("a valid once");
    }
}
