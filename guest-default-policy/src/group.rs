//! The run group: counting it, finding an existing automatic retry, loading ancestors
//! (docs/dagster-semantics.md §7, §16). A run that is absent from the group, or marked deleted,
//! cannot be loaded, exactly as Dagster's storage lookups fail for it.

use crate::tags::{AUTO_RETRY_RUN_ID, RETRY_NUMBER};
use runretry_kit::{tag, GroupMember, Run};

/// A run that still exists, looked up by id.
pub fn find_existing<'a>(run: &'a Run, run_id: &str) -> Option<&'a GroupMember> {
    run.group.iter().find(|m| m.run_id == run_id && m.exists)
}

/// Dagster's `get_run_group`: the existing members, or `None` when the root cannot be loaded
/// (`DagsterRunNotFoundError`).
pub fn existing_members(run: &Run) -> Option<Vec<&GroupMember>> {
    find_existing(run, run.group_root())?;
    Some(run.group.iter().filter(|m| m.exists).collect())
}

/// `get_automatically_retried_run_if_exists`: the run named by `dagster/auto_retry_run_id` if
/// that tag is set (even when that run is gone: the tag wins); otherwise the first child of this
/// run in the group, if it carries `dagster/retry_number` (an automatic retry, not a manual one).
pub fn existing_automatic_retry<'a>(run: &Run, members: &[&'a GroupMember]) -> Option<&'a GroupMember> {
    if let Some(child_id) = tag(&run.tags, AUTO_RETRY_RUN_ID) {
        return members.iter().copied().find(|m| m.run_id == child_id);
    }
    let first_child = members.iter().copied().find(|m| m.parent_run_id.as_deref() == Some(run.run_id.as_str()))?;
    tag(&first_child.tags, RETRY_NUMBER).is_some().then_some(first_child)
}

/// Re-executing from failure loads every ancestor's outputs; a deleted ancestor is an error.
pub fn check_ancestors_exist(run: &Run) -> Result<(), String> {
    let mut next = run.parent_run_id.clone();
    let mut seen = std::collections::HashSet::new();
    while let Some(parent_id) = next {
        // A parent chain that loops is malformed input; stop rather than spin.
        if !seen.insert(parent_id.clone()) {
            break;
        }
        let parent = find_existing(run, &parent_id).ok_or_else(|| {
            format!("DagsterRunNotFoundError: Could not load ancestor run {parent_id} for re-execution")
        })?;
        next = parent.parent_run_id.clone();
    }
    Ok(())
}
