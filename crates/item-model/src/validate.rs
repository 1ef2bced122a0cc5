//! Input rules every layer enforces the same way. Each check returns a
//! message a person can act on.

use std::collections::HashSet;

use unicode_normalization::{IsNormalized, is_nfc_quick};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::{
    Attribute, BatchWrite, ItemPatch, MAX_ATTRIBUTES, MAX_BATCH_WRITES, MAX_EXPIRES_AT, MAX_ID_LEN,
    MAX_NAME_LEN, MAX_QUERY_LIMIT, NewItem, Query, RESERVED_NAMES, StoreError, Timestamp, Value,
};

type Result<T = ()> = std::result::Result<T, StoreError>;

fn invalid(message: String) -> StoreError {
    StoreError::InvalidInput(message)
}

/// The rules every identifier shares (ids, attribute names, user ids,
/// statuses): one spelling per name, and nothing invisible. A name in
/// another normal form than NFC would be a second item or attribute that
/// looks the same (NFC `é` and NFD `e` + `\u{301}`), and format characters
/// (zero-width characters, bidirectional overrides, ...) make names that
/// display as something else; both are refused, never rewritten, so that
/// what a client sent is what it gets back.
fn identifier(what: &str, text: &str) -> Result {
    if text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.general_category() == GeneralCategory::Format)
    {
        return Err(invalid(format!(
            "{what} must not contain Unicode format characters (zero-width characters, bidirectional controls and the like)"
        )));
    }
    let normalized = match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => unicode_normalization::is_nfc(text),
    };
    if !normalized {
        return Err(invalid(format!(
            "{what} is not in Unicode normalization form C (NFC); send its NFC form"
        )));
    }
    Ok(())
}

/// An item id: 1 to 200 bytes, no control characters, no `/` (it is a path
/// segment in the HTTP API and in Firestore document names), NFC, no
/// format characters.
pub fn id(id: &str) -> Result {
    if id.is_empty() {
        return Err(invalid("the item id must not be empty".into()));
    }
    if id.len() > MAX_ID_LEN {
        return Err(invalid(format!(
            "the item id is {} bytes long; the limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    identifier("the item id", id)?;
    if id.contains('/') {
        return Err(invalid("the item id must not contain '/'".into()));
    }
    if id == "." || id == ".." || (id.starts_with("__") && id.ends_with("__")) {
        return Err(invalid(format!("`{id}` is not allowed as an item id")));
    }
    Ok(())
}

fn short_text(what: &str, text: &str) -> Result {
    if text.is_empty() {
        return Err(invalid(format!("{what} must not be empty")));
    }
    if text.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "{what} is {} bytes long; the limit is {MAX_NAME_LEN}",
            text.len()
        )));
    }
    identifier(what, text)
}

/// A user id or status value (a secondary-index key).
pub fn index_value(field: &str, value: &str) -> Result {
    short_text(field, value)
}

/// A free attribute's name.
pub fn attribute_name(name: &str) -> Result {
    short_text("an attribute name", name)?;
    if RESERVED_NAMES.contains(&name) {
        return Err(invalid(format!(
            "`{name}` is a reserved name and cannot be used as a free attribute"
        )));
    }
    if name.starts_with("__") && name.ends_with("__") {
        return Err(invalid(format!(
            "attribute names of the form __name__ are reserved (`{name}`)"
        )));
    }
    Ok(())
}

/// A JSON number literal, as the `number` case carries it.
pub fn number_literal(text: &str) -> Result {
    let valid = serde_json::from_str::<serde_json::Value>(text)
        .map(|v| v.is_number())
        .unwrap_or(false);
    if valid {
        Ok(())
    } else {
        Err(invalid(format!("`{text}` is not a JSON number")))
    }
}

fn value(name: &str, value: &Value) -> Result {
    match value {
        Value::Number(n) => number_literal(n),
        Value::Json(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(_) | serde_json::Value::Object(_)) => Ok(()),
            _ => Err(invalid(format!(
                "attribute `{name}`: the json case must hold a JSON array or object"
            ))),
        },
        Value::Null | Value::Bool(_) | Value::Text(_) => Ok(()),
    }
}

