//! Dagster's run-retry semantics, except for failures that a retry cannot fix.
//!
//! A run that failed because its configuration is invalid, a module is missing, the code does
//! not parse, or a service answered "400 Bad Request" will fail the same way on every retry:
//! each retry is a wasted run and a delayed alert. This policy reads the failure's error
//! (`failure.message`: the error's class and message, then its causes') and declines the retry
//! when it names such an error, saying which in `reason` and `events` and tagging the failed run
//! `runretry/permanent_error: <kind>`. Otherwise the decision is the default policy's.
//!
//! What counts as permanent is [`PERMANENT_ERRORS`], a table of error class names (add a row to
//! extend it), and HTTP client errors (4xx) other than 408 Request Timeout and 429 Too Many
//! Requests, which are worth a retry.

use runretry_kit::{export_policy, set_tag, Action, RunRetries, Decision, Failure, Policy, Run, Selection, Strategy};

/// The tag this policy writes on a run it did not retry, with the error's kind.
pub const PERMANENT_TAG: &str = "runretry/permanent_error";

// ANCHOR: table
/// A kind of error that a retry cannot fix.
pub struct PermanentError {
    /// The tag value: short, stable.
    pub kind: &'static str,
    /// What it is, for the decision's reason.
    pub what: &'static str,
    /// Error class names that mean it, matched as whole names anywhere in the error.
    pub names: &'static [&'static str],
}

/// Errors a retry cannot fix, by class name. First match wins.
pub const PERMANENT_ERRORS: &[PermanentError] = &[
    PermanentError {
        kind: "configuration",
        what: "a configuration error",
        names: &[
            "DagsterInvalidConfigError",
            "DagsterInvalidDefinitionError",
            "ImproperlyConfigured",
            "ConfigurationError",
        ],
    },
    PermanentError { kind: "missing_module", what: "a missing module", names: &["ModuleNotFoundError", "ImportError"] },
    PermanentError { kind: "syntax", what: "a syntax error", names: &["SyntaxError", "IndentationError", "TabError"] },
];

/// HTTP client errors that are worth a retry: 408 Request Timeout, 429 Too Many Requests.
const RETRYABLE_HTTP: [u16; 2] = [408, 429];

/// Words that, just before a status code, say it is an HTTP status.
const HTTP_MARKERS: [&str; 3] = ["http", "status", "client error"];
// ANCHOR_END: table

/// What the error is, when a retry cannot fix it: its kind, what it is, and the name or status
/// found.
pub fn permanent_error(message: &str) -> Option<(&'static str, &'static str, String)> {
    for error in PERMANENT_ERRORS {
        if let Some(name) = error.names.iter().find(|name| contains_name(message, name)) {
            return Some((error.kind, error.what, name.to_string()));
        }
    }
    http_client_error(message).map(|status| ("http_4xx", "an HTTP client error", format!("HTTP {status}")))
}

/// `name` in `text` as a whole identifier: not inside a longer name.
fn contains_name(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The first HTTP status 400–499 in `text` that is not worth a retry: a three-digit number
/// standing alone, just after "HTTP", "status" or "client error" (urllib's "HTTP Error 404",
/// httpx's "Client error '404 Not Found'", "status code 403") or just before "Client Error"
/// (requests' "404 Client Error").
pub fn http_client_error(text: &str) -> Option<u16> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|at| {
        let digits = &bytes[at..at + 3];
        let alone = !(at > 0 && bytes[at - 1].is_ascii_alphanumeric())
            && !bytes.get(at + 3).is_some_and(u8::is_ascii_alphanumeric);
        if !(alone && digits[0] == b'4' && digits.iter().all(u8::is_ascii_digit)) {
            return None;
        }
        let status = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        // Bytes, not a str slice: 20 bytes back may fall inside a multi-byte character.
        let before = &bytes[at.saturating_sub(20)..at];
        let marked = HTTP_MARKERS.iter().any(|m| before.windows(m.len()).any(|w| w == m.as_bytes()))
            || bytes[at + 3..].starts_with(b" client error");
        (marked && !RETRYABLE_HTTP.contains(&status)).then_some(status)
    })
}

struct PermanentErrorsPolicy;

// ANCHOR: policy
impl Policy for PermanentErrorsPolicy {
    fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
        let decision = runretry_default_policy::should_retry(run, failure, config);
        if decision.action != Action::LaunchNew {
            return decision;
        }
        let Some((kind, what, found)) = permanent_error(failure.message.as_deref().unwrap_or_default()) else {
            return decision;
        };
        let why = format!("the run failed with {what} ({found}), which a retry cannot fix: not retrying");
        let mut decision = runretry_default_policy::not_retried(decision, why.clone());
        decision.events.push(why);
        set_tag(&mut decision.failed_run_tags, PERMANENT_TAG, kind);
        decision
    }

    fn select_steps(run: &Run, strategy: Strategy) -> Result<Selection, String> {
        runretry_default_policy::select_steps(run, strategy)
    }
}
// ANCHOR_END: policy

export_policy!(PermanentErrorsPolicy);

// The policy is plain Rust: its tests run natively (`cargo test`), no Wasm involved.
#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::conformance;

    #[test]
    fn class_names_from_the_table() {
        let kind = |m: &str| permanent_error(m).map(|(kind, _, found)| format!("{kind} {found}"));
        assert_eq!(
            kind("ModuleNotFoundError: No module named 'pandas'").as_deref(),
            Some("missing_module ModuleNotFoundError")
        );
        assert_eq!(
            kind("dagster._core.errors.DagsterInvalidConfigError: Error in config for job").as_deref(),
            Some("configuration DagsterInvalidConfigError")
        );
        assert_eq!(kind("  File \"x.py\", line 3\nSyntaxError: invalid syntax").as_deref(), Some("syntax SyntaxError"));
        // Inside a longer name it is another error.
        assert_eq!(kind("MyImportErrorHandler: gave up"), None);
        assert_eq!(kind("ConnectionError: reset by peer"), None);
    }

    #[test]
    fn http_client_errors_but_not_timeouts_or_throttling() {
        for (text, status) in [
            ("urllib.error.HTTPError: HTTP Error 404: Not Found", Some(404)),
            ("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api/x", Some(401)),
            ("httpx.HTTPStatusError: Client error '403 Forbidden' for url 'https://api/x'", Some(403)),
            ("the API answered with status code 400", Some(400)),
            ("HTTP 429 Too Many Requests", None),
            ("requests.exceptions.HTTPError: 408 Client Error: Request Timeout", None),
            ("HTTPError: 503 Server Error: Service Unavailable", None),
            ("processed 404 rows, then the disk filled up", None),
            ("status 4040", None),
            ("ééééééééééééééé HTTP 404", Some(404)),
            ("ééééééééééé 404", None),
        ] {
            assert_eq!(http_client_error(text), status, "{text}");
        }
    }

    #[test]
    fn a_429_then_a_404_is_the_404() {
        assert_eq!(http_client_error("HTTP 429, then HTTP Error 404"), Some(404));
    }

    #[test]
    fn the_example_cases_pass_natively() {
        let cases = conformance::load_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native::<PermanentErrorsPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }
}
