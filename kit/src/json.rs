//! The JSON case format (`docs/case-format.md`) for the model types: a case in, a decision or a
//! selection out. Where JSON and the contract differ in shape, this module bridges them:
//! - tags are JSON objects, kept in order (duplicate keys too) as lists of pairs;
//! - `instances` is an object `{mapping_key: status}`;
//! - an absent `run.group` means the run alone;
//! - a deleted backfill may have a null `status` (it then reads `CANCELED`);
//! - a failure reason is a string, unknown ones kept verbatim;
//! - a decision carries `retry`, true exactly for `LAUNCH_NEW`;
//! - asset fields are optional: a case without them is an op job's.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::model::{
    Backfill, BackfillStatus, DagsterVersion, Decision, Failure, FailureReason, GroupMember, MappedInstance, Run,
    RunRetries, StepStatus, Tags,
};
use crate::task::TaskCase;

/// One case: the deployment's config, the failed run, and the failure. Unknown top-level keys
/// (a conformance case's `name`, `expect`, ...) are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The deployment's `run_retries` block (Dagster's defaults when absent).
    #[serde(default)]
    pub config: RunRetries,
    /// The failed run.
    pub run: Run,
    /// The failure being handled.
    #[serde(default)]
    pub failure: Failure,
}

/// Why a text is not a valid case: where (the source and the JSON path) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseError {
    /// What the text came from: a file name, `<stdin>`, `<stdin>:3`.
    pub source: String,
    /// The JSON path of the field at fault (`run.steps[3].status`), when there is one.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {path}: {}", self.source, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for CaseError {}

impl Case {
    /// Parse and validate a case; `source` names it in errors.
    pub fn from_json(source: &str, text: &str) -> Result<Case, CaseError> {
        let case: Case = read_object(source, text, "a case is one JSON object ({\"run\": ...})")?;
        case.validate().map_err(|(path, message)| CaseError::at(source, Some(path), message))?;
        Ok(case)
    }

    /// Check what types cannot (see [`Run::validate`] and [`Failure::validate`]).
    /// `Err((json_path, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.run.validate()?;
        self.failure.validate()?;
        self.validate_for_release()
    }

    /// Check that the run holds nothing the case's Dagster release cannot have: a backfill
    /// status `FAILING` first exists in 1.11.11 (docs/dagster-versions.md §3.6).
    pub fn validate_for_release(&self) -> Result<(), (String, String)> {
        let release = self.config.dagster();
        let failing_since = DagsterVersion::new(1, 11, 11);
        match &self.run.backfill {
            Some(backfill) if backfill.status == BackfillStatus::Failing && release < failing_since => Err((
                "run.backfill.status".into(),
                format!("FAILING first exists in Dagster {failing_since}; config.dagster_version is {release}"),
            )),
            _ => Ok(()),
        }
    }
}

/// A task case as JSON: `{"task": {...}}` (other top-level keys, such as a conformance case's
/// `name` and `expect`, are ignored).
#[derive(Serialize, Deserialize)]
struct TaskCaseJson<T> {
    task: T,
}

impl TaskCase {
    /// Parse and validate a task case (`{"task": {...}}`); `source` names it in errors.
    pub fn from_json(source: &str, text: &str) -> Result<TaskCase, CaseError> {
        let case: TaskCaseJson<TaskCase> =
            read_object(source, text, "a task case is one JSON object ({\"task\": ...})")?;
        case.task.validate().map_err(|(path, message)| CaseError::at(source, Some(path), message))?;
        Ok(case.task)
    }

