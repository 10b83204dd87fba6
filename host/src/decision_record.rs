//! One line of a decision log (`docs/decision-log.md`), as a type: `runretry serve` writes it for
//! every answer, `runretry replay --recorded` reads it back. One definition, so the two cannot
//! drift apart.

use serde::{Deserialize, Serialize};

use runretry_kit::{Case, Decision, SelectionAnswer, TaskCase, TaskDecision};

/// A decision-log record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// A UUIDv7, the same the HTTP answer carried.
    pub decision_id: String,
    /// When the request arrived, RFC 3339 in UTC with microseconds.
    pub timestamp: String,
    /// The version that decided.
    pub policy: RecordedPolicy,
    /// The batch line, from 1 (batch records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The batch's own id, the `decision_id` of its `decide-batch` record (batch line records
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The case as decided; `None` when the request did not parse, or was a task case.
    pub case: Option<Case>,
    /// The task case as decided (`/v1/decide-task` records only; `None` when it did not parse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskCase>,
    /// What the endpoint answered.
    #[serde(flatten)]
    pub answer: RecordedAnswer,
    /// Milliseconds from the request's arrival to the answer.
    pub latency_ms: f64,
}

/// The policy version of a record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedPolicy {
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// Its revision on the server that decided.
    pub revision: u64,
    /// Its file or upload name.
    pub name: String,
}

/// What a record's endpoint answered, by `endpoint`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "endpoint")]
pub enum RecordedAnswer {
    /// `/v1/decide`, or one line of `/v1/decide/batch`.
    #[serde(rename = "decide")]
    Decide {
        /// The decision; `None` when there is none (`error` says why).
        decision: Option<Decision>,
        /// Why there is no decision.
        error: Option<RecordedError>,
        /// When the policy failed and the fallback answered instead.
        fallback: Option<RecordedFallback>,
    },
    /// `/v1/decide-task`: a task's failed try (Airflow).
    #[serde(rename = "decide-task")]
    DecideTask {
        /// The decision; `None` when there is none (`error` says why).
        decision: Option<TaskDecision>,
        /// Why there is no decision.
        error: Option<RecordedError>,
        /// When the policy failed and the fallback answered instead.
        fallback: Option<RecordedFallback>,
    },
    /// `/v1/select-steps`.
    #[serde(rename = "select-steps")]
    SelectSteps {
        /// The strategy asked for, as given in the query.
        strategy: Option<String>,
        /// The selection or the policy's refusal; `None` when there is none (`error` says why).
        selection: Option<SelectionAnswer>,
        /// Why there is no selection.
        error: Option<RecordedError>,
    },
    /// `/v1/decide/batch` as a whole, written once the batch ends: its lines have records of
    /// their own (with `line` and `batch_id`) only within the batch's share of the log, so this
    /// record counts them all. Nothing to replay.
    #[serde(rename = "decide-batch")]
    DecideBatch {
        /// Lines in the request (blank lines not counted).
        lines: usize,
        /// Lines answered, with a decision or an error, in order from the first.
        answered: usize,
        /// Answered lines that have a record of their own; the rest went past the batch's share
        /// of the log.
        logged: usize,
        /// Why the lines after the answered ones got no answer: `request deadline exceeded`,
        /// or `client gone` (the connection closed); `None` when every line was answered.
        error: Option<RecordedError>,
    },
}

/// Why a request got no decision: its error kind, message and, for bad input, the JSON path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedError {
    /// `bad input`, `guest trap`, ..., `request deadline exceeded` (docs/decision-log.md).
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// The JSON path at fault, for bad input.
    #[serde(default)]
    pub path: Option<String>,
}

/// A policy failure the configured fallback answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedFallback {
    /// `give-up` or `default`.
    pub mode: String,
    /// The policy's error kind.
    pub kind: String,
    /// The policy's error.
    pub message: String,
}