/// An `expiresAt` within what RFC 3339 can write.
pub fn expires_at(seconds: i64) -> Result {
    if (0..=MAX_EXPIRES_AT).contains(&seconds) {
        Ok(())
    } else {
        Err(invalid(format!(
            "expiresAt must be between 0 (1970-01-01T00:00:00Z) and {MAX_EXPIRES_AT} (9999-12-31T23:59:59Z) seconds since the epoch, not {seconds}"
        )))
    }
}

/// At most `limit` attributes in one write.
pub fn attribute_count(count: usize, limit: usize) -> Result {
    if count > limit {
        return Err(invalid(format!(
            "a write carries {count} attributes; the limit is {limit}"
        )));
    }
    Ok(())
}

fn attributes(list: &[Attribute]) -> Result {
    attribute_count(list.len(), MAX_ATTRIBUTES)?;
    let mut seen = HashSet::with_capacity(list.len());
    for attribute in list {
        attribute_name(&attribute.name)?;
        value(&attribute.name, &attribute.value)?;
        if !seen.insert(attribute.name.as_str()) {
            return Err(invalid(format!(
                "attribute `{}` appears more than once",
                attribute.name
            )));
        }
    }
    Ok(())
}

/// A whole new item.
pub fn new_item(item: &NewItem) -> Result {
    id(&item.id)?;
    if let Some(user_id) = &item.user_id {
        index_value("userId", user_id)?;
    }
    if let Some(status) = &item.status {
        index_value("status", status)?;
    }
    if let Some(seconds) = item.expires_at {
        expires_at(seconds)?;
    }
    attributes(&item.attributes)
}

/// A partial update.
pub fn patch(patch: &ItemPatch) -> Result {
    if let Some(Some(user_id)) = &patch.user_id {
        index_value("userId", user_id)?;
    }
    if let Some(Some(status)) = &patch.status {
        index_value("status", status)?;
    }
    if let Some(Some(seconds)) = patch.expires_at {
        expires_at(seconds)?;
    }
    attribute_count(patch.set.len() + patch.remove.len(), MAX_ATTRIBUTES)?;
    attributes(&patch.set)?;
    let set: HashSet<&str> = patch.set.iter().map(|a| a.name.as_str()).collect();
    for name in &patch.remove {
        attribute_name(name)?;
        if set.contains(name.as_str()) {
            return Err(invalid(format!(
                "attribute `{name}` is both set and removed"
            )));
        }
    }
    Ok(())
}

/// The name and delta of an increment.
pub fn increment(attribute: &str) -> Result {
    attribute_name(attribute)
}

/// A batch of writes.
pub fn batch(writes: &[BatchWrite]) -> Result {
    if writes.is_empty() {
        return Err(invalid("a batch needs at least one write".into()));
    }
    if writes.len() > MAX_BATCH_WRITES {
        return Err(invalid(format!(
            "a batch has {} writes; the limit is {MAX_BATCH_WRITES}",
            writes.len()
        )));
    }
    let mut ids = HashSet::new();
    for write in writes {
        let write_id = match write {
            BatchWrite::Put(put) => {
                new_item(&put.item)?;
                for time in [&put.created_at, &put.updated_at].into_iter().flatten() {
                    Timestamp::parse(time).map_err(|e| invalid(e.to_string()))?;
                }
                &put.item.id
            }
            BatchWrite::Delete(delete_id) => {
                id(delete_id)?;
                delete_id
            }
        };
        if !ids.insert(write_id.as_str()) {
            return Err(invalid(format!(
                "item `{write_id}` appears more than once in the batch"
            )));
        }
    }
    Ok(())
}

/// A write for `apply-once`: what its own function would check.
pub fn write(write: &crate::Write) -> Result {
    use crate::Write;
    match write {
        Write::Create(item) | Write::Put { item, .. } => new_item(item),
        Write::Update {
            id: item_id,
            patch: p,
            ..
        } => {
            id(item_id)?;
            patch(p)
        }
        Write::Delete { id: item_id, .. } => id(item_id),
        Write::Increment {
            id: item_id,
            attribute,
            ..
        } => {
            id(item_id)?;
            increment(attribute)
        }
        Write::Batch(writes) => batch(writes),
    }
}

