//! Our own overhead, measured: a plain axum server straight on our embedded
//! store (`store-embedded`), with no WebAssembly, no authentication and no
//! limits. The benchmark compares our host on the same store with it, so
//! the difference is what our HTTP + wasm layer costs. Serves the
//! benchmark's HTTP contract (benches/load.lua).
//!
//! Environment: `DATA` (the SQLite file, default ./baseline-items.db),
//! `BIND` (default 127.0.0.1:8000).
//!
//! Bodies become store calls with item-model's JSON helpers, and input is
//! checked with its `validate` rules, as our host checks every call before
//! a store sees it. The store's calls do not block the async workers: it
//! runs SQLite on tokio's blocking pool itself.

use std::env;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use item_model::json::{item_to_json, new_item_from_json, patch_from_json};
use item_model::{Attribute, IndexKey, Item, Order, StoreError, Value, validate};
use item_store::ItemStore;
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use store_embedded::EmbeddedStore;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = match &error {
            StoreError::NotFound => StatusCode::NOT_FOUND,
            StoreError::AlreadyExists => StatusCode::CONFLICT,
            StoreError::VersionMismatch(_) => StatusCode::PRECONDITION_FAILED,
            StoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            StoreError::Throttled(_) | StoreError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            eprintln!("store error: {error}");
        }
        ApiError(status, error.to_string())
    }
}

fn bad_request(message: impl ToString) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.to_string())
}

type ApiResult<T> = Result<T, ApiError>;

fn item(item: &Item) -> Json<JsonValue> {
    Json(item_to_json(item))
}

async fn create_item(
    State(store): State<EmbeddedStore>,
    Json(body): Json<JsonValue>,
) -> ApiResult<(StatusCode, Json<JsonValue>)> {
    let mut new =
        new_item_from_json(body, None, || uuid::Uuid::new_v4().to_string()).map_err(bad_request)?;
    if !new.attributes.iter().any(|a| a.name == "likes") {
        new.attributes
            .push(Attribute::new("likes", Value::Number("0".into())));
    }
    validate::new_item(&new)?;
    let created = store.create(new).await?;
    Ok((StatusCode::CREATED, item(&created)))
}

async fn get_item(
    State(store): State<EmbeddedStore>,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    validate::id(&id)?;
    Ok(item(&store.get(&id).await?))
}

/// `PATCH /items/{id}`: a merge patch of an existing item (the bench sends
/// `If-Match: *`; an update without an expected version requires the item
/// to exist anyway).
async fn update_item(
    State(store): State<EmbeddedStore>,
    Path(id): Path<String>,
    Json(body): Json<JsonValue>,
) -> ApiResult<Json<JsonValue>> {
    validate::id(&id)?;
    let patch = patch_from_json(body, &id).map_err(bad_request)?;
    validate::patch(&patch)?;
    Ok(item(&store.update(&id, patch, None).await?))
}

async fn like_item(
    State(store): State<EmbeddedStore>,
    Path(id): Path<String>,
) -> ApiResult<Json<JsonValue>> {
    validate::id(&id)?;
    Ok(item(&store.increment(&id, "likes", 1).await?))
}

async fn delete_item(
    State(store): State<EmbeddedStore>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    validate::id(&id)?;
    store.delete(&id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /items?userId=U&limit=N&cursor=C`: the user's items, newest first,
/// paged with the store's own cursor.
async fn list_items(
    State(store): State<EmbeddedStore>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<JsonValue>> {
    let user_id = params
        .user_id
        .ok_or_else(|| bad_request("userId is required"))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit < 1 {
        return Err(bad_request("limit must be at least 1"));
    }
    let query = item_model::Query {
        key: IndexKey::UserId(user_id),
        order: Order::Desc,
        limit: limit.min(MAX_LIMIT),
        cursor: params.cursor.filter(|c| !c.is_empty()),
    };
    validate::query(&query)?;
    let page = store.query(query).await?;
    let items: Vec<JsonValue> = page.items.iter().map(item_to_json).collect();
    Ok(Json(json!({ "items": items, "next": page.next_cursor })))
}

async fn healthz() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = env::var("DATA").unwrap_or_else(|_| "./baseline-items.db".into());
    let bind = env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let store = EmbeddedStore::open(&data)?;

    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/items", post(create_item).get(list_items))
        .route(
            "/items/{id}",
            get(get_item).patch(update_item).delete(delete_item),
        )
        .route("/items/{id}/likes", post(like_item))
        .with_state(store);

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("axum-embedded listening on {bind}, data in {data}");
    axum::serve(listener, app).await?;
    Ok(())
}
