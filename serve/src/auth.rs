//! The optional bearer token: every endpoint but the health checks (probes carry no secrets)
//! requires `Authorization: Bearer <token>` when a token is configured; `/health/ready` names
//! the active version only to a client that presents it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
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
    if presents(request.headers(), &token) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({"error": {
            "kind": "unauthorized",
            "message": "this server requires Authorization: Bearer <token>",
        }})),
    )
        .into_response()
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
pub(crate) fn presents(headers: &HeaderMap, token: &Token) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(bearer_credentials);
    // Constant time: how much of a guess matched must not show in the response time.
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.0.as_bytes())))
}

/// Why `token` can never be presented, if it cannot: a request header carries one line of
/// visible ASCII, so a token must be non-empty printable ASCII without spaces (RFC 6750's
/// `b64token` and more). A server started with any other token would answer 401 to everything.
/// The reason never shows the token.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err("is empty".into());
    }
    if token.contains(['\n', '\r']) {
        let lines = token.split(['\n', '\r']).filter(|line| !line.is_empty()).count();
        return Err(format!("has {lines} lines; a token is one line (a final newline is ignored)"));
    }
    match token.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        Some((at, c)) => {
            let what = if c.is_ascii() { "a space or a control character" } else { "a character that is not ASCII" };
            Err(format!("has {what} at byte {at}; a token is printable ASCII without spaces"))
        }
        None => Ok(()),
    }
}

/// The credentials of a `Bearer` authorization; the scheme's name is case-insensitive (RFC 7235).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

#[cfg(test)]
mod tests {
    use super::{bearer_credentials, validate_token};

    #[test]
    fn a_token_is_one_word_of_printable_ascii() {
        assert_eq!(validate_token("s3cret-._~+/="), Ok(()));
        for (token, why) in [
            ("", "empty"),
            ("a\nb", "2 lines"),
            ("a\r\nb", "2 lines"),
            ("a b", "a space or a control character at byte 1"),
            ("a\tb", "a space or a control character"),
            ("caf\u{e9}", "not ASCII"),
        ] {
            let refused = validate_token(token).expect_err(token);
            assert!(refused.contains(why), "{token:?}: {refused}");
        }
    }

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