/// How many attributes a write carries: what its validation costs.
pub fn write_weight(write: &crate::Write) -> usize {
    use crate::Write;
    match write {
        Write::Create(item) | Write::Put { item, .. } => item.attributes.len(),
        Write::Update { patch, .. } => patch.set.len() + patch.remove.len(),
        Write::Delete { .. } | Write::Increment { .. } => 1,
        Write::Batch(writes) => writes
            .iter()
            .map(|w| match w {
                BatchWrite::Put(put) => put.item.attributes.len() + 1,
                BatchWrite::Delete(_) => 1,
            })
            .sum(),
    }
}

/// The key and fingerprint of `apply-once`: `[0-9A-Za-z_-]{1,128}` each
/// (safe in every backend's key and document name), and an expiry time.
pub fn once(once: &crate::Once) -> Result {
    for (field, token) in [("key", &once.key), ("fingerprint", &once.fingerprint)] {
        let well_formed = !token.is_empty()
            && token.len() <= crate::once::MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(invalid(format!(
                "the idempotency {field} must be 1 to {} characters from [0-9A-Za-z_-]",
                crate::once::MAX_TOKEN_LEN
            )));
        }
    }
    expires_at(once.expires_at)
}

/// A query (its cursor is checked by [`crate::Cursor::decode_for`]).
pub fn query(query: &Query) -> Result {
    for (field, value) in query.key.fields() {
        index_value(field, value)?;
    }
    if query.limit == 0 || query.limit > MAX_QUERY_LIMIT {
        return Err(invalid(format!(
            "limit must be between 1 and {MAX_QUERY_LIMIT}, not {}",
            query.limit
        )));
    }
    Ok(())
}

