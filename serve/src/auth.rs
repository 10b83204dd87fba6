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
    let given =
        request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(bearer_credentials);
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

/// The credentials of a `Bearer` authorization; the scheme's name is case-insensitive (RFC 7235).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_credentials_trimmed() {
        for value in ["Bearer abc", "bearer abc", "BEARER  abc ", " Bearer abc"] {
            assert_eq!(bearer_credentials(value), Some("abc"), "{value:?}");
        }
        for value in ["Basic abc", "Bearerabc", "abc", ""] {
            assert_eq!(bearer_credentials(value), None, "{value:?}");
        }
    }
}
