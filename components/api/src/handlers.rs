//! One function per route: read and check the request (pure modules), call
//! the store (`store.rs`), shape the response. Every error becomes a
//! [`Problem`] on the way out.

use item_model::json::item_to_json;
use item_model::{BatchResult, BatchWrite, IndexKey, Item, NewItem, PutOutcome, StoreError};
use serde_json::{Value as Json, json};

use crate::auth::{self, Caller};
use crate::conditional::{self, IfMatch};
use crate::http::{Request, max_body_bytes};
use crate::problem::{Kind, Problem};
use crate::query::{check_cursor, encode_component, list_query_without_cursor_check, next_link};
use crate::response::Response;
use crate::router::{self, Route, RouteError};
use crate::store::{Writer, as_deleted, as_item, as_put, expect_recorded};
use crate::{body, idempotency, store};

/// The OpenAPI 3.1 description of this API, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How often a conditional write that had to read the version first is
/// retried when another writer slips in between.
const CONDITIONAL_ATTEMPTS: usize = 3;

type Result<T> = std::result::Result<T, Problem>;

/// Answers one request, echoing its request id (the client's `X-Request-Id`
/// when sane, else a new one) in `X-Request-Id` and in any problem's
/// `instance`. Our host has already checked or made the id by the same
/// rule (`item_model::request_id`), so under it the id is the host's.
pub fn handle(request: &Request) -> Response {
    let request_id = item_model::request_id::accept_or_new(
        request
            .header(item_model::request_id::HEADER)
            .as_deref()
            .map(str::as_bytes),
        random_16,
    );
    answer(request, &request_id).with_header(item_model::request_id::HEADER, request_id)
}

/// 16 bytes from wasi:random.
fn random_16() -> [u8; 16] {
    let mut array = [0u8; 16];
    for (slot, byte) in array
        .iter_mut()
        .zip(wasip2::random::random::get_random_bytes(16))
    {
        *slot = byte;
    }
    array
}

fn answer(request: &Request, request_id: &str) -> Response {
    let outcome = match router::route(&request.method, &request.path) {
        Ok(route) => dispatch(route, request),
        Err(RouteError::NotFound) => Err(Problem::new(
            Kind::NoRoute,
            format!(
                "there is no resource at {}; GET /openapi.json lists the routes",
                request.path
            ),
        )),
        Err(RouteError::MethodNotAllowed(allow)) => Err(Problem::method_not_allowed(allow)),
        Err(RouteError::BadId(message)) => Err(Problem::new(Kind::InvalidId, message)),
    };
    outcome.unwrap_or_else(|problem| problem.for_request(request_id).into_response())
}

fn dispatch(route: Route, request: &Request) -> Result<Response> {
    // The description and the health check stay open; every items route
    // needs a caller.
    let caller = match route {
        Route::OpenApi => {
            return Ok(Response {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: OPENAPI.as_bytes().to_vec(),
            });
        }
        Route::Health => return Ok(Response::json(200, &json!({"status": "ok"}))),
        Route::Ready => return ready(),
        Route::Options(allow) => return Ok(Response::empty(204).with_header("allow", allow)),
        _ => auth::caller(request)?,
    };
    let writes = matches!(
        route,
        Route::CreateItem
            | Route::Batch
            | Route::PutItem(_)
            | Route::PatchItem(_)
            | Route::DeleteItem(_)
            | Route::LikeItem(_)
    );
    let writer = if writes {
        writer(request, &caller)?
    } else {
        Writer::direct()
    };
    let response = match route {
        Route::CreateItem => create_item(request, &caller, &writer),
        Route::ListItems => list_items(request, &caller),
        Route::Batch => batch(request, &caller, &writer),
        Route::GetItem(id) => get_item(request, &caller, &id),
        Route::PutItem(id) => put_item(request, &caller, &writer, &id),
        Route::PatchItem(id) => patch_item(request, &caller, &writer, &id),
        Route::DeleteItem(id) => delete_item(request, &caller, &writer, &id),
        Route::LikeItem(id) => like_item(request, &caller, &writer, &id),
        Route::OpenApi | Route::Health | Route::Ready | Route::Options(_) => {
            unreachable!("answered above")
        }
    }?;
    Ok(if writer.replayed() {
        response.with_header(idempotency::REPLAYED_HEADER, "true")
    } else {
        response
    })
}

