//! What each backend's errors look like, so that an injected fault travels
//! the same error paths in our stores as a real one, and which requests
//! are writes.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::Full;
use hyper::Response;
use serde_json::json;

use crate::error::ParseError;
use crate::schedule::Fault;

/// The header on every answer the proxy makes up itself (a fault, or a
/// failure to forward), naming the fault: tells injected errors from real
/// ones in captures.
pub const MARKER_HEADER: &str = "x-fault-proxy";

/// The protocol behind the proxy, which decides the shape of injected
/// errors and what a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// DynamoDB's JSON 1.0 protocol (DynamoDB Local, moto, AWS).
    DynamoDb,
    /// Firestore's REST v1 API (the emulator, Google).
    Firestore,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::DynamoDb => "dynamodb",
            Backend::Firestore => "firestore",
        })
    }
}

impl FromStr for Backend {
    type Err = ParseError;

    /// `dynamodb` or `firestore`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "dynamodb" => Ok(Backend::DynamoDb),
            "firestore" => Ok(Backend::Firestore),
            _ => Err(ParseError::Backend(text.to_string())),
        }
    }
}

/// The DynamoDB actions that change data.
const DYNAMODB_WRITES: [&str; 5] = [
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

/// A request as read in full, for the schedule's [`Filter`](crate::Filter).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a Method,
    /// Path and query, as sent.
    pub uri: &'a Uri,
    /// The headers, as sent.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

impl RequestView<'_> {
    /// The `x-amz-target` header (`DynamoDB_20120810.PutItem`), if any.
    pub fn target(&self) -> Option<&str> {
        self.headers.get("x-amz-target")?.to_str().ok()
    }

    /// Whether the request may change data. DynamoDB: `PutItem`,
    /// `UpdateItem`, `DeleteItem`, `TransactWriteItems`, `BatchWriteItem`.
    /// Firestore: `:commit` and `:batchWrite`, `PATCH` and `DELETE` of a
    /// document, and a `POST` that creates one (a path without `:method`).
    pub fn is_write(&self, backend: Backend) -> bool {
        match backend {
            Backend::DynamoDb => self
                .target()
                .and_then(|target| target.rsplit_once('.'))
                .is_some_and(|(_, action)| DYNAMODB_WRITES.contains(&action)),
            Backend::Firestore => {
                let path = self.uri.path();
                let last = path.rsplit('/').next().unwrap_or_default();
                match *self.method {
                    Method::PATCH | Method::DELETE => true,
                    Method::POST => match last.rsplit_once(':') {
                        Some((_, method)) => matches!(method, "commit" | "batchWrite"),
                        None => true,
                    },
                    _ => false,
                }
            }
        }
    }
}

/// The variants [`Fault::Throttle`] takes turns with, per backend.
fn throttle_variants(backend: Backend) -> u64 {
    match backend {
        Backend::DynamoDb => 2,
        Backend::Firestore => 3,
    }
}

