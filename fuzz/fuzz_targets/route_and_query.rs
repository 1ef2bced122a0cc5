//! Request routing and query parsing: a request head as text (`METHOD
//! /path?query` on the first line, then `name: value` header lines) goes
//! through the router, the list query parser, the `If-Match` /
//! `If-None-Match` parser and the media type check. None may panic, and
//! what they accept must hold together: a routed id is a valid id that
//! routes the same once encoded again, HEAD routes as GET, an accepted
//! list query is valid and reads back the same from its canonical form
//! and from its `next` link, and parsed entity tags read back the same.

#![no_main]

use api::conditional::{self, Condition};
use api::query::{encode_component, list_query, next_link, query_string};
use api::router::{Method, Route, RouteError, route};
use item_model::validate;
use libfuzzer_sys::fuzz_target;

/// The method as the component's HTTP edge names it.
fn method(text: &str) -> Method {
    match text {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn check_route(method: &Method, path: &str) {
    let routed = route(method, path);
    if matches!(method, Method::Get) {
        assert_eq!(route(&Method::Head, path), routed, "HEAD differs from GET");
    }
    match &routed {
        Ok(
            Route::GetItem(id) | Route::PutItem(id) | Route::PatchItem(id) | Route::DeleteItem(id),
        ) => {
            assert!(validate::id(id).is_ok(), "routed an invalid id {id:?}");
            let again = format!("/items/{}", encode_component(id));
            assert_eq!(route(method, &again), routed, "{again}");
        }
        Ok(Route::LikeItem(id)) => {
            assert!(validate::id(id).is_ok(), "routed an invalid id {id:?}");
            let again = format!("/items/{}/likes", encode_component(id));
            assert_eq!(route(method, &again), routed, "{again}");
        }
        Ok(Route::Options(allow)) => {
            assert_eq!(method, &Method::Options);
            assert!(allow.ends_with("OPTIONS"));
        }
        Err(RouteError::MethodNotAllowed(allow)) => assert!(allow.ends_with("OPTIONS")),
        Err(RouteError::BadId(message)) => assert!(!message.is_empty()),
        _ => {}
    }
}

fn check_query(text: &str) {
    let Ok(query) = list_query(text) else {
        return;
    };
    assert!(validate::query(&query).is_ok(), "accepted an invalid query");
    assert!((1..=api::query::MAX_LIMIT).contains(&query.limit));
    let mut again = query_string(&query);
    if let Some(cursor) = &query.cursor {
        again.push_str(&format!("&cursor={}", encode_component(cursor)));
    }
    assert_eq!(list_query(&again).ok(), Some(query.clone()), "{again}");
    if let Some(cursor) = &query.cursor {
        let link = next_link("", &query, cursor);
        let url = link
            .strip_prefix("</items?")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .expect("a link");
        assert_eq!(list_query(url).ok(), Some(query), "{link}");
    }
}

fn check_condition(value: &str) {
    let _ = conditional::if_match(Some(value));
    let Ok(condition) = conditional::parse(value) else {
        return;
    };
    let _ = conditional::none_match(&condition, "1");
    if let Condition::Tags(tags) = &condition {
        let text: Vec<String> = tags
            .iter()
            .map(|t| format!("{}\"{}\"", if t.weak { "W/" } else { "" }, t.opaque))
            .collect();
        let text = text.join(", ");
        assert_eq!(conditional::parse(&text), Ok(condition), "{text}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.splitn(3, ' ');
    let method = method(words.next().unwrap_or_default());
    let target = words.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    check_route(&method, path);
    check_query(query);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "if-match" | "if-none-match" => check_condition(value),
            "content-type" => {
                let _ = api::body::is_json_media_type(value);
            }
            _ => {}
        }
    }
});