/// The writer of a write request: under its `Idempotency-Key`, scoped to
/// the caller, when it has one (400 when the header is malformed).
fn writer<'r>(request: &'r Request, caller: &Caller) -> Result<Writer<'r>> {
    let Some(value) = request.header(idempotency::HEADER) else {
        return Ok(Writer::direct());
    };
    let key = idempotency::parse_key(&value)?;
    let ttl = idempotency::ttl_seconds(std::env::var(idempotency::TTL_SETTING).ok().as_deref());
    Ok(Writer::keyed(
        request,
        idempotency::store_key(caller.subject(), &key),
        ttl,
    ))
}

/// An id no client is expected to use, read by `/readyz`: whatever the
/// store answers about it (found or not) shows it is reachable.
const READINESS_PROBE_ID: &str = "edge-items-readyz-probe";

/// `GET /readyz`: 200 when a cheap read of the store is answered, 503 with
/// Retry-After when it fails (the cause goes to the log only). Open like
/// `/healthz`: it says nothing about any item.
fn ready() -> Result<Response> {
    match store::get(READINESS_PROBE_ID) {
        Ok(_) | Err(StoreError::NotFound) => Ok(Response::json(200, &json!({"status": "ready"}))),
        Err(error) => Err(not_ready(&error)),
    }
}

/// The 503 of a failed readiness read.
fn not_ready(error: &StoreError) -> Problem {
    eprintln!("api: not ready: the store failed a read: {error}");
    let retry_after = match error {
        StoreError::Throttled(millis) => millis.div_ceil(1000).max(1),
        _ => 1,
    };
    Problem {
        retry_after: Some(retry_after),
        ..Problem::new(
            Kind::BackendUnavailable,
            "the storage backend did not answer a read; not ready for traffic, retry later",
        )
    }
}

/// `{base}/items/{id}`, with the id percent-encoded: the item's URL under
/// the prefix the app is mounted at.
fn location(base: &str, id: &str) -> String {
    format!("{base}/items/{}", encode_component(id))
}

/// An item with its ETag.
fn item_response(status: u16, item: &Item) -> Response {
    Response::json(status, &item_to_json(item))
        .with_header("etag", conditional::etag(&item.version))
}

/// A required JSON body (415 / 413 / 400 before any parsing of fields).
fn json_body(request: &Request, patch: bool) -> Result<Json> {
    let content_type = request.header("content-type");
    if !content_type
        .as_deref()
        .is_some_and(body::is_json_media_type)
    {
        return Err(body::unsupported_media_type(content_type.as_deref(), patch));
    }
    body::parse_json(&request.read_body(max_body_bytes())?)
}

/// An optional JSON body: empty is `None`, with or without a content type.
fn optional_json_body(request: &Request) -> Result<Option<Json>> {
    let content_type = request.header("content-type");
    let is_json = content_type
        .as_deref()
        .is_some_and(body::is_json_media_type);
    if content_type.is_some() && !is_json {
        return Err(body::unsupported_media_type(content_type.as_deref(), false));
    }
    let bytes = request.read_body(max_body_bytes())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json {
        return Err(body::unsupported_media_type(None, false));
    }
    body::parse_json(&bytes).map(Some)
}

/// A random UUID v4 from wasi:random, for an item created without an id.
fn generate_id() -> String {
    item_model::uuid_v4(random_16())
}

fn create_item(request: &Request, caller: &Caller, writer: &Writer) -> Result<Response> {
    let mut new = body::new_item(json_body(request, false)?, None, generate_id)?;
    claim_ownership(caller, &mut new)?;
    let id = new.id.clone();
    let item = writer
        .create(new)
        .map_err(|e| Problem::from_store(e, Some(&id)))?;
    Ok(item_response(201, &item).with_header("location", location(&request.base, &item.id)))
}

