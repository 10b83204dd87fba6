//! Checks a guest's answer against the contract before anyone acts on it: an untrusted policy
//! must not be able to launch a run of steps that do not exist.

use std::collections::HashSet;

use crate::case::{Run, Tags};
use crate::decision::{Action, Decision};
use crate::error::Error;

/// The keys a selection may name: plan keys, and `name[k]` for every plan step `name[?]`.
pub struct PlanKeys<'a> {
    keys: HashSet<&'a str>,
    mapped: HashSet<&'a str>,
}

impl<'a> PlanKeys<'a> {
    /// Index the run's plan.
    pub fn new(run: &'a Run) -> Self {
        let keys: HashSet<&str> = run.steps.iter().map(|s| s.key.as_str()).collect();
        let mapped = keys.iter().filter_map(|k| k.strip_suffix("[?]")).collect();
        PlanKeys { keys, mapped }
    }

    fn allows(&self, key: &str) -> bool {
        if self.keys.contains(key) {
            return true;
        }
        // A resolved instance `name[k]` of a mapped plan step `name[?]`.
        key.strip_suffix(']')
            .and_then(|body| body.rfind('[').map(|open| (&body[..open], &body[open + 1..])))
            .is_some_and(|(name, k)| k != "?" && self.mapped.contains(name))
    }

    /// Check a step list (`field` names it in the error) and return it sorted.
    pub fn check_steps(&self, field: &str, steps: Vec<String>) -> Result<Vec<String>, Error> {
        let mut seen = HashSet::new();
        for key in &steps {
            if !self.allows(key) {
                return Err(Error::invalid_output(format!("{field}: {key:?} is not a step of the plan")));
            }
            if !seen.insert(key.as_str()) {
                return Err(Error::invalid_output(format!("{field}: duplicate step key {key:?}")));
            }
        }
        let mut sorted = steps;
        sorted.sort();
        Ok(sorted)
    }
}

/// Bytes of text in a decision: the sandbox caps what a guest may hand back.
pub fn decision_size(d: &Decision) -> usize {
    let tags = |t: &Tags| t.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    d.steps.iter().flatten().map(String::len).sum::<usize>()
        + tags(&d.new_run_tags)
        + tags(&d.failed_run_tags)
        + d.events.iter().map(String::len).sum::<usize>()
        + d.reason.len()
        + d.resubmit_run_id.as_ref().map_or(0, String::len)
}

/// Check a decision's shape and step keys; returns it with its steps sorted.
pub fn check_decision(run: &Run, mut d: Decision, tag_pairs: (usize, usize)) -> Result<Decision, Error> {
    let (new_pairs, failed_pairs) = tag_pairs;
    if new_pairs != d.new_run_tags.len() {
        return Err(Error::invalid_output("new_run_tags: duplicate tag key"));
    }
    if failed_pairs != d.failed_run_tags.len() {
        return Err(Error::invalid_output("failed_run_tags: duplicate tag key"));
    }
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
            if d.strategy.is_none() {
                return Err(Error::invalid_output("strategy: a retry needs a strategy"));
            }
            let Some(steps) = d.steps.take() else {
                return Err(Error::invalid_output("steps: a retry needs a step list"));
            };
            if steps.is_empty() && !run.steps.is_empty() {
                return Err(Error::invalid_output("steps: a retry must run at least one step"));
            }
            d.steps = Some(PlanKeys::new(run).check_steps("steps", steps)?);
        }
        Action::ResubmitExisting | Action::None => {
            if d.steps.is_some() {
                return Err(Error::invalid_output("steps: only a LAUNCH_NEW decision selects steps"));
            }
        }
    }
    if (d.action == Action::ResubmitExisting) != d.resubmit_run_id.is_some() {
        return Err(Error::invalid_output(
            "resubmit_run_id: set exactly when the action is RESUBMIT_EXISTING",
        ));
    }
    Ok(d)
}
