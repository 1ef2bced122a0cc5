//! Store inputs drawn from fuzz bytes. The protocols take input already
//! validated (the api component and the host run `item_model::validate`
//! first), so everything made here passes those rules: a drawn value that
//! does not is replaced by a valid one, never passed on.

use arbitrary::{Arbitrary, Unstructured};
use item_model::{
    Attribute, BatchPut, BatchWrite, Cursor, IndexKey, ItemPatch, MAX_BATCH_WRITES, MAX_EXPIRES_AT,
    MAX_QUERY_LIMIT, MAX_SCAN_SEGMENTS, NewItem, Order, Query, ScanRequest, Timestamp, Value,
    validate,
};

/// Number literals at the edges of what the stores keep.
pub const NUMBERS: [&str; 18] = [
    "0",
    "-0",
    "1.50",
    "1e21",
    "1E+400",
    "12345678901234567890123456789012345678",
    "123456789012345678901234567890123456789",
    "1e-130",
    "1e-131",
    "9.99e125",
    "1e126",
    "-9223372036854775808",
    "9223372036854775808",
    "0.1",
    "2.0",
    "1e308",
    "1e309",
    "-0.000001",
];

/// Nested values (the `json` case: arrays and objects).
pub const NESTED: [&str; 8] = [
    "[]",
    "{}",
    "[1,2]",
    r#"{"a":[1,{"b":null}]}"#,
    "[[1]]",
    r#"{"":1}"#,
    r#"{"__x__":1}"#,
    "[12345678901234567890123]",
];

const NAMES: [&str; 8] = [
    "name",
    "likes",
    "tags",
    "price",
    "like count",
    "a.b",
    "`x`",
    "ünïcödé",
];

const IDS: [&str; 6] = ["item-1", "a", "ü:x@y", "item 2", "50%", "a?b#c"];

#[derive(Arbitrary, Debug)]
enum ValueSpec {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Known(u8),
    Literal(String),
    Text(String),
    Nested(u8),
}

fn pick<'a>(list: &[&'a str], u: &mut Unstructured) -> &'a str {
    let index = u.arbitrary::<u8>().unwrap_or(0);
    list[usize::from(index) % list.len()]
}

/// A drawn string that passes `valid`, else one of `fallbacks`.
fn valid_text(u: &mut Unstructured, valid: impl Fn(&str) -> bool, fallbacks: &[&str]) -> String {
    let text: String = u.arbitrary().unwrap_or_default();
    if valid(&text) {
        text
    } else {
        pick(fallbacks, u).to_string()
    }
}

pub fn id(u: &mut Unstructured) -> String {
    valid_text(u, |t| validate::id(t).is_ok(), &IDS)
}

pub fn index_value(u: &mut Unstructured) -> String {
    valid_text(
        u,
        |t| validate::index_value("userId", t).is_ok(),
        &["u1", "active", "in stock", "ü"],
    )
}

fn attribute_name(u: &mut Unstructured) -> String {
    valid_text(u, |t| validate::attribute_name(t).is_ok(), &NAMES)
}

fn value(u: &mut Unstructured) -> Value {
    let spec: ValueSpec = u.arbitrary().unwrap_or(ValueSpec::Null);
    let value = match spec {
        ValueSpec::Null => Value::Null,
        ValueSpec::Bool(b) => Value::Bool(b),
        ValueSpec::Int(n) => Value::Number(n.to_string()),
        ValueSpec::Float(f) if f.is_finite() => Value::Number(format!("{f:?}")),
        ValueSpec::Float(_) => Value::Number("0.5".into()),
        ValueSpec::Known(i) => Value::Number(NUMBERS[usize::from(i) % NUMBERS.len()].into()),
        ValueSpec::Literal(text) => Value::Number(text),
        ValueSpec::Text(text) => Value::Text(text),
        ValueSpec::Nested(i) => Value::Json(NESTED[usize::from(i) % NESTED.len()].into()),
    };
    match &value {
        Value::Number(n) if validate::number_literal(n).is_err() => Value::Number("7".into()),
        _ => value,
    }
}

