//! Firestore errors (google.rpc.Status JSON) as store errors, and which of
//! them a transport may retry.
//!
//! Messages name the gRPC status only: a backend's message text never
//! reaches a caller, so nothing a server echoes (a token, a key, a
//! project's internals) can leak through an error.

use item_model::StoreError;
use sansio::{Response, Retry};
use serde_json::Value as Json;

/// The parts of an error response that decide what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RpcStatus {
    pub http: u16,
    /// `NOT_FOUND`, `ABORTED`, ...; empty when the body is not a Status.
    pub status: String,
    /// Only inspected for a few known phrases, never passed on.
    message: String,
}

impl RpcStatus {
    /// Reads `{"error": {...}}`, or `[{"error": {...}}]` as `runQuery`
    /// streams it.
    pub(crate) fn parse(http: u16, body: &[u8]) -> Self {
        let json: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let error = match &json {
            Json::Array(items) => items.iter().find_map(|item| item.get("error")),
            other => other.get("error"),
        };
        let text = |key: &str| {
            error
                .and_then(|e| e.get(key))
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            http,
            status: text("status"),
            message: text("message"),
        }
    }

    /// Whether the body named this gRPC status (a bare HTTP status, such as
    /// a proxy's 404 page, is no Firestore answer and matches nothing).
    pub(crate) fn is(&self, code: &str) -> bool {
        self.status == code
    }

    /// Whether Firestore says the query needs a composite index.
    pub(crate) fn is_missing_index(&self) -> bool {
        self.is("FAILED_PRECONDITION") && self.message.to_ascii_lowercase().contains("index")
    }

    pub(crate) fn into_store_error(self) -> StoreError {
        let code = if self.status.is_empty() {
            format!("HTTP {}", self.http)
        } else {
            self.status.clone()
        };
        match self.status.as_str() {
            "NOT_FOUND" => StoreError::NotFound,
            "ALREADY_EXISTS" => StoreError::AlreadyExists,
            "FAILED_PRECONDITION" if self.is_missing_index() => StoreError::Backend(
                "Firestore needs a composite index for this query; deploy firestore.indexes.json of the firestore-protocol crate".into(),
            ),
            "FAILED_PRECONDITION" => StoreError::VersionMismatch(None),
            "ABORTED" => StoreError::Throttled(ABORTED_RETRY_MS),
            "RESOURCE_EXHAUSTED" => StoreError::Throttled(EXHAUSTED_RETRY_MS),
            "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" | "UNKNOWN" => {
                StoreError::Unavailable(format!("Firestore answered {code}"))
            }
            "PERMISSION_DENIED" | "UNAUTHENTICATED" => StoreError::Unauthorized(format!(
                "Firestore refused the credentials or the permission ({code})"
            )),
            "INVALID_ARGUMENT" | "OUT_OF_RANGE" => {
                let lower = self.message.to_ascii_lowercase();
                if lower.contains("size") || lower.contains("too big") || lower.contains("too large")
                {
                    StoreError::invalid(
                        "the item is too large for Firestore (a document holds at most 1 MiB)",
                    )
                } else {
                    StoreError::invalid(format!("Firestore refused the request as invalid ({code})"))
                }
            }
            _ => match self.http {
                401 | 403 => StoreError::Unauthorized(format!(
                    "Firestore refused the credentials or the permission ({code})"
                )),
                429 => StoreError::Throttled(EXHAUSTED_RETRY_MS),
                500..=599 => StoreError::Unavailable(format!("Firestore answered {code}")),
                _ => StoreError::Backend(format!("unexpected answer from Firestore ({code})")),
            },
        }
    }
}

/// Suggested pause after contention (`ABORTED`).
const ABORTED_RETRY_MS: u32 = 100;
/// Suggested pause after a quota error (`RESOURCE_EXHAUSTED`, HTTP 429).
const EXHAUSTED_RETRY_MS: u32 = 1000;

/// The store error for an error response.
pub fn map_error(http_status: u16, body: &[u8]) -> StoreError {
    RpcStatus::parse(http_status, body).into_store_error()
}

