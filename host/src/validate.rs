//! Checks a guest's answer against the contract before anyone acts on it: an untrusted policy
//! must not be able to launch a run of steps that do not exist.

use std::collections::HashSet;

use runretry_kit::{
    Action, DagsterVersion, Decision, Run, RunRetries, Selection, Step, StepKey, Strategy, TaskAction, TaskDecision,
};

use crate::dagster;
use crate::error::{clip_to, is_hidden_format_char, Error};

/// The keys a selection may name: plan keys, and `name[k]` for every plan step `name[?]`.
pub(crate) struct PlanKeys<'a> {
    keys: HashSet<&'a str>,
    mapped: HashSet<&'a str>,
}

impl<'a> PlanKeys<'a> {
    /// Index the run's plan.
    pub(crate) fn new(run: &'a Run) -> Self {
        let keys: HashSet<&str> = run.steps.iter().map(|s| s.key.as_str()).collect();
        let mapped = keys
            .iter()
            .filter_map(|k| match StepKey::parse(k) {
                StepKey::Unresolved(name) => Some(name),
                _ => None,
            })
            .collect();
        PlanKeys { keys, mapped }
    }

    fn allows(&self, key: &str) -> bool {
        // A plan key, or a resolved instance `name[k]` of a mapped plan step `name[?]`.
        self.keys.contains(key)
            || matches!(StepKey::parse(key), StepKey::Resolved(name, _) if self.mapped.contains(name))
    }

    /// Check a step list (`field` names it in the error) and return it sorted.
    pub(crate) fn check_steps(&self, field: &str, steps: Vec<String>) -> Result<Vec<String>, Error> {
        let mut seen = HashSet::new();
        for key in &steps {
            if !self.allows(key) {
                return Err(Error::invalid_output(format!("{field}: {} is not a step of the plan", quoted(key))));
            }
            if !seen.insert(key.as_str()) {
                return Err(Error::invalid_output(format!("{field}: duplicate step key {}", quoted(key))));
            }
        }
        let mut sorted = steps;
        sorted.sort();
        Ok(sorted)
    }
}

/// An optional list of asset or check keys, as a selection holds them.
type KeyList = Option<Vec<String>>;

/// Check the asset and check selections of a launch with `strategy` and return them sorted.
/// FROM_ASSET_FAILURE defines the new run by them, so it needs both, not both empty. A key may
/// name an asset (a check) of the plan or of the failed run's own selection: a FROM_FAILURE
/// retry carries that over, whatever the plan lists.
fn check_entity_selections(
    run: &Run,
    strategy: Strategy,
    release: DagsterVersion,
    asset_selection: KeyList,
    asset_check_selection: KeyList,
) -> Result<(KeyList, KeyList), Error> {
    // Before 1.11.3 a FROM_ASSET_FAILURE retry with nothing to re-run is the whole job, with no
    // selection at all (docs/dagster-versions.md §3.5).
    let whole_job = release < EMPTY_RETRIES_END && asset_selection.is_none() && asset_check_selection.is_none();
    if strategy == Strategy::FromAssetFailure && !whole_job {
        match (&asset_selection, &asset_check_selection) {
            (None, _) | (_, None) => {
                return Err(Error::invalid_output(
                    "asset_selection, asset_check_selection: FROM_ASSET_FAILURE needs both (an empty list \
                     selects none)",
                ))
            }
            (Some(a), Some(c)) if a.is_empty() && c.is_empty() => {
                return Err(Error::invalid_output(
                    "asset_selection, asset_check_selection: a FROM_ASSET_FAILURE retry must select an asset \
                     or a check",
                ))
            }
            _ => {}
        }
    }
    // The known keys are indexed only for a list that is there (an op job's retry has none).
    fn known<'a>(run: &'a Run, of_step: fn(&Step) -> &Vec<String>, selected: &'a KeyList) -> HashSet<&'a str> {
        run.steps.iter().flat_map(of_step).chain(selected.iter().flatten()).map(String::as_str).collect()
    }
    let assets = asset_selection
        .map(|keys| check_keys("asset_selection", "asset", &known(run, |s| &s.assets, &run.asset_selection), keys))
        .transpose()?;
    let checks = asset_check_selection
        .map(|keys| {
            let known = known(run, |s| &s.checks, &run.asset_check_selection);
            check_keys("asset_check_selection", "check", &known, keys)
        })
        .transpose()?;
    Ok((assets, checks))
}

