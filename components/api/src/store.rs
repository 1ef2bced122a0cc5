//! The imported `edge-items:store/store` interface, seen through
//! item_model types (the conversions are `item_model::wit_conversions!`),
//! so the rest of the crate never touches the bindings.

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

item_model::wit_conversions!(t);

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn get(id: &str) -> Result<model::Item> {
    wit::get(id).map(Into::into).map_err(Into::into)
}

pub(crate) fn create(new: model::NewItem) -> Result<model::Item> {
    wit::create(&new.into()).map(Into::into).map_err(Into::into)
}

pub(crate) fn put(
    new: model::NewItem,
    expected_version: Option<&str>,
) -> Result<(model::Item, model::PutOutcome)> {
    wit::put(&new.into(), expected_version)
        .map(|(stored, outcome)| (stored.into(), outcome.into()))
        .map_err(Into::into)
}

pub(crate) fn update(
    id: &str,
    patch: model::ItemPatch,
    expected_version: Option<&str>,
) -> Result<model::Item> {
    wit::update(id, &patch.into(), expected_version)
        .map(Into::into)
        .map_err(Into::into)
}

pub(crate) fn delete(id: &str, expected_version: Option<&str>) -> Result<()> {
    wit::delete(id, expected_version).map_err(Into::into)
}

pub(crate) fn increment(id: &str, attribute: &str, delta: i64) -> Result<model::Item> {
    wit::increment(id, attribute, delta)
        .map(Into::into)
        .map_err(Into::into)
}

pub(crate) fn batch(writes: Vec<model::BatchWrite>) -> Result<model::BatchResult> {
    let writes: Vec<t::BatchWrite> = writes.into_iter().map(Into::into).collect();
    wit::batch(&writes).map(Into::into).map_err(Into::into)
}

pub(crate) fn query(query: model::Query) -> Result<model::Page> {
    wit::query(&query.into())
        .map(Into::into)
        .map_err(Into::into)
}