fn get_item(request: &Request, caller: &Caller, id: &str) -> Result<Response> {
    let item = store::get(id).map_err(|e| Problem::from_store(e, Some(id)))?;
    if !visible(caller, &item) {
        return Err(Problem::not_found(id));
    }
    if let Some(value) = request.header("if-none-match")
        && let Ok(condition) = conditional::parse(&value)
        && conditional::none_match(&condition, &item.version)
    {
        return Ok(Response::empty(304).with_header("etag", conditional::etag(&item.version)));
    }
    Ok(item_response(200, &item))
}

fn put_item(request: &Request, caller: &Caller, writer: &Writer, id: &str) -> Result<Response> {
    let mut new = body::new_item(json_body(request, false)?, Some(id), String::new)?;
    claim_ownership(caller, &mut new)?;
    let condition = conditional::if_match(request.header("if-match").as_deref());
    let recorded = recorded_before_reading(writer, caller, &condition, id, as_put)?;
    let (item, outcome) = match (recorded, caller.owner()) {
        (Some(recorded), _) => recorded,
        // `put` alone cannot say "must exist", so `If-Match: *` reads first.
        (None, None) => conditional_write(id, &condition, true, |version| {
            writer.put(new.clone(), version)
        })?,
        (None, Some(owner)) => owned_write(
            owner,
            id,
            &condition,
            || {
                Some(
                    writer
                        .create(new.clone())
                        .map(|item| (item, PutOutcome::Created)),
                )
            },
            |version| writer.put(new.clone(), Some(version)),
        )?,
    };
    Ok(match outcome {
        PutOutcome::Created => {
            item_response(201, &item).with_header("location", location(&request.base, id))
        }
        PutOutcome::Replaced => item_response(200, &item),
    })
}

fn patch_item(request: &Request, caller: &Caller, writer: &Writer, id: &str) -> Result<Response> {
    let patch = body::patch(json_body(request, true)?, id)?;
    let condition = conditional::if_match(request.header("if-match").as_deref());
    if let Some(item) = recorded_before_reading(writer, caller, &condition, id, as_item)? {
        return Ok(item_response(200, &item));
    }
    let item = match caller.owner() {
        None => conditional_write(id, &condition, false, |version| {
            writer.update(id, patch.clone(), version)
        })?,
        Some(owner) => {
            if let Some(change) = &patch.user_id
                && change.as_deref() != Some(owner)
            {
                return Err(auth::forbidden(format!(
                    "`userId` can only stay `{owner}`: giving an item away or leaving it without an owner needs the `{}` scope",
                    jwt_auth::ADMIN_SCOPE
                )));
            }
            owned_write(
                owner,
                id,
                &condition,
                || None,
                |version| writer.update(id, patch.clone(), Some(version)),
            )?
        }
    };
    Ok(item_response(200, &item))
}

fn delete_item(request: &Request, caller: &Caller, writer: &Writer, id: &str) -> Result<Response> {
    let condition = conditional::if_match(request.header("if-match").as_deref());
    if recorded_before_reading(writer, caller, &condition, id, as_deleted)?.is_some() {
        return Ok(Response::empty(204));
    }
    match caller.owner() {
        None => conditional_write(id, &condition, false, |version| writer.delete(id, version))?,
        Some(owner) => owned_write(
            owner,
            id,
            &condition,
            || None,
            |version| writer.delete(id, Some(version)),
        )?,
    }
    Ok(Response::empty(204))
}

/// For a request with an `Idempotency-Key` whose handler checks the item
/// as it is now before writing (a caller limited to its own items, or an
/// `If-Match` that needs a read): the result recorded when this request's
/// write went through before. Those checks would refuse the repeat (the
/// version moved on, the item is gone), where the client must get the
/// first answer again. Other paths go straight to `apply-once`, which
/// replays by itself.
fn recorded_before_reading<T>(
    writer: &Writer,
    caller: &Caller,
    condition: &IfMatch,
    id: &str,
    from: impl FnOnce(item_model::Written) -> std::result::Result<T, item_model::Written>,
) -> Result<Option<T>> {
    let reads_first =
        caller.owner().is_some() || matches!(condition, IfMatch::Exists | IfMatch::AnyOf(_));
    if !reads_first {
        return Ok(None);
    }
    let fail = |e| Problem::from_store(e, Some(id));
    match writer.recorded(id).map_err(fail)? {
        Some(written) => expect_recorded(written, from).map(Some).map_err(fail),
        None => Ok(None),
    }
}

