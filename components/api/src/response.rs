//! The response a handler returns, as plain data: `http.rs` writes it to
//! wasi:http, and tests inspect it without a runtime.

use serde_json::Value as Json;

/// Status, headers and a fully built body (responses are small: one item,
/// one page of at most 100 items, or the OpenAPI document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Header names and values in the order they are sent.
    pub headers: Vec<(String, String)>,
    /// The whole body (dropped for HEAD when written out).
    pub body: Vec<u8>,
}

impl Response {
    /// A response without a body (204, 304).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body with the given content type.
    pub fn json_as(status: u16, content_type: &str, json: &Json) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: json.to_string().into_bytes(),
        }
    }

    /// An `application/json` body.
    pub fn json(status: u16, json: &Json) -> Self {
        Self::json_as(status, "application/json", json)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
