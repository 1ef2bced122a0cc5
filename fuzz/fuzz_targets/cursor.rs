//! Cursors: `Cursor::decode_for` on arbitrary text, against a few fixed
//! queries and against the query the text itself names (so that real
//! cursors in the corpus decode, and their mutations get far). A decoded
//! cursor belongs to its query, holds a real position, and re-encodes to
//! text that decodes equal. The same bytes also draw a position: the
//! cursor made for it decodes to exactly it, and one with a position that
//! is not in the canonical form is refused.

#![no_main]

use arbitrary::Unstructured;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_items_fuzz::inputs;
use item_model::{Cursor, CursorError, IndexKey, Order, Query, Timestamp, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;

fn query(key: IndexKey, order: Order) -> Query {
    Query {
        key,
        order,
        limit: 20,
        cursor: None,
    }
}

/// The query a cursor's text says it belongs to, if it says so.
fn own_query(text: &str) -> Option<Query> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let json: Json = serde_json::from_slice(&bytes).ok()?;
    let value = json.get("kv")?.as_str()?.to_string();
    let key = match json.get("k")?.as_str()? {
        "s" => IndexKey::Status(value),
        "us" => IndexKey::UserStatus {
            user_id: value,
            status: json.get("ks")?.as_str()?.to_string(),
        },
        _ => IndexKey::UserId(value),
    };
    let order = match json.get("o")?.as_str()? {
        "a" => Order::Asc,
        _ => Order::Desc,
    };
    Some(query(key, order))
}

fn check_decoded(text: &str, query: &Query) {
    let Ok(cursor) = Cursor::decode_for(text, query) else {
        return;
    };
    assert_eq!(cursor.key, query.key);
    assert_eq!(cursor.order, query.order);
    assert!(
        validate::id(&cursor.id).is_ok(),
        "a cursor with an invalid id"
    );
    let canonical = Timestamp::parse(&cursor.created_at).map(|t| t.to_string());
    assert_eq!(canonical.as_deref(), Ok(cursor.created_at.as_str()));
    let again = cursor.encode();
    assert_eq!(Cursor::decode_for(&again, query), Ok(cursor), "{again}");
}

fn check_made(u: &mut Unstructured) {
    let key = inputs::index_key(u);
    let order = if u.arbitrary().unwrap_or(false) {
        Order::Asc
    } else {
        Order::Desc
    };
    let query = query(key, order);
    let id = inputs::id(u);
    let at = inputs::timestamp(u).to_string();
    let cursor = Cursor::after(&query, &at, &id);
    assert_eq!(Cursor::decode_for(&cursor.encode(), &query), Ok(cursor));
    // A position written any other way is refused.
    let other: String = u.arbitrary().unwrap_or_default();
    let canonical = Timestamp::parse(&other).map(|t| t.to_string());
    let forged = Cursor::after(&query, &other, &id).encode();
    let decoded = Cursor::decode_for(&forged, &query);
    if canonical.as_deref() == Ok(other.as_str()) {
        assert!(decoded.is_ok(), "{other:?}");
    } else {
        assert_eq!(decoded, Err(CursorError::Malformed), "{other:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.trim_end_matches('\n');
    let mut queries = vec![
        query(IndexKey::UserId("u1".into()), Order::Asc),
        query(IndexKey::UserId("u1".into()), Order::Desc),
        query(IndexKey::Status("active".into()), Order::Desc),
        query(
            IndexKey::UserStatus {
                user_id: "u1".into(),
                status: "active".into(),
            },
            Order::Asc,
        ),
    ];
    queries.extend(own_query(text));
    for q in &queries {
        check_decoded(text, q);
    }
    check_made(&mut Unstructured::new(data));
});
