//! Drives a `dynamodb-protocol` [`Exchange`] over `component-http`: signs
//! every attempt afresh (wall clock from `wasi:clocks`), honours the
//! exchange's pauses, and resends with the native store's rules, so a
//! write is never applied twice:
//!
//! - throttled (DynamoDB did not apply the call) or no connection (nothing
//!   was sent): resent for every call;
//! - 5xx, timeout, broken connection (the call may have been applied):
//!   resent only for calls the protocol marks idempotent (reads,
//!   conditional puts and updates, batch writes), never for increments
//!   and deletes;
//! - anything else: final.
//!
//! After the last attempt the last answer goes to the exchange, which maps
//! a 503 or a throttling error like any other.

use std::time::{Duration, SystemTime};

use component_http::{Options, Retry, RetryPolicy, TransportError};
use dynamodb_protocol::{
    Call, DynamoDb, Exchange, HttpRequest, HttpResponse, Pause, Step, StoreError, Transient,
    transient,
};

/// The native store's limits: 3 s to connect, 10 s per request.
const OPTIONS: Options = Options {
    timeout: Duration::from_secs(10),
    connect_timeout: Duration::from_secs(3),
    max_response_bytes: 32 * 1024 * 1024,
};

/// The native store's backoff: up to 8 resends, full jitter under a
/// ceiling of 50 ms doubling up to 2 s.
const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 9,
    base_delay: Duration::from_millis(50),
    max_delay: Duration::from_secs(2),
};

/// Runs `exchange` to its end.
pub fn run<E: Exchange>(protocol: &DynamoDb, mut exchange: E) -> Result<E::Output, StoreError> {
    let mut step = exchange.start();
    loop {
        match step {
            Step::Done(result) => return result,
            Step::Send(call) => {
                let response = send(protocol, &call)?;
                step = exchange.on_response(&response);
            }
        }
    }
}

/// Sends one call, resending it where that is safe.
fn send(protocol: &DynamoDb, call: &Call) -> Result<HttpResponse, StoreError> {
    match call.pause {
        Pause::None => {}
        Pause::Backoff(n) => component_http::sleep(POLICY.backoff(n)),
        Pause::Poll(wait) => component_http::sleep(wait),
    }
    component_http::retry(&POLICY, call.idempotent, || attempt(protocol, call))
}

fn attempt(protocol: &DynamoDb, call: &Call) -> (Result<HttpResponse, StoreError>, Retry) {
    // A signature is valid for minutes only, so every attempt signs anew.
    let request = match protocol
        .sign(call, SystemTime::now())
        .and_then(|signed| to_http(signed, call.action))
    {
        Ok(request) => request,
        Err(error) => return (Err(error), Retry::No),
    };
    match component_http::send(request, &OPTIONS) {
        Ok(response) => {
            let response = HttpResponse {
                status: response.status().as_u16(),
                body: response.into_body(),
            };
            let class = classify(&response);
            (Ok(response), class)
        }
        Err(error) => {
            let class = error.retry();
            let endpoint = protocol.config().endpoint();
            (Err(failure(call.action, endpoint, &error)), class)
        }
    }
}

/// How an answer may be retried (see the module docs).
fn classify(response: &HttpResponse) -> Retry {
    match transient(response) {
        Some(Transient::NotApplied) => Retry::Always,
        Some(Transient::Unknown) => Retry::IfIdempotent,
        None => Retry::No,
    }
}

fn to_http(request: HttpRequest, action: &str) -> Result<http::Request<Vec<u8>>, StoreError> {
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(request.url.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // The parts were checked when the configuration was read; the builder's
    // error could quote a header (a credential), so it is not passed on.
    builder
        .body(request.body)
        .map_err(|_| StoreError::Backend(format!("DynamoDB {action}: could not build the request")))
}

/// A failure without an HTTP answer, in our words. The endpoint carries no
/// secret (the configuration refuses user info in it).
fn failure(action: &str, endpoint: &str, error: &TransportError) -> StoreError {
    match error {
        TransportError::Connect(why) => StoreError::Unavailable(format!(
            "DynamoDB {action}: cannot connect to {endpoint}: {why}"
        )),
        TransportError::Timeout(_) | TransportError::Broken(_) => {
            StoreError::Unavailable(format!("DynamoDB {action}: {error}"))
        }
        TransportError::TooLarge(_)
        | TransportError::Refused(_)
        | TransportError::NotInComponent => {
            StoreError::Backend(format!("DynamoDB {action} to {endpoint}: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamodb_protocol::{Config, Credentials};

    fn response(status: u16, kind: &str) -> HttpResponse {
        HttpResponse {
            status,
            body: format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"m"}}"#
            )
            .into_bytes(),
        }
    }

    #[test]
    fn only_unapplied_failures_are_resent_for_every_call() {
        let throttled = classify(&response(400, "ProvisionedThroughputExceededException"));
        assert_eq!(throttled, Retry::Always);
        let internal = classify(&response(500, "InternalServerError"));
        assert_eq!(internal, Retry::IfIdempotent);
        assert!(!internal.allows(false) && internal.allows(true));
        let conditional = classify(&response(400, "ConditionalCheckFailedException"));
        assert_eq!(conditional, Retry::No);
        let ok = HttpResponse {
            status: 200,
            body: b"{}".to_vec(),
        };
        assert_eq!(classify(&ok), Retry::No);
    }

    #[test]
    fn the_native_backoff() {
        assert_eq!(POLICY.ceiling(1), Duration::from_millis(50));
        assert_eq!(POLICY.ceiling(6), Duration::from_millis(1600));
        assert_eq!(POLICY.ceiling(8), Duration::from_secs(2));
    }

    #[test]
    fn signed_requests_become_http_requests() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", Some("token".into())).unwrap();
        let config = Config::new("us-east-1", credentials)
            .and_then(|c| c.with_endpoint("http://127.0.0.1:8000"))
            .unwrap();
        let call = Call::new("GetItem", serde_json::json!({"TableName": "Items"}), true);
        let signed = DynamoDb::new(config)
            .sign(&call, SystemTime::now())
            .unwrap();
        let request = to_http(signed, "GetItem").unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "http://127.0.0.1:8000/");
        let headers = request.headers();
        assert_eq!(headers["x-amz-target"], "DynamoDB_20120810.GetItem");
        assert_eq!(headers["x-amz-security-token"], "token");
        assert!(headers.contains_key("authorization"));
        assert_eq!(request.body(), &call.body);
    }

    #[test]
    fn failures_are_sorted_and_say_no_secret() {
        let connect = failure(
            "GetItem",
            "http://127.0.0.1:9",
            &TransportError::Connect("connection refused".into()),
        );
        assert!(
            matches!(&connect, StoreError::Unavailable(m) if m.contains("127.0.0.1:9")),
            "{connect:?}"
        );
        let timeout = failure(
            "PutItem",
            "e",
            &TransportError::Timeout(Duration::from_secs(10)),
        );
        assert!(matches!(timeout, StoreError::Unavailable(_)));
        let refused = failure(
            "Query",
            "e",
            &TransportError::Refused("the host is not allowed".into()),
        );
        assert!(matches!(refused, StoreError::Backend(_)));
    }
}