fn like_item(request: &Request, caller: &Caller, writer: &Writer, id: &str) -> Result<Response> {
    let by = body::likes_delta(optional_json_body(request)?)?;
    if let Some(item) = recorded_before_reading(writer, caller, &IfMatch::Absent, id, as_item)? {
        return Ok(item_response(200, &item));
    }
    if caller.owner().is_some() {
        // An increment has no version to hold the owner still; the read
        // hides other users' items, and only an administrator can move an
        // item between owners (docs/SECURITY.md).
        let current = store::get(id).map_err(|e| Problem::from_store(e, Some(id)))?;
        if !visible(caller, &current) {
            return Err(Problem::not_found(id));
        }
    }
    let item = writer
        .increment(id, "likes", by)
        .map_err(|e| Problem::from_store(e, Some(id)))?;
    Ok(item_response(200, &item))
}

fn list_items(request: &Request, caller: &Caller) -> Result<Response> {
    let mut query = list_query_without_cursor_check(&request.query)?;
    if let Some(owner) = caller.owner() {
        query.key = own_list(query.key, owner)?;
    }
    check_cursor(&query)?;
    let page = store::query(query.clone()).map_err(|e| match e {
        // The URL is the only input, so whatever the store rejects is a
        // bad query parameter (typically the cursor).
        StoreError::InvalidInput(message) => Problem::new(Kind::InvalidQuery, message),
        other => Problem::from_store(other, None),
    })?;
    let items: Vec<Json> = page.items.iter().map(item_to_json).collect();
    let response = Response::json(200, &json!({"items": items, "next": page.next_cursor}));
    Ok(match &page.next_cursor {
        Some(cursor) => response.with_header("link", next_link(&request.base, &query, cursor)),
        None => response,
    })
}

/// The list a caller limited to its own items gets: its own user's list,
/// and for `?status=` its own items in that status (read from the
/// user-and-status index, so paging is exact and costs no more than the
/// page). Naming another user is 403.
fn own_list(key: IndexKey, owner: &str) -> Result<IndexKey> {
    let user = match &key {
        IndexKey::UserId(user) | IndexKey::UserStatus { user_id: user, .. } => user,
        IndexKey::Status(status) => {
            return Ok(IndexKey::UserStatus {
                user_id: owner.to_string(),
                status: status.clone(),
            });
        }
    };
    if user != owner {
        return Err(auth::forbidden(format!(
            "you can list only your own items (`userId={owner}`); other users' lists need the `{}` scope",
            jwt_auth::ADMIN_SCOPE
        )));
    }
    Ok(key)
}

fn batch(request: &Request, caller: &Caller, writer: &Writer) -> Result<Response> {
    let writes = body::batch(json_body(request, false)?, generate_id)?;
    let result = match caller.owner() {
        None => writer
            .batch(writes)
            .map_err(|e| Problem::from_store(e, None))?,
        Some(owner) => owned_batch(caller, owner, writer, writes)?,
    };
    let put: Vec<Json> = result.put.iter().map(item_to_json).collect();
    Ok(Response::json(
        200,
        &json!({"put": put, "deleted": result.deleted}),
    ))
}

/// Whether `caller` may see `item`: an administrator sees every item, a
/// user only its own (others' look absent).
fn visible(caller: &Caller, item: &Item) -> bool {
    caller
        .owner()
        .is_none_or(|owner| item.user_id.as_deref() == Some(owner))
}

/// Makes a new or replacing item the caller's own: a caller limited to its
/// items writes them under its `sub` (a body without `userId` gets it), and
/// naming another user is 403.
fn claim_ownership(caller: &Caller, item: &mut NewItem) -> Result<()> {
    let Some(owner) = caller.owner() else {
        return Ok(());
    };
    match &item.user_id {
        None => {
            item.user_id = Some(owner.to_owned());
            Ok(())
        }
        Some(user) if user == owner => Ok(()),
        Some(_) => Err(auth::forbidden(format!(
            "you can only write your own items: `userId` must be `{owner}` or absent; writing for other users needs the `{}` scope",
            jwt_auth::ADMIN_SCOPE
        ))),
    }
}

