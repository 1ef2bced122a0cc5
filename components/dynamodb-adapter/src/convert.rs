//! The WIT types of the exported store and their `item_model` twins. All
//! conversions live here, so the rest of the crate speaks `item_model` only
//! (which is what `dynamodb-protocol` takes and returns).

use item_model as model;

use crate::exports::edge_items::store::types as wit;

pub fn value(value: wit::Value) -> model::Value {
    match value {
        wit::Value::Null => model::Value::Null,
        wit::Value::Boolean(b) => model::Value::Bool(b),
        wit::Value::Number(n) => model::Value::Number(n),
        wit::Value::Text(s) => model::Value::Text(s),
        wit::Value::Json(j) => model::Value::Json(j),
    }
}

pub fn to_value(value: model::Value) -> wit::Value {
    match value {
        model::Value::Null => wit::Value::Null,
        model::Value::Bool(b) => wit::Value::Boolean(b),
        model::Value::Number(n) => wit::Value::Number(n),
        model::Value::Text(s) => wit::Value::Text(s),
        model::Value::Json(j) => wit::Value::Json(j),
    }
}

fn attributes(list: Vec<wit::Attribute>) -> Vec<model::Attribute> {
    list.into_iter()
        .map(|a| model::Attribute::new(a.name, value(a.value)))
        .collect()
}

fn to_attributes(list: Vec<model::Attribute>) -> Vec<wit::Attribute> {
    list.into_iter()
        .map(|a| wit::Attribute {
            name: a.name,
            value: to_value(a.value),
        })
        .collect()
}

pub fn new_item(item: wit::NewItem) -> model::NewItem {
    model::NewItem {
        id: item.id,
        user_id: item.user_id,
        status: item.status,
        expires_at: item.expires_at,
        attributes: attributes(item.attributes),
    }
}

pub fn patch(patch: wit::ItemPatch) -> model::ItemPatch {
    model::ItemPatch {
        user_id: patch.user_id,
        status: patch.status,
        expires_at: patch.expires_at,
        set: attributes(patch.set),
        remove: patch.remove,
    }
}

pub fn batch_write(write: wit::BatchWrite) -> model::BatchWrite {
    match write {
        wit::BatchWrite::Put(put) => model::BatchWrite::Put(model::BatchPut {
            item: new_item(put.item),
            created_at: put.created_at,
        }),
        wit::BatchWrite::Delete(id) => model::BatchWrite::Delete(id),
    }
}

pub fn query(query: wit::Query) -> model::Query {
    model::Query {
        key: match query.key {
            wit::IndexKey::UserId(v) => model::IndexKey::UserId(v),
            wit::IndexKey::Status(v) => model::IndexKey::Status(v),
        },
        order: match query.order {
            wit::Order::Asc => model::Order::Asc,
            wit::Order::Desc => model::Order::Desc,
        },
        limit: query.limit,
        cursor: query.cursor,
    }
}

pub fn to_item(item: model::Item) -> wit::Item {
    wit::Item {
        id: item.id,
        created_at: item.created_at,
        updated_at: item.updated_at,
        version: item.version,
        user_id: item.user_id,
        status: item.status,
        expires_at: item.expires_at,
        attributes: to_attributes(item.attributes),
    }
}

pub fn to_put_outcome(outcome: model::PutOutcome) -> wit::PutOutcome {
    match outcome {
        model::PutOutcome::Created => wit::PutOutcome::Created,
        model::PutOutcome::Replaced => wit::PutOutcome::Replaced,
    }
}

pub fn to_batch_result(result: model::BatchResult) -> wit::BatchResult {
    wit::BatchResult {
        put: result.put.into_iter().map(to_item).collect(),
        deleted: result.deleted,
    }
}

pub fn to_page(page: model::Page) -> wit::Page {
    wit::Page {
        items: page.items.into_iter().map(to_item).collect(),
        next_cursor: page.next_cursor,
    }
}

pub fn to_error(error: model::StoreError) -> wit::StoreError {
    use model::StoreError as E;
    match error {
        E::NotFound => wit::StoreError::NotFound,
        E::AlreadyExists => wit::StoreError::AlreadyExists,
        E::VersionMismatch(current) => wit::StoreError::VersionMismatch(current),
        E::InvalidInput(m) => wit::StoreError::InvalidInput(m),
        E::Throttled(ms) => wit::StoreError::Throttled(ms),
        E::Unavailable(m) => wit::StoreError::Unavailable(m),
        E::Unauthorized(m) => wit::StoreError::Unauthorized(m),
        E::Backend(m) => wit::StoreError::Backend(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_both_directions() {
        for v in [
            model::Value::Null,
            model::Value::Bool(false),
            model::Value::Number("12345678901234567890123456789012345678".into()),
            model::Value::Text("t".into()),
            model::Value::Json(r#"{"a":[1]}"#.into()),
        ] {
            assert_eq!(value(to_value(v.clone())), v);
        }
    }

    #[test]
    fn patches_keep_the_three_states() {
        let converted = patch(wit::ItemPatch {
            user_id: None,
            status: Some(None),
            expires_at: Some(Some(7)),
            set: vec![wit::Attribute {
                name: "n".into(),
                value: wit::Value::Number("1".into()),
            }],
            remove: vec!["old".into()],
        });
        assert_eq!(
            converted,
            model::ItemPatch {
                user_id: None,
                status: Some(None),
                expires_at: Some(Some(7)),
                set: vec![model::Attribute::new("n", model::Value::Number("1".into()))],
                remove: vec!["old".into()],
            }
        );
    }

    #[test]
    fn queries_and_batches_convert() {
        let q = query(wit::Query {
            key: wit::IndexKey::Status("active".into()),
            order: wit::Order::Asc,
            limit: 10,
            cursor: Some("c".into()),
        });
        assert_eq!(q.key, model::IndexKey::Status("active".into()));
        assert_eq!(q.order, model::Order::Asc);
        assert_eq!((q.limit, q.cursor.as_deref()), (10, Some("c")));
        let put = batch_write(wit::BatchWrite::Put(wit::BatchPut {
            item: wit::NewItem {
                id: "a".into(),
                user_id: Some("u".into()),
                status: None,
                expires_at: None,
                attributes: Vec::new(),
            },
            created_at: Some("2026-01-01T00:00:00Z".into()),
        }));
        let model::BatchWrite::Put(put) = put else {
            panic!("a put stays a put");
        };
        assert_eq!(put.item.user_id.as_deref(), Some("u"));
        assert_eq!(put.created_at.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn every_error_keeps_its_case() {
        use model::StoreError as E;
        assert!(matches!(
            to_error(E::VersionMismatch(Some("3".into()))),
            wit::StoreError::VersionMismatch(Some(v)) if v == "3"
        ));
        assert!(matches!(
            to_error(E::Throttled(5)),
            wit::StoreError::Throttled(5)
        ));
        assert!(matches!(
            to_error(E::Unauthorized("u".into())),
            wit::StoreError::Unauthorized(m) if m == "u"
        ));
    }
}
