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
//!
//! The same table decides Airflow tasks (the task interface): a try that raised such an error,
//! or one whose class, base classes or causes name one, fails at once instead of using up its
//! retries; any other try gets Airflow's own decision.

use runretry_kit::{
    export_policy, set_tag, Action, Decision, ExceptionInfo, Failure, Policy, Run, RunRetries, Selection, Strategy,
    TaskAction, TaskCase, TaskDecision, TaskPolicy,
};

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

// ANCHOR: task-policy
impl TaskPolicy for PermanentErrorsPolicy {
    fn decide_task(task: &TaskCase) -> TaskDecision {
        let decision = runretry_default_policy::task::decide_task(task);
        if decision.action != TaskAction::Retry {
            return decision;
        }
        let Some((kind, what, found)) = task.exceptions().find_map(|e| permanent_error(&exception_text(e))) else {
            return decision;
        };
        let why = format!("the task raised {what} ({found}), which a retry cannot fix: failing now");
        TaskDecision { events: vec![format!("runretry/permanent_error: {kind}")], ..TaskDecision::fail(why) }
    }
}
// ANCHOR_END: task-policy

/// An exception as the table reads it: its class and base classes, then its message
/// (`builtins.ModuleNotFoundError builtins.ImportError: No module named 'pandas'`).
fn exception_text(exception: &ExceptionInfo) -> String {
    let mut text = exception.class_name.clone();
    for base in &exception.bases {
        text.push(' ');
        text.push_str(base);
    }
    text.push_str(": ");
    text.push_str(&exception.message);
    text
}

export_policy!(PermanentErrorsPolicy, task: PermanentErrorsPolicy);

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

    fn failed_try(class: &str, bases: &[&str], message: &str) -> TaskCase {
        let exception = ExceptionInfo {
            class_name: class.into(),
            bases: bases.iter().map(|b| b.to_string()).collect(),
            message: message.into(),
        };
        TaskCase::new("etl", "load", "manual__1", 1, 3, exception)
    }

    #[test]
    fn a_task_raising_a_permanent_error_fails_at_once() {
        let missing = failed_try("builtins.ModuleNotFoundError", &["builtins.ImportError"], "No module named 'x'");
        let d = PermanentErrorsPolicy::decide_task(&missing);
        assert_eq!(d.action, TaskAction::Fail);
        assert!(d.reason.contains("a missing module (ModuleNotFoundError)"), "{}", d.reason);
        // A subclass of a permanent error is one too, found through its bases.
        let own = failed_try("dags.etl.BadSettings", &["mylib.ConfigurationError", "builtins.Exception"], "no key");
        assert_eq!(PermanentErrorsPolicy::decide_task(&own).action, TaskAction::Fail);
        let http = failed_try("requests.exceptions.HTTPError", &[], "404 Client Error: Not Found for url: x");
        assert_eq!(PermanentErrorsPolicy::decide_task(&http).action, TaskAction::Fail);
    }

    #[test]
    fn a_cause_can_make_a_task_error_permanent() {
        let mut wrapped = failed_try("dags.etl.LoadFailed", &["builtins.Exception"], "load failed");
        wrapped.causes = vec![ExceptionInfo::new("builtins.SyntaxError", "invalid syntax")];
        assert_eq!(PermanentErrorsPolicy::decide_task(&wrapped).action, TaskAction::Fail);
    }

    #[test]
    fn any_other_task_error_gets_airflows_own_decision() {
        let transient = failed_try("builtins.ConnectionError", &["builtins.OSError"], "reset by peer");
        let d = PermanentErrorsPolicy::decide_task(&transient);
        assert_eq!(d, runretry_default_policy::task::decide_task(&transient));
        assert_eq!((d.action, d.delay_seconds), (TaskAction::Retry, Some(300.0)));
        let throttled = failed_try("requests.exceptions.HTTPError", &[], "429 Client Error: Too Many Requests");
        assert_eq!(PermanentErrorsPolicy::decide_task(&throttled).action, TaskAction::Retry);
    }

    #[test]
    fn the_example_task_cases_pass_natively() {
        let cases = conformance::load_task_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native_tasks::<PermanentErrorsPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }

    #[test]
    fn the_example_cases_pass_natively() {
        let cases = conformance::load_cases(concat!(env!("CARGO_MANIFEST_DIR"), "/cases").as_ref()).unwrap();
        let report = conformance::run_native::<PermanentErrorsPolicy>(&cases, &[]);
        assert!(report.failures.is_empty() && report.passed > 0, "{report}");
    }
}