/// A batch by a caller limited to its own items. Every target is read
/// first, and the batch is refused (404, nothing applied) if one belongs
/// to someone else; then each write applies on its own, under the version
/// read, so that another user's item created or moved in between is never
/// overwritten.
///
/// Under an `Idempotency-Key`, each write is applied once under a key of
/// its own, derived from the request's ([`Writer::part`]): a repeat of the
/// request replays the writes that went through and applies the rest.
fn owned_batch(
    caller: &Caller,
    owner: &str,
    writer: &Writer,
    writes: Vec<BatchWrite>,
) -> Result<BatchResult> {
    let mut targets = Vec::with_capacity(writes.len());
    for mut write in writes {
        let id = match &mut write {
            BatchWrite::Put(put) => {
                if put.created_at.is_some() {
                    return Err(auth::forbidden(format!(
                        "`createdAt` in a batch keeps an imported item's history, which needs the `{}` scope",
                        jwt_auth::ADMIN_SCOPE
                    )));
                }
                claim_ownership(caller, &mut put.item)?;
                put.item.id.clone()
            }
            BatchWrite::Delete(id) => id.clone(),
        };
        let current = match store::get(&id) {
            Ok(item) if visible(caller, &item) => Some(item.version),
            Ok(_) => return Err(Problem::not_found(&id)),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(Problem::from_store(e, Some(&id))),
        };
        targets.push((write, id, current));
    }
    let mut result = BatchResult::default();
    for (n, (write, id, read)) in targets.into_iter().enumerate() {
        let writer = writer.part(n);
        match write {
            BatchWrite::Put(put) => {
                let new = put.item;
                let first = match &read {
                    Some(version) => writer.put(new.clone(), Some(version)).map(|(item, _)| item),
                    None => writer.create(new.clone()),
                };
                let item = match first {
                    Err(StoreError::VersionMismatch(_) | StoreError::AlreadyExists) => owned_write(
                        owner,
                        &id,
                        &IfMatch::Absent,
                        || Some(writer.create(new.clone())),
                        |version| writer.put(new.clone(), Some(version)).map(|(item, _)| item),
                    )?,
                    other => other.map_err(|e| Problem::from_store(e, Some(&id)))?,
                };
                result.put.push(item);
            }
            BatchWrite::Delete(_) => {
                if let Some(version) = &read {
                    match writer.delete(&id, Some(version)) {
                        Ok(()) | Err(StoreError::NotFound) => {}
                        Err(StoreError::VersionMismatch(_)) => {
                            owned_write(
                                owner,
                                &id,
                                &IfMatch::Absent,
                                || Some(Ok(())),
                                |version| writer.delete(&id, Some(version)),
                            )?;
                        }
                        Err(e) => return Err(Problem::from_store(e, Some(&id))),
                    }
                }
                result.deleted.push(id);
            }
        }
    }
    Ok(result)
}