    /// The task case as JSON, `{"task": {...}}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&TaskCaseJson { task: self }).expect("a task case always serializes")
    }

    /// Check what types cannot: a try number from 1, settings and times that are numbers of
    /// seconds. `Err((json_path, message))`, the path starting at `task`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let seconds = |path: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err((format!("task.{path}"), format!("{value} is not a number of seconds (finite, at least 0)")))
            }
        };
        if self.try_number == 0 {
            return Err(("task.try_number".into(), "tries count from 1".into()));
        }
        seconds("settings.retry_delay_seconds", self.settings.retry_delay_seconds)?;
        if self.settings.max_task_retry_delay_seconds < 0 {
            return Err(("task.settings.max_task_retry_delay_seconds".into(), "a cap is at least 0".into()));
        }
        if let Some(cap) = self.settings.max_retry_delay_seconds {
            seconds("settings.max_retry_delay_seconds", cap)?;
        }
        let backoff = self.settings.retry_exponential_backoff;
        if !(backoff.is_finite() && backoff >= 0.0) {
            return Err((
                "task.settings.retry_exponential_backoff".into(),
                format!("{backoff} is not a multiplier (finite, at least 0)"),
            ));
        }
        if let Some(now) = self.now {
            seconds("now", now)
                .map_err(|(path, _)| (path, format!("{now} is not a time (seconds since the Unix epoch)")))?;
        }
        Ok(())
    }
}

/// A case of either kind, told apart by its top-level key: `run` (a run case) or `task` (a
/// task case).
#[derive(Clone, Debug, PartialEq)]
pub enum AnyCase {
    /// A failed run (Dagster).
    Run(Case),
    /// A task's failed try (Airflow).
    Task(TaskCase),
}

impl AnyCase {
    /// Parse and validate a case of either kind; `source` names it in errors.
    pub fn from_json(source: &str, text: &str) -> Result<AnyCase, CaseError> {
        /// Which keys the object has, without building anything.
        #[derive(Deserialize)]
        struct Kind {
            run: Option<de::IgnoredAny>,
            task: Option<de::IgnoredAny>,
        }
        let kind: Kind = read_object(source, text, "a case is one JSON object ({\"run\": ...} or {\"task\": ...})")?;
        match (kind.run, kind.task) {
            (Some(_), Some(_)) => Err(CaseError::at(source, None, "a case has \"run\" or \"task\", not both".into())),
            (None, Some(_)) => TaskCase::from_json(source, text).map(AnyCase::Task),
            _ => Case::from_json(source, text).map(AnyCase::Run),
        }
    }
}

impl CaseError {
    fn at(source: &str, path: Option<String>, message: String) -> CaseError {
        CaseError { source: source.to_string(), path, message }
    }
}

/// Read one JSON object into `T`, an error naming the field at fault; `not_an_object` is the
/// message for text that is not one.
fn read_object<T: de::DeserializeOwned>(source: &str, text: &str, not_an_object: &str) -> Result<T, CaseError> {
    let error = |path: Option<String>, message: String| CaseError::at(source, path, message);
    // serde would read a JSON array positionally into a struct: say what is wrong instead.
    if !text.trim_start().starts_with('{') {
        return Err(error(None, not_an_object.into()));
    }
    // Most cases are valid: parse without tracking the path, and parse again with it only to
    // name the field at fault (tracking the path slows every field down).
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // Text that is not JSON has no field at fault (the tracker then says `?`).
        if inner.is_syntax() || inner.is_eof() {
            return error(None, format!("not valid JSON: {inner}"));
        }
        error((path != "." && path != "?" && !path.is_empty()).then_some(path), inner.to_string())
    })?;
    deserializer.end().map_err(|e| error(None, format!("trailing characters after the case: {e}")))?;
    Ok(value)
}

impl Failure {
    /// Check what types cannot: `now` is a time, at or after the Unix epoch.
    /// `Err((json_path, message))`, the path starting at `failure`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self.now {
            Some(now) if !now.is_finite() || now < 0.0 => {
                Err(("failure.now".into(), format!("{now} is not a time (seconds since the Unix epoch)")))
            }
            _ => Ok(()),
        }
    }
}

