//! Dagster's system tags and the new run's tag map (docs/dagster-semantics.md §3, §8.3).

use runretry_kit::{tag, BackfillStatus, Run, Strategy, TagMerge, Tags};

#[allow(missing_docs)]
pub const MAX_RETRIES: &str = "dagster/max_retries";
#[allow(missing_docs)]
pub const RETRY_STRATEGY: &str = "dagster/retry_strategy";
#[allow(missing_docs)]
pub const RETRY_ON_ASSET_OR_OP_FAILURE: &str = "dagster/retry_on_asset_or_op_failure";
#[allow(missing_docs)]
pub const FAILURE_REASON: &str = "dagster/failure_reason";
#[allow(missing_docs)]
pub const WILL_RETRY: &str = "dagster/will_retry";
#[allow(missing_docs)]
pub const AUTO_RETRY_RUN_ID: &str = "dagster/auto_retry_run_id";
#[allow(missing_docs)]
pub const RETRY_NUMBER: &str = "dagster/retry_number";
#[allow(missing_docs)]
pub const PARENT_RUN_ID: &str = "dagster/parent_run_id";
#[allow(missing_docs)]
pub const ROOT_RUN_ID: &str = "dagster/root_run_id";
#[allow(missing_docs)]
pub const IS_RESUME_RETRY: &str = "dagster/is_resume_retry";
#[allow(missing_docs)]
pub const IS_ASSET_RESUME_RETRY: &str = "dagster/is_asset_resume_retry";
#[allow(missing_docs)]
pub const BACKFILL: &str = "dagster/backfill";

/// The backfill tags, re-added to a retry only while the backfill is REQUESTED.
pub const BACKFILL_TAGS: [&str; 3] = [BACKFILL, "dagster/parent_backfill_id", "dagster/root_backfill_id"];

/// `TAGS_TO_MAYBE_OMIT_ON_RETRY`: never inherited from the parent run.
pub const OMITTED_ON_RETRY: [&str; 10] = [
    ".dagster/run_metrics",
    "dagster/run_metrics",
    FAILURE_REASON,
    RETRY_NUMBER,
    IS_RESUME_RETRY,
    WILL_RETRY,
    AUTO_RETRY_RUN_ID,
    BACKFILL_TAGS[0],
    BACKFILL_TAGS[1],
    BACKFILL_TAGS[2],
];

/// `create_reexecuted_run`'s merge, later wins: job tags, the parent's tags minus the omitted
/// ones (backfill tags back while the backfill is REQUESTED), the retry number, the lineage, and
/// the strategy marker.
pub fn new_run_tags(run: &Run, retry_number: u32, strategy: Strategy) -> Tags {
    let mut tags = TagMerge::new(&run.job_tags);
    let backfill_requested = tag(&run.tags, BACKFILL).is_some()
        && run.backfill.as_ref().is_some_and(|b| b.exists && b.status == BackfillStatus::Requested);
    for (key, value) in &run.tags {
        let inherited =
            !OMITTED_ON_RETRY.contains(&key.as_str()) || (backfill_requested && BACKFILL_TAGS.contains(&key.as_str()));
        if inherited {
            tags.set(key, value);
        }
    }
    tags.set(RETRY_NUMBER, &retry_number.to_string());
    tags.set(PARENT_RUN_ID, &run.run_id);
    tags.set(ROOT_RUN_ID, run.group_root());
    match strategy {
        Strategy::FromFailure => tags.set(IS_RESUME_RETRY, "true"),
        Strategy::FromAssetFailure => tags.set(IS_ASSET_RESUME_RETRY, "true"),
        Strategy::AllSteps => {}
    }
    tags.into_tags()
}
