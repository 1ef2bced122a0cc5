//! What a Rust user would write instead of edge-items: axum + tokio + the
//! official AWS SDK for DynamoDB, plain idiomatic code (one shared client,
//! no tuning). Serves the benchmark's HTTP contract (benches/load.lua).
//!
//! Environment: `TABLE` (default `SdkItems`), `DYNAMODB_ENDPOINT` (e.g.
//! DynamoDB Local), `AWS_REGION` (default us-east-1), credentials from the
//! SDK's default chain, `BIND` (default 127.0.0.1:8000).
//!
//! The table (partition key `itemId`, GSI `userId-createdAt`, on demand) is
//! created at start if missing.

use std::collections::HashMap;
use std::env;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::config::Region;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ScalarAttributeType,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const INDEX: &str = "userId-createdAt";
const DEFAULT_LIMIT: i32 = 20;
const MAX_LIMIT: i32 = 100;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
struct AppState {
    client: Client,
    table: Arc<str>,
}

enum ApiError {
    NotFound,
    BadRequest(String),
    Unavailable(String),
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "Item not found".to_string()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

/// A failed DynamoDB call: a failed `attribute_exists(itemId)` condition
/// means the item is missing.
impl<E, R> From<SdkError<E, R>> for ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    fn from(error: SdkError<E, R>) -> Self {
        match error.code() {
            Some("ConditionalCheckFailedException") => ApiError::NotFound,
            Some("ValidationException") => {
                ApiError::BadRequest(error.message().unwrap_or("invalid request").to_string())
            }
            Some("ProvisionedThroughputExceededException" | "ThrottlingException") => {
                ApiError::Unavailable(DisplayErrorContext(&error).to_string())
            }
            _ => {
                let message = DisplayErrorContext(&error).to_string();
                eprintln!("DynamoDB error: {message}");
                ApiError::Internal(message)
            }
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

// JSON <-> DynamoDB attribute values.

fn to_attribute(value: Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s),
        Value::Array(values) => AttributeValue::L(values.into_iter().map(to_attribute).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.into_iter().map(|(k, v)| (k, to_attribute(v))).collect())
        }
    }
}

fn number(n: &str) -> Value {
    serde_json::from_str::<serde_json::Number>(n)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(n.to_string()))
}

fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => Value::Array(values.iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Ss(values) => values.iter().map(|s| Value::String(s.clone())).collect(),
        AttributeValue::Ns(values) => values.iter().map(|n| number(n)).collect(),
        AttributeValue::B(blob) => Value::String(STANDARD.encode(blob.as_ref())),
        AttributeValue::Bs(blobs) => blobs
            .iter()
            .map(|b| Value::String(STANDARD.encode(b.as_ref())))
            .collect(),
        _ => Value::Null,
    }
}

/// The API's view of a stored item: its attributes, with `id` beside
/// `itemId`.
fn item_json(item: &Item) -> Value {
    let mut object: Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), from_attribute(v)))
        .collect();
    if let Some(AttributeValue::S(id)) = item.get("itemId") {
        object.insert("id".into(), Value::String(id.clone()));
    }
    Value::Object(object)
}

fn object(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::BadRequest("expected a JSON object".into())),
    }
}

fn now_rfc3339() -> String {
    // Fixed width (microseconds, Z), so text order is time order in the index.
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("the current time formats")
}

fn key(id: String) -> Item {
    HashMap::from([("itemId".to_string(), AttributeValue::S(id))])
}

// Handlers.

async fn create_item(
    State(state): State<AppState>,
    Json(body): Json<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut fields = object(body)?;
    let id = match fields.remove("id").or_else(|| fields.remove("itemId")) {
        Some(Value::String(id)) if !id.is_empty() => id,
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(_) => return Err(ApiError::BadRequest("`id` must be a string".into())),
    };
    fields.insert("itemId".into(), Value::String(id.clone()));
    fields.insert("createdAt".into(), Value::String(now_rfc3339()));
    fields.entry("likes").or_insert(json!(0));

    let mut response = fields.clone();
    response.insert("id".into(), Value::String(id));
    let item: Item = fields
        .into_iter()
        .map(|(k, v)| (k, to_attribute(v)))
        .collect();
    state
        .client
        .put_item()
        .table_name(&*state.table)
        .set_item(Some(item))
        .send()
        .await?;
    Ok((StatusCode::CREATED, Json(Value::Object(response))))
}

async fn get_item(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let output = state
        .client
        .get_item()
        .table_name(&*state.table)
        .set_key(Some(key(id)))
        .send()
        .await?;
    let item = output.item().ok_or(ApiError::NotFound)?;
    Ok(Json(item_json(item)))
}

