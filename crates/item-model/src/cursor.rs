//! Query cursors: the position after the last item of a page.
//!
//! A position in an index is (created-at, id), and every backend can resume
//! from it: SQLite with a keyset `WHERE`, DynamoDB with an
//! `ExclusiveStartKey` rebuilt from it, Firestore with `startAfter`. So one
//! cursor format serves all backends, and a cursor from one stays valid
//! after a data migration to another. Resuming from a position (not from an
//! offset) is what keeps paging from skipping or repeating items while
//! others write.
//!
//! The text is base64url of a small JSON document with a checksum, so
//! that a damaged or hand-edited cursor is rejected with a clear message
//! rather than silently starting somewhere else. It is not a secret: it
//! only holds what the page already showed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{IndexKey, Order, Query, Timestamp};

/// A decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The query's index and value: a cursor resumes only the same key.
    pub key: IndexKey,
    /// The query's order: a cursor resumes only the same order.
    pub order: Order,
    /// `created-at` of the last item returned.
    pub created_at: String,
    /// `id` of the last item returned.
    pub id: String,
}

/// Why a cursor was rejected; becomes [`crate::StoreError::InvalidInput`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not base64url JSON of the known format, or its checksum fails.
    #[error("the cursor is malformed; pass back the `next` value of a previous page unchanged")]
    Malformed,
    /// A well-formed cursor of another key or order.
    #[error("the cursor belongs to a different query (another userId/status or order)")]
    OtherQuery,
}

impl From<CursorError> for crate::StoreError {
    fn from(e: CursorError) -> Self {
        crate::StoreError::InvalidInput(e.to_string())
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Format version.
    v: u8,
    /// `u` (user id), `s` (status) or `us` (user id and status).
    k: String,
    /// The key value (the user id for `us`).
    kv: String,
    /// The status, for `us` only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    ks: String,
    /// `a` or `d`.
    o: String,
    c: String,
    i: String,
    /// Checksum of the fields above.
    h: u32,
}

/// FNV-1a: detects damage, not forgery (nothing here is secret).
pub(crate) fn checksum(parts: &[&str]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// The fields a checksum covers. `ks` only when present, so cursors
/// written before the user-and-status index existed stay valid.
fn wire_parts<'a>(
    k: &'a str,
    kv: &'a str,
    ks: &'a str,
    o: &'a str,
    c: &'a str,
    i: &'a str,
) -> Vec<&'a str> {
    if ks.is_empty() {
        vec![k, kv, o, c, i]
    } else {
        vec![k, kv, ks, o, c, i]
    }
}

impl Cursor {
    /// The cursor that resumes `query` after an item at (created-at, id).
    pub fn after(query: &Query, created_at: &str, id: &str) -> Self {
        Self {
            key: query.key.clone(),
            order: query.order,
            created_at: created_at.into(),
            id: id.into(),
        }
    }

    /// The opaque text handed out as `next-cursor` (base64url JSON with a
    /// checksum).
    pub fn encode(&self) -> String {
        let (k, kv, ks) = match &self.key {
            IndexKey::UserId(v) => ("u", v.as_str(), ""),
            IndexKey::Status(v) => ("s", v.as_str(), ""),
            IndexKey::UserStatus { user_id, status } => ("us", user_id.as_str(), status.as_str()),
        };
        let o = match self.order {
            Order::Asc => "a",
            Order::Desc => "d",
        };
        let wire = Wire {
            v: 1,
            k: k.into(),
            kv: kv.into(),
            ks: ks.into(),
            o: o.into(),
            c: self.created_at.clone(),
            i: self.id.clone(),
            h: checksum(&wire_parts(k, kv, ks, o, &self.created_at, &self.id)),
        };
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Decodes a cursor and checks that it belongs to `query`.
    pub fn decode_for(text: &str, query: &Query) -> Result<Self, CursorError> {
        let cursor = Self::decode(text)?;
        if cursor.key != query.key || cursor.order != query.order {
            return Err(CursorError::OtherQuery);
        }
        Ok(cursor)
    }

    fn decode(text: &str) -> Result<Self, CursorError> {
        if text.len() > 2048 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Malformed)?;
        let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
        let parts = wire_parts(&wire.k, &wire.kv, &wire.ks, &wire.o, &wire.c, &wire.i);
        if wire.v != 1 || wire.h != checksum(&parts) {
            return Err(CursorError::Malformed);
        }
        let key = match (wire.k.as_str(), wire.ks.is_empty()) {
            ("u", true) => IndexKey::UserId(wire.kv),
            ("s", true) => IndexKey::Status(wire.kv),
            ("us", false) => IndexKey::UserStatus {
                user_id: wire.kv,
                status: wire.ks,
            },
            _ => return Err(CursorError::Malformed),
        };
        let order = match wire.o.as_str() {
            "a" => Order::Asc,
            "d" => Order::Desc,
            _ => return Err(CursorError::Malformed),
        };
        // The position must be a real one, so backends can use it as a key.
        if !Timestamp::is_canonical(&wire.c) || crate::validate::id(&wire.i).is_err() {
            return Err(CursorError::Malformed);
        }
        Ok(Self {
            key,
            order,
            created_at: wire.c,
            id: wire.i,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(order: Order) -> Query {
        Query {
            key: IndexKey::Status("active".into()),
            order,
            limit: 10,
            cursor: None,
        }
    }

    #[test]
    fn round_trips_for_its_own_query() {
        let q = query(Order::Desc);
        let c = Cursor::after(&q, "2026-02-08T10:00:00.000000Z", "item-1");
        assert_eq!(Cursor::decode_for(&c.encode(), &q), Ok(c));
    }

    #[test]
    fn rejects_other_queries_and_damage() {
        let q = query(Order::Desc);
        let text = Cursor::after(&q, "2026-02-08T10:00:00.000000Z", "item-1").encode();
        assert_eq!(
            Cursor::decode_for(&text, &query(Order::Asc)),
            Err(CursorError::OtherQuery)
        );
        let mut other = q.clone();
        other.key = IndexKey::UserId("active".into());
        assert_eq!(
            Cursor::decode_for(&text, &other),
            Err(CursorError::OtherQuery)
        );
        for bad in ["", "!!!", "e30", &text[1..], &format!("{text}A")] {
            assert_eq!(
                Cursor::decode_for(bad, &q),
                Err(CursorError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn user_and_status_cursors_name_both() {
        let mut q = query(Order::Desc);
        q.key = IndexKey::UserStatus {
            user_id: "u1".into(),
            status: "active".into(),
        };
        let text = Cursor::after(&q, "2026-02-08T10:00:00.000000Z", "item-1").encode();
        assert_eq!(Cursor::decode_for(&text, &q).unwrap().key, q.key);
        // Neither the user's list nor another status takes it.
        for other in [
            IndexKey::UserId("u1".into()),
            IndexKey::Status("active".into()),
            IndexKey::UserStatus {
                user_id: "u1".into(),
                status: "done".into(),
            },
        ] {
            let other = Query {
                key: other,
                ..q.clone()
            };
            assert_eq!(
                Cursor::decode_for(&text, &other),
                Err(CursorError::OtherQuery)
            );
        }
    }

    #[test]
    fn rejects_a_forged_position() {
        let q = query(Order::Asc);
        let text = Cursor::after(&q, "not a time", "item-1").encode();
        assert_eq!(Cursor::decode_for(&text, &q), Err(CursorError::Malformed));
    }
}
