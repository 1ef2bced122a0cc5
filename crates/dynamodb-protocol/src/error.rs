//! DynamoDB error responses as store errors.
//!
//! DynamoDB answers errors as JSON (`{"__type": "com.amazonaws.dynamodb.
//! v20120810#ConditionalCheckFailedException", "message": ...}`), while
//! moto (and AWS's front ends for some auth failures) answer XML
//! (`<Code>SignatureDoesNotMatch</Code>`): both are read. Only the error
//! *code* is trusted; the backend's message is never passed on whole (it
//! may quote request parts), at most as a short sanitised summary for
//! validation errors, which are the caller's to fix.

use item_model::StoreError;
use serde::Deserialize;

use sansio::{Response, Retry};

use crate::attr::AttributeMap;

/// How long a caller should wait after DynamoDB throttled us, once our own
/// retries are spent.
pub const THROTTLE_RETRY_MS: u32 = 1000;

/// An error answer from DynamoDB, parsed. `Debug` shows the sanitised
/// summary, never the raw message.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The error code, such as `ConditionalCheckFailedException`; only
    /// ASCII letters and digits are kept.
    pub code: String,
    message: String,
    /// The item as it was, sent with a failed condition when the request
    /// asked for `ReturnValuesOnConditionCheckFailure: ALL_OLD`.
    pub item: Option<AttributeMap>,
    /// Why a transaction was cancelled (`TransactionCanceledException`):
    /// one code per action, in request order (`None`,
    /// `ConditionalCheckFailed`, `TransactionConflict`, ...).
    pub cancellation_reasons: Vec<String>,
}

impl std::fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("summary", &self.summary())
            .field("item", &self.item.as_ref().map(|_| "<item>"))
            .field("cancellation_reasons", &self.cancellation_reasons)
            .finish()
    }
}

#[derive(Deserialize)]
struct JsonError {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(default, alias = "Message")]
    message: String,
    #[serde(rename = "Item", default)]
    item: Option<AttributeMap>,
    #[serde(rename = "CancellationReasons", default)]
    cancellation_reasons: Vec<JsonReason>,
}

#[derive(Deserialize)]
struct JsonReason {
    #[serde(rename = "Code", default)]
    code: Option<String>,
}

/// The text between `<tag>` and `</tag>`, if any.
fn xml_field<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim())
}

fn clean_code(code: &str) -> String {
    // `ns#Code`, or `Code:http://...` in some AWS front ends.
    let code = code.split(':').next().unwrap_or_default();
    code.rsplit('#')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(64)
        .collect()
}

impl ServiceError {
    /// Parses an error response (any status).
    pub fn parse(response: &Response) -> Self {
        let body = String::from_utf8_lossy(response.body());
        let (code, message, item, reasons) =
            if let Ok(json) = serde_json::from_str::<JsonError>(&body) {
                let reasons = json
                    .cancellation_reasons
                    .iter()
                    .map(|r| clean_code(r.code.as_deref().unwrap_or("None")))
                    .collect();
                (clean_code(&json.kind), json.message, json.item, reasons)
            } else if let Some(code) = xml_field(&body, "Code") {
                let message = xml_field(&body, "Message").unwrap_or_default();
                (clean_code(code), message.to_string(), None, Vec::new())
            } else {
                (String::new(), String::new(), None, Vec::new())
            };
        Self {
            status: response.status().as_u16(),
            code,
            message,
            item,
            cancellation_reasons: reasons,
        }
    }

    /// Whether this is the given code; `Exception` suffixes are optional
    /// (`AccessDenied` and `AccessDeniedException` are the same error).
    pub fn is(&self, code: &str) -> bool {
        let strip = |c: &str| c.strip_suffix("Exception").unwrap_or(c).to_string();
        strip(&self.code) == strip(code)
    }

    /// A write's condition did not hold (version, existence, expiry).
    pub fn is_conditional_check_failed(&self) -> bool {
        self.is("ConditionalCheckFailed")
    }

