//! Request bodies: bytes -> JSON -> a create or replace body, a merge
//! patch, a batch and a likes body, as the API reads them; then the patch
//! applied to an item. Nothing may panic, and:
//!
//! - what validation accepts is valid, and an item made from an accepted
//!   body reads back the same from the JSON the API shows for it
//!   (`item_model::json` round-trips);
//! - a patch sets what it sets and removes what it removes, as RFC 7396
//!   says for top-level members, and applying it twice is applying it once.
//!
//! The input is one JSON body, or two separated by a 0xFF byte (never
//! part of UTF-8 JSON): an item, then the patch applied to it. With one,
//! the patch goes to a fixed item.

#![no_main]

use api::body;
use item_model::json::{item_to_json, new_item_from_json};
use item_model::{BatchWrite, Item, ItemPatch, NewItem, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value as Json, json};

const CREATED: &str = "2026-02-08T10:00:00.000000Z";
const UPDATED: &str = "2026-02-09T11:30:00.250000Z";

fn base_item() -> Item {
    let json = json!({
        "id": "item-123",
        "name": "My Item",
        "description": "A great item",
        "likes": 5,
        "tags": ["a", {"b": null}],
        "userId": "u1",
        "status": "active",
        "expiresAt": "2030-01-01T00:00:00Z",
    });
    let new = body::new_item(json, None, String::new).expect("the base item is valid");
    new.into_item(CREATED.into(), UPDATED.into(), "3".into())
}

/// The stored item an accepted body becomes, and its JSON read back.
fn check_round_trip(new: &NewItem) -> Item {
    assert!(validate::new_item(new).is_ok(), "accepted an invalid item");
    let item = new
        .clone()
        .into_item(CREATED.into(), UPDATED.into(), "1".into());
    let shown = item_to_json(&item);
    let again = new_item_from_json(shown.clone(), Some(&new.id), String::new)
        .unwrap_or_else(|e| panic!("the API's own JSON is refused ({e}): {shown}"));
    assert_eq!(
        &again, new,
        "the item changed on its way through JSON: {shown}"
    );
    assert!(validate::new_item(&again).is_ok());
    item
}

/// The fields of `item` other than the store-owned ones and `expiresAt`.
fn user_fields(item: &Item) -> Map<String, Json> {
    let Json::Object(mut object) = item_to_json(item) else {
        unreachable!("an item is an object")
    };
    for owned in ["createdAt", "updatedAt", "version", "expiresAt"] {
        object.remove(owned);
    }
    object
}

fn check_patch(patch: &ItemPatch, patch_json: &Json, base: &Item) {
    assert!(validate::patch(patch).is_ok(), "accepted an invalid patch");
    let mut once = base.clone();
    patch.apply_to(&mut once);
    let mut twice = once.clone();
    patch.apply_to(&mut twice);
    assert_eq!(once, twice, "applying a patch twice differs from once");
    // RFC 7396 on the top-level members (nested objects replace the old
    // value whole, as the API documents).
    let mut expected = user_fields(base);
    if let Json::Object(members) = patch_json {
        for (name, value) in members {
            // The id (and its alias `itemId`) cannot change, the
            // store-owned fields are ignored, `expiresAt` is checked below.
            let kept = [
                "id",
                "itemId",
                "createdAt",
                "updatedAt",
                "version",
                "expiresAt",
            ];
            if kept.contains(&name.as_str()) {
                continue;
            }
            if value.is_null() {
                expected.remove(name);
            } else {
                expected.insert(name.clone(), value.clone());
            }
        }
    }
    assert_eq!(
        user_fields(&once),
        expected,
        "the patch did not merge as RFC 7396 says"
    );
    match patch.expires_at {
        Some(at) => assert_eq!(once.expires_at, at),
        None => assert_eq!(once.expires_at, base.expires_at),
    }
    let names: std::collections::HashSet<&str> =
        once.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), once.attributes.len(), "an attribute twice");
    for attribute in &patch.set {
        assert_eq!(once.attribute(&attribute.name), Some(&attribute.value));
    }
    for name in &patch.remove {
        assert_eq!(once.attribute(name), None);
    }
}

fn check_batch(json: Json) {
    let mut n = 0;
    let Ok(writes) = body::batch(json, || {
        n += 1;
        format!("generated-{n}")
    }) else {
        return;
    };
    assert!(
        validate::batch(&writes).is_ok(),
        "accepted an invalid batch"
    );
    for write in &writes {
        if let BatchWrite::Put(put) = write {
            check_round_trip(&put.item);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let Ok(json) = body::parse_json(first) else {
        return;
    };
    let path_id = json
        .get("id")
        .and_then(Json::as_str)
        .unwrap_or("item-123")
        .to_string();
    // POST /items, PUT /items/{id}.
    let created = body::new_item(json.clone(), None, || "generated".into());
    if let Ok(new) = &created {
        check_round_trip(new);
    }
    if let Ok(new) = body::new_item(json.clone(), Some(&path_id), String::new) {
        assert_eq!(new.id, path_id);
        check_round_trip(&new);
    }
    check_batch(json.clone());
    if let Ok(by) = body::likes_delta(Some(json.clone())) {
        assert!(json.get("by").is_none_or(|b| b.as_i64() == Some(by)));
    }
    // PATCH /items/{id}: onto the first body's item when a second body
    // follows, else onto a fixed item.
    let (base, patch_json) = match second {
        Some(second) => {
            let Ok(new) = created else { return };
            let Ok(patch_json) = body::parse_json(second) else {
                return;
            };
            (check_round_trip(&new), patch_json)
        }
        None => (base_item(), json),
    };
    if let Ok(patch) = body::patch(patch_json.clone(), &base.id) {
        check_patch(&patch, &patch_json, &base);
    }
});