/// Whether a request may be sent again after `response`: contention and
/// quota errors were not applied ([`Retry::Always`], increments included);
/// unavailable, timed out and server errors leave it open
/// ([`Retry::IfIdempotent`]).
pub fn retry_class(response: &Response) -> Retry {
    let http_status = response.status().as_u16();
    if response.status().is_success() {
        return Retry::No;
    }
    let status = RpcStatus::parse(http_status, response.body());
    match status.status.as_str() {
        "ABORTED" | "RESOURCE_EXHAUSTED" => Retry::Always,
        "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" | "UNKNOWN" => Retry::IfIdempotent,
        "" => match http_status {
            429 => Retry::Always,
            500..=599 => Retry::IfIdempotent,
            _ => Retry::No,
        },
        _ => Retry::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, status: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "status": status, "message": message}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn statuses_map_to_store_errors() {
        let cases = [
            (404, "NOT_FOUND", StoreError::NotFound),
            (409, "ALREADY_EXISTS", StoreError::AlreadyExists),
            (
                400,
                "FAILED_PRECONDITION",
                StoreError::VersionMismatch(None),
            ),
            (409, "ABORTED", StoreError::Throttled(100)),
            (429, "RESOURCE_EXHAUSTED", StoreError::Throttled(1000)),
        ];
        for (code, status, want) in cases {
            assert_eq!(map_error(code, &body(code, status, "x")), want, "{status}");
        }
        for (code, status) in [
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
            (500, "INTERNAL"),
        ] {
            assert!(matches!(
                map_error(code, &body(code, status, "")),
                StoreError::Unavailable(_)
            ));
        }
        assert!(matches!(
            map_error(400, &body(400, "INVALID_ARGUMENT", "Payload isn't valid")),
            StoreError::InvalidInput(_)
        ));
    }

    #[test]
    fn credentials_are_never_echoed() {
        let secret = "Bearer ya29.SECRET-TOKEN private_key=-----BEGIN";
        for (code, status) in [
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (400, "INVALID_ARGUMENT"),
            (500, "INTERNAL"),
            (418, "WHATEVER"),
        ] {
            let error = map_error(code, &body(code, status, secret));
            assert!(!error.to_string().contains("SECRET"), "{error}");
            if code == 401 || code == 403 {
                assert!(matches!(error, StoreError::Unauthorized(_)));
            }
        }
        // A body that is not JSON at all is not echoed either.
        let error = map_error(502, secret.as_bytes());
        assert!(matches!(&error, StoreError::Unavailable(m) if !m.contains("SECRET")));
    }

    #[test]
    fn a_missing_index_points_to_the_index_file() {
        let streamed = serde_json::json!([{"error": {"code": 400, "status": "FAILED_PRECONDITION",
            "message": "The query requires an index. You can create it here: https://console..."}}]);
        let error = map_error(400, streamed.to_string().as_bytes());
        assert!(
            matches!(&error, StoreError::Backend(m) if m.contains("firestore.indexes.json")),
            "{error:?}"
        );
    }

    #[test]
    fn bare_http_statuses() {
        assert!(matches!(map_error(401, b""), StoreError::Unauthorized(_)));
        assert_eq!(map_error(429, b"slow down"), StoreError::Throttled(1000));
        assert!(matches!(
            map_error(502, b"<html>"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(map_error(404, b"<html>"), StoreError::Backend(_)));
    }

    #[test]
    fn retry_classes() {
        let class =
            |status: u16, body: &[u8]| retry_class(&sansio::response(status, body.to_vec()));
        assert_eq!(class(200, b"{}"), Retry::No);
        assert_eq!(class(409, &body(409, "ABORTED", "")), Retry::Always);
        assert_eq!(class(429, b""), Retry::Always);
        assert_eq!(
            class(503, &body(503, "UNAVAILABLE", "")),
            Retry::IfIdempotent
        );
        assert_eq!(class(502, b"<html>"), Retry::IfIdempotent);
        assert_eq!(class(400, &body(400, "FAILED_PRECONDITION", "")), Retry::No);
        assert_eq!(class(404, &body(404, "NOT_FOUND", "")), Retry::No);
    }
}
