//! The optional bearer token: every endpoint but the health checks (probes carry no secrets)
//! requires `Authorization: Bearer <token>` when a token is configured.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The expected token.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) Arc<str>);

/// Refuse a request without the token, 401 with a `WWW-Authenticate` challenge.
pub(crate) async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/health" || path.starts_with("/health/") {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    // Constant time: how much of a guess matched must not show in the response time.
    match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(token.0.as_bytes())) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({"error": {
                "kind": "unauthorized",
                "message": "this server requires Authorization: Bearer <token>",
            }})),
        )
            .into_response(),
    }
}
