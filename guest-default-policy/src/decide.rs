//! The complete retry decision (docs/dagster-semantics.md §6–§8): the failure-time check, the
//! daemon's checks, idempotence, strategy and launch, folded into one answer, under the rules of
//! the case's Dagster release (`config.dagster_version`, [`Rules`]).

use crate::group::{existing_automatic_retry, existing_members};
use crate::parse::{boolean_tag, python_int};
use crate::rules::Rules;
use crate::select::relaunch;
use crate::tags::{
    new_run_tags, AUTO_RETRY_RUN_ID, BACKFILL, FAILURE_REASON, MAX_RETRIES, RETRY_ON_ASSET_OR_OP_FAILURE,
    RETRY_STRATEGY, WILL_RETRY,
};
use runretry_kit::{
    set_tag, tag, Action, Decision, Failure, FailureReason, Run, RunRetries, RunStatus, Strategy, Tags,
};

/// Logged when a step failure is not retried because of `retry_on_asset_or_op_failure`.
pub const STEP_FAILURE_NOT_RETRIED_EVENT: &str = "Not retrying run since it failed due to an asset or op failure and run retries are configured with retry_on_asset_or_op_failure set to false.";
/// Dagster's warning for a `dagster/max_retries` tag that is not an int.
pub const MAX_RETRIES_NOT_AN_INT_EVENT: &str = "Error parsing int from tag dagster/max_retries, won't retry the run.";
/// Logged when the launch itself fails (an empty selection, a deleted ancestor, ...).
pub const FAILED_TO_RETRY_EVENT: &str = "Failed to retry run";
/// Logged on the failed run when a retry is launched.
pub const RETRYING_EVENT: &str = "Retrying the run";

/// Decide what to do about a failed run, as the case's Dagster release does (1.13.29 when the
/// case names none).
pub fn should_retry(run: &Run, failure: &Failure, config: &RunRetries) -> Decision {
    let rules = Rules::of(config.dagster());
    let mut draft = Draft::default();
    if !config.enabled {
        return draft.none("run retries are disabled (run_retries.enabled is false)");
    }
    let reason = match failure_reason(run, failure) {
        Ok(reason) => reason,
        Err(unknown) => {
            draft.event(format!("ValueError: '{unknown}' is not a valid RunFailureReason"));
            return draft.none(format!(
                "failure reason {unknown:?} is not a RunFailureReason, so Dagster raises and never retries"
            ));
        }
    };
    let retry_on = boolean_tag(tag(&run.tags, RETRY_ON_ASSET_OR_OP_FAILURE), config.retry_on_asset_or_op_failure);
    let (will_retry, why) = match tag(&run.tags, WILL_RETRY) {
        Some(value) => {
            (boolean_tag(Some(value), false), format!("dagster/will_retry was already decided as {value:?}"))
        }
        None if run.status != RunStatus::Failure => {
            return draft.none(format!("the run's status is {}; only FAILURE runs are retried", run.status.as_str()));
        }
        None => match failure_time_decision(run, reason.as_ref(), retry_on, config, &rules, &mut draft) {
            Ok((decision, why)) => {
                draft.tag(WILL_RETRY, if decision { "true" } else { "false" });
                (decision, why)
            }
            Err(raised) => {
                draft.event(raised.clone());
                return draft.none(format!("Dagster {} raises before deciding: {raised}", rules.version));
            }
        },
    };
    if !will_retry {
        if reason == Some(FailureReason::StepFailure) && !retry_on {
            draft.event(STEP_FAILURE_NOT_RETRIED_EVENT.to_string());
        }
        return draft.none(why);
    }
    if let Some(refusal) = backfill_refusal(run).filter(|_| rules.backfill_gate) {
        draft.event(refusal.clone());
        return draft.none(refusal);
    }
    launch(run, why, &rules, draft)
}

/// `retry_run`: idempotence, strategy, selection and the new run's tags.
fn launch(run: &Run, why: String, rules: &Rules, mut draft: Draft) -> Decision {
    let Some(members) = existing_members(run) else {
        draft.event(format!(
            "Could not find run group for {}. This is most likely because the root run was deleted",
            run.run_id
        ));
        return draft.none(format!("the root run {} of the run group no longer exists", run.group_root()));
    };
    if let Some(child) = existing_automatic_retry(run, &members) {
        if tag(&run.tags, AUTO_RETRY_RUN_ID).is_none() {
            draft.tag(AUTO_RETRY_RUN_ID, &child.run_id);
        }
        if child.status == Some(RunStatus::NotStarted) {
            let mut decision = draft.none(format!(
                "automatic retry {} already exists but never started, so it is submitted again",
                child.run_id
            ));
            decision.action = Action::ResubmitExisting;
            decision.resubmit_run_id = Some(child.run_id.clone());
            return decision;
        }
        return draft.none(format!("run {} is already the automatic retry of this run", child.run_id));
    }
    let strategy = match tag(&run.tags, RETRY_STRATEGY) {
        None => Strategy::FromFailure,
        Some(raw) => Strategy::parse(raw).unwrap_or_else(|| {
            draft.event(format!("Error parsing retry strategy from tag '{RETRY_STRATEGY}: {raw}'"));
            Strategy::FromFailure
        }),
    };
    draft.strategy = Some(strategy);
    let relaunch = match relaunch(run, strategy, rules) {
        Ok(relaunch) => relaunch,
        Err(error) => {
            draft.event(FAILED_TO_RETRY_EVENT.to_string());
            draft.event(error.clone());
            draft.tag(WILL_RETRY, "false");
            return draft.none(format!("the retry could not be launched: {error}"));
        }
    };
    let retry_number = u32::try_from(members.len()).unwrap_or(u32::MAX);
    draft.event(RETRYING_EVENT.to_string());
    let selection = relaunch.selection;
    Decision {
        action: Action::LaunchNew,
        retry_number: Some(retry_number),
        strategy: Some(strategy),
        // The whole job, whose plan the case does not hold: no step list to give.
        steps: (!relaunch.whole_job).then_some(selection.steps),
        new_run_tags: new_run_tags(run, retry_number, strategy),
        failed_run_tags: draft.failed_run_tags,
        resubmit_run_id: None,
        delay_seconds: 0.0,
        events: draft.events,
        reason: why,
        asset_selection: selection.asset_selection,
        asset_check_selection: selection.asset_check_selection,
    }
}

