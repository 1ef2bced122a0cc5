//! A protocol script: which operation to start, with what, and the
//! responses it gets, as text that is easy to write by hand (the seed
//! corpus) and for the fuzzer to mutate:
//!
//! ```text
//! query key=status value=active order=asc limit=2
//! ---
//! 200
//! content-type: application/x-amz-json-1.0
//!
//! {"Items": [], "Count": 0}
//! ---
//! 400
//!
//! {"__type": "...#ThrottlingException"}
//! ```
//!
//! Chunks are separated by a line `---`. The first line of the first chunk
//! names the operation (an unknown name picks one by its first byte) and
//! may set `key=value` parameters; the bytes after that line feed
//! `arbitrary` for everything else (see [`crate::inputs`]). Each further chunk
//! is a response: a status line (200 when unreadable), header lines up to
//! an empty line, and the body.

use sansio::Response;

/// The operations of both protocols.
pub const OPERATIONS: [&str; 9] = [
    "get",
    "create",
    "put",
    "update",
    "delete",
    "increment",
    "batch",
    "query",
    "scan",
];

const SEPARATOR: &[u8] = b"\n---\n";

/// A parsed script.
pub struct Script<'a> {
    /// One of [`OPERATIONS`].
    pub operation: &'static str,
    /// The `key=value` words of the first line.
    pub params: Vec<(&'a str, &'a str)>,
    /// The bytes after the first line, for `arbitrary`.
    pub rest: &'a [u8],
    pub responses: Vec<Response>,
}

impl<'a> Script<'a> {
    pub fn parse(data: &'a [u8]) -> Self {
        let mut chunks = split(data, SEPARATOR);
        let first = chunks.next().unwrap_or_default();
        let (line, rest) = match first.iter().position(|&b| b == b'\n') {
            Some(at) => (&first[..at], &first[at + 1..]),
            None => (first, &[][..]),
        };
        let line = std::str::from_utf8(line).unwrap_or_default();
        let mut words = line.split_ascii_whitespace();
        let name = words.next().unwrap_or_default();
        let operation = OPERATIONS
            .iter()
            .find(|op| **op == name)
            .copied()
            .unwrap_or_else(|| {
                let pick = first.first().copied().unwrap_or(0);
                OPERATIONS[usize::from(pick) % OPERATIONS.len()]
            });
        let params = words.filter_map(|w| w.split_once('=')).collect();
        Script {
            operation,
            params,
            rest,
            responses: chunks.map(response).collect(),
        }
    }

    /// A `key=value` parameter of the first line.
    pub fn param(&self, key: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match find(current, separator) {
            Some(at) => {
                rest = Some(&current[at + separator.len()..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One response chunk: status line, headers, empty line, body.
fn response(chunk: &[u8]) -> Response {
    let mut lines = chunk.split(|&b| b == b'\n');
    let status = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .unwrap_or(200);
    let mut builder = http::Response::builder().status(status);
    let mut consumed = chunk
        .iter()
        .position(|&b| b == b'\n')
        .map_or(chunk.len(), |p| p + 1);
    for line in lines {
        consumed += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = http::HeaderName::from_bytes(&line[..colon]);
        let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            builder = builder.header(name, value);
        }
    }
    let body = chunk.get(consumed..).unwrap_or_default().to_vec();
    builder
        .body(body)
        .unwrap_or_else(|_| sansio::response(status, Vec::new()))
}