/// Every key known and listed once; returned sorted (a selection is a set).
fn check_keys(field: &str, what: &str, known: &HashSet<&str>, keys: Vec<String>) -> Result<Vec<String>, Error> {
    let mut seen = HashSet::with_capacity(keys.len());
    for key in &keys {
        if !known.contains(key.as_str()) {
            return Err(Error::invalid_output(format!(
                "{field}: {} is not an {what} of the plan or of the failed run's selection",
                quoted(key)
            )));
        }
        if !seen.insert(key.as_str()) {
            return Err(Error::invalid_output(format!("{field}: duplicate {what} key {}", quoted(key))));
        }
    }
    let mut sorted = keys;
    sorted.sort();
    Ok(sorted)
}

/// Check a selection `select-steps` returned for `strategy`: size, step keys, asset and check
/// keys. Returns it with every list sorted.
pub(crate) fn check_selection(
    run: &Run,
    strategy: Strategy,
    selection: Selection,
    max_output_bytes: usize,
) -> Result<Selection, Error> {
    if serialized_size_within(&selection, max_output_bytes).is_err() {
        return Err(Error::invalid_output(format!(
            "the selection is larger than the {max_output_bytes} byte output cap (as serialised)"
        )));
    }
    let steps = PlanKeys::new(run).check_steps("steps", selection.steps)?;
    let (asset_selection, asset_check_selection) =
        // `select-steps` has no config: its answers are the newest release's (§12.1).
        check_entity_selections(
            run,
            strategy,
            DagsterVersion::NEWEST,
            selection.asset_selection,
            selection.asset_check_selection,
        )?;
    Ok(Selection { steps, asset_selection, asset_check_selection })
}

/// Most entries one tag map of a decision may hold. Dagster runs carry tens of tags; a cap keeps
/// a guest from handing the orchestrator a million of them.
pub const MAX_TAGS: usize = 10_000;
/// Longest tag key, in bytes. Dagster-compliant keys are at most 127 bytes (two sections of 63
/// and a slash); anything far longer is not a tag but a payload.
pub const MAX_TAG_KEY_BYTES: usize = 1_024;
/// Longest tag value, in bytes: a MySQL `TEXT` column, where Dagster's MySQL storage keeps tag
/// values, holds no more.
pub const MAX_TAG_VALUE_BYTES: usize = 65_535;
/// Most engine events one decision may ask the orchestrator to log.
pub const MAX_EVENTS: usize = 1_000;
/// Longest `reason`, and longest event, a decision carries out, in bytes: longer text is cut and
/// the cut marked. Twice the longest tag value, so every text the default policy writes (which
/// quotes at most one tag value, as Dagster's own messages do) goes out whole, while a policy's
/// 15 MiB reason does not reach a terminal, an answer or the decision log whole.
pub const MAX_DECISION_TEXT_BYTES: usize = 2 * MAX_TAG_VALUE_BYTES + 2;

/// The tags the orchestrator handed the policy (the run's and the job's): copied unchanged, they
/// are the orchestrator's own data, so the output checks do not judge them. Whatever a case may
/// carry, the default policy, which copies them, can then always answer.
pub(crate) struct InheritedTags<'a> {
    run: &'a Run,
    /// Built on the first pair that fails a check: most decisions never need it.
    pairs: std::cell::OnceCell<HashSet<(&'a str, &'a str)>>,
}

impl<'a> InheritedTags<'a> {
    pub(crate) fn new(run: &'a Run) -> Self {
        InheritedTags { run, pairs: std::cell::OnceCell::new() }
    }

    fn all(&self) -> impl Iterator<Item = &'a (String, String)> {
        self.run.tags.iter().chain(&self.run.job_tags)
    }

    fn contains(&self, key: &str, value: &str) -> bool {
        self.pairs.get_or_init(|| self.all().map(|(k, v)| (k.as_str(), v.as_str())).collect()).contains(&(key, value))
    }

    /// How many more tags a tag list may hold than [`MAX_TAGS`]: as many as were handed in.
    fn count(&self) -> usize {
        self.run.tags.len() + self.run.job_tags.len()
    }

    /// How many more bytes a decision may serialise to than the output cap: room for every
    /// inherited tag, escaped at worst (`\u0000` is six bytes for one).
    fn serialized_allowance(&self) -> usize {
        self.all().map(|(k, v)| 6 * (k.len() + v.len()) + 6).sum()
    }
}

