//! RFC 9457 problem details (`application/problem+json`): every error the
//! API returns is built here, one [`Kind`] per `type` URI, so the list in
//! the OpenAPI document and the code cannot drift apart (a test checks it).

use item_model::StoreError;
use serde_json::json;

use crate::response::Response;

/// Prefix of every problem `type` URI.
pub const TYPE_PREFIX: &str = "urn:edge-items:problem:";

/// The kinds of problem; each has one `type` URI, title and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: the body is not one JSON value.
    MalformedJson,
    /// 400: the id in the URL is not a valid item id.
    InvalidId,
    /// 400: a list's query parameters are wrong (a bad cursor included).
    InvalidQuery,
    /// 400: the body could not be read to its end.
    UnreadableBody,
    /// 404: no such path.
    NoRoute,
    /// 404: no (unexpired) item has the id.
    NotFound,
    /// 405, with `Allow`.
    MethodNotAllowed,
    /// 409: a create found the id taken.
    AlreadyExists,
    /// 412: `If-Match` / `If-None-Match` did not hold.
    PreconditionFailed,
    /// 413: the body is over the size limit.
    BodyTooLarge,
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType,
    /// 422: valid JSON that breaks a rule of the item model.
    InvalidBody,
    /// 502: the store refused the service's credentials.
    BackendUnauthorized,
    /// 502: any other store failure.
    BackendError,
    /// 503: the store could not be reached.
    BackendUnavailable,
    /// 503 with `Retry-After`: the store asks to slow down.
    Throttled,
    /// 401: no valid bearer token.
    Unauthenticated,
    /// 403: a valid token without the right (another user's items need
    /// the admin scope).
    Forbidden,
    /// 500: the authentication settings are invalid.
    AuthMisconfigured,
    /// 400: the `Idempotency-Key` header is malformed.
    InvalidIdempotencyKey,
    /// 422: the `Idempotency-Key` was used for another request.
    IdempotencyKeyReused,
    /// 409 with `Retry-After`: a request with this `Idempotency-Key` is
    /// being applied right now.
    IdempotencyKeyInUse,
}

impl Kind {
    /// Every kind, for the documentation test.
    pub const ALL: [Kind; 22] = [
        Kind::MalformedJson,
        Kind::InvalidId,
        Kind::InvalidQuery,
        Kind::UnreadableBody,
        Kind::NoRoute,
        Kind::NotFound,
        Kind::MethodNotAllowed,
        Kind::AlreadyExists,
        Kind::PreconditionFailed,
        Kind::BodyTooLarge,
        Kind::UnsupportedMediaType,
        Kind::InvalidBody,
        Kind::BackendUnauthorized,
        Kind::BackendError,
        Kind::BackendUnavailable,
        Kind::Throttled,
        Kind::Unauthenticated,
        Kind::Forbidden,
        Kind::AuthMisconfigured,
        Kind::InvalidIdempotencyKey,
        Kind::IdempotencyKeyReused,
        Kind::IdempotencyKeyInUse,
    ];

    /// The last part of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::MalformedJson => "malformed-json",
            Kind::InvalidId => "invalid-id",
            Kind::InvalidQuery => "invalid-query",
            Kind::UnreadableBody => "unreadable-body",
            Kind::NoRoute => "no-route",
            Kind::NotFound => "not-found",
            Kind::MethodNotAllowed => "method-not-allowed",
            Kind::AlreadyExists => "already-exists",
            Kind::PreconditionFailed => "precondition-failed",
            Kind::BodyTooLarge => "body-too-large",
            Kind::UnsupportedMediaType => "unsupported-media-type",
            Kind::InvalidBody => "invalid-body",
            Kind::BackendUnauthorized => "backend-unauthorized",
            Kind::BackendError => "backend-error",
            Kind::BackendUnavailable => "backend-unavailable",
            Kind::Throttled => "throttled",
            Kind::Unauthenticated => "unauthenticated",
            Kind::Forbidden => "forbidden",
            Kind::AuthMisconfigured => "auth-misconfigured",
            Kind::InvalidIdempotencyKey => "invalid-idempotency-key",
            Kind::IdempotencyKeyReused => "idempotency-key-reused",
            Kind::IdempotencyKeyInUse => "idempotency-key-in-use",
        }
    }

    /// The problem's `type`: [`TYPE_PREFIX`] and the slug.
    pub fn type_uri(self) -> String {
        format!("{TYPE_PREFIX}{}", self.slug())
    }

    /// The HTTP status every problem of this kind has.
    pub fn status(self) -> u16 {
        match self {
            Kind::MalformedJson
            | Kind::InvalidId
            | Kind::InvalidQuery
            | Kind::UnreadableBody
            | Kind::InvalidIdempotencyKey => 400,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::NoRoute | Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::AlreadyExists | Kind::IdempotencyKeyInUse => 409,
            Kind::PreconditionFailed => 412,
            Kind::BodyTooLarge => 413,
            Kind::UnsupportedMediaType => 415,
            Kind::InvalidBody | Kind::IdempotencyKeyReused => 422,
            Kind::AuthMisconfigured => 500,
            Kind::BackendUnauthorized | Kind::BackendError => 502,
            Kind::BackendUnavailable | Kind::Throttled => 503,
        }
    }

    /// The problem's `title`: fixed per kind, unlike `detail`.
    pub fn title(self) -> &'static str {
        match self {
            Kind::MalformedJson => "Malformed JSON body",
            Kind::InvalidId => "Invalid item id in the URL",
            Kind::InvalidQuery => "Invalid query parameters",
            Kind::UnreadableBody => "Request body could not be read",
            Kind::NoRoute => "No such route",
            Kind::NotFound => "Item not found",
            Kind::MethodNotAllowed => "Method not allowed",
            Kind::AlreadyExists => "Item already exists",
            Kind::PreconditionFailed => "Precondition failed",
            Kind::BodyTooLarge => "Request body too large",
            Kind::UnsupportedMediaType => "Unsupported media type",
            Kind::InvalidBody => "Invalid request body",
            Kind::BackendUnauthorized => "Storage backend refused our credentials",
            Kind::BackendError => "Storage backend error",
            Kind::BackendUnavailable => "Storage backend unavailable",
            Kind::Throttled => "Storage backend is throttling",
            Kind::Unauthenticated => "Authentication required",
            Kind::Forbidden => "Not allowed for this caller",
            Kind::AuthMisconfigured => "Authentication is misconfigured",
            Kind::InvalidIdempotencyKey => "Invalid Idempotency-Key",
            Kind::IdempotencyKeyReused => "Idempotency-Key reused for another request",
            Kind::IdempotencyKeyInUse => "Idempotency-Key in use",
        }
    }
}