/// `PATCH /items/{id}`: sets the body's fields on an existing item (the
/// bench sends `If-Match: *`, which is what the condition checks anyway).
async fn update_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let mut fields = object(body)?;
    fields.remove("id");
    fields.remove("itemId");
    if fields.is_empty() {
        return Err(ApiError::BadRequest("no fields to update".into()));
    }
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut sets = Vec::new();
    for (i, (name, value)) in fields.into_iter().enumerate() {
        names.insert(format!("#f{i}"), name);
        values.insert(format!(":v{i}"), to_attribute(value));
        sets.push(format!("#f{i} = :v{i}"));
    }
    let output = state
        .client
        .update_item()
        .table_name(&*state.table)
        .set_key(Some(key(id)))
        .update_expression(format!("SET {}", sets.join(", ")))
        .condition_expression("attribute_exists(itemId)")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .return_values(ReturnValue::AllNew)
        .send()
        .await?;
    let item = output.attributes().ok_or(ApiError::NotFound)?;
    Ok(Json(item_json(item)))
}

async fn like_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let output = state
        .client
        .update_item()
        .table_name(&*state.table)
        .set_key(Some(key(id)))
        .update_expression("ADD likes :one")
        .condition_expression("attribute_exists(itemId)")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await?;
    let item = output.attributes().ok_or(ApiError::NotFound)?;
    Ok(Json(item_json(item)))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// A cursor is the query's `LastEvaluatedKey` (string attributes only on
/// this table), as URL-safe base64 of its JSON.
fn encode_cursor(key: &Item) -> String {
    let object: Map<String, Value> = key
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), Value::String(v.as_s().ok()?.clone()))))
        .collect();
    URL_SAFE_NO_PAD.encode(Value::Object(object).to_string())
}

fn decode_cursor(cursor: &str) -> Option<Item> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    let object: HashMap<String, String> = serde_json::from_slice(&bytes).ok()?;
    Some(
        object
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect(),
    )
}

async fn list_items(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let user_id = params
        .user_id
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::BadRequest("userId is required".into()))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit < 1 {
        return Err(ApiError::BadRequest("limit must be at least 1".into()));
    }
    let start = match params.cursor.filter(|c| !c.is_empty()) {
        Some(cursor) => {
            Some(decode_cursor(&cursor).ok_or(ApiError::BadRequest("invalid cursor".into()))?)
        }
        None => None,
    };
    let output = state
        .client
        .query()
        .table_name(&*state.table)
        .index_name(INDEX)
        .key_condition_expression("userId = :u")
        .expression_attribute_values(":u", AttributeValue::S(user_id))
        .scan_index_forward(false)
        .limit(limit.min(MAX_LIMIT))
        .set_exclusive_start_key(start)
        .send()
        .await?;
    let items: Vec<Value> = output.items().iter().map(item_json).collect();
    let next = output.last_evaluated_key().map(encode_cursor);
    Ok(Json(json!({ "items": items, "next": next })))
}

async fn delete_item(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .client
        .delete_item()
        .table_name(&*state.table)
        .set_key(Some(key(id)))
        .send()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn healthz() -> &'static str {
    "ok"
}

/// Creates the table if it does not exist and waits until it is ACTIVE.
async fn ensure_table(client: &Client, table: &str) -> Result<(), Box<dyn std::error::Error>> {
    let exists = match client.describe_table().table_name(table).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(e) => return Err(DisplayErrorContext(e).to_string().into()),
    };
    if !exists {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
        };
        let created = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("itemId")?)
            .attribute_definitions(attribute("userId")?)
            .attribute_definitions(attribute("createdAt")?)
            .key_schema(key("itemId", KeyType::Hash)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(INDEX)
                    .key_schema(key("userId", KeyType::Hash)?)
                    .key_schema(key("createdAt", KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()?,
            )
            .send()
            .await;
        match created {
            Ok(_) => eprintln!("created table {table}"),
            // Another process created it meanwhile.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(e) => return Err(DisplayErrorContext(e).to_string().into()),
        }
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = env::var("TABLE").unwrap_or_else(|_| "SdkItems".into());
    let region = env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let bind = env::var("BIND").unwrap_or_else(|_| "127.0.0.1:8000".into());

    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region));
    if let Ok(endpoint) = env::var("DYNAMODB_ENDPOINT")
        && !endpoint.is_empty()
    {
        loader = loader.endpoint_url(endpoint);
    }
    let client = Client::new(&loader.load().await);
    ensure_table(&client, &table).await?;

    let state = AppState {
        client,
        table: table.into(),
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/items", post(create_item).get(list_items))
        .route(
            "/items/{id}",
            get(get_item).patch(update_item).delete(delete_item),
        )
        .route("/items/{id}/likes", post(like_item))
        .with_state(state);

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    eprintln!("axum-dynamodb listening on {bind}");
    axum::serve(listener, app).await?;
    Ok(())
}