/// Check one tag list as the guest returned it (before duplicates could merge): no more than
/// [`MAX_TAGS`] pairs, unique non-empty keys within the size caps, and no control characters
/// (NUL breaks PostgreSQL `text`; others forge log lines) or invisible format characters (a
/// byte order mark can make `\u{feff}dagster/retry_number` pass for a system tag). Values may
/// hold tabs and line breaks, as JSON-valued tags do. A pair copied unchanged from the input's
/// tags passes whatever it holds (`InheritedTags`); a duplicate key never does. Returns the
/// keys Dagster would call non-compliant (`VALID_TAG_KEY_REGEX`), for a warning.
fn check_tags<'a>(
    field: &str,
    pairs: &'a [(String, String)],
    inherited: &InheritedTags<'_>,
) -> Result<Vec<&'a str>, Error> {
    let cap = MAX_TAGS + inherited.count();
    if pairs.len() > cap {
        return Err(Error::invalid_output(format!(
            "{field}: {} tags, over the cap of {cap} ({MAX_TAGS} beyond the {} the case holds)",
            pairs.len(),
            inherited.count()
        )));
    }
    let mut seen = HashSet::with_capacity(pairs.len());
    let mut non_compliant = Vec::new();
    for (key, value) in pairs {
        if !seen.insert(key.as_str()) {
            return Err(Error::invalid_output(format!("{field}: tag {}: duplicate tag key", quoted(key))));
        }
        if let Err(what) = check_tag(key, value) {
            if !inherited.contains(key, value) {
                return Err(Error::invalid_output(match key.is_empty() {
                    true => format!("{field}: a tag key is empty"),
                    false => format!("{field}: tag {}: {what}", quoted(key)),
                }));
            }
        }
        if !dagster::is_compliant_tag_key(key) {
            non_compliant.push(key.as_str());
        }
    }
    Ok(non_compliant)
}

/// What is wrong with one tag a policy made, if anything (see `check_tags`).
fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.len() > MAX_TAG_KEY_BYTES {
        return Err(format!("key is {} bytes, over the cap of {MAX_TAG_KEY_BYTES}", key.len()));
    }
    if value.len() > MAX_TAG_VALUE_BYTES {
        return Err(format!("value is {} bytes, over the cap of {MAX_TAG_VALUE_BYTES}", value.len()));
    }
    if let Some(c) = key.chars().find(|&c| c.is_control() || is_hidden_format_char(c)) {
        return Err(format!("key holds the control or invisible character {}", c.escape_unicode()));
    }
    if let Some(c) =
        value.chars().find(|&c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_hidden_format_char(c))
    {
        return Err(format!("value holds the control or invisible character {}", c.escape_unicode()));
    }
    Ok(())
}

/// A key for an error message: escaped, and cut short if long.
pub(crate) fn quoted(key: &str) -> String {
    let shown: String = key.chars().take(80).collect();
    let more = if shown.len() < key.len() { "..." } else { "" };
    format!("{:?}{more}", shown)
}