    /// DynamoDB refused the request as malformed (`ValidationException`).
    pub fn is_validation(&self) -> bool {
        self.is("Validation")
    }

    /// Whether a cancelled transaction names `reason` for any action.
    pub fn cancelled_for(&self, reason: &str) -> bool {
        self.cancellation_reasons.iter().any(|r| r == reason)
    }

    pub(crate) fn message_contains(&self, text: &str) -> bool {
        self.message
            .to_ascii_lowercase()
            .contains(&text.to_ascii_lowercase())
    }

    /// Whether the error says DynamoDB did not process the request at all
    /// (throttling), so that even a non-idempotent write may be resent.
    pub fn is_throttling(&self) -> bool {
        [
            "ProvisionedThroughputExceeded",
            "Throttling",
            "RequestLimitExceeded",
            "LimitExceeded",
            "TooManyRequests",
        ]
        .iter()
        .any(|c| self.is(c))
            || self.status == 429
    }

    /// Whether the service failed (5xx): the request may or may not have
    /// been applied.
    pub fn is_server_error(&self) -> bool {
        self.status >= 500 || self.is("InternalServerError") || self.is("ServiceUnavailable")
    }

    fn is_auth(&self) -> bool {
        [
            "UnrecognizedClient",
            "InvalidSignature",
            "SignatureDoesNotMatch",
            "IncompleteSignature",
            "AccessDenied",
            "MissingAuthenticationToken",
            "ExpiredToken",
            "InvalidClientTokenId",
            "AuthFailure",
            "UnauthorizedOperation",
            "NotAuthorized",
        ]
        .iter()
        .any(|c| self.is(c))
            || (self.code.is_empty() && matches!(self.status, 401 | 403))
    }

    /// A short, sanitised summary of the backend's message: at most 160
    /// characters, plain punctuation only, and no long unbroken runs (keys,
    /// tokens and signatures are long runs).
    pub fn summary(&self) -> String {
        let words: Vec<String> = self
            .message
            .split_whitespace()
            .map(|word| {
                let kept: String = word
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || " .,:;()'_-".contains(*c))
                    .collect();
                if kept.len() > 32 { "...".into() } else { kept }
            })
            .filter(|w| !w.is_empty())
            .collect();
        let mut text = words.join(" ");
        if text.len() > 160 {
            text.truncate(157);
            text.push_str("...");
        }
        text
    }

    /// The store error for this answer to `action` on `table`, for the
    /// cases an operation does not handle itself.
    pub fn to_store_error(&self, action: &str, table: &str) -> StoreError {
        let code = if self.code.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("{}, HTTP {}", self.code, self.status)
        };
        if self.is_throttling() {
            return StoreError::Throttled(THROTTLE_RETRY_MS);
        }
        if self.is_auth() {
            let why = if self.is("AccessDenied")
                || self.is("UnauthorizedOperation")
                || self.is("NotAuthorized")
            {
                format!(
                    "the credentials are not allowed to call dynamodb:{action} on table `{table}`; grant it in the IAM policy"
                )
            } else if self.is("ExpiredToken") {
                "the session token has expired; refresh AWS_SESSION_TOKEN".into()
            } else if self.is("UnrecognizedClient") || self.is("InvalidClientTokenId") {
                "the access key id is not known to AWS; check AWS_ACCESS_KEY_ID".into()
            } else if self.is("MissingAuthenticationToken") {
                "the request carried no valid credentials".into()
            } else {
                "the request signature was refused; check AWS_SECRET_ACCESS_KEY, the region and the clock".into()
            };
            return StoreError::Unauthorized(format!("DynamoDB {action}: {why} ({code})"));
        }
        if self.is_server_error() {
            return StoreError::Unavailable(format!(
                "DynamoDB failed to serve {action} ({code}); retrying may help"
            ));
        }
        if self.is("ResourceNotFound") {
            return StoreError::Backend(format!(
                "table `{table}` (or its index) not found; run provisioning to create it"
            ));
        }
        if self.is_validation() || self.is("Serialization") {
            let summary = self.summary();
            return StoreError::InvalidInput(if summary.is_empty() {
                format!("DynamoDB refused the {action} request as invalid")
            } else {
                format!("DynamoDB refused the {action} request as invalid: {summary}")
            });
        }
        if self.is("ItemCollectionSizeLimitExceeded") {
            return StoreError::Backend(format!("DynamoDB {action}: an item collection is full"));
        }
        if self.is("TransactionCanceled") {
            let why = self.cancellation_reasons.join(", ");
            if self.cancelled_for("ValidationError") {
                return StoreError::InvalidInput(format!(
                    "DynamoDB refused the {action} request as invalid ({why})"
                ));
            }
            if self.cancelled_for("ThrottlingError")
                || self.cancelled_for("ProvisionedThroughputExceeded")
            {
                return StoreError::Throttled(THROTTLE_RETRY_MS);
            }
            return StoreError::Backend(format!("DynamoDB cancelled {action} ({why})"));
        }
        if self.is("IdempotentParameterMismatch") {
            // The store derives a fresh token for every transaction it
            // builds, so this is a bug, not something a retry mends.
            return StoreError::Backend(format!(
                "DynamoDB {action}: a request token was reused for another request ({code})"
            ));
        }
        if self.is("TransactionConflict") || self.is("TransactionInProgress") {
            return StoreError::Unavailable(format!(
                "DynamoDB {action} conflicted with a transaction; retrying may help"
            ));
        }
        StoreError::Backend(format!("DynamoDB refused {action} ({code})"))
    }
}

