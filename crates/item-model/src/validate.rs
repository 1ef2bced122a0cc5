//! Input rules every layer enforces the same way. Each check returns a
//! message a person can act on.

use crate::{
    Attribute, BatchWrite, IndexKey, ItemPatch, MAX_BATCH_WRITES, MAX_ID_LEN, MAX_NAME_LEN,
    MAX_QUERY_LIMIT, NewItem, Query, RESERVED_NAMES, StoreError, Timestamp, Value,
};

type Result<T = ()> = std::result::Result<T, StoreError>;

fn invalid(message: String) -> StoreError {
    StoreError::InvalidInput(message)
}

/// An item id: 1 to 200 bytes, no control characters, no `/` (it is a path
/// segment in the HTTP API and in Firestore document names).
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
    if id.chars().any(char::is_control) {
        return Err(invalid(
            "the item id must not contain control characters".into(),
        ));
    }
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
    if text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
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

fn attributes<'a>(list: impl IntoIterator<Item = &'a Attribute>) -> Result {
    let mut seen = std::collections::HashSet::new();
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
    attributes(&patch.set)?;
    for name in &patch.remove {
        attribute_name(name)?;
        if patch.set.iter().any(|a| &a.name == name) {
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
    let mut ids = std::collections::HashSet::new();
    for write in writes {
        let write_id = match write {
            BatchWrite::Put(put) => {
                new_item(&put.item)?;
                if let Some(created_at) = &put.created_at {
                    Timestamp::parse(created_at).map_err(|e| invalid(e.to_string()))?;
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

/// A query (its cursor is checked by [`crate::Cursor::decode_for`]).
pub fn query(query: &Query) -> Result {
    match &query.key {
        IndexKey::UserId(v) => index_value("userId", v)?,
        IndexKey::Status(v) => index_value("status", v)?,
    }
    if query.limit == 0 || query.limit > MAX_QUERY_LIMIT {
        return Err(invalid(format!(
            "limit must be between 1 and {MAX_QUERY_LIMIT}, not {}",
            query.limit
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