impl Backend {
    /// The made-up answer for `fault` (server error, unavailable or
    /// throttle); `turn` counts earlier throttles, to alternate variants.
    /// `None` for faults that do not answer.
    pub(crate) fn fault_answer(self, fault: Fault, turn: u64) -> Option<Response<Full<Bytes>>> {
        let turn = turn % throttle_variants(self);
        let (status, code, message) = match (self, fault) {
            (Backend::DynamoDb, Fault::ServerError) => {
                (500, "InternalServerError", "Internal server error")
            }
            (Backend::DynamoDb, Fault::Unavailable) => {
                (503, "ServiceUnavailable", "Service unavailable")
            }
            (Backend::DynamoDb, Fault::Throttle) if turn == 0 => (
                400,
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded",
            ),
            (Backend::DynamoDb, Fault::Throttle) => (
                400,
                "ThrottlingException",
                "Rate of requests exceeds the allowed throughput",
            ),
            (Backend::Firestore, Fault::ServerError) => {
                (500, "INTERNAL", "Internal error encountered.")
            }
            (Backend::Firestore, Fault::Unavailable) => {
                (503, "UNAVAILABLE", "The service is currently unavailable.")
            }
            (Backend::Firestore, Fault::Throttle) => match turn {
                0 => (429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
                1 => (503, "UNAVAILABLE", "The service is currently unavailable."),
                _ => (
                    409,
                    "ABORTED",
                    "Too much contention on these documents. Please try again.",
                ),
            },
            _ => return None,
        };
        let message = format!("{message} (injected by fault-proxy)");
        let status = StatusCode::from_u16(status).expect("a valid status");
        let mut answer = Response::builder()
            .status(status)
            .header(MARKER_HEADER, fault.name());
        let body = match self {
            Backend::DynamoDb => {
                // Throttling is coral's own error; the others are DynamoDB's.
                let namespace = if code == "ThrottlingException" {
                    "com.amazon.coral.availability"
                } else {
                    "com.amazonaws.dynamodb.v20120810"
                };
                answer = answer
                    .header("content-type", "application/x-amz-json-1.0")
                    .header("x-amzn-ErrorType", code)
                    .header("x-amzn-RequestId", HeaderValue::from_static("FAULTPROXY"));
                json!({"__type": format!("{namespace}#{code}"), "message": message})
            }
            Backend::Firestore => {
                answer = answer.header("content-type", "application/json; charset=UTF-8");
                json!({"error": {"code": status.as_u16(), "message": message, "status": code}})
            }
        };
        Some(
            answer
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("a valid answer"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn parts(answer: Response<Full<Bytes>>) -> (u16, HeaderMap, serde_json::Value) {
        let (parts, body) = answer.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status.as_u16(),
            parts.headers,
            serde_json::from_slice(&body).unwrap(),
        )
    }

    #[tokio::test]
    async fn dynamodb_errors_have_its_shape() {
        let cases = [
            (
                Fault::ServerError,
                0,
                500,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
            ),
            (
                Fault::Unavailable,
                0,
                503,
                "com.amazonaws.dynamodb.v20120810#ServiceUnavailable",
            ),
            (
                Fault::Throttle,
                0,
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            ),
            (
                Fault::Throttle,
                1,
                400,
                "com.amazon.coral.availability#ThrottlingException",
            ),
            (
                Fault::Throttle,
                2,
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            ),
        ];
        for (fault, turn, status, kind) in cases {
            let answer = Backend::DynamoDb.fault_answer(fault, turn).unwrap();
            let (got, headers, body) = parts(answer).await;
            assert_eq!((got, body["__type"].as_str().unwrap()), (status, kind));
            assert_eq!(headers["content-type"], "application/x-amz-json-1.0");
            assert_eq!(
                headers["x-amzn-errortype"],
                kind.rsplit('#').next().unwrap()
            );
            assert_eq!(headers[MARKER_HEADER], fault.name());
            assert!(body["message"].as_str().unwrap().contains("fault-proxy"));
        }
    }

    #[tokio::test]
    async fn firestore_errors_have_googles_shape() {
        let cases = [
            (Fault::ServerError, 0, 500, "INTERNAL"),
            (Fault::Unavailable, 0, 503, "UNAVAILABLE"),
            (Fault::Throttle, 0, 429, "RESOURCE_EXHAUSTED"),
            (Fault::Throttle, 1, 503, "UNAVAILABLE"),
            (Fault::Throttle, 2, 409, "ABORTED"),
            (Fault::Throttle, 3, 429, "RESOURCE_EXHAUSTED"),
        ];
        for (fault, turn, status, code) in cases {
            let answer = Backend::Firestore.fault_answer(fault, turn).unwrap();
            let (got, headers, body) = parts(answer).await;
            assert_eq!(got, status);
            assert_eq!(body["error"]["code"], status);
            assert_eq!(body["error"]["status"], code);
            assert!(
                headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("application/json")
            );
        }
    }

    #[test]
    fn closing_faults_have_no_answer() {
        for fault in [
            Fault::ResetBeforeForwarding,
            Fault::ResetAfterForwarding,
            Fault::Latency,
            Fault::Hang,
        ] {
            assert!(Backend::DynamoDb.fault_answer(fault, 0).is_none());
            assert!(Backend::Firestore.fault_answer(fault, 0).is_none());
        }
    }

    fn is_write(backend: Backend, method: Method, uri: &str, target: Option<&str>) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(target) = target {
            headers.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        }
        let uri: Uri = uri.parse().unwrap();
        RequestView {
            method: &method,
            uri: &uri,
            headers: &headers,
            body: b"",
        }
        .is_write(backend)
    }

    #[test]
    fn writes_are_recognised() {
        let dynamodb = |target: &str| is_write(Backend::DynamoDb, Method::POST, "/", Some(target));
        for action in DYNAMODB_WRITES {
            assert!(dynamodb(&format!("DynamoDB_20120810.{action}")), "{action}");
        }
        for action in [
            "GetItem",
            "Query",
            "Scan",
            "DescribeTable",
            "TransactGetItems",
        ] {
            assert!(
                !dynamodb(&format!("DynamoDB_20120810.{action}")),
                "{action}"
            );
        }
        assert!(!is_write(Backend::DynamoDb, Method::POST, "/", None));

        let docs = "/v1/projects/p/databases/(default)/documents";
        let firestore = |method, path: &str| is_write(Backend::Firestore, method, path, None);
        assert!(firestore(Method::POST, &format!("{docs}:commit")));
        assert!(firestore(Method::POST, &format!("{docs}:batchWrite")));
        assert!(firestore(Method::POST, &format!("{docs}/items")));
        assert!(firestore(Method::PATCH, &format!("{docs}/items/a")));
        assert!(firestore(Method::DELETE, &format!("{docs}/items/a")));
        assert!(!firestore(Method::GET, &format!("{docs}/items/a")));
        assert!(!firestore(Method::POST, &format!("{docs}:runQuery")));
        assert!(!firestore(
            Method::POST,
            &format!("{docs}:beginTransaction")
        ));
        assert!(!firestore(Method::POST, &format!("{docs}:batchGet")));
    }

    #[test]
    fn backend_names() {
        assert_eq!("DynamoDB".parse::<Backend>().unwrap(), Backend::DynamoDb);
        assert_eq!("firestore".parse::<Backend>().unwrap(), Backend::Firestore);
        assert!("sqlite".parse::<Backend>().is_err());
        assert_eq!(Backend::DynamoDb.to_string(), "dynamodb");
    }
}
