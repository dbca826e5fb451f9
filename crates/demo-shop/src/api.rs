//! The HTTP API: routes, handlers, bearer sessions and JSON errors.
//!
//! Two groups of routes: the shop's API (catalog, login, cart, orders), to which the
//! fault knobs apply, and the operational ones (`/health`, `/metrics`,
//! `/admin/knobs`), which always answer promptly. Every route is counted in the
//! metrics under its pattern.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::cache::Cache;
use crate::clock;
use crate::db::{Db, OrderItems, OrderRefused};
use crate::events::Publisher;
use crate::knobs::{self, KnobState, Knobs};
use crate::metrics::{self, Metrics, PoolGauge};

/// Default and largest page sizes of `GET /products`.
const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;
/// Results of `GET /products/search`.
const SEARCH_LIMIT: i64 = 20;
/// Longest accepted search text.
const MAX_QUERY_LEN: usize = 100;
/// Largest quantity of one product in a cart or order.
const MAX_QTY: i64 = 1000;
/// The `Cache-Status` header (RFC 9211) of product details.
const CACHE_STATUS: &str = "cache-status";
const CACHE_HIT: &str = "demo-shop; hit";
const CACHE_MISS: &str = "demo-shop; fwd=miss";

/// What every handler shares.
pub(crate) struct AppState {
    pub db: Db,
    pub cache: Cache,
    pub events: Publisher,
    pub knobs: Arc<KnobState>,
    pub metrics: Arc<Metrics>,
    pub sessions: Sessions,
    /// Products seeded (the catalog does not change while the shop runs).
    pub product_total: u64,
}

/// Bearer tokens of logged-in users, kept in memory.
#[derive(Default)]
pub(crate) struct Sessions(RwLock<HashMap<String, i64>>);

impl Sessions {
    fn open(&self, user: i64) -> String {
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), user);
        token
    }

    fn user(&self, token: &str) -> Option<i64> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .copied()
    }
}

/// The whole application: API routes behind the knobs, operational routes beside
/// them, all measured.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/products", get(list_products))
        .route("/products/search", get(search_products))
        .route("/products/{id}", get(product_detail))
        .route("/login", post(login))
        .route("/cart", post(add_to_cart))
        .route("/orders", post(place_order))
        .route("/orders/{id}", get(order_status))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            knobs::apply,
        ));
    let operations = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route("/admin/knobs", get(get_knobs).put(put_knobs));
    api.merge(operations)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::record,
        ))
        .with_state(state)
}

/// An error answer: a status and `{"error": "..."}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(String),
    Unauthorized,
    NotFound(&'static str),
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required".to_owned(),
            ),
            ApiError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found")),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".to_owned(),
            ),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        tracing::warn!(%error, "database error");
        ApiError::Internal
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Parses a JSON body whatever its content type; an empty body is `{}`.
fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|error| ApiError::BadRequest(format!("invalid JSON body: {error}")))
}

/// The logged-in user, from `authorization: Bearer TOKEN`.
struct User(i64);

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(ApiError::Unauthorized)?;
        state
            .sessions
            .user(token)
            .map(User)
            .ok_or(ApiError::Unauthorized)
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

#[derive(Deserialize)]
struct PageParams {
    page: Option<u32>,
    size: Option<u32>,
}

async fn list_products(
    State(state): State<Arc<AppState>>,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(params) = params?;
    let page = params.page.unwrap_or(1).max(1);
    let size = params
        .size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let offset = i64::from(page - 1) * i64::from(size);
    let items = state.db.products(offset, i64::from(size)).await?;
    Ok(Json(json!({
        "items": items,
        "page": page,
        "total": state.product_total,
    })))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
}

/// `%text%` for `LIKE`, lower-cased, with `\`, `%` and `_` escaped by `\`.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

