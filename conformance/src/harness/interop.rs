//! What the interop tests share: the seed's Python clients
//! (conformance/interop/*.py) run against a server's store, and reading
//! what they and the API print back.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::artefacts::workspace_root;
use super::client::Response;
use super::server::Server;

pub(crate) const PYTHON_HELP: &str = "the interop tests need python3 with the packages of \
    conformance/interop/requirements.txt; `cargo xtask test` installs them into \
    target/tools/venv and puts its bin/ first on PATH (by hand: \
    `. target/tools/venv/bin/activate`)";

/// `python3`, taken from PATH: the virtual environment's when
/// `cargo xtask test` runs the tests.
pub(crate) fn python_command() -> Command {
    Command::new("python3")
}

/// Runs `conformance/interop/SCRIPT` with python3 and returns the JSON it prints.
pub fn python(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let path = workspace_root().join("conformance/interop").join(script);
    let out = python_command()
        .arg(&path)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {PYTHON_HELP}"));
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}\n{PYTHON_HELP}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A Python `isoformat()` of a UTC datetime (naive, or with `+00:00`; no
/// fraction when the microseconds are 0) in the API's fixed-width form.
pub fn normalised_time(python_time: &Value) -> String {
    let text = python_time.as_str().expect("a string time");
    let text = text.strip_suffix("+00:00").unwrap_or(text);
    if text.contains('.') {
        format!("{text}Z")
    } else {
        format!("{text}.000000Z")
    }
}

/// The ids of a list response's items, in order.
pub fn ids(r: &Response) -> Vec<String> {
    r.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", r.text))
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

/// Every item of a list query, one page of `limit` at a time.
pub async fn list_all(s: &Server, query: &str, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut path = format!("/items?{query}&limit={limit}");
    loop {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        all.extend(ids(&r));
        match r.json["next"].as_str() {
            Some(next) => path = format!("/items?{query}&limit={limit}&cursor={next}"),
            None => return all,
        }
        assert!(all.len() < 100, "paging does not end: {all:?}");
    }
}

/// Asserts that a Python client saw exactly these attributes, each of this
/// Python type (`types` as the clients print it: name -> type name).
#[track_caller]
pub fn assert_python_types(types: &Value, shape: &[(&str, &str)], why: &str) {
    let expected: serde_json::Map<String, Value> = shape
        .iter()
        .map(|(name, python_type)| (name.to_string(), Value::from(*python_type)))
        .collect();
    assert_eq!(types, &Value::Object(expected), "{why}");
}

/// Renames the item at `path` to "Renamed" with PATCH as the seed's
/// clients' items must allow: refused (412) with the `stale` ETag, done with
/// the `current` one, keeping the description and creation time of
/// `before` (the item as read earlier). Returns the successful response.
pub async fn assert_guarded_rename(
    s: &Server,
    path: &str,
    stale: &str,
    current: &str,
    before: &Value,
) -> Response {
    let rename = json!({"name": "Renamed"});
    s.patch_if_match(path, &rename, stale)
        .await
        .assert_problem(412);
    let r = s.patch_if_match(path, &rename, current).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["name"], "Renamed");
    assert_eq!(r.json["description"], before["description"]);
    assert_eq!(r.json["createdAt"], before["createdAt"]);
    r
}