/// Whether a call may be sent again after `response`: throttling means
/// DynamoDB did not apply it ([`Retry::Always`], even an increment); a
/// server error leaves it open ([`Retry::IfIdempotent`]).
pub fn retry_class(response: &Response) -> Retry {
    if response.status().is_success() {
        return Retry::No;
    }
    let error = ServiceError::parse(response);
    if error.is_throttling() {
        Retry::Always
    } else if error.is_server_error() {
        Retry::IfIdempotent
    } else {
        Retry::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        sansio::response(status, body)
    }

    fn json(status: u16, kind: &str, message: &str) -> Response {
        response(
            status,
            &serde_json::json!({"__type": kind, "message": message}).to_string(),
        )
    }

    fn map(r: &Response) -> StoreError {
        ServiceError::parse(r).to_store_error("GetItem", "Items")
    }

    #[test]
    fn json_errors() {
        let ccf = ServiceError::parse(&response(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{"itemId":{"S":"a"},"version":{"N":"3"}}}"#,
        ));
        assert!(ccf.is_conditional_check_failed());
        assert_eq!(
            ccf.item.unwrap()["version"],
            crate::attr::AttributeValue::N("3".into())
        );

        for code in [
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "com.amazon.coral.availability#ThrottlingException",
            "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
        ] {
            assert_eq!(
                map(&json(400, code, "slow down")),
                StoreError::Throttled(THROTTLE_RETRY_MS),
                "{code}"
            );
        }
        assert!(matches!(
            map(&json(
                500,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "x"
            )),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map(&response(503, "")),
            StoreError::Unavailable(_)
        ));
        let e = map(&json(
            400,
            "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "Requested resource not found",
        ));
        assert!(
            matches!(&e, StoreError::Backend(m) if m.contains("`Items`") && m.contains("provisioning")),
            "{e}"
        );
        let e = map(&json(
            400,
            "com.amazonaws.dynamodb.v20120810#ValidationException",
            "Item size has exceeded the maximum allowed size",
        ));
        assert!(
            matches!(&e, StoreError::InvalidInput(m) if m.contains("maximum allowed size")),
            "{e}"
        );
    }

    #[test]
    fn auth_errors_name_the_action_never_the_key() {
        let secret_echo = "The request signature we calculated does not match. Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/dynamodb/aws4_request Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
        for (r, needle) in [
            (
                json(
                    400,
                    "com.amazon.coral.service#UnrecognizedClientException",
                    secret_echo,
                ),
                "AWS_ACCESS_KEY_ID",
            ),
            (
                json(
                    400,
                    "com.amazon.coral.service#InvalidSignatureException",
                    secret_echo,
                ),
                "signature",
            ),
            (
                json(
                    400,
                    "com.amazon.coral.service#AccessDeniedException",
                    secret_echo,
                ),
                "dynamodb:GetItem",
            ),
            (
                json(
                    400,
                    "com.amazon.coral.service#ExpiredTokenException",
                    secret_echo,
                ),
                "expired",
            ),
            (
                json(
                    400,
                    "com.amazon.coral.service#MissingAuthenticationTokenException",
                    secret_echo,
                ),
                "credentials",
            ),
            (
                response(
                    403,
                    &format!(
                        "<?xml version=\"1.0\"?><ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>{secret_echo}</Message></Error></ErrorResponse>"
                    ),
                ),
                "signature",
            ),
            (
                response(
                    403,
                    "<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/app is not authorized to perform: dynamodb:GetItem</Message></Error></ErrorResponse>",
                ),
                "dynamodb:GetItem",
            ),
        ] {
            let e = map(&r);
            let StoreError::Unauthorized(message) = &e else {
                panic!("{e:?}")
            };
            assert!(message.contains(needle), "{message}");
            for leak in ["AKIA", "5da7c1a2", "123456789012", "us-east-1/dynamodb"] {
                assert!(!message.contains(leak), "{message}");
            }
        }
    }

    #[test]
    fn cancelled_transactions_list_their_reasons() {
        let cancelled = |reasons: &str| {
            response(
                400,
                &format!(
                    r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","CancellationReasons":[{reasons}],"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons"}}"#
                ),
            )
        };
        // As DynamoDB Local and AWS send it: one reason per action.
        let failed = ServiceError::parse(&cancelled(
            r#"{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"},{"Code":"None"}"#,
        ));
        assert_eq!(
            failed.cancellation_reasons,
            ["ConditionalCheckFailed", "None"]
        );
        assert!(failed.cancelled_for("ConditionalCheckFailed"));
        let map = |e: &ServiceError| e.to_store_error("TransactWriteItems", "Items");
        assert!(
            matches!(map(&failed), StoreError::Backend(m) if m.contains("ConditionalCheckFailed"))
        );
        let throttled =
            ServiceError::parse(&cancelled(r#"{"Code":"ThrottlingError"},{"Code":"None"}"#));
        assert_eq!(map(&throttled), StoreError::Throttled(THROTTLE_RETRY_MS));
        let invalid =
            ServiceError::parse(&cancelled(r#"{"Code":"None"},{"Code":"ValidationError"}"#));
        assert!(matches!(map(&invalid), StoreError::InvalidInput(_)));
        // DynamoDB Local's answer to a token reused with other contents.
        let mismatch = ServiceError::parse(&response(
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException","Message":""}"#,
        ));
        assert!(matches!(map(&mismatch), StoreError::Backend(m) if m.contains("token")));
        // Other errors have none.
        let other = ServiceError::parse(&json(400, "x#ValidationException", "bad"));
        assert!(other.cancellation_reasons.is_empty());
    }

    #[test]
    fn summaries_drop_long_runs() {
        let e = ServiceError::parse(&json(
            400,
            "x#ValidationException",
            "bad value AKIAIOSFODNN7EXAMPLEAKIAIOSFODNN7EXAMPLE <script> here",
        ));
        assert_eq!(e.summary(), "bad value ... script here");
    }

    #[test]
    fn retry_classes() {
        assert_eq!(retry_class(&response(200, "{}")), Retry::No);
        assert_eq!(
            retry_class(&json(400, "x#ThrottlingException", "")),
            Retry::Always
        );
        assert_eq!(retry_class(&response(500, "")), Retry::IfIdempotent);
        assert_eq!(
            retry_class(&json(400, "x#ValidationException", "")),
            Retry::No
        );
        assert_eq!(
            retry_class(&response(403, "<Code>AccessDenied</Code>")),
            Retry::No
        );
    }
}
