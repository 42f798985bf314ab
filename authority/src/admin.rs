//! The development admin surface under `/_admin/…`: key rotation, fault injection,
//! token-request counters, minting. Served only on loopback by default.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::server::Shared;
use crate::{Fault, TokenLifetime};

/// The admin routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_admin/stats", get(stats))
        .route("/_admin/stats/reset", post(reset_stats))
        .route("/_admin/keys", get(keys))
        .route("/_admin/keys/rotate", post(rotate))
        .route("/_admin/keys/retire", post(retire))
        .route("/_admin/faults", get(faults).post(inject).delete(clear))
        .route("/_admin/token", post(mint))
}

fn failure(error: crate::Error) -> Response {
    tracing::warn!(%error, "admin request failed");
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": error.to_string() })),
    )
        .into_response()
}

async fn stats(State(s): State<Arc<Shared>>) -> Response {
    Json(s.counters.snapshot()).into_response()
}

async fn reset_stats(State(s): State<Arc<Shared>>) -> Response {
    s.counters.reset();
    Json(s.counters.snapshot()).into_response()
}

async fn keys(State(s): State<Arc<Shared>>) -> Response {
    let kids = s.state.published_kids();
    Json(serde_json::json!({
        "signing_kid": kids.last(),
        "published_kids": kids,
    }))
    .into_response()
}

async fn rotate(State(s): State<Arc<Shared>>) -> Response {
    match s.state.rotate_keys() {
        Ok(r) => Json(r).into_response(),
        Err(e) => failure(e),
    }
}

async fn retire(State(s): State<Arc<Shared>>) -> Response {
    match s.state.retire_previous_keys() {
        Ok(r) => Json(r).into_response(),
        Err(e) => failure(e),
    }
}

async fn faults(State(s): State<Arc<Shared>>) -> Response {
    Json(s.faults.active()).into_response()
}

async fn inject(State(s): State<Arc<Shared>>, Json(fault): Json<Fault>) -> Response {
    tracing::warn!(?fault, "fault injected");
    s.faults.inject(fault);
    Json(s.faults.active()).into_response()
}

async fn clear(State(s): State<Arc<Shared>>) -> Response {
    s.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct MintRequest {
    client: String,
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    lifetime_secs: Option<u64>,
}

async fn mint(State(s): State<Arc<Shared>>, Json(req): Json<MintRequest>) -> Response {
    let api = req
        .api
        .unwrap_or_else(|| crate::defaults::TODO_API.to_owned());
    let lifetime = req
        .lifetime_secs
        .map(|secs| TokenLifetime::Fixed(Duration::from_secs(secs)))
        .unwrap_or(s.lifetime);
    match s.state.mint_token(&s.base_url, &req.client, &api, lifetime) {
        Ok(token) => Json(serde_json::json!({ "access_token": token })).into_response(),
        Err(e) => failure(e),
    }
}
