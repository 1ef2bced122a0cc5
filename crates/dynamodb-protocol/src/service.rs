//! The protocol for one table: where calls go, how each attempt is signed,
//! which answers may be retried, and the retry numbers.

use std::time::{Duration, SystemTime};

use http::header::CONTENT_TYPE;
use item_model::StoreError;
use sansio::{Outgoing, Protocol, Request, Response, Retry, RetryPolicy, TransportError};
use serde_json::Value as Json;

use crate::config::{Config, Credentials};
use crate::error::retry_class;
use crate::sign::sign_headers;

/// The DynamoDB API version every target names.
const TARGET_PREFIX: &str = "DynamoDB_20120810";
const TARGET_HEADER: &str = "x-amz-target";

/// DynamoDB's retry numbers, for the native store and the component
/// alike: 9 attempts (8 retries, as the AWS SDKs' legacy DynamoDB default
/// of about ten: throttling comes in bursts that a few tries do not
/// outlast), and full jitter under a ceiling of 50 ms doubling up to 2 s,
/// so that 8 retries wait about 6 s at most on average.
pub const RETRY_POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 9,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_secs(2),
};

/// Where calls go: the endpoint's URL and the table they name.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: String,
    table: String,
}

impl Target {
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// One unsigned API call of `action` (the `x-amz-target` suffix).
    pub(crate) fn call(
        &self,
        action: &'static str,
        body: Json,
        idempotent: bool,
    ) -> Result<Outgoing, StoreError> {
        http::Request::post(self.url.as_str())
            .header(CONTENT_TYPE, "application/x-amz-json-1.0")
            .header(TARGET_HEADER, format!("{TARGET_PREFIX}.{action}"))
            .body(body.to_string().into_bytes())
            .map(|request| Outgoing::new(request, idempotent))
            .map_err(|_| {
                StoreError::Backend(format!("DynamoDB {action}: could not build the request"))
            })
    }
}

/// The protocol for one table: builds operations, and as a
/// [`Protocol`] signs their calls and classifies the answers.
#[derive(Debug, Clone)]
pub struct DynamoDb {
    config: Config,
}

impl DynamoDb {
    /// The protocol for one table; it sends nothing itself.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Where requests go and how they are signed.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same protocol signing with `credentials`.
    pub fn with_credentials(&self, credentials: Credentials) -> Self {
        Self::new(self.config.clone().with_credentials(credentials))
    }

    pub(crate) fn target(&self) -> Target {
        Target {
            url: format!("{}/", self.config.endpoint()),
            table: self.config.table().to_string(),
        }
    }

    /// A call of any action, for what the operations here do not cover
    /// (tests write items as other clients would, for example); sign it
    /// with [`Protocol::authorize`].
    pub fn call(
        &self,
        action: &'static str,
        body: Json,
        idempotent: bool,
    ) -> Result<Outgoing, StoreError> {
        self.target().call(action, body, idempotent)
    }
}

/// The action a call names, for messages.
fn action_of(request: &Request) -> &str {
    request
        .headers()
        .get(TARGET_HEADER)
        .and_then(|target| target.to_str().ok())
        .and_then(|target| target.strip_prefix(TARGET_PREFIX))
        .and_then(|action| action.strip_prefix('.'))
        .unwrap_or("call")
}

impl Protocol for DynamoDb {
    /// Signs with SigV4 at `now`: every attempt anew, as a signature is
    /// only valid for a few minutes.
    fn authorize(&self, request: &mut Request, now: SystemTime) -> Result<(), StoreError> {
        sign_headers(
            self.config.credentials(),
            self.config.region(),
            "dynamodb",
            request,
            now,
        )
    }

    /// Throttling was not applied ([`Retry::Always`]); a server error may
    /// have been ([`Retry::IfIdempotent`]).
    fn classify(&self, response: &Response) -> Retry {
        retry_class(response)
    }

    /// The endpoint carries no secret (the configuration refuses user info
    /// in it).
    fn unreachable(&self, request: &Request, error: &TransportError) -> StoreError {
        let action = action_of(request);
        let endpoint = self.config.endpoint();
        match error {
            TransportError::Connect(why) => StoreError::Unavailable(format!(
                "DynamoDB {action}: cannot connect to {endpoint}: {why}"
            )),
            TransportError::Timeout(_) | TransportError::Broken(_) => {
                StoreError::Unavailable(format!("DynamoDB {action}: {error}"))
            }
            TransportError::TooLarge(_) | TransportError::Refused(_) => {
                StoreError::Backend(format!("DynamoDB {action} to {endpoint}: {error}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> DynamoDb {
        let credentials =
            Credentials::new("AKIDEXAMPLE", "secret", Some("session-secret".into())).unwrap();
        let config = Config::new("us-east-1", credentials)
            .and_then(|c| c.with_endpoint("http://127.0.0.1:8000"))
            .unwrap();
        DynamoDb::new(config)
    }

    #[test]
    fn calls_are_signed_per_attempt_and_hide_their_secrets() {
        let db = db();
        let call = db
            .call("GetItem", serde_json::json!({"TableName": "Items"}), true)
            .unwrap();
        assert!(call.idempotent);
        let mut request = call.request.clone();
        db.authorize(&mut request, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "http://127.0.0.1:8000/");
        let headers = request.headers();
        assert_eq!(headers["x-amz-target"], "DynamoDB_20120810.GetItem");
        assert_eq!(headers["content-type"], "application/x-amz-json-1.0");
        assert_eq!(headers["x-amz-security-token"], "session-secret");
        assert!(headers["authorization"].to_str().unwrap().contains(
            "/19700101/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target,"
        ));
        let debug = format!("{request:?}");
        assert!(
            !debug.contains("Signature=") && !debug.contains("session-secret"),
            "{debug}"
        );
        assert_eq!(request.body(), call.request.body());

        let mut later = call.request.clone();
        let minute = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
        db.authorize(&mut later, minute).unwrap();
        assert_ne!(later.headers()["authorization"], headers["authorization"]);
    }

    #[test]
    fn failures_are_sorted_and_say_no_secret() {
        let db = db();
        let request = db.call("PutItem", Json::Null, true).unwrap().request;
        let connect = db.unreachable(&request, &TransportError::Connect("refused".into()));
        assert!(
            matches!(&connect, StoreError::Unavailable(m) if m.contains("PutItem") && m.contains("127.0.0.1:8000")),
            "{connect:?}"
        );
        let timeout = TransportError::Timeout(Duration::from_secs(10));
        assert!(matches!(
            db.unreachable(&request, &timeout),
            StoreError::Unavailable(_)
        ));
        let refused = TransportError::Refused("the host is not allowed".into());
        assert!(matches!(
            db.unreachable(&request, &refused),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn only_unapplied_failures_are_resent_for_every_call() {
        let answer = |status: u16, kind: &str| {
            sansio::response(
                status,
                format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"m"}}"#),
            )
        };
        let db = db();
        let throttled = db.classify(&answer(400, "ProvisionedThroughputExceededException"));
        assert_eq!(throttled, Retry::Always);
        let internal = db.classify(&answer(500, "InternalServerError"));
        assert_eq!(internal, Retry::IfIdempotent);
        let conditional = db.classify(&answer(400, "ConditionalCheckFailedException"));
        assert_eq!(conditional, Retry::No);
        assert_eq!(db.classify(&sansio::response(200, "{}")), Retry::No);
    }
}
