//! Dagster's own rules that the host enforces on any policy's answer, whatever the policy: the
//! tag-key rule and its warning (`dagster/_utils/tags.py`), and which run may be submitted again
//! (`auto_run_reexecution.py`). Named for Dagster so that a second orchestrator gets a module of
//! its own beside this one.

use runretry_kit::{tag, Run, RunStatus};

/// Dagster's explanation of a compliant tag key (`dagster/_utils/tags.py`).
const VALID_TAG_KEY_EXPLANATION: &str = "Allowed characters: alpha-numeric, '_', '-', '.'. Tag keys can \
     also contain a namespace section, separated by a '/'. Each section must have <= 63 characters.";

/// Dagster's `VALID_TAG_KEY_REGEX`: `^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$`.
pub fn is_compliant_tag_key(key: &str) -> bool {
    let section =
        |s: &str| (1..=63).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    match key.split_once('/') {
        Some((namespace, name)) => section(namespace) && section(name),
        None => section(key),
    }
}

/// The warning Dagster logs for non-compliant keys, naming at most five of them.
pub(crate) fn non_compliant_keys_warning(keys: &[&str]) -> String {
    let sample: Vec<String> = keys.iter().take(5).map(|k| python_repr(k)).collect();
    format!("Non-compliant tag keys like [{}] are deprecated. {VALID_TAG_KEY_EXPLANATION}", sample.join(", "))
}

/// A key as Python's `repr` shows it (single quotes), for Dagster's warning text.
fn python_repr(key: &str) -> String {
    format!("'{}'", key.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Only an automatic retry of this run that never started may be submitted again: a child in
/// the run group that still exists, is `NOT_STARTED`, and is automatic (it carries
/// `dagster/retry_number`, or the run's `dagster/auto_retry_run_id` names it).
pub(crate) fn check_resubmit_target(run: &Run, id: &str) -> Result<(), &'static str> {
    let refuse = |why: &'static str| Err(why);
    let Some(member) = run.group.iter().find(|m| m.run_id == id && m.exists) else {
        return refuse("is not in the run group");
    };
    if member.parent_run_id.as_deref() != Some(run.run_id.as_str()) {
        return refuse("is not a retry of this run");
    }
    let named = tag(&run.tags, "dagster/auto_retry_run_id") == Some(id);
    if !named && tag(&member.tags, "dagster/retry_number").is_none() {
        return refuse("is a manual re-execution, not an automatic retry");
    }
    if member.status != Some(RunStatus::NotStarted) {
        return refuse("has already started (only a NOT_STARTED run is submitted again)");
    }
    Ok(())
}