/// A scan request (its cursor is checked by [`crate::ScanCursor::decode_for`]).
pub fn scan(request: &crate::ScanRequest) -> Result {
    let segments = request.segments;
    if segments == 0 || segments > crate::MAX_SCAN_SEGMENTS {
        return Err(invalid(format!(
            "segments must be between 1 and {}, not {segments}",
            crate::MAX_SCAN_SEGMENTS
        )));
    }
    if request.segment >= segments {
        return Err(invalid(format!(
            "segment must be below segments ({segments}), not {}",
            request.segment
        )));
    }
    if request.limit == 0 || request.limit > MAX_QUERY_LIMIT {
        return Err(invalid(format!(
            "limit must be between 1 and {MAX_QUERY_LIMIT}, not {}",
            request.limit
        )));
    }
    if let Some(since) = &request.updated_since
        && !Timestamp::is_canonical(since)
    {
        return Err(invalid(format!(
            "updated-since must be an RFC 3339 UTC time with microseconds \
             (2026-02-08T10:00:00.000000Z), not `{since}`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(id("item-123").is_ok());
        assert!(id("ünïcödé:ok").is_ok());
        for bad in ["", "a/b", "a\nb", "\u{7f}", ".", "..", "__x__"] {
            assert!(id(bad).is_err(), "{bad:?}");
        }
        assert!(id(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(id(&"x".repeat(MAX_ID_LEN + 1)).is_err());
    }

    #[test]
    fn one_spelling_per_name_and_nothing_invisible() {
        // NFC é is accepted; NFD e + combining acute is the same text in
        // another form, and is refused rather than becoming a second item.
        assert!(id("caf\u{e9}").is_ok());
        let nfd = id("cafe\u{301}").unwrap_err();
        assert!(nfd.to_string().contains("NFC"), "{nfd}");
        for invisible in [
            "a\u{200b}b",    // zero-width space
            "admin\u{202e}", // right-to-left override
            "\u{2066}x",     // left-to-right isolate
            "\u{feff}bom",   // byte order mark
        ] {
            let error = id(invisible).unwrap_err();
            assert!(
                error.to_string().contains("format characters"),
                "{invisible:?}"
            );
            assert!(attribute_name(invisible).is_err(), "{invisible:?}");
            assert!(index_value("userId", invisible).is_err(), "{invisible:?}");
        }
        assert!(attribute_name("cafe\u{301}").is_err());
        assert!(index_value("status", "ünïcödé").is_ok());
    }

    #[test]
    fn expiry_stays_within_rfc_3339() {
        assert!(expires_at(0).is_ok());
        assert!(expires_at(MAX_EXPIRES_AT).is_ok());
        for bad in [-1, MAX_EXPIRES_AT + 1, i64::MAX] {
            assert!(expires_at(bad).is_err(), "{bad}");
        }
        let item = NewItem {
            id: "a".into(),
            expires_at: Some(i64::MAX),
            ..Default::default()
        };
        assert!(new_item(&item).is_err());
        let patch = ItemPatch {
            expires_at: Some(Some(-5)),
            ..Default::default()
        };
        assert!(self::patch(&patch).is_err());
    }

    #[test]
    fn attribute_counts_are_capped() {
        let many = |n: usize| -> Vec<Attribute> {
            (0..n)
                .map(|i| Attribute::new(format!("a{i}"), Value::Null))
                .collect()
        };
        let item = |n| NewItem {
            id: "a".into(),
            attributes: many(n),
            ..Default::default()
        };
        assert!(new_item(&item(MAX_ATTRIBUTES)).is_ok());
        let error = new_item(&item(MAX_ATTRIBUTES + 1)).unwrap_err();
        assert!(error.to_string().contains("limit is 10000"), "{error}");
        let patch = ItemPatch {
            set: many(MAX_ATTRIBUTES / 2),
            remove: (0..=MAX_ATTRIBUTES / 2).map(|i| format!("r{i}")).collect(),
            ..Default::default()
        };
        assert!(self::patch(&patch).is_err());
        assert!(attribute_count(5, 4).is_err() && attribute_count(4, 4).is_ok());
    }

    #[test]
    fn attribute_names() {
        assert!(attribute_name("name").is_ok());
        assert!(attribute_name("with space.and.dots").is_ok());
        for bad in [
            "",
            "id",
            "itemId",
            "createdAt",
            "version",
            "__name__",
            "a\tb",
        ] {
            assert!(attribute_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn duplicate_attribute_is_rejected() {
        let item = NewItem {
            id: "a".into(),
            attributes: vec![
                Attribute::new("n", Value::Null),
                Attribute::new("n", Value::Null),
            ],
            ..Default::default()
        };
        assert!(new_item(&item).is_err());
    }

    #[test]
    fn values_are_checked() {
        let with = |v: Value| NewItem {
            id: "a".into(),
            attributes: vec![Attribute::new("n", v)],
            ..Default::default()
        };
        assert!(new_item(&with(Value::Number("1e400".into()))).is_ok());
        assert!(
            new_item(&with(Value::Number(
                "12345678901234567890123456789012345678".into()
            )))
            .is_ok()
        );
        assert!(new_item(&with(Value::Number("0x10".into()))).is_err());
        assert!(new_item(&with(Value::Json("[1,{\"a\":2}]".into()))).is_ok());
        assert!(new_item(&with(Value::Json("3".into()))).is_err());
        assert!(new_item(&with(Value::Json("{".into()))).is_err());
    }

    #[test]
    fn batch_rules() {
        let put = |id: &str| {
            BatchWrite::Put(crate::BatchPut {
                item: NewItem {
                    id: id.into(),
                    ..Default::default()
                },
                created_at: None,
                updated_at: None,
            })
        };
        assert!(batch(&[]).is_err());
        assert!(batch(&[put("a"), BatchWrite::Delete("b".into())]).is_ok());
        assert!(batch(&[put("a"), BatchWrite::Delete("a".into())]).is_err());
        let many: Vec<_> = (0..=MAX_BATCH_WRITES)
            .map(|i| put(&i.to_string()))
            .collect();
        assert!(batch(&many).is_err());
    }
}