/// One problem: a kind, a detail a person can act on, and the extra
/// headers some statuses carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Sets `type`, `title` and the status.
    pub kind: Kind,
    /// What went wrong in this request and how to fix it; never a secret.
    pub detail: String,
    /// `Allow` for 405.
    pub allow: Option<&'static str>,
    /// `Retry-After` seconds for 503.
    pub retry_after: Option<u32>,
    /// `WWW-Authenticate` for 401 and 403 (RFC 6750 3).
    pub www_authenticate: Option<String>,
    /// `instance`: the request, as `item_model::request_id::instance`
    /// writes it, so a client can quote it and an operator find its logs.
    pub instance: Option<String>,
}

impl Problem {
    /// A problem without extra headers.
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            allow: None,
            retry_after: None,
            www_authenticate: None,
            instance: None,
        }
    }

    /// The same problem naming request `request_id` as its `instance`.
    pub fn for_request(mut self, request_id: &str) -> Self {
        self.instance = Some(item_model::request_id::instance(request_id));
        self
    }

    /// The same problem with a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.www_authenticate = Some(challenge);
        self
    }

    /// 405 with its required `Allow` value.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                Kind::MethodNotAllowed,
                format!("this resource supports {allow}"),
            )
        }
    }

    /// 404 naming the id looked up.
    pub fn not_found(id: &str) -> Self {
        Self::new(Kind::NotFound, format!("no item has the id `{id}`"))
    }

    /// A store error as the HTTP API reports it. `id` (when the call was
    /// about one item) makes 404/409 details specific. `InvalidInput` is a
    /// 422 here; a caller whose only input is the URL maps it to 400.
    pub fn from_store(error: StoreError, id: Option<&str>) -> Self {
        match error {
            StoreError::NotFound => match id {
                Some(id) => Self::not_found(id),
                None => Self::new(Kind::NotFound, "no item has this id"),
            },
            StoreError::AlreadyExists => Self::new(
                Kind::AlreadyExists,
                match id {
                    Some(id) => format!(
                        "an item with the id `{id}` already exists; use PUT /items/{{id}} to replace it or omit `id` to get a new one"
                    ),
                    None => "an item with this id already exists".into(),
                },
            ),
            StoreError::VersionMismatch(current) => Self::version_mismatch(current.as_deref()),
            StoreError::InvalidInput(message) => Self::new(Kind::InvalidBody, message),
            StoreError::Throttled(millis) => Self {
                retry_after: Some(millis.div_ceil(1000)),
                ..Self::new(
                    Kind::Throttled,
                    "the storage backend asks to slow down; retry after the number of seconds in Retry-After",
                )
            },
            error @ (StoreError::Unavailable(_)
            | StoreError::Unauthorized(_)
            | StoreError::Backend(_)) => Self::backend_failure(&error, id),
            StoreError::KeyReused => Self::new(
                Kind::IdempotencyKeyReused,
                "this Idempotency-Key was used for a different request (another method, path, If-Match or body); use a new key for a new request",
            ),
            StoreError::KeyInUse => Self {
                retry_after: Some(1),
                ..Self::new(
                    Kind::IdempotencyKeyInUse,
                    "a request with this Idempotency-Key is being applied right now; retry after the number of seconds in Retry-After to get its result",
                )
            },
        }
    }

    /// A failed backend, as clients see it: what failed and what to do, in
    /// our words. The cause (backend messages, endpoints, table names) goes
    /// to the runtime's log only.
    fn backend_failure(error: &StoreError, id: Option<&str>) -> Self {
        eprintln!(
            "api: storage backend failure{}: {error}",
            id.map(|id| format!(" (item `{id}`)")).unwrap_or_default()
        );
        match error {
            StoreError::Unavailable(_) => Self::new(
                Kind::BackendUnavailable,
                "the storage backend could not be reached or did not answer; retry later",
            ),
            StoreError::Unauthorized(_) => Self::new(
                Kind::BackendUnauthorized,
                "the storage backend refused the service's credentials or permissions; the operator must fix them (the service log has the cause)",
            ),
            _ => Self::new(
                Kind::BackendError,
                "the storage backend failed to handle the request; the service log has the cause",
            ),
        }
    }

    /// 503 for an item that kept changing while a write that must read it
    /// first tried to apply.
    pub fn contended(id: &str) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(
                Kind::Throttled,
                format!(
                    "the item `{id}` kept changing while this request tried to apply; retry after the number of seconds in Retry-After"
                ),
            )
        }
    }

    /// 412 for an `If-Match` that did not match the item's version.
    pub fn version_mismatch(current: Option<&str>) -> Self {
        Self::new(
            Kind::PreconditionFailed,
            match current {
                Some(version) => format!(
                    "If-Match does not match: the item's current ETag is {}; fetch it again and retry",
                    crate::conditional::etag(version)
                ),
                None => "If-Match cannot match: no item has this id".into(),
            },
        )
    }

    /// The `application/problem+json` response, with its extra headers.
    pub fn into_response(self) -> Response {
        let status = self.kind.status();
        let mut body = json!({
            "type": self.kind.type_uri(),
            "title": self.kind.title(),
            "status": status,
            "detail": self.detail,
        });
        if let Some(instance) = self.instance {
            body["instance"] = instance.into();
        }
        let mut response = Response::json_as(status, "application/problem+json", &body);
        if let Some(allow) = self.allow {
            response = response.with_header("allow", allow);
        }
        if let Some(seconds) = self.retry_after {
            response = response.with_header("retry-after", seconds.to_string());
        }
        if let Some(challenge) = self.www_authenticate {
            response = response.with_header("www-authenticate", challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn problem_json_shape() {
        let response = Problem::method_not_allowed("GET, POST").into_response();
        assert_eq!(response.status, 405);
        assert_eq!(response.header("allow"), Some("GET, POST"));
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        let json = body(&response);
        assert_eq!(json["type"], "urn:edge-items:problem:method-not-allowed");
        assert_eq!(json["status"], 405);
        assert!(json["title"].is_string() && json["detail"].is_string());
    }

    #[test]
    fn instance_names_the_request() {
        let plain = body(&Problem::not_found("a").into_response());
        assert!(plain.get("instance").is_none());
        let named = body(&Problem::not_found("a").for_request("r 1").into_response());
        assert_eq!(named["instance"], "urn:edge-items:request:r%201");
    }

    #[test]
    fn store_errors_map_to_statuses() {
        let cases = [
            (StoreError::NotFound, 404),
            (StoreError::AlreadyExists, 409),
            (StoreError::VersionMismatch(Some("2".into())), 412),
            (StoreError::VersionMismatch(None), 412),
            (StoreError::InvalidInput("x".into()), 422),
            (StoreError::Throttled(1500), 503),
            (StoreError::Unavailable("down".into()), 503),
            (StoreError::Unauthorized("denied".into()), 502),
            (StoreError::Backend("boom".into()), 502),
        ];
        for (error, status) in cases {
            assert_eq!(
                Problem::from_store(error.clone(), Some("a"))
                    .into_response()
                    .status,
                status,
                "{error:?}"
            );
        }
    }

    #[test]
    fn backend_text_stays_out_of_problems() {
        for error in [
            StoreError::Unavailable("cannot connect to http://10.0.0.7:8000".into()),
            StoreError::Unauthorized("AccessDenied on table Items-prod".into()),
            StoreError::Backend("rusqlite: disk I/O error".into()),
        ] {
            let problem = Problem::from_store(error.clone(), Some("a"));
            for secret in ["10.0.0.7", "Items-prod", "rusqlite"] {
                assert!(
                    !problem.detail.contains(secret),
                    "{error:?}: {}",
                    problem.detail
                );
            }
            assert!(!problem.detail.is_empty());
        }
    }

    #[test]
    fn retry_after_rounds_up_to_seconds() {
        for (millis, seconds) in [(0, "0"), (1, "1"), (1000, "1"), (1001, "2")] {
            let response = Problem::from_store(StoreError::Throttled(millis), None).into_response();
            assert_eq!(response.header("retry-after"), Some(seconds));
        }
        let unavailable =
            Problem::from_store(StoreError::Unavailable("x".into()), None).into_response();
        assert_eq!(unavailable.header("retry-after"), None);
    }

    #[test]
    fn kinds_are_distinct() {
        let mut slugs: Vec<_> = Kind::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), Kind::ALL.len());
    }
}
