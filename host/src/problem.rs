//! The answers the server gives itself, before or instead of the
//! component, in the API's RFC 9457 problem format
//! (`application/problem+json` with `type`, `title`, `status`, `detail`).

use std::time::Duration;

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::server::{ResponseBody, full_body};

/// Prefix of the `type` URIs, the same as the component's.
const TYPE_PREFIX: &str = "urn:edge-items:problem:";

/// Seconds a refused client is asked to wait (`Retry-After`): capacity
/// frees as soon as a request in flight ends, usually well within that.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// One problem answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The last part of the `type` URI.
    pub slug: &'static str,
    /// Fixed per kind of problem.
    pub title: &'static str,
    /// What happened to this request and what to do; never a secret.
    pub detail: String,
    /// Whether to send `Retry-After`.
    pub retry: bool,
    /// Whether the connection ends after this answer (the request body
    /// may be unread, so the next bytes are not a request head).
    pub close: bool,
}

impl Problem {
    /// RFC 9112 §3.2: an HTTP/1.1 request without Host.
    pub fn missing_host() -> Self {
        Self::bad_request(
            "missing-host",
            "Missing Host header",
            "an HTTP/1.1 request must carry a Host header (RFC 9112, section 3.2)".to_string(),
        )
    }

    /// RFC 9112 §3.2: Host repeated or not a valid `host[:port]`.
    pub fn invalid_host(why: &str) -> Self {
        Self::bad_request("invalid-host", "Invalid Host header", why.to_string())
    }

    fn bad_request(slug: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            slug,
            title,
            detail,
            retry: false,
            close: false,
        }
    }

    /// The body did not arrive within its deadline.
    pub fn body_timeout(limit: Duration) -> Self {
        Self {
            status: StatusCode::REQUEST_TIMEOUT,
            slug: "body-timeout",
            title: "Request body not received in time",
            detail: format!(
                "the request body must arrive within {} of the request head",
                seconds(limit)
            ),
            retry: false,
            close: true,
        }
    }

    /// The component did not answer within the request deadline.
    pub fn request_timeout(limit: Duration) -> Self {
        Self {
            status: StatusCode::GATEWAY_TIMEOUT,
            slug: "request-timeout",
            title: "Request took too long",
            detail: format!(
                "no answer within {} of the request head; the request was stopped, and a \
                 write may or may not have been applied",
                seconds(limit)
            ),
            retry: false,
            close: false,
        }
    }

    /// Every instance stayed busy for the whole wait.
    pub fn no_instance(waited: Duration) -> Self {
        Self::busy(format!(
            "every instance stayed busy for {}; retry shortly",
            seconds(waited)
        ))
    }

    /// The memory budget has no room for this request's body now.
    pub fn no_memory(body_unread: bool) -> Self {
        Self {
            close: body_unread,
            ..Self::busy(
                "the server's memory budget for request bodies is in use by other requests; \
                 retry shortly"
                    .to_string(),
            )
        }
    }

    fn busy(detail: String) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            slug: "server-busy",
            title: "Server busy",
            detail,
            retry: true,
            close: false,
        }
    }

    /// The client already has as many connections open as it may.
    pub fn too_many_connections(max: usize) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            slug: "too-many-connections",
            title: "Too many connections",
            detail: format!(
                "this client already has {max} connections open; reuse them or close some"
            ),
            retry: true,
            close: true,
        }
    }

    /// The `application/problem+json` response to request `request_id`
    /// (its `instance`, as the component writes it), with `Retry-After`
    /// and `Connection: close` as asked.
    pub fn into_response(self, request_id: &str) -> Response<ResponseBody> {
        let body = json!({
            "type": format!("{TYPE_PREFIX}{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": item_model::request_id::instance(request_id),
        });
        let mut response = Response::new(full_body(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/problem+json"),
        );
        if self.retry {
            headers.insert(http::header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
        }
        if self.close {
            headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// The 500 answer when the component fails; its cause goes to the log only.
pub fn internal_error(request_id: &str) -> Response<ResponseBody> {
    let body = json!({
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the request could not be handled; see the server log",
        "instance": item_model::request_id::instance(request_id),
    });
    let mut response = Response::new(full_body(body.to_string()));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// `30 s`, `1.5 s`, `250 ms`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn parts(problem: Problem) -> (StatusCode, http::HeaderMap, serde_json::Value) {
        let response = problem.into_response("test-id");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn problems_have_the_api_shape() {
        let (status, headers, body) = parts(Problem::body_timeout(Duration::from_secs(30))).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(headers["connection"], "close");
        assert_eq!(body["type"], "urn:edge-items:problem:body-timeout");
        assert_eq!(body["status"], 408);
        assert_eq!(body["title"], "Request body not received in time");
        assert!(body["detail"].as_str().unwrap().contains("30 s"));

        let (status, headers, body) = parts(Problem::no_instance(Duration::from_millis(250))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "1");
        assert!(!headers.contains_key("connection"));
        assert!(body["detail"].as_str().unwrap().contains("250 ms"));

        let (status, headers, _) = parts(Problem::no_memory(true)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(headers["connection"], "close");

        let (status, _, body) = parts(Problem::missing_host()).await;
        assert_eq!(body["instance"], "urn:edge-items:request:test-id");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["type"], "urn:edge-items:problem:missing-host");

        let (status, headers, _) = parts(Problem::too_many_connections(8)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["retry-after"], "1");

        let (status, _, body) = parts(Problem::request_timeout(Duration::from_secs(60))).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body["status"], 504);
    }
}
