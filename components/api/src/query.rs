//! `GET /items` query parameters -> [`item_model::Query`], and the `next`
//! link. Pure; every problem here is a 400.

use item_model::{Cursor, IndexKey, Order, Query, validate};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::problem::{Kind, Problem};

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest `limit` the HTTP API accepts (the store allows more).
pub const MAX_LIMIT: u32 = 100;

/// Everything but RFC 3986 unreserved characters is encoded, which is safe
/// in a path segment and in a query value alike.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a path segment or query value.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

fn bad(message: impl Into<String>) -> Problem {
    Problem::new(Kind::InvalidQuery, message)
}

/// Splits `a=1&b=2` into decoded pairs (`+` is a space, as in forms).
fn pairs(query: &str) -> Result<Vec<(String, String)>, Problem> {
    let decode = |text: &str| {
        percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| bad("the query string is not valid UTF-8 once percent-decoded"))
    };
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// Parses the list query and checks its cursor. Unknown or repeated
/// parameters are rejected, so a typo such as `limt=5` is reported rather
/// than silently ignored.
pub fn list_query(query: &str) -> Result<Query, Problem> {
    let query = list_query_without_cursor_check(query)?;
    check_cursor(&query)?;
    Ok(query)
}

/// Checks that the cursor, if any, is one this query handed out (a cursor
/// names its index key and order).
pub fn check_cursor(query: &Query) -> Result<(), Problem> {
    match &query.cursor {
        Some(text) => Cursor::decode_for(text, query)
            .map(drop)
            .map_err(|e| bad(e.to_string())),
        None => Ok(()),
    }
}

/// [`list_query`] without the cursor check, for a caller that changes the
/// key first (a user's `?status=` list is its own items in that status).
pub fn list_query_without_cursor_check(query: &str) -> Result<Query, Problem> {
    let mut user_id = None;
    let mut status = None;
    let mut order = None;
    let mut limit = None;
    let mut cursor = None;
    for (name, value) in pairs(query)? {
        let slot = match name.as_str() {
            "userId" => &mut user_id,
            "status" => &mut status,
            "order" => &mut order,
            "limit" => &mut limit,
            "cursor" => &mut cursor,
            _ => {
                return Err(bad(format!(
                    "unknown query parameter `{name}`; use userId or status, and optionally order, limit and cursor"
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(bad(format!("`{name}` is given more than once")));
        }
    }
    let key = match (user_id, status) {
        (Some(user_id), None) => IndexKey::UserId(user_id),
        (None, Some(status)) => IndexKey::Status(status),
        (Some(user_id), Some(status)) => IndexKey::UserStatus { user_id, status },
        (None, None) => {
            return Err(bad(
                "give userId, status or both, such as ?userId=u1, ?status=active or ?userId=u1&status=active",
            ));
        }
    };
    let order = match order.as_deref() {
        None => Order::Desc,
        Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(bad(format!("order must be asc or desc, not `{other}`")));
        }
    };
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "limit must be a whole number from 1 to {MAX_LIMIT}, not `{text}`"
                )));
            }
        },
    };
    let query = Query {
        key,
        order,
        limit,
        // An empty cursor is the first page, like an absent one.
        cursor: cursor.filter(|c| !c.is_empty()),
    };
    validate::query(&query).map_err(|e| match e {
        item_model::StoreError::InvalidInput(message) => bad(message),
        other => bad(other.to_string()),
    })?;
    Ok(query)
}

/// The query string that asks for `query`, without its cursor: the key's
/// fields, `order` and `limit`, each percent-encoded.
pub fn query_string(query: &Query) -> String {
    let key: String = query
        .key
        .fields()
        .into_iter()
        .map(|(name, value)| format!("{name}={}&", encode_component(value)))
        .collect();
    format!("{key}order={}&limit={}", query.order.as_str(), query.limit)
}

/// The URL of the page after `query`, for the `Link` header, under the
/// prefix `base` the app is mounted at ([`crate::mount`]).
pub fn next_link(base: &str, query: &Query, next_cursor: &str) -> String {
    format!(
        "<{base}/items?{}&cursor={}>; rel=\"next\"",
        query_string(query),
        encode_component(next_cursor)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let q = list_query("userId=u1").unwrap();
        assert_eq!(q.key, IndexKey::UserId("u1".into()));
        assert_eq!(q.order, Order::Desc);
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.cursor, None);
        let q = list_query("status=in%20stock&order=asc&limit=100&cursor=").unwrap();
        assert_eq!(q.key, IndexKey::Status("in stock".into()));
        assert_eq!(q.order, Order::Asc);
        assert_eq!(q.limit, 100);
        let q = list_query("status=a+b&limit=1").unwrap();
        assert_eq!(q.key, IndexKey::Status("a b".into()));
        assert_eq!(q.limit, 1);
        let q = list_query("status=open&userId=u1").unwrap();
        assert_eq!(
            q.key,
            IndexKey::UserStatus {
                user_id: "u1".into(),
                status: "open".into()
            }
        );
    }

    #[test]
    fn bad_parameters_are_400() {
        for bad in [
            "",
            "userId=",
            "userId=a&status=",
            "userId=a&userId=b",
            "userId=a&order=ASC",
            "userId=a&order=",
            "userId=a&limit=0",
            "userId=a&limit=101",
            "userId=a&limit=-1",
            "userId=a&limit=ten",
            "userId=a&limt=5",
            "userId=a&cursor=nonsense",
            "userId=%FF",
        ] {
            assert_eq!(
                list_query(bad).unwrap_err().kind,
                Kind::InvalidQuery,
                "{bad}"
            );
        }
    }

    #[test]
    fn cursor_must_belong_to_the_query() {
        let asc = list_query("userId=u1&order=asc").unwrap();
        let cursor = Cursor::after(&asc, "2026-02-08T10:00:00.000000Z", "item-1").encode();
        assert!(list_query(&format!("userId=u1&order=asc&cursor={cursor}")).is_ok());
        assert!(list_query(&format!("userId=u1&cursor={cursor}")).is_err());
        assert!(list_query(&format!("userId=u2&order=asc&cursor={cursor}")).is_err());
    }

    #[test]
    fn next_link_round_trips() {
        for q in [
            "userId=a%26b%3Dc&order=asc&limit=5",
            "userId=u&status=a%20b&limit=5",
        ] {
            next_link_round_trips_for(q);
        }
    }

    fn next_link_round_trips_for(q: &str) {
        let q = list_query(q).unwrap();
        let cursor = Cursor::after(&q, "2026-02-08T10:00:00.000000Z", "x").encode();
        assert!(next_link("/api", &q, &cursor).starts_with("</api/items?"));
        let link = next_link("", &q, &cursor);
        let url = link
            .strip_prefix("</items?")
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .unwrap();
        let again = list_query(url).unwrap();
        assert_eq!(again.key, q.key);
        assert_eq!(again.limit, 5);
        assert_eq!(again.cursor.as_deref(), Some(cursor.as_str()));
    }

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("a b/c?ü~._-"), "a%20b%2Fc%3F%C3%BC~._-");
    }
}