impl Run {
    /// Check what types cannot: step keys are unique and non-empty, every upstream key is a
    /// plan step, only `MAPPED` steps have instances, each with a concrete status, and the
    /// asset data is consistent (see `validate_assets`). `Err((json_path, message))`, the path
    /// starting at `run`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut seen = HashSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            if step.key.is_empty() {
                return Err((format!("run.steps[{i}].key"), "empty step key".into()));
            }
            if !seen.insert(step.key.as_str()) {
                return Err((format!("run.steps[{i}].key"), format!("duplicate step key {:?}", step.key)));
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            for (j, up) in step.upstream.iter().enumerate() {
                if !seen.contains(up.as_str()) {
                    return Err((format!("run.steps[{i}].upstream[{j}]"), format!("{up:?} is not a step of the plan")));
                }
            }
            if !step.instances.is_empty() && step.status != StepStatus::Mapped {
                return Err((format!("run.steps[{i}].instances"), "only a MAPPED step has instances".into()));
            }
            if let Some(instance) = step.instances.iter().find(|i| i.status == StepStatus::Mapped) {
                return Err((
                    format!("run.steps[{i}].instances.{}", instance.mapping_key),
                    "an instance cannot be MAPPED".into(),
                ));
            }
        }
        self.validate_assets()
    }

    /// An asset or check key belongs to one step and is never both; a step's required keys and
    /// blocking checks are among its own keys.
    fn validate_assets(&self) -> Result<(), (String, String)> {
        let mut owner: std::collections::HashMap<&str, (&str, &str)> = std::collections::HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            for (field, keys) in [("assets", &step.assets), ("checks", &step.checks)] {
                for (j, key) in keys.iter().enumerate() {
                    if let Some((other_step, other_field)) = owner.insert(key, (&step.key, field)) {
                        let what = if other_field == field { "listed" } else { "also listed" };
                        return Err((
                            format!("run.steps[{i}].{field}[{j}]"),
                            format!("{key:?} is {what} in the {other_field} of step {other_step:?}"),
                        ));
                    }
                }
            }
            for (field, keys, allowed) in [
                ("required_keys", &step.required_keys, "assets or checks"),
                ("blocking_checks", &step.blocking_checks, "checks"),
            ] {
                for (j, key) in keys.iter().enumerate() {
                    let own = step.checks.contains(key) || (field == "required_keys" && step.assets.contains(key));
                    if !own {
                        return Err((
                            format!("run.steps[{i}].{field}[{j}]"),
                            format!("{key:?} is not among the step's own {allowed}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Room to reserve for a map whose header claims `hint` entries: a header is the sender's word
/// (a packed answer's 5 bytes can claim 2^32 tags), so at most a page's worth is trusted and the
/// rest grows as entries actually arrive (serde's own collections do the same).
fn cautious(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(4096 / std::mem::size_of::<(String, String)>())
}

/// Tags as a JSON object, in order; duplicate keys are read as they come.
pub(crate) mod tags {
    use super::*;

    pub fn serialize<S: Serializer>(tags: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(tags.len()))?;
        for (key, value) in tags {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tags, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Tags;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string tags")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tags, A::Error> {
                let mut tags = Vec::with_capacity(cautious(map.size_hint()));
                while let Some(pair) = map.next_entry::<String, String>()? {
                    tags.push(pair);
                }
                Ok(tags)
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

/// `instances` as an object `{mapping_key: status}`; null or absent is none.
pub(crate) mod instances {
    use super::*;

    pub fn serialize<S: Serializer>(instances: &[MappedInstance], serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(instances.len()))?;
        for instance in instances {
            map.serialize_entry(&instance.mapping_key, &instance.status)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<MappedInstance>, D::Error> {
        struct Instances;
        impl<'de> Visitor<'de> for Instances {
            type Value = Vec<MappedInstance>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of mapping key to step status, or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
                deserializer.deserialize_map(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut instances = Vec::with_capacity(cautious(map.size_hint()));
                while let Some((mapping_key, status)) = map.next_entry::<String, StepStatus>()? {
                    instances.push(MappedInstance { mapping_key, status });
                }
                Ok(instances)
            }
        }
        deserializer.deserialize_option(Instances)
    }
}

impl Serialize for FailureReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FailureReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(FailureReason::parse(&String::deserialize(deserializer)?))
    }
}

/// `MANUAL`, the launch origin of a history entry that names none.
pub(crate) fn manual() -> crate::model::LaunchOrigin {
    crate::model::LaunchOrigin::Manual
}

/// `true`, for fields whose JSON default is true.
pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn is_false(value: &bool) -> bool {
    !value
}

/// A backfill as JSON: `status` may be null only when the backfill no longer exists.
#[derive(Deserialize)]
struct BackfillJson {
    id: String,
    #[serde(default = "yes")]
    exists: bool,
    #[serde(default)]
    status: Option<BackfillStatus>,
}

impl Serialize for Backfill {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Backfill", 3)?;
        out.serialize_field("id", &self.id)?;
        out.serialize_field("exists", &self.exists)?;
        // Written even for a deleted backfill, so a case reads back as it was.
        out.serialize_field("status", &self.status)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for Backfill {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = BackfillJson::deserialize(deserializer)?;
        let status = match (json.exists, json.status) {
            (_, Some(status)) => status,
            // A deleted backfill has no status; reading it as a terminal one means a policy
            // that forgets `exists` still does not retry.
            (false, None) => BackfillStatus::Canceled,
            (true, None) => {
                return Err(de::Error::custom(
                    "status: an existing backfill needs a status (null only with \"exists\": false)",
                ))
            }
        };
        Ok(Backfill { id: json.id, exists: json.exists, status })
    }
}

impl Serialize for Run {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Run::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Run {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut run = Run::deserialize(deserializer)?;
        // An absent group is the run alone: `group` always holds at least the run itself.
        if run.group.is_empty() {
            run.group = vec![GroupMember {
                run_id: run.run_id.clone(),
                parent_run_id: run.parent_run_id.clone(),
                tags: run.tags.clone(),
                status: Some(run.status),
                exists: true,
            }];
        }
        Ok(run)
    }
}

impl Serialize for Decision {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Decision", 13)?;
        out.serialize_field("action", &self.action)?;
        out.serialize_field("retry", &self.retry())?;
        out.serialize_field("retry_number", &self.retry_number)?;
        out.serialize_field("strategy", &self.strategy)?;
        out.serialize_field("steps", &self.steps)?;
        out.serialize_field("asset_selection", &self.asset_selection)?;
        out.serialize_field("asset_check_selection", &self.asset_check_selection)?;
        out.serialize_field("new_run_tags", &TagsRef(&self.new_run_tags))?;
        out.serialize_field("failed_run_tags", &TagsRef(&self.failed_run_tags))?;
        out.serialize_field("resubmit_run_id", &self.resubmit_run_id)?;
        out.serialize_field("delay_seconds", &self.delay_seconds)?;
        out.serialize_field("events", &self.events)?;
        out.serialize_field("reason", &self.reason)?;
        out.end()
    }
}

impl<'de> Deserialize<'de> for Decision {
    /// The model's fields and nothing else (an unknown or repeated field is an error, by name);
    /// `retry`, written for readers, is not a field of the model: when present it must agree
    /// with `action`.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DecisionMap;
        impl<'de> Visitor<'de> for DecisionMap {
            type Value = Decision;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decision object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Decision, A::Error> {
                let mut retry = None;
                let fields = de::value::MapAccessDeserializer::new(WithoutRetry { map, retry: &mut retry });
                let decision = Decision::deserialize(fields)?;
                match retry {
                    Some(retry) if retry != decision.retry() => Err(de::Error::custom(format!(
                        "retry: {retry} disagrees with action {} (retry is true exactly for LAUNCH_NEW)",
                        decision.action
                    ))),
                    _ => Ok(decision),
                }
            }
        }
        deserializer.deserialize_map(DecisionMap)
    }
}

/// A decision's entries with `retry` taken out (into `retry`), so the model's own fields can be
/// read strictly.
struct WithoutRetry<'r, A> {
    map: A,
    retry: &'r mut Option<bool>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutRetry<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if key != "retry" {
                return seed.deserialize(de::value::StringDeserializer::<A::Error>::new(key)).map(Some);
            }
            if self.retry.is_some() {
                return Err(de::Error::duplicate_field("retry"));
            }
            *self.retry = Some(self.map.next_value()?);
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Borrowed tags, serialised as an object.
struct TagsRef<'a>(&'a [(String, String)]);

impl Serialize for TagsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        tags::serialize(self.0, serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, CheckSeverity, RunStatus, Strategy};

    const CASE: &str = r#"{
        "config": {"enabled": true, "max_retries": 2},
        "run": {
            "run_id": "run-A", "status": "FAILURE",
            "tags": {"team": "data", "team": "twice", "dagster/backfill": "bf1"},
            "steps": [
                {"key": "fan[?]", "status": "MAPPED", "instances": {"0": "SUCCESS", "1": "FAILURE"}},
                {"key": "sum", "upstream": ["fan[?]"], "status": "NOT_STARTED"}
            ],
            "backfill": {"id": "bf1", "exists": false, "status": null}
        },
        "failure": {"reason": "PREEMPTED"}
    }"#;

    #[test]
    fn a_case_reads_as_the_format_says_and_round_trips() {
        let case = Case::from_json("case", CASE).unwrap();
        assert!(case.config.retry_on_asset_or_op_failure, "Dagster's default when absent");
        // Tags keep their order and their duplicates.
        assert_eq!(case.run.tags[0], ("team".to_string(), "data".to_string()));
        assert_eq!(case.run.tags[1], ("team".to_string(), "twice".to_string()));
        // An absent group is the run alone.
        assert_eq!(case.run.group.len(), 1);
        assert_eq!((case.run.group[0].run_id.as_str(), case.run.group[0].status), ("run-A", Some(RunStatus::Failure)));
        assert_eq!(case.run.steps[0].instances[1].mapping_key, "1");
        // A deleted backfill without a status reads as a terminal one.
        let backfill = case.run.backfill.as_ref().unwrap();
        assert_eq!((backfill.exists, backfill.status), (false, BackfillStatus::Canceled));
        assert_eq!(case.failure.reason, Some(FailureReason::Other("PREEMPTED".into())));
        let again = Case::from_json("again", &serde_json::to_string(&case).unwrap()).unwrap();
        assert_eq!(again, case);
    }

    #[test]
    fn errors_name_the_source_and_the_field() {
        let error = Case::from_json("c.json", r#"{"run": {"run_id": "r", "status": "DONE"}}"#).unwrap_err();
        assert_eq!((error.source.as_str(), error.path.as_deref()), ("c.json", Some("run.status")));
        let error =
            Case::from_json("c.json", r#"{"config": {"max_retry": 3}, "run": {"run_id": "r", "status": "FAILURE"}}"#)
                .unwrap_err();
        assert!(error.to_string().contains("max_retry"), "{error}");
        let error =
            Case::from_json("c.json", r#"{"run": {"run_id": "r", "status": "FAILURE", "backfill": {"id": "b"}}}"#)
                .unwrap_err();
        assert!(error.to_string().contains("run.backfill: status: an existing backfill needs a status"), "{error}");
        assert!(Case::from_json("c.json", "[1]").unwrap_err().to_string().contains("one JSON object"));
        let error =
            Case::from_json("c.json", r#"{"run": {"run_id": "r", "status": "FAILURE"}, "failure": {"now": -1.0}}"#)
                .unwrap_err();
        assert_eq!(error.path.as_deref(), Some("failure.now"), "{error}");
        let error = Case::from_json("c.json", "{broken").unwrap_err();
        assert_eq!(error.path, None, "text that is not JSON names no field: {error}");
        assert!(error.to_string().starts_with("c.json: not valid JSON: key must be a string"), "{error}");
    }

    /// A number or null where a status belongs named no field ("expected value at line 22").
    #[test]
    fn a_wrongly_typed_enum_names_its_field() {
        for wrong in ["5", "null", "true", "[]"] {
            let text = format!(
                r#"{{"run": {{"run_id": "r", "status": "FAILURE", "steps": [{{"key": "a", "status": {wrong}}}]}}}}"#
            );
            let error = Case::from_json("c.json", &text).unwrap_err();
            assert_eq!(error.path.as_deref(), Some("run.steps[0].status"), "{wrong}: {error}");
            assert!(error.message.contains("expected one of"), "{error}");
        }
        let error = Case::from_json("c.json", r#"{"run": {"run_id": "r", "status": 3}}"#).unwrap_err();
        assert_eq!(error.to_string(), "c.json: run.status: invalid type: integer `3`, expected one of QUEUED, NOT_STARTED, MANAGED, STARTING, STARTED, SUCCESS, FAILURE, CANCELING, CANCELED at line 1 column 35");
    }

    /// The strict reading of a decision: the model's fields and `retry`, agreeing with `action`.
    #[test]
    fn a_decision_with_an_unknown_field_or_a_contrary_retry_is_refused() {
        let mut json = serde_json::to_value(Decision::none("why")).unwrap();
        json["retry"] = true.into();
        let error = serde_json::from_value::<Decision>(json.clone()).unwrap_err().to_string();
        assert!(error.contains("retry: true disagrees with action NONE"), "{error}");
        json["retry"] = false.into();
        json["bulk"] = "x".into();
        let error = serde_json::from_value::<Decision>(json).unwrap_err().to_string();
        assert!(error.contains("unknown field `bulk`"), "{error}");
    }

    const ASSET_CASE: &str = r#"{
        "run": {
            "run_id": "run-A", "status": "FAILURE", "asset_selection": ["a", "b"], "asset_check_selection": [],
            "steps": [
                {"key": "ab", "status": "FAILURE", "assets": ["a", "b"], "checks": ["a:ok"],
                 "required_keys": ["a:ok"], "blocking_checks": ["a:ok"], "can_subset": false}
            ],
            "materialized_assets": ["a"],
            "check_evaluations": [{"check": "a:ok", "passed": false, "blocking": null, "severity": "WARN"}]
        }
    }"#;

    #[test]
    fn asset_data_reads_and_round_trips() {
        let case = Case::from_json("case", ASSET_CASE).unwrap();
        let step = &case.run.steps[0];
        assert_eq!((step.assets.len(), step.can_subset), (2, Some(false)));
        assert_eq!(case.run.asset_check_selection, Some(Vec::new()), "[] is not null: it selects no checks");
        let evaluation = &case.run.check_evaluations[0];
        assert_eq!((evaluation.blocking, evaluation.severity), (None, Some(CheckSeverity::Warn)));
        assert!(!evaluation.is_blocking_failure(), "an evaluation without the flag is not blocking");
        let again = Case::from_json("again", &serde_json::to_string(&case).unwrap()).unwrap();
        assert_eq!(again, case);
    }

    #[test]
    fn inconsistent_asset_data_is_refused_naming_the_field() {
        let refused = |from: &str, to: &str| Case::from_json("c.json", &ASSET_CASE.replace(from, to)).unwrap_err();
        let error = refused(r#""required_keys": ["a:ok"]"#, r#""required_keys": ["z"]"#);
        assert_eq!(error.path.as_deref(), Some("run.steps[0].required_keys[0]"), "{error}");
        let error = refused(r#""blocking_checks": ["a:ok"]"#, r#""blocking_checks": ["a"]"#);
        assert_eq!(error.path.as_deref(), Some("run.steps[0].blocking_checks[0]"), "{error}");
        let error = refused(r#""checks": ["a:ok"]"#, r#""checks": ["a:ok", "b"]"#);
        assert!(error.to_string().contains(r#""b" is also listed in the assets of step "ab""#), "{error}");
        let error = refused(r#""passed": false"#, r#""passed": false, "pased": true"#);
        assert!(error.to_string().contains("pased"), "a misspelt evaluation field is an error: {error}");
    }

    #[test]
    fn a_decision_carries_retry_and_reads_back() {
        let decision = Decision {
            action: Action::LaunchNew,
            retry_number: Some(1),
            strategy: Some(Strategy::FromFailure),
            steps: Some(vec!["sum".into()]),
            new_run_tags: vec![("dagster/retry_number".into(), "1".into())],
            ..Decision::none("why")
        };
        let json = serde_json::to_value(&decision).unwrap();
        assert_eq!(json["retry"], true);
        assert_eq!(json["new_run_tags"]["dagster/retry_number"], "1");
        assert_eq!(serde_json::from_value::<Decision>(json).unwrap(), decision);
    }
}
