//! The imported `edge-items:store/store` interface, seen through
//! item_model types. All conversions between the wit-bindgen types and the
//! model live here, so the rest of the crate never touches the bindings.

use item_model as model;
use item_model::StoreError;

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "store-client",
    });
}

use bindings::edge_items::store::store as wit;
use bindings::edge_items::store::types as t;

type Result<T> = std::result::Result<T, StoreError>;

pub fn get(id: &str) -> Result<model::Item> {
    wit::get(id).map(item).map_err(error)
}

pub fn create(new: model::NewItem) -> Result<model::Item> {
    wit::create(&new_item(new)).map(item).map_err(error)
}

pub fn put(
    new: model::NewItem,
    expected_version: Option<&str>,
) -> Result<(model::Item, model::PutOutcome)> {
    wit::put(&new_item(new), expected_version)
        .map(|(stored, outcome)| (item(stored), put_outcome(outcome)))
        .map_err(error)
}

pub fn update(
    id: &str,
    patch: model::ItemPatch,
    expected_version: Option<&str>,
) -> Result<model::Item> {
    wit::update(id, &item_patch(patch), expected_version)
        .map(item)
        .map_err(error)
}

pub fn delete(id: &str, expected_version: Option<&str>) -> Result<()> {
    wit::delete(id, expected_version).map_err(error)
}

pub fn increment(id: &str, attribute: &str, delta: i64) -> Result<model::Item> {
    wit::increment(id, attribute, delta)
        .map(item)
        .map_err(error)
}

pub fn batch(writes: Vec<model::BatchWrite>) -> Result<model::BatchResult> {
    let writes: Vec<t::BatchWrite> = writes.into_iter().map(batch_write).collect();
    wit::batch(&writes)
        .map(|result| model::BatchResult {
            put: result.put.into_iter().map(item).collect(),
            deleted: result.deleted,
        })
        .map_err(error)
}

pub fn query(query: model::Query) -> Result<model::Page> {
    wit::query(&to_query(query))
        .map(|page| model::Page {
            items: page.items.into_iter().map(item).collect(),
            next_cursor: page.next_cursor,
        })
        .map_err(error)
}

fn value(value: t::Value) -> model::Value {
    match value {
        t::Value::Null => model::Value::Null,
        t::Value::Boolean(b) => model::Value::Bool(b),
        t::Value::Number(n) => model::Value::Number(n),
        t::Value::Text(s) => model::Value::Text(s),
        t::Value::Json(j) => model::Value::Json(j),
    }
}

fn to_value(value: model::Value) -> t::Value {
    match value {
        model::Value::Null => t::Value::Null,
        model::Value::Bool(b) => t::Value::Boolean(b),
        model::Value::Number(n) => t::Value::Number(n),
        model::Value::Text(s) => t::Value::Text(s),
        model::Value::Json(j) => t::Value::Json(j),
    }
}

fn attributes(list: Vec<model::Attribute>) -> Vec<t::Attribute> {
    list.into_iter()
        .map(|a| t::Attribute {
            name: a.name,
            value: to_value(a.value),
        })
        .collect()
}

fn item(item: t::Item) -> model::Item {
    model::Item {
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
            .map(|a| model::Attribute::new(a.name, value(a.value)))
            .collect(),
    }
}

fn new_item(item: model::NewItem) -> t::NewItem {
    t::NewItem {
        id: item.id,
        user_id: item.user_id,
        status: item.status,
        expires_at: item.expires_at,
        attributes: attributes(item.attributes),
    }
}

fn item_patch(patch: model::ItemPatch) -> t::ItemPatch {
    t::ItemPatch {
        user_id: patch.user_id,
        status: patch.status,
        expires_at: patch.expires_at,
        set: attributes(patch.set),
        remove: patch.remove,
    }
}

fn batch_write(write: model::BatchWrite) -> t::BatchWrite {
    match write {
        model::BatchWrite::Put(put) => t::BatchWrite::Put(t::BatchPut {
            item: new_item(put.item),
            created_at: put.created_at,
        }),
        model::BatchWrite::Delete(id) => t::BatchWrite::Delete(id),
    }
}

fn to_query(query: model::Query) -> t::Query {
    t::Query {
        key: match query.key {
            model::IndexKey::UserId(v) => t::IndexKey::UserId(v),
            model::IndexKey::Status(v) => t::IndexKey::Status(v),
        },
        order: match query.order {
            model::Order::Asc => t::Order::Asc,
            model::Order::Desc => t::Order::Desc,
        },
        limit: query.limit,
        cursor: query.cursor,
    }
}

fn put_outcome(outcome: t::PutOutcome) -> model::PutOutcome {
    match outcome {
        t::PutOutcome::Created => model::PutOutcome::Created,
        t::PutOutcome::Replaced => model::PutOutcome::Replaced,
    }
}

fn error(error: t::StoreError) -> StoreError {
    match error {
        t::StoreError::NotFound => StoreError::NotFound,
        t::StoreError::AlreadyExists => StoreError::AlreadyExists,
        t::StoreError::VersionMismatch(current) => StoreError::VersionMismatch(current),
        t::StoreError::InvalidInput(m) => StoreError::InvalidInput(m),
        t::StoreError::Throttled(ms) => StoreError::Throttled(ms),
        t::StoreError::Unavailable(m) => StoreError::Unavailable(m),
        t::StoreError::Unauthorized(m) => StoreError::Unauthorized(m),
        t::StoreError::Backend(m) => StoreError::Backend(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_both_directions() {
        for v in [
            model::Value::Null,
            model::Value::Bool(true),
            model::Value::Number("1e400".into()),
            model::Value::Text("t".into()),
            model::Value::Json("[1]".into()),
        ] {
            assert_eq!(value(to_value(v.clone())), v);
        }
    }

    #[test]
    fn every_store_error_keeps_its_case() {
        assert_eq!(
            error(t::StoreError::VersionMismatch(Some("3".into()))),
            StoreError::VersionMismatch(Some("3".into()))
        );
        assert_eq!(error(t::StoreError::Throttled(5)), StoreError::Throttled(5));
        assert_eq!(
            error(t::StoreError::Backend("b".into())),
            StoreError::Backend("b".into())
        );
    }
}