/// Turn a decision to launch into Dagster's "no retry": nothing launched or selected,
/// `dagster/will_retry` set to `"false"` and the launch's event dropped, saying `why`. For
/// policies that take the default decision and then decline it.
pub fn not_retried(mut decision: Decision, why: impl Into<String>) -> Decision {
    decision.action = Action::None;
    decision.retry_number = None;
    decision.steps = None;
    decision.asset_selection = None;
    decision.asset_check_selection = None;
    decision.new_run_tags.clear();
    decision.delay_seconds = 0.0;
    set_tag(&mut decision.failed_run_tags, WILL_RETRY, "false");
    decision.events.retain(|e| e != RETRYING_EVENT);
    decision.reason = why.into();
    decision
}

/// The reason as Dagster reads it: this failure's reason, else the run's `dagster/failure_reason`
/// tag; an empty value is none. `Err` carries a value `RunFailureReason(...)` would reject.
fn failure_reason(run: &Run, failure: &Failure) -> Result<Option<FailureReason>, String> {
    let raw = failure
        .reason
        .as_ref()
        .map(FailureReason::as_str)
        .filter(|r| !r.is_empty())
        .or_else(|| tag(&run.tags, FAILURE_REASON).filter(|r| !r.is_empty()));
    match raw.map(FailureReason::parse) {
        Some(FailureReason::Other(unknown)) => Err(unknown),
        known => Ok(known),
    }
}

/// `auto_reexecution_should_retry_run` (§6.1) for a FAILURE run: the decision and why; `Err`
/// holds the exception the release raises instead of deciding.
fn failure_time_decision(
    run: &Run,
    reason: Option<&FailureReason>,
    retry_on: bool,
    config: &RunRetries,
    rules: &Rules,
    draft: &mut Draft,
) -> Result<(bool, String), String> {
    if reason == Some(&FailureReason::StepFailure) && !retry_on {
        return Ok((false, "the run failed with STEP_FAILURE and retry_on_asset_or_op_failure is false".into()));
    }
    let max_retries = match tag(&run.tags, MAX_RETRIES) {
        None => config.max_retries,
        Some(raw) => match python_int(raw) {
            Some(n) => n,
            None => {
                draft.event(MAX_RETRIES_NOT_AN_INT_EVENT.to_string());
                return Ok((false, format!("dagster/max_retries {raw:?} is not an integer")));
            }
        },
    };
    if max_retries <= 0 {
        return Ok((false, format!("max_retries is {max_retries}, so the run is not retried")));
    }
    let root = run.group_root();
    let Some(members) = existing_members(run) else {
        if rules.missing_root_raises {
            // Before 1.10.16 `get_run_group`'s error escapes (docs/dagster-versions.md §3.3).
            return Err(format!(
                "DagsterRunNotFoundError: Run id {root} set as root run id for run {} was not found in instance.",
                run.run_id
            ));
        }
        return Ok((false, format!("the root run {root} of the run group no longer exists")));
    };
    let size = members.len();
    Ok(if i128::try_from(size).unwrap_or(i128::MAX) <= i128::from(max_retries) {
        (true, format!("max_retries {max_retries} allows retry {size} of run group {root}"))
    } else {
        (false, format!("run group {root} has {size} runs, which exhausts max_retries {max_retries}"))
    })
}

/// The daemon's backfill gate (§6.2 step 6; 1.12.19 on): `will_retry` stays "true" when it refuses.
fn backfill_refusal(run: &Run) -> Option<String> {
    tag(&run.tags, BACKFILL)?;
    match &run.backfill {
        Some(backfill) if backfill.exists => backfill.status.is_terminal().then(|| {
            format!(
                "Not retrying run since it is part of a backfill that is in a terminal state ({}).",
                backfill.status.as_str()
            )
        }),
        _ => Some("Not retrying run since it is part of a backfill that no longer exists.".into()),
    }
}

/// What a decision accumulates before it is known: engine events and failed-run tags.
#[derive(Default)]
struct Draft {
    events: Vec<String>,
    failed_run_tags: Tags,
    strategy: Option<Strategy>,
}

impl Draft {
    fn event(&mut self, event: String) {
        self.events.push(event);
    }

    fn tag(&mut self, key: &str, value: &str) {
        set_tag(&mut self.failed_run_tags, key, value);
    }

    /// A decision that launches nothing.
    fn none(self, reason: impl Into<String>) -> Decision {
        Decision {
            action: Action::None,
            retry_number: None,
            strategy: self.strategy,
            steps: None,
            new_run_tags: Vec::new(),
            failed_run_tags: self.failed_run_tags,
            resubmit_run_id: None,
            delay_seconds: 0.0,
            events: self.events,
            reason: reason.into(),
            asset_selection: None,
            asset_check_selection: None,
        }
    }
}