/// A write to one item by a caller limited to its own items: read the
/// item, answer 404 if it is someone else's (exactly as if it were
/// absent), check `If-Match` against it, and write under the version read,
/// so that no change of owner can slip in between. `absent` handles a
/// missing item: `None` answers 404 (412 under `If-Match`); PUT creates it.
fn owned_write<T>(
    owner: &str,
    id: &str,
    condition: &IfMatch,
    mut absent: impl FnMut() -> Option<std::result::Result<T, StoreError>>,
    mut write: impl FnMut(&str) -> std::result::Result<T, StoreError>,
) -> Result<T> {
    let cannot_match = || {
        Problem::new(
            Kind::PreconditionFailed,
            format!("If-Match cannot match: no item has the id `{id}`"),
        )
    };
    for _ in 0..CONDITIONAL_ATTEMPTS {
        let current = match store::get(id) {
            Ok(item) if item.user_id.as_deref() == Some(owner) => item,
            Ok(_) => return Err(Problem::not_found(id)),
            Err(StoreError::NotFound) => {
                if !matches!(condition, IfMatch::Absent) {
                    return Err(cannot_match());
                }
                match absent() {
                    None => return Err(Problem::not_found(id)),
                    // Someone created it meanwhile: decide again.
                    Some(Err(StoreError::AlreadyExists)) => continue,
                    Some(outcome) => return outcome.map_err(|e| Problem::from_store(e, Some(id))),
                }
            }
            Err(e) => return Err(Problem::from_store(e, Some(id))),
        };
        match condition {
            IfMatch::Never(why) => return Err(Problem::new(Kind::PreconditionFailed, *why)),
            IfMatch::Version(version) if *version != current.version => {
                return Err(Problem::version_mismatch(Some(&current.version)));
            }
            IfMatch::AnyOf(versions) if !versions.contains(&current.version) => {
                return Err(Problem::version_mismatch(Some(&current.version)));
            }
            _ => {}
        }
        match write(&current.version) {
            // Changed or removed since the read: decide again.
            Err(StoreError::VersionMismatch(_) | StoreError::NotFound) => {}
            other => return other.map_err(|e| Problem::from_store(e, Some(id))),
        }
    }
    Err(Problem::contended(id))
}

/// Runs a write under an `If-Match` condition; `write` gets the version the
/// store must check atomically. A single ETag goes straight to the store;
/// `*` (when `star_needs_read`) and lists read the current version first,
/// retrying if another writer changes it in between.
fn conditional_write<T>(
    id: &str,
    condition: &IfMatch,
    star_needs_read: bool,
    mut write: impl FnMut(Option<&str>) -> std::result::Result<T, StoreError>,
) -> Result<T> {
    let precondition = |e: StoreError| match e {
        StoreError::NotFound | StoreError::VersionMismatch(None) => Problem::new(
            Kind::PreconditionFailed,
            format!("If-Match cannot match: no item has the id `{id}`"),
        ),
        StoreError::VersionMismatch(current) => Problem::version_mismatch(current.as_deref()),
        other => Problem::from_store(other, Some(id)),
    };
    let accepted: &[String] = match condition {
        IfMatch::Absent => return write(None).map_err(|e| Problem::from_store(e, Some(id))),
        IfMatch::Never(why) => return Err(Problem::new(Kind::PreconditionFailed, *why)),
        IfMatch::Version(version) => return write(Some(version)).map_err(precondition),
        IfMatch::Exists if !star_needs_read => return write(None).map_err(precondition),
        IfMatch::Exists => &[],
        IfMatch::AnyOf(versions) => versions,
    };
    let mut last = StoreError::NotFound;
    for _ in 0..CONDITIONAL_ATTEMPTS {
        let current = store::get(id).map_err(precondition)?;
        if !accepted.is_empty() && !accepted.contains(&current.version) {
            return Err(Problem::version_mismatch(Some(&current.version)));
        }
        match write(Some(&current.version)) {
            Err(StoreError::VersionMismatch(Some(now))) => {
                last = StoreError::VersionMismatch(Some(now));
            }
            other => return other.map_err(precondition),
        }
    }
    Err(precondition(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_is_503_with_retry_after() {
        let response = not_ready(&StoreError::Unavailable("down at 10.0.0.7".into()))
            .for_request("r1")
            .into_response();
        assert_eq!(response.status, 503);
        assert_eq!(response.header("retry-after"), Some("1"));
        let body: Json = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["instance"], "urn:edge-items:request:r1");
        assert!(!body["detail"].as_str().unwrap().contains("10.0.0.7"));
        let throttled = not_ready(&StoreError::Throttled(2500)).into_response();
        assert_eq!(throttled.header("retry-after"), Some("3"));
    }

    #[test]
    fn locations_are_encoded() {
        assert_eq!(location("", "a b/ü"), "/items/a%20b%2F%C3%BC");
        assert_eq!(location("", "item-1"), "/items/item-1");
        assert_eq!(location("/api", "item-1"), "/api/items/item-1");
    }
}