fn attributes(u: &mut Unstructured, max: usize) -> Vec<Attribute> {
    let count = u.int_in_range(0..=max).unwrap_or(0);
    let mut list: Vec<Attribute> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = attribute_name(u);
        if list.iter().all(|a| a.name != name) {
            list.push(Attribute::new(name, value(u)));
        }
    }
    list
}

fn optional<T>(u: &mut Unstructured, f: impl FnOnce(&mut Unstructured) -> T) -> Option<T> {
    u.arbitrary::<bool>().unwrap_or(false).then(|| f(u))
}

fn expires_at(u: &mut Unstructured) -> i64 {
    let seconds: i64 = u.arbitrary().unwrap_or(0);
    seconds.rem_euclid(MAX_EXPIRES_AT + 1)
}

/// A valid new item with the id `id`.
pub fn new_item(u: &mut Unstructured, id: String) -> NewItem {
    let item = NewItem {
        id: id.clone(),
        user_id: optional(u, index_value),
        status: optional(u, index_value),
        expires_at: optional(u, expires_at),
        attributes: attributes(u, 8),
    };
    if validate::new_item(&item).is_ok() {
        item
    } else {
        NewItem {
            id,
            ..NewItem::default()
        }
    }
}

/// A valid merge patch.
pub fn patch(u: &mut Unstructured) -> ItemPatch {
    let set = attributes(u, 6);
    let count = u.int_in_range(0..=4).unwrap_or(0);
    let remove = (0..count)
        .map(|_| attribute_name(u))
        .filter(|name| set.iter().all(|a| &a.name != name))
        .collect();
    let patch = ItemPatch {
        user_id: optional(u, |u| optional(u, index_value)),
        status: optional(u, |u| optional(u, index_value)),
        expires_at: optional(u, |u| optional(u, expires_at)),
        set,
        remove,
    };
    if validate::patch(&patch).is_ok() {
        patch
    } else {
        ItemPatch::default()
    }
}

/// A valid batch of `count` writes (1 to 100), each on its own id.
pub fn batch(u: &mut Unstructured, count: usize) -> Vec<BatchWrite> {
    let count = count.clamp(1, MAX_BATCH_WRITES);
    let writes: Vec<BatchWrite> = (0..count)
        .map(|i| {
            let id = format!("b{i}");
            if u.arbitrary::<bool>().unwrap_or(false) {
                BatchWrite::Delete(id)
            } else {
                let created_at = optional(u, |u| timestamp(u).to_string());
                let updated_at = optional(u, |u| timestamp(u).to_string());
                BatchWrite::Put(BatchPut {
                    item: new_item(u, id),
                    created_at,
                    updated_at,
                })
            }
        })
        .collect();
    debug_assert!(validate::batch(&writes).is_ok());
    writes
}

/// A time the stores can write (1970 to 9999).
pub fn timestamp(u: &mut Unstructured) -> Timestamp {
    let micros: i64 = u.arbitrary().unwrap_or(0);
    Timestamp::from_micros(micros.rem_euclid(253_402_300_800_000_000))
}

/// A valid index key of any of the three indexes.
pub fn index_key(u: &mut Unstructured) -> IndexKey {
    let value = index_value(u);
    match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => IndexKey::UserId(value),
        1 => IndexKey::Status(value),
        _ => IndexKey::UserStatus {
            user_id: value,
            status: index_value(u),
        },
    }
}

/// A valid query, with a cursor of its own when drawn so.
pub fn query(u: &mut Unstructured) -> Query {
    let key = index_key(u);
    let order = if u.arbitrary::<bool>().unwrap_or(false) {
        Order::Asc
    } else {
        Order::Desc
    };
    let limit = u.int_in_range(1..=MAX_QUERY_LIMIT).unwrap_or(20);
    let mut query = Query {
        key,
        order,
        limit,
        cursor: None,
    };
    if u.arbitrary::<bool>().unwrap_or(false) {
        let at = timestamp(u).to_string();
        let last = id(u);
        query.cursor = Some(Cursor::after(&query, &at, &last).encode());
    }
    query
}

