//! The exported WIT types to and from the item model. All conversions live
//! here; the twins are field for field the same, so nothing is lost either
//! way.

use item_model as m;

use crate::bindings::exports::edge_items::store::types as t;

pub fn value(value: t::Value) -> m::Value {
    match value {
        t::Value::Null => m::Value::Null,
        t::Value::Boolean(b) => m::Value::Bool(b),
        t::Value::Number(n) => m::Value::Number(n),
        t::Value::Text(s) => m::Value::Text(s),
        t::Value::Json(j) => m::Value::Json(j),
    }
}

pub fn to_value(value: m::Value) -> t::Value {
    match value {
        m::Value::Null => t::Value::Null,
        m::Value::Bool(b) => t::Value::Boolean(b),
        m::Value::Number(n) => t::Value::Number(n),
        m::Value::Text(s) => t::Value::Text(s),
        m::Value::Json(j) => t::Value::Json(j),
    }
}

fn attributes(list: Vec<t::Attribute>) -> Vec<m::Attribute> {
    list.into_iter()
        .map(|a| m::Attribute::new(a.name, value(a.value)))
        .collect()
}

pub fn new_item(item: t::NewItem) -> m::NewItem {
    m::NewItem {
        id: item.id,
        user_id: item.user_id,
        status: item.status,
        expires_at: item.expires_at,
        attributes: attributes(item.attributes),
    }
}

pub fn patch(patch: t::ItemPatch) -> m::ItemPatch {
    m::ItemPatch {
        user_id: patch.user_id,
        status: patch.status,
        expires_at: patch.expires_at,
        set: attributes(patch.set),
        remove: patch.remove,
    }
}

pub fn batch_write(write: t::BatchWrite) -> m::BatchWrite {
    match write {
        t::BatchWrite::Put(put) => m::BatchWrite::Put(m::BatchPut {
            item: new_item(put.item),
            created_at: put.created_at,
        }),
        t::BatchWrite::Delete(id) => m::BatchWrite::Delete(id),
    }
}

pub fn query(query: t::Query) -> m::Query {
    m::Query {
        key: match query.key {
            t::IndexKey::UserId(v) => m::IndexKey::UserId(v),
            t::IndexKey::Status(v) => m::IndexKey::Status(v),
        },
        order: match query.order {
            t::Order::Asc => m::Order::Asc,
            t::Order::Desc => m::Order::Desc,
        },
        limit: query.limit,
        cursor: query.cursor,
    }
}

pub fn item(item: m::Item) -> t::Item {
    t::Item {
        id: item.id,
        created_at: item.created_at,
        updated_at: item.updated_at,
        version: item.version,
        user_id: item.user_id,
        status: item.status,
        expires_at: item.expires_at,
        attributes: item
            .attributes
            .into_iter()
            .map(|a| t::Attribute {
                name: a.name,
                value: to_value(a.value),
            })
            .collect(),
    }
}

pub fn page(page: m::Page) -> t::Page {
    t::Page {
        items: page.items.into_iter().map(item).collect(),
        next_cursor: page.next_cursor,
    }
}

pub fn batch_result(result: m::BatchResult) -> t::BatchResult {
    t::BatchResult {
        put: result.put.into_iter().map(item).collect(),
        deleted: result.deleted,
    }
}

pub fn put_outcome(outcome: m::PutOutcome) -> t::PutOutcome {
    match outcome {
        m::PutOutcome::Created => t::PutOutcome::Created,
        m::PutOutcome::Replaced => t::PutOutcome::Replaced,
    }
}

pub fn error(error: m::StoreError) -> t::StoreError {
    match error {
        m::StoreError::NotFound => t::StoreError::NotFound,
        m::StoreError::AlreadyExists => t::StoreError::AlreadyExists,
        m::StoreError::VersionMismatch(current) => t::StoreError::VersionMismatch(current),
        m::StoreError::InvalidInput(message) => t::StoreError::InvalidInput(message),
        m::StoreError::Throttled(ms) => t::StoreError::Throttled(ms),
        m::StoreError::Unavailable(message) => t::StoreError::Unavailable(message),
        m::StoreError::Unauthorized(message) => t::StoreError::Unauthorized(message),
        m::StoreError::Backend(message) => t::StoreError::Backend(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_both_directions() {
        for v in [
            m::Value::Null,
            m::Value::Bool(false),
            m::Value::Number("-0.25e3".into()),
            m::Value::Text("t".into()),
            m::Value::Json(r#"{"a":[1]}"#.into()),
        ] {
            assert_eq!(value(to_value(v.clone())), v);
        }
    }

    #[test]
    fn items_keep_every_field() {
        let stored = m::Item {
            id: "a".into(),
            created_at: "2026-02-08T10:00:00.000000Z".into(),
            updated_at: "2026-02-08T10:00:01.000000Z".into(),
            version: "2026-02-08T10:00:01.000001Z".into(),
            user_id: Some("u".into()),
            status: None,
            expires_at: Some(4_000_000_000),
            attributes: vec![m::Attribute::new("likes", m::Value::Number("3".into()))],
        };
        let wit = item(stored.clone());
        assert_eq!(wit.version, stored.version);
        assert_eq!(wit.expires_at, Some(4_000_000_000));
        assert_eq!(wit.attributes[0].name, "likes");
        assert!(matches!(&wit.attributes[0].value, t::Value::Number(n) if n == "3"));
    }

    #[test]
    fn requests_keep_every_field() {
        let new = new_item(t::NewItem {
            id: "a".into(),
            user_id: None,
            status: Some("active".into()),
            expires_at: None,
            attributes: vec![t::Attribute {
                name: "name".into(),
                value: t::Value::Text("x".into()),
            }],
        });
        assert_eq!(new.status.as_deref(), Some("active"));
        assert_eq!(
            new.attributes,
            [m::Attribute::new("name", m::Value::Text("x".into()))]
        );
        let p = patch(t::ItemPatch {
            user_id: Some(None),
            status: None,
            expires_at: Some(Some(5)),
            set: Vec::new(),
            remove: vec!["old".into()],
        });
        assert_eq!(p.user_id, Some(None));
        assert_eq!(p.expires_at, Some(Some(5)));
        assert_eq!(p.remove, ["old"]);
        let q = query(t::Query {
            key: t::IndexKey::Status("active".into()),
            order: t::Order::Desc,
            limit: 7,
            cursor: Some("c".into()),
        });
        assert_eq!(q.key, m::IndexKey::Status("active".into()));
        assert_eq!(q.order, m::Order::Desc);
        assert_eq!((q.limit, q.cursor.as_deref()), (7, Some("c")));
        assert!(matches!(
            batch_write(t::BatchWrite::Delete("d".into())),
            m::BatchWrite::Delete(id) if id == "d"
        ));
    }

    #[test]
    fn every_error_keeps_its_case() {
        assert!(matches!(
            error(m::StoreError::VersionMismatch(Some("v".into()))),
            t::StoreError::VersionMismatch(Some(v)) if v == "v"
        ));
        assert!(matches!(
            error(m::StoreError::Throttled(100)),
            t::StoreError::Throttled(100)
        ));
        assert!(matches!(
            error(m::StoreError::Unauthorized("u".into())),
            t::StoreError::Unauthorized(m) if m == "u"
        ));
    }
}
