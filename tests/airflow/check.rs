//! One case of Airflow's retry delay, a line that `python/tests/generators/airflow_retry_delay/
//! gen.py` wrote from Airflow's own `next_retry_datetime`, against the default task policy's
//! `default_retry_delay`. Shared (`#[path]`) by the native test of the kept cases
//! (`guest-default-policy/tests/airflow.rs`) and the live differential test
//! (`python/tests/airflow.rs`).

use runretry_default_policy::airflow::{default_retry_delay, python_str_utc, FailedTry, RetrySettings};
use serde_json::Value;

/// Whether our delay for the case on `line` is Airflow's, to the bit (or both raise alike).
pub fn check(line: &str) -> Result<(), String> {
    let case: Value = serde_json::from_str(line).map_err(|e| format!("{line}: not JSON: {e}"))?;
    let field = |name: &str| case.get(name).ok_or_else(|| format!("{line}: no {name}"));
    // `inf` and `nan` are written as the strings Python prints.
    let number = |name: &str| -> Result<f64, String> {
        match field(name)? {
            Value::String(text) => text.parse().map_err(|e| format!("{line}: {name}: {e}")),
            value => value.as_f64().ok_or_else(|| format!("{line}: {name} is not a number")),
        }
    };
    let text = |name: &str| -> Result<&str, String> {
        field(name)?.as_str().ok_or_else(|| format!("{line}: {name} is not a string"))
    };
    let settings = RetrySettings {
        retry_delay_seconds: number("retry_delay")?,
        retry_exponential_backoff: number("retry_exponential_backoff")?,
        max_retry_delay_seconds: field("max_retry_delay")?.as_f64(),
        max_task_retry_delay_seconds: field("max_task_retry_delay")?.as_i64().ok_or_else(|| format!("{line}: cap"))?,
        ..RetrySettings::default()
    };
    let logical_date = field("logical_date_micros")?.as_i64().map(python_str_utc);
    let failed = FailedTry {
        dag_id: text("dag_id")?,
        task_id: text("task_id")?,
        logical_date: logical_date.as_deref(),
        try_number: field("try_number")?.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or("try_number")?,
    };
    let ours = default_retry_delay(&settings, &failed).map_err(|raised| raised.0.to_string());
    let airflows = match case.get("raises").and_then(Value::as_str) {
        Some(raised) => Err(raised.to_string()),
        None => Ok(number("delay_seconds")?),
    };
    let same = match (&ours, &airflows) {
        (Ok(ours), Ok(airflows)) => ours.to_bits() == airflows.to_bits(),
        (Err(ours), Err(airflows)) => ours == airflows,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!("{line}\n  Airflow: {airflows:?}\n  ours:    {ours:?}"))
    }
}