/// A valid scan request, with a cursor of its own when drawn so.
pub fn scan(u: &mut Unstructured) -> ScanRequest {
    let segments = u.int_in_range(1..=MAX_SCAN_SEGMENTS).unwrap_or(1);
    let segment = u.int_in_range(0..=segments - 1).unwrap_or(0);
    let limit = u.int_in_range(1..=MAX_QUERY_LIMIT).unwrap_or(100);
    let mut request = ScanRequest::first(segment, segments, limit);
    request.updated_since = optional(u, |u| timestamp(u).to_string());
    if u.arbitrary::<bool>().unwrap_or(false) {
        let last = id(u);
        request.cursor = Some(request.cursor_after(&last).encode());
    }
    debug_assert!(validate::scan(&request).is_ok());
    request
}

/// Everything an operation of either protocol is started with: the
/// script's `key=value` parameters where given, drawn from its bytes
/// otherwise.
#[derive(Debug)]
pub struct Inputs {
    pub id: String,
    pub item: NewItem,
    pub patch: ItemPatch,
    /// `expect=`: the If-Match version.
    pub expected: Option<String>,
    /// `by=`: the increment.
    pub delta: i64,
    /// `n=`: how many writes the batch has.
    pub writes: Vec<BatchWrite>,
    /// `key=user|status|user-status value= [status=] order=asc|desc limit= cursor=`.
    pub query: Query,
    /// `segments= segment=`, the rest drawn.
    pub scan: ScanRequest,
    /// `now=`: the time the operation runs at.
    pub now: Timestamp,
}

impl Inputs {
    pub fn draw(script: &crate::script::Script) -> Self {
        let mut u = Unstructured::new(script.rest);
        let u = &mut u;
        let id = match script.param("id") {
            Some(id) if validate::id(id).is_ok() => id.to_string(),
            _ => id(u),
        };
        let item = new_item(u, id.clone());
        let patch = patch(u);
        let expected = match script.param("expect") {
            Some(version) => Some(version.to_string()),
            None => optional(u, |u| {
                let version: u8 = u.arbitrary().unwrap_or(0);
                version.to_string()
            }),
        };
        let delta = script
            .param("by")
            .and_then(|by| by.parse().ok())
            .unwrap_or_else(|| u.arbitrary().unwrap_or(1));
        let count = script
            .param("n")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| u.int_in_range(1..=MAX_BATCH_WRITES).unwrap_or(1));
        let writes = batch(u, count);
        let mut query = query(u);
        if let Some(value) = script
            .param("value")
            .filter(|v| validate::index_value("userId", v).is_ok())
        {
            let status = script
                .param("status")
                .filter(|s| validate::index_value("status", s).is_ok())
                .unwrap_or("active");
            query.key = match script.param("key") {
                Some("status") => IndexKey::Status(value.to_string()),
                Some("user-status") => IndexKey::UserStatus {
                    user_id: value.to_string(),
                    status: status.to_string(),
                },
                _ => IndexKey::UserId(value.to_string()),
            };
            query.cursor = None;
        }
        match script.param("order") {
            Some("asc") => query.order = Order::Asc,
            Some("desc") => query.order = Order::Desc,
            _ => {}
        }
        if let Some(limit) = script.param("limit").and_then(|l| l.parse().ok()) {
            query.limit = u32::clamp(limit, 1, MAX_QUERY_LIMIT);
        }
        if let Some(cursor) = script.param("cursor") {
            query.cursor = Some(cursor.to_string());
        }
        let mut scan = scan(u);
        let number = |name: &str| script.param(name).and_then(|n| n.parse::<u32>().ok());
        if let Some(segments) = number("segments").filter(|n| (1..=MAX_SCAN_SEGMENTS).contains(n)) {
            scan.segments = segments;
            scan.segment = number("segment").unwrap_or(0) % segments;
            scan.cursor = None;
        }
        if let Some(limit) = number("limit") {
            scan.limit = u32::clamp(limit, 1, MAX_QUERY_LIMIT);
        }
        let now = script
            .param("now")
            .and_then(|t| Timestamp::parse(t).ok())
            .unwrap_or_else(|| {
                Timestamp::parse("2026-02-08T10:00:00.000001Z").unwrap_or(Timestamp::from_micros(0))
            });
        Inputs {
            id,
            item,
            patch,
            expected,
            delta,
            writes,
            query,
            scan,
            now,
        }
    }
}