async fn search_products(
    State(state): State<Arc<AppState>>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(params) = params?;
    let q = params.q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "the query parameter q is required".to_owned(),
        ));
    }
    if q.len() > MAX_QUERY_LEN {
        return Err(ApiError::BadRequest(format!(
            "q is longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    let items = state.db.search(&like_pattern(&q), SEARCH_LIMIT).await?;
    Ok(Json(json!({ "items": items, "q": q })))
}

async fn product_detail(
    State(state): State<Arc<AppState>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    if let Some(body) = state.cache.get(id).await {
        state.metrics.cache_hit();
        return Ok(json_answer(body, CACHE_HIT));
    }
    state.metrics.cache_miss();
    let product = state
        .db
        .product(id)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    let body = Bytes::from(serde_json::to_vec(&product).map_err(|error| {
        tracing::warn!(%error, "could not serialize a product");
        ApiError::Internal
    })?);
    state.cache.put(id, body.clone()).await;
    Ok(json_answer(body, CACHE_MISS))
}

/// A 200 answer with a ready JSON body and its cache status.
fn json_answer(body: Bytes, cache_status: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_STATUS, HeaderValue::from_static(cache_status));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    user: String,
    password: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request: LoginRequest = json_body(&body)?;
    let user = state
        .db
        .login(&request.user, &request.password)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(json!({ "token": state.sessions.open(user) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    product: Option<i64>,
    qty: Option<i64>,
}

fn checked_qty(qty: Option<i64>) -> Result<i64, ApiError> {
    let qty = qty.unwrap_or(1);
    if (1..=MAX_QTY).contains(&qty) {
        Ok(qty)
    } else {
        Err(ApiError::BadRequest(format!(
            "qty must be between 1 and {MAX_QTY}"
        )))
    }
}

async fn add_to_cart(
    State(state): State<Arc<AppState>>,
    User(user): User,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request: LineRequest = json_body(&body)?;
    let product = request
        .product
        .ok_or_else(|| ApiError::BadRequest("product is required".to_owned()))?;
    let qty = checked_qty(request.qty)?;
    let items = state
        .db
        .add_to_cart(user, product, qty)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    Ok((StatusCode::CREATED, Json(json!({ "items": items }))))
}

async fn place_order(
    State(state): State<Arc<AppState>>,
    User(user): User,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request: LineRequest = json_body(&body)?;
    let items = match request.product {
        Some(id) => OrderItems::Product {
            id,
            qty: checked_qty(request.qty)?,
        },
        None if request.qty.is_some() => {
            return Err(ApiError::BadRequest("qty needs a product".to_owned()))
        }
        None => OrderItems::Cart,
    };
    let order = match state
        .db
        .place_order(user, items, clock::now_millis())
        .await?
    {
        Ok(order) => order,
        Err(OrderRefused::NoSuchProduct) => return Err(ApiError::NotFound("product")),
        Err(OrderRefused::EmptyCart) => {
            return Err(ApiError::BadRequest("the cart is empty".to_owned()))
        }
    };
    state.metrics.order_placed();
    // The order is written either way; an event that did not go out leaves it
    // pending, which the client sees when it polls.
    match state.events.publish(order).await {
        Ok(()) => state.metrics.event_published(),
        Err(error) => tracing::warn!(order, %error, "could not publish order.placed"),
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": order, "state": "pending" })),
    ))
}

async fn order_status(
    State(state): State<Arc<AppState>>,
    User(user): User,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = id?;
    let order = state
        .db
        .order(user, id)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    Ok(Json(json!({
        "id": order.id,
        "state": order.state,
        "created_at": clock::rfc3339(order.created_at),
        "confirmed_at": order.confirmed_at.map(clock::rfc3339),
    })))
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    let (in_use, size) = state.db.pool_usage();
    let text = state.metrics.render(PoolGauge { in_use, size });
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn get_knobs(State(state): State<Arc<AppState>>) -> Json<Knobs> {
    Json(state.knobs.get())
}

async fn put_knobs(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Knobs>, ApiError> {
    let knobs: Knobs = json_body(&body)?;
    knobs.validate().map_err(ApiError::BadRequest)?;
    tracing::info!(?knobs, "knobs replaced");
    state.knobs.set(knobs.clone());
    Ok(Json(knobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_lowercased_and_escaped() {
        assert_eq!(like_pattern("Widget"), "%widget%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object() {
        let request: LineRequest = json_body(&Bytes::new()).unwrap();
        assert!(request.product.is_none() && request.qty.is_none());
        assert!(json_body::<LineRequest>(&Bytes::from_static(b"{\"x\":1}")).is_err());
    }

    #[test]
    fn sessions_map_tokens_to_users() {
        let sessions = Sessions::default();
        let token = sessions.open(42);
        assert_eq!(token.len(), 32);
        assert_eq!(sessions.user(&token), Some(42));
        assert_eq!(sessions.user("nope"), None);
    }
}