/// Bytes of a value serialised as compact JSON, counting no further than `cap + 1`.
pub(crate) fn serialized_size_within<T: serde::Serialize>(value: &T, cap: usize) -> Result<usize, usize> {
    struct Counter {
        bytes: usize,
        cap: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.bytes += buf.len();
            if self.bytes > self.cap {
                return Err(std::io::Error::other("over the cap"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { bytes: 0, cap };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => Ok(counter.bytes),
        Err(_) => Err(counter.bytes),
    }
}

/// The first Dagster release that refuses a retry with nothing to re-run (1.11.3).
const EMPTY_RETRIES_END: DagsterVersion = DagsterVersion::new(1, 11, 3);
/// The first Dagster release whose retries never run beyond the failed run's plan (1.12.0).
const WHOLE_JOB_RETRIES_END: DagsterVersion = DagsterVersion::new(1, 12, 0);

/// Check a decision's tags, shape, size, step, asset and check keys and resubmit target, for
/// the case's Dagster release (`config`);
/// returns it with those lists sorted and Dagster's warning for non-compliant tag keys added to its events.
/// `max_output_bytes` caps the decision as serialised (compact JSON), whatever it holds.
pub(crate) fn check_decision(
    run: &Run,
    config: &RunRetries,
    mut d: Decision,
    max_output_bytes: usize,
) -> Result<Decision, Error> {
    let inherited = InheritedTags::new(run);
    let mut non_compliant = check_tags("new_run_tags", &d.new_run_tags, &inherited)?;
    non_compliant.extend(check_tags("failed_run_tags", &d.failed_run_tags, &inherited)?);
    let warning = (!non_compliant.is_empty()).then(|| dagster::non_compliant_keys_warning(&non_compliant));
    if d.events.len() > MAX_EVENTS {
        return Err(Error::invalid_output(format!("events: {} events, over the cap of {MAX_EVENTS}", d.events.len())));
    }
    // Inherited tags are the input's size, not the policy's: they do not count against the cap.
    let output_cap = max_output_bytes.saturating_add(inherited.serialized_allowance());
    if serialized_size_within(&d, output_cap).is_err() {
        return Err(Error::invalid_output(format!(
            "the decision is larger than the {max_output_bytes} byte output cap (as serialised, beyond the \
             tags it copies from the case)"
        )));
    }
    // Within the cap, still too long to show: cut, marked (the answer is otherwise valid).
    clip_texts(&mut d.reason, &mut d.events);
    if !d.delay_seconds.is_finite() || d.delay_seconds < 0.0 {
        return Err(Error::invalid_output(format!(
            "delay_seconds: {} is not a finite number of seconds >= 0",
            d.delay_seconds
        )));
    }
    match d.action {
        Action::LaunchNew => {
            if d.retry_number.is_none_or(|n| n < 1) {
                return Err(Error::invalid_output("retry_number: a retry needs a retry number >= 1"));
            }
            let Some(strategy) = d.strategy else {
                return Err(Error::invalid_output("strategy: a retry needs a strategy"));
            };
            let release = config.dagster();
            (d.asset_selection, d.asset_check_selection) = check_entity_selections(
                run,
                strategy,
                release,
                d.asset_selection.take(),
                d.asset_check_selection.take(),
            )?;
            match d.steps.take() {
                // Before 1.12.0 a retry can run the whole job beyond the plan the case holds
                // (docs/dagster-versions.md §3.5, §3.7): it has no step list to give.
                None if strategy != Strategy::FromFailure && release < WHOLE_JOB_RETRIES_END => {}
                None => {
                    return Err(Error::invalid_output(format!(
                        "steps: a retry needs a step list (under Dagster {release}, a {} retry runs steps the case \
                         lists)",
                        strategy.as_str()
                    )))
                }
                Some(steps) if steps.is_empty() && !run.steps.is_empty() && release >= EMPTY_RETRIES_END => {
                    return Err(Error::invalid_output(format!(
                        "steps: a retry must run at least one step (Dagster {release} refuses an empty retry; \
                         before {EMPTY_RETRIES_END} one was launched)"
                    )))
                }
                Some(steps) => d.steps = Some(PlanKeys::new(run).check_steps("steps", steps)?),
            }
        }
        Action::ResubmitExisting | Action::None => {
            if d.steps.is_some() {
                return Err(Error::invalid_output("steps: only a LAUNCH_NEW decision selects steps"));
            }
            if d.asset_selection.is_some() || d.asset_check_selection.is_some() {
                return Err(Error::invalid_output(
                    "asset_selection, asset_check_selection: only a LAUNCH_NEW decision selects assets",
                ));
            }
        }
    }
    match (d.action, d.resubmit_run_id.as_deref()) {
        (Action::ResubmitExisting, Some(id)) => dagster::check_resubmit_target(run, id)
            .map_err(|why| Error::invalid_output(format!("resubmit_run_id: run {} {why}", quoted(id))))?,
        (Action::ResubmitExisting, None) | (_, Some(_)) => {
            return Err(Error::invalid_output("resubmit_run_id: set exactly when the action is RESUBMIT_EXISTING"))
        }
        (_, None) => {}
    }
    // Dagster warns about such keys and goes on; so does runretry, in the decision's events.
    d.events.extend(warning);
    Ok(d)
}

/// The longest delay a task decision may ask for: a year, in seconds. Longer is a policy bug
/// (Airflow would park the task for decades), not a decision.
pub const MAX_TASK_DELAY_SECONDS: f64 = 365.0 * 24.0 * 60.0 * 60.0;

/// Check a task decision: a delay only with `retry`, finite, from 0 to a year; the event and
/// size caps of a run decision. Returns it with over-long text clipped, as `check_decision` does.
pub(crate) fn check_task_decision(mut d: TaskDecision, max_output_bytes: usize) -> Result<TaskDecision, Error> {
    if d.events.len() > MAX_EVENTS {
        return Err(Error::invalid_output(format!("events: {} events, over the cap of {MAX_EVENTS}", d.events.len())));
    }
    if serialized_size_within(&d, max_output_bytes).is_err() {
        return Err(Error::invalid_output(format!(
            "the task decision is larger than the {max_output_bytes} byte output cap (as serialised)"
        )));
    }
    match (d.action, d.delay_seconds) {
        (TaskAction::Retry, Some(delay)) if !(delay.is_finite() && (0.0..=MAX_TASK_DELAY_SECONDS).contains(&delay)) => {
            return Err(Error::invalid_output(format!(
                "delay_seconds: {delay} is not a delay (finite, from 0 to {MAX_TASK_DELAY_SECONDS} s, a year)"
            )));
        }
        (TaskAction::Fail | TaskAction::Default, Some(delay)) => {
            return Err(Error::invalid_output(format!(
                "delay_seconds: {delay}, but only a retry has a delay (the action is {})",
                d.action
            )));
        }
        _ => {}
    }
    clip_texts(&mut d.reason, &mut d.events);
    Ok(d)
}

/// A reason or event within the output cap but still too long to show is cut, marked (the
/// answer is otherwise valid).
fn clip_texts(reason: &mut String, events: &mut [String]) {
    if reason.len() > MAX_DECISION_TEXT_BYTES {
        *reason = clip_to(reason, MAX_DECISION_TEXT_BYTES);
    }
    for event in events.iter_mut().filter(|event| event.len() > MAX_DECISION_TEXT_BYTES) {
        *event = clip_to(event, MAX_DECISION_TEXT_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runretry_kit::{RunStatus, StepStatus};

    fn under(version: &str) -> RunRetries {
        RunRetries { dagster_version: Some(DagsterVersion::parse(version).unwrap()), ..RunRetries::default() }
    }

    fn retry(strategy: Strategy, steps: Option<Vec<String>>) -> Decision {
        Decision {
            action: Action::LaunchNew,
            retry_number: Some(1),
            strategy: Some(strategy),
            steps,
            new_run_tags: Vec::new(),
            failed_run_tags: Vec::new(),
            resubmit_run_id: None,
            delay_seconds: 0.0,
            events: Vec::new(),
            reason: String::new(),
            asset_selection: None,
            asset_check_selection: None,
        }
    }

    fn checked(strategy: Strategy, steps: Option<Vec<String>>, version: &str) -> Result<Decision, String> {
        let mut run = Run::new("r", RunStatus::Failure);
        run.steps = vec![Step::new("a", &[], StepStatus::Failure)];
        check_decision(&run, &under(version), retry(strategy, steps), 1 << 20).map_err(|e| e.to_string())
    }

    #[test]
    fn a_retry_without_steps_is_a_whole_job_retry_of_a_release_before_1_12() {
        assert!(checked(Strategy::AllSteps, None, "1.11.16").is_ok());
        assert!(checked(Strategy::FromAssetFailure, None, "1.10.12").is_ok());
        // FROM_ASSET_FAILURE with no selections at all: the whole job, only before 1.11.3.
        assert!(checked(Strategy::FromAssetFailure, None, "1.11.3").unwrap_err().contains("needs both"));
        let newer = checked(Strategy::AllSteps, None, "1.12.0").unwrap_err();
        assert!(newer.contains("steps: a retry needs a step list (under Dagster 1.12.0"), "{newer}");
        // FROM_FAILURE always names its steps.
        assert!(checked(Strategy::FromFailure, None, "1.10.12").unwrap_err().contains("needs a step list"));
    }

    #[test]
    fn an_empty_retry_is_one_of_a_release_before_1_11_3() {
        assert_eq!(checked(Strategy::FromFailure, Some(Vec::new()), "1.11.2").unwrap().steps, Some(Vec::new()));
        let newer = checked(Strategy::FromFailure, Some(Vec::new()), "1.11.3").unwrap_err();
        assert!(newer.contains("at least one step (Dagster 1.11.3 refuses"), "{newer}");
        assert!(checked(Strategy::FromFailure, Some(Vec::new()), "1.13.29").is_err());
        // Steps the plan lacks are refused under every release.
        assert!(checked(Strategy::FromFailure, Some(vec!["z".into()]), "1.11.2").is_err());
    }
}
