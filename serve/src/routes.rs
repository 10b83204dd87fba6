//! The HTTP endpoints. Every request loads the active version once and keeps it to the end;
//! policy calls (and parsing, which is CPU work too) run on tokio's blocking pool, at most
//! `workers` at once, never on the runtime's threads.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tower_http::catch_panic::CatchPanicLayer;

use runretry::{ConfigOverride, Deployment};
use runretry_kit::{Case, CaseError, Decision, SelectionAnswer, Strategy, TaskCase, TaskDecision};

use runretry::text::clip_to;
use runretry::Error;
use runretry::{Decided, OnPolicyError};

use super::auth::{presents, require_token, Token};
use super::body::{BodyLimits, ReadBody, Unread};
use super::decision_log::DecisionLog;
use super::metrics::{Metrics, CONTENT_TYPE};
use super::versions::{Origin, Version, Versions};
use super::ServeConfig;
use runretry::calls::{Interrupt, StopReason};
use runretry::decision_record::{DecisionRecord, RecordedAnswer, RecordedError, RecordedFallback, RecordedPolicy};

/// Largest policy component `PUT /v1/policy` accepts: interpreted guests (Python, JavaScript)
/// are tens of MiB.
const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) versions: Arc<Versions>,
    /// `--on-policy-error`, for the answers and the log (each version's deployment applies it).
    mode: OnPolicyError,
    config_override: ConfigOverride,
    metrics: Arc<Metrics>,
    pub(crate) log: Option<Arc<DecisionLog>>,
    workers: Arc<Semaphore>,
    /// The number of workers, for a batch's share of them.
    worker_count: usize,
    deadline: Duration,
    allow_uploads: bool,
    ready: AtomicBool,
    bodies: BodyLimits,
    max_request_bytes: usize,
    /// The bearer token, when one is set: `/health/ready` names the version only with it.
    token: Option<Token>,
}

impl AppState {
    pub(crate) fn new(
        config: &ServeConfig,
        versions: Arc<Versions>,
        metrics: Arc<Metrics>,
        log: Option<Arc<DecisionLog>>,
    ) -> Self {
        AppState {
            versions,
            mode: config.on_policy_error,
            config_override: config.config_override,
            metrics,
            log,
            workers: Arc::new(Semaphore::new(config.workers.max(1))),
            worker_count: config.workers.max(1),
            deadline: config.request_deadline,
            allow_uploads: config.allow_uploads,
            ready: AtomicBool::new(true),
            bodies: BodyLimits::new(config.body_timeout, config.max_buffered_bytes),
            max_request_bytes: config.max_request_bytes,
            token: config.token.as_deref().map(|token| Token(token.into())),
        }
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Run `work` on the blocking pool once a worker is free. The permit goes with the work:
    /// a request that timed out still holds its worker until the policy call ends (bounded by
    /// the sandbox's deadline), so a slow policy cannot pile up threads.
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, ErrorReply>> + Send + 'static {
        let workers = self.workers.clone();
        async move {
            let permit = workers.acquire_owned().await.map_err(|_| ErrorReply::unavailable("stopping"))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|e| ErrorReply::internal(format!("the decision's thread failed: {e}")))
        }
    }

    /// Decide `case` with `version`, whose deployment applies the fallback mode to a policy
    /// failure.
    fn decide<C: DecidedCase>(&self, version: &Version, case: &C) -> Decided<C::Decision> {
        self.counted(C::decide(&version.deployment, case))
    }

    /// Count a decision's policy error and fallback.
    fn counted<D>(&self, decided: Decided<D>) -> Decided<D> {
        let policy_error = decided.fell_back.as_ref().or(decided.decision.as_ref().err());
        if let Some(error) = policy_error.filter(|error| !error.is_bad_input()) {
            self.metrics.policy_error(error.kind());
        }
        if decided.fell_back.is_some() {
            self.metrics.fallback(self.mode.as_str());
        }
        decided
    }

    /// What `/v1/decide` and `/v1/select-steps` share: read the body, then parse its case and
    /// run `work` on it on a worker, within the request deadline.
    async fn on_worker<C: RequestCase, T: Send + 'static>(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: Body,
        work: impl FnOnce(&AppState, &C) -> Result<T, ErrorReply> + Send + 'static,
    ) -> Result<(C, T), ErrorReply> {
        let body = self.read_body(headers, body, self.max_request_bytes).await?.bytes;
        match tokio::time::timeout(self.deadline, self.on_case("request body".into(), body, work)).await {
            Ok(Ok(result)) => result,
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(ErrorReply::deadline(self.deadline)),
        }
    }

    /// Parse `body` as a case (named `source` in errors) and run `work` on it, on a worker.
    fn on_case<C: RequestCase, T: Send + 'static>(
        self: &Arc<Self>,
        source: String,
        body: Bytes,
        work: impl FnOnce(&AppState, &C) -> Result<T, ErrorReply> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<Result<(C, T), ErrorReply>, ErrorReply>> + Send + 'static {
        let shared = self.clone();
        self.blocking(move || {
            let case = C::parse(&shared, &source, &body)?;
            let answer = work(&shared, &case)?;
            Ok((case, answer))
        })
    }

    /// Read a request body of at most `max_bytes` (see `body`).
    async fn read_body(&self, headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<ReadBody, ErrorReply> {
        self.bodies.read(headers, body, max_bytes).await.map_err(ErrorReply::unreadable)
    }

    /// Log `record`: queued for the log's writer, and normally written before this returns
    /// (see `decision_log` for when it is not).
    async fn log(&self, record: DecisionRecord) {
        if let Some(log) = &self.log {
            log.append(log.line(&record)).await;
        }
    }
}

/// Why there is no answer: an HTTP status, and the error object the body carries.
#[derive(Debug)]
struct ErrorReply {
    status: StatusCode,
    kind: String,
    message: String,
    /// The JSON path at fault, for malformed input.
    path: Option<String>,
}

impl ErrorReply {
    fn bad_request(message: String, path: Option<String>) -> Self {
        ErrorReply { status: StatusCode::BAD_REQUEST, kind: "bad input".into(), message, path }
    }

    fn unavailable(message: &str) -> Self {
        ErrorReply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable".into(),
            message: message.into(),
            path: None,
        }
    }

    fn deadline(deadline: Duration) -> Self {
        ErrorReply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "request deadline exceeded".into(),
            message: format!("no answer within the request deadline of {} ms", deadline.as_millis()),
            path: None,
        }
    }

    /// The body could not be read: over the size limit (413), too slow (408), cut short (400).
    fn unreadable(unread: Unread) -> Self {
        ErrorReply { status: unread.status, kind: unread.kind.into(), message: unread.message, path: None }
    }

    fn internal(message: String) -> Self {
        ErrorReply { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal".into(), message, path: None }
    }

    fn json(&self) -> Value {
        json!(self.recorded())
    }

    fn recorded(&self) -> RecordedError {
        RecordedError { kind: self.kind.clone(), message: self.message.clone(), path: self.path.clone() }
    }
}

impl From<CaseError> for ErrorReply {
    fn from(error: CaseError) -> Self {
        let path = error.path.clone();
        ErrorReply::bad_request(error.to_string(), path)
    }
}

impl From<Error> for ErrorReply {
    /// Bad input is the client's (400); anything else is the policy's failure (500), named by
    /// its kind.
    fn from(error: Error) -> Self {
        let status = if error.is_bad_input() { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
        ErrorReply { status, kind: error.kind().into(), message: error.to_string(), path: None }
    }
}

pub(crate) fn router(state: Arc<AppState>, config: &ServeConfig) -> Router {
    // Bodies are read by the handlers themselves (`AppState::read_body`), within the limits.
    let mut app = Router::new()
        .route("/v1/decide", post(decide_one::<Case>))
        .route("/v1/decide/batch", post(decide_batch))
        .route("/v1/decide-task", post(decide_one::<TaskCase>))
        .route("/v1/select-steps", post(select_steps))
        .route("/v1/policy", get(describe_policy).put(upload_policy))
        .route("/v1/policy/rollback", post(rollback))
        .route("/health", get(health))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state);
    if let Some(token) = &config.token {
        app = app.layer(middleware::from_fn_with_state(Token(token.as_str().into()), require_token));
    }
    // A panicking handler answers 500 instead of dropping the connection.
    app.layer(CatchPanicLayer::new())
}

/// What a connection beyond the connection cap is served: the health checks, and 503 for the
/// rest, so probes answer while the server is full.
pub(crate) fn health_router(state: Arc<AppState>) -> Router {
    Router::new().route("/health", get(health)).route("/health/ready", get(ready)).with_state(state).fallback(
        || async {
            let message = "the server is at its connection limit; try again";
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": {"kind": "unavailable", "message": message}})))
        },
    )
}

fn decision_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn recorded_policy(version: &Version) -> RecordedPolicy {
    RecordedPolicy { sha256: version.sha256.clone(), revision: version.revision, name: version.name.clone() }
}

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

/// The answer to one decision and its decision-log record.
struct Answered {
    status: StatusCode,
    body: Value,
    record: DecisionRecord,
}

/// What a request body holds: a run case (`/v1/decide`, `/v1/select-steps`, batch lines) or a
/// task case (`/v1/decide-task`).
trait RequestCase: Sized + Send + 'static {
    /// Parse `body` (named `source` in errors), applying the service's overrides.
    fn parse(state: &AppState, source: &str, body: &[u8]) -> Result<Self, ErrorReply>;
}

fn utf8<'a>(source: &str, body: &'a [u8]) -> Result<&'a str, ErrorReply> {
    std::str::from_utf8(body).map_err(|e| ErrorReply::bad_request(format!("{source}: not UTF-8: {e}"), None))
}

impl RequestCase for Case {
    fn parse(state: &AppState, source: &str, body: &[u8]) -> Result<Self, ErrorReply> {
        let mut case = Case::from_json(source, utf8(source, body)?).map_err(ErrorReply::from)?;
        state.config_override.apply(&mut case.config);
        Ok(case)
    }
}

impl RequestCase for TaskCase {
    fn parse(_state: &AppState, source: &str, body: &[u8]) -> Result<Self, ErrorReply> {
        TaskCase::from_json(source, utf8(source, body)?).map_err(ErrorReply::from)
    }
}

/// A kind of case that gets a decision: how its decision is counted and recorded.
trait DecidedCase: RequestCase {
    /// The decision it gets.
    type Decision: serde::Serialize + Send + 'static;
    /// Decide it with `deployment`, telling a fallback apart.
    fn decide(deployment: &Deployment, case: &Self) -> Decided<Self::Decision>;
    /// The decision's action, the metrics' label.
    fn action(decision: &Self::Decision) -> &'static str;
    /// The record's case fields and answer.
    fn record(
        case: Option<Self>,
        decision: Option<Self::Decision>,
        error: Option<RecordedError>,
        fallback: Option<RecordedFallback>,
    ) -> (Option<Case>, Option<TaskCase>, RecordedAnswer);
}

impl DecidedCase for Case {
    type Decision = Decision;

    fn decide(deployment: &Deployment, case: &Case) -> Decided<Decision> {
        deployment.decide_telling(case)
    }

    fn action(decision: &Decision) -> &'static str {
        decision.action.as_str()
    }

    fn record(
        case: Option<Case>,
        decision: Option<Decision>,
        error: Option<RecordedError>,
        fallback: Option<RecordedFallback>,
    ) -> (Option<Case>, Option<TaskCase>, RecordedAnswer) {
        (case, None, RecordedAnswer::Decide { decision, error, fallback })
    }
}

impl DecidedCase for TaskCase {
    type Decision = TaskDecision;

    fn decide(deployment: &Deployment, task: &TaskCase) -> Decided<TaskDecision> {
        deployment.decide_task_telling(task)
    }

    fn action(decision: &TaskDecision) -> &'static str {
        decision.action.as_str()
    }

    fn record(
        task: Option<TaskCase>,
        decision: Option<TaskDecision>,
        error: Option<RecordedError>,
        fallback: Option<RecordedFallback>,
    ) -> (Option<Case>, Option<TaskCase>, RecordedAnswer) {
        (None, task, RecordedAnswer::DecideTask { decision, error, fallback })
    }
}

/// Build the answer and the record of one decision (or of its failure), and count it.
fn answer_decision<C: DecidedCase>(
    state: &AppState,
    id: String,
    at: SystemTime,
    version: &Version,
    outcome: Result<(C, Decided<C::Decision>), ErrorReply>,
    started: Instant,
) -> Answered {
    let latency = started.elapsed();
    // The case is logged whenever it parsed, the policy's failure included.
    let (case, outcome) = match outcome {
        Ok((case, decided)) => (Some(case), Ok(decided)),
        Err(failure) => (None, Err(failure)),
    };
    let (status, decision, error, fallback) = match outcome {
        Ok(Decided { decision: Ok(decision), fell_back }) => {
            state.metrics.decided(C::action(&decision), version.revision, latency);
            let fallback = fell_back.map(|error| RecordedFallback {
                mode: state.mode.as_str().into(),
                kind: error.kind().into(),
                message: error.to_string(),
            });
            (StatusCode::OK, Some(decision), None, fallback)
        }
        Ok(Decided { decision: Err(error), .. }) => failed(state, ErrorReply::from(error)),
        Err(failure) => failed(state, failure),
    };
    let policy = recorded_policy(version);
    let mut body = json!({"decision_id": id, "policy": policy});
    match (&decision, &error) {
        (Some(decision), _) => body["decision"] = json!(decision),
        (None, Some(error)) => body["error"] = json!(error),
        (None, None) => {}
    }
    if let Some(fallback) = &fallback {
        body["fallback"] = json!(fallback);
    }
    let (case, task, answer) = C::record(case, decision, error, fallback);
    let record = DecisionRecord {
        decision_id: id,
        timestamp: timestamp(at),
        policy,
        line: None,
        batch_id: None,
        case,
        task,
        answer,
        latency_ms: latency.as_secs_f64() * 1000.0,
    };
    Answered { status, body, record }
}

fn failed<T>(
    state: &AppState,
    failure: ErrorReply,
) -> (StatusCode, Option<T>, Option<RecordedError>, Option<RecordedFallback>) {
    if failure.status == StatusCode::BAD_REQUEST {
        state.metrics.bad_request();
    }
    (failure.status, None, Some(failure.recorded()), None)
}

/// `POST /v1/decide` (a run case, the CLI's case JSON) and `POST /v1/decide-task` (a task case,
/// `{"task": ...}`, docs/case-format.md §5): the case in; the decision, its id and the deciding
/// policy out. A version that does not decide the case's kind fails as any failing policy does
/// (the fallback mode applies).
async fn decide_one<C: DecidedCase>(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let (started, at, id) = (Instant::now(), SystemTime::now(), decision_id());
    let version = state.versions.active();
    let decided = {
        let version = version.clone();
        state.on_worker(&headers, body, move |state, case: &C| Ok(state.decide(&version, case))).await
    };
    let answered = answer_decision(&state, id, at, &version, decided, started);
    state.log(answered.record).await;
    (answered.status, Json(answered.body)).into_response()
}

/// Chunks of answer lines held between a batch and its connection: with hyper's buffer and the
/// socket's, all that an answer nobody reads holds (the write timeout then closes it).
const BATCH_CHUNKS: usize = 16;
/// Answer lines go out in chunks of about this size: fewer, larger writes.
const BATCH_CHUNK_BYTES: usize = 16 << 10;
/// A batch line's error message and JSON path are cut to this many bytes in its answer (and the
/// message in its record): a bad line quoting a huge value must not get a huge answer.
const MAX_LINE_ERROR_BYTES: usize = 512;

/// `POST /v1/decide/batch`: one case per line in (blank lines skipped), one answer per line
/// out, in order, each with `line` (from 1). Every line is decided by the same version, at most
/// `workers` lines at a time. The answer streams: lines go out as they are decided, so memory
/// follows what is in flight, not the batch's size.
///
/// The request deadline covers the batch. With no line decided by then, the answer is a 503
/// (`request deadline exceeded`), as for `/v1/decide`. Past it once lines have gone out (the
/// status with them), the lines sent stand and one last line, without `line`, names the lines
/// not decided: `{"error": {...}, "unanswered": {"first_line", "last_line", "lines"}}`. A body
/// that cannot be read (over the size limit) gets one JSON error, as `/v1/decide` would.
async fn decide_batch(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let (started, at) = (Instant::now(), SystemTime::now());
    let deadline = tokio::time::Instant::now() + state.deadline;
    let version = state.versions.active();
    let body = match state.read_body(&headers, body, state.max_request_bytes).await {
        Ok(read) => read,
        Err(failure) => {
            let answered = answer_decision::<Case>(&state, decision_id(), at, &version, Err(failure), started);
            state.log(answered.record).await;
            return (answered.status, Json(answered.body)).into_response();
        }
    };
    let (pieces, mut answers) = mpsc::channel(BATCH_CHUNKS);
    let batch = Batch { state: state.clone(), version, id: decision_id(), at, started, deadline };
    let producer = tokio::spawn(batch.run(body, pieces));
    match answers.recv().await {
        Some(Piece::Refused(status, body)) => (status, Json(body)).into_response(),
        Some(Piece::Answers(first)) => {
            let answers = AnswerStream { first: Some(first), rest: answers };
            ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::new(answers)).into_response()
        }
        // No line at all, or the batch's task failed.
        None => match producer.await {
            Ok(()) => ([(header::CONTENT_TYPE, "application/x-ndjson")], "").into_response(),
            Err(e) => {
                let failure = ErrorReply::internal(format!("the batch's task failed: {e}"));
                (failure.status, Json(json!({"error": failure.json()}))).into_response()
            }
        },
    }
}

/// What a batch hands its connection.
enum Piece {
    /// Answer lines, whole.
    Answers(Bytes),
    /// The batch's one answer instead of lines: no line was decided by the deadline.
    Refused(StatusCode, Value),
}

/// A batch's answer lines as a response body, as they come.
struct AnswerStream {
    first: Option<Bytes>,
    rest: mpsc::Receiver<Piece>,
}

impl axum::body::HttpBody for AnswerStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.rest.poll_recv(cx) {
            Poll::Ready(Some(Piece::Answers(lines))) => Poll::Ready(Some(Ok(Frame::data(lines)))),
            Poll::Ready(Some(Piece::Refused(..)) | None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One batch request, deciding its lines on a task of its own.
struct Batch {
    state: Arc<AppState>,
    version: Arc<Version>,
    /// The batch's id: its `decide-batch` record's `decision_id`, its lines' `batch_id`.
    id: String,
    at: SystemTime,
    started: Instant,
    deadline: tokio::time::Instant,
}

impl Batch {
    /// Decide the lines of `body` in order, `workers` at a time, and send their answers to
    /// `out` in chunks; log each line's record within the batch's share of the log, then the
    /// batch's own record. Stops at the deadline, or when the client is gone (`out` closed).
    async fn run(self, body: ReadBody, out: mpsc::Sender<Piece>) {
        let state = &self.state;
        // `body` is held to the end: its share of the body budget with it.
        let mut lines = BatchLines { body: body.bytes.clone(), at: 0, number: 0 }.peekable();
        let mut in_flight = VecDeque::with_capacity(state.worker_count);
        let mut chunk = Vec::new();
        let (mut answered, mut logged) = (0, 0);
        // What is left of the batch's share of the log; `None` once a record went past it.
        let mut log_budget = state.log.as_ref().map(|log| log.batch_budget());
        // The line taken for an answer that it did not get.
        let mut cut_at = None;
        let error = loop {
            while in_flight.len() < state.worker_count {
                let Some((number, line)) = lines.next() else { break };
                let version = self.version.clone();
                let work = state.on_case(format!("request body:{number}"), line, move |state, case| {
                    Ok(state.decide::<Case>(&version, case))
                });
                in_flight.push_back((number, tokio::spawn(work)));
            }
            let Some((number, mut task)) = in_flight.pop_front() else { break None };
            // What is decided goes out before waiting for more.
            if !task.is_finished() && !chunk.is_empty() && !send(&out, &mut chunk).await {
                task.abort();
                cut_at = Some(number);
                break Some(client_gone(answered));
            }
            let outcome = match tokio::time::timeout_at(self.deadline, &mut task).await {
                Ok(Ok(Ok(result))) => result,
                Ok(Ok(Err(failure))) => Err(failure),
                Ok(Err(join)) => Err(ErrorReply::internal(format!("the decision's task failed: {join}"))),
                Err(_) => {
                    task.abort();
                    cut_at = Some(number);
                    break Some(ErrorReply::deadline(state.deadline).recorded());
                }
            };
            let mut line = answer_decision(state, decision_id(), self.at, &self.version, outcome, self.started);
            line.body["line"] = json!(number);
            line.record.line = Some(number);
            line.record.batch_id = Some(self.id.clone());
            bound_error(&mut line.body, &mut line.record);
            if let (Some(log), Some(left)) = (&state.log, log_budget) {
                let record = log.line(&line.record);
                match left.checked_sub(record.len() as u64) {
                    Some(left) => {
                        log.append(record).await;
                        log_budget = Some(left);
                        logged += 1;
                    }
                    None => log_budget = None,
                }
            }
            serde_json::to_writer(&mut chunk, &line.body).expect("answers serialise");
            chunk.push(b'\n');
            answered += 1;
            if chunk.len() >= BATCH_CHUNK_BYTES && !send(&out, &mut chunk).await {
                break Some(client_gone(answered));
            }
        };
        for (_, task) in &in_flight {
            task.abort();
        }
        // The lines without an answer: the one cut off, those in flight, those not started.
        let first_unanswered = cut_at.or(in_flight.front().map(|(number, _)| *number)).or(lines.peek().map(|l| l.0));
        let (mut unanswered, mut last_line) = (usize::from(cut_at.is_some()), cut_at.unwrap_or(0));
        for number in in_flight.iter().map(|(number, _)| *number).chain(lines.map(|(number, _)| number)) {
            unanswered += 1;
            last_line = number;
        }
        if let Some(log) = &state.log {
            state.metrics.unlogged_batch_lines(answered - logged);
            let record = DecisionRecord {
                decision_id: self.id.clone(),
                timestamp: timestamp(self.at),
                policy: recorded_policy(&self.version),
                line: None,
                batch_id: None,
                case: None,
                task: None,
                answer: RecordedAnswer::DecideBatch {
                    lines: answered + unanswered,
                    answered,
                    logged,
                    error: error.clone(),
                },
                latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            };
            log.append(log.line(&record)).await;
        }
        let Some(mut error) = error else {
            if !chunk.is_empty() {
                send(&out, &mut chunk).await;
            }
            return;
        };
        if error.kind == "client gone" {
            return;
        }
        if answered == 0 {
            let body = json!({"decision_id": self.id, "policy": recorded_policy(&self.version), "error": error});
            let _ = out.send(Piece::Refused(StatusCode::SERVICE_UNAVAILABLE, body)).await;
            return;
        }
        if let Some(first) = first_unanswered {
            error.message =
                format!("{}: lines {first} to {last_line} ({unanswered} lines) were not decided", error.message);
        }
        let trailer = json!({
            "error": error,
            "unanswered": {"first_line": first_unanswered, "last_line": last_line, "lines": unanswered},
        });
        serde_json::to_writer(&mut chunk, &trailer).expect("answers serialise");
        chunk.push(b'\n');
        send(&out, &mut chunk).await;
    }
}

/// The lines of a batch body that are not blank, numbered from 1 (blank ones count), as
/// slices of the body.
struct BatchLines {
    body: Bytes,
    /// Where the next line starts; past the end once the last line is taken.
    at: usize,
    /// The number of the line taken last.
    number: usize,
}

impl Iterator for BatchLines {
    type Item = (usize, Bytes);

    fn next(&mut self) -> Option<(usize, Bytes)> {
        while self.at <= self.body.len() {
            let end = self.body[self.at..].iter().position(|&b| b == b'\n').map_or(self.body.len(), |i| self.at + i);
            let line = self.body.slice(self.at..end);
            self.at = end + 1;
            self.number += 1;
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some((self.number, line));
            }
        }
        None
    }
}

/// Hand `chunk` to the connection; false when it is gone.
async fn send(out: &mpsc::Sender<Piece>, chunk: &mut Vec<u8>) -> bool {
    out.send(Piece::Answers(Bytes::from(std::mem::take(chunk)))).await.is_ok()
}

fn client_gone(answered: usize) -> RecordedError {
    RecordedError {
        kind: "client gone".into(),
        message: format!(
            "the connection closed after {answered} answers: the client left, or read nothing for the write timeout"
        ),
        path: None,
    }
}

/// Cut a batch line's error message (in its answer and its record) and JSON path (in its
/// answer: the record keeps it whole for masking) to [`MAX_LINE_ERROR_BYTES`].
fn bound_error(body: &mut Value, record: &mut DecisionRecord) {
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        for field in ["message", "path"] {
            if let Some(Value::String(text)) = error.get_mut(field) {
                *text = clip_to(text, MAX_LINE_ERROR_BYTES);
            }
        }
    }
    if let RecordedAnswer::Decide { error: Some(error), .. } = &mut record.answer {
        error.message = clip_to(&error.message, MAX_LINE_ERROR_BYTES);
    }
}

/// `POST /v1/select-steps?strategy=FROM_FAILURE`: a case in (its run is used); the steps, or
/// the policy's refusal, out.
async fn select_steps(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (started, at, id) = (Instant::now(), SystemTime::now(), decision_id());
    let version = state.versions.active();
    let strategy = match query.get("strategy").map(|s| (s, Strategy::parse(s))) {
        Some((_, Some(strategy))) => Ok(strategy),
        Some((text, None)) => {
            let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.as_str()).collect();
            Err(ErrorReply::bad_request(
                format!("query parameter strategy: {text:?} is not one of {}", known.join(", ")),
                Some("?strategy".into()),
            ))
        }
        None => Err(ErrorReply::bad_request(
            "query parameter strategy is required (ALL_STEPS, FROM_FAILURE, ...)".into(),
            Some("?strategy".into()),
        )),
    };
    let outcome = match strategy {
        Ok(strategy) => {
            let version = version.clone();
            let select = move |state: &AppState, case: &Case| {
                // A version in service is a loaded policy: `policy()` fails only for one that
                // did not load, which is never swapped in.
                let selected = version.deployment.policy().and_then(|policy| policy.select_steps(&case.run, strategy));
                selected.map_err(|error| {
                    if !error.is_bad_input() {
                        state.metrics.policy_error(error.kind());
                    }
                    ErrorReply::from(error)
                })
            };
            state.on_worker(&headers, body, select).await
        }
        Err(failure) => {
            // Read (and drop) the body all the same: a client still sending it would otherwise
            // see the connection reset instead of the answer.
            let _ = state.read_body(&headers, body, state.max_request_bytes).await;
            Err(failure)
        }
    };
    let policy = recorded_policy(&version);
    let (status, case, selection, error) = match outcome {
        Ok((case, selection)) => {
            let label = match &selection {
                SelectionAnswer::Selected { .. } => "SELECTED",
                SelectionAnswer::Refused { .. } => "REFUSED",
            };
            state.metrics.decided(label, version.revision, started.elapsed());
            (StatusCode::OK, Some(case), Some(selection), None)
        }
        Err(failure) => {
            let (status, _, error, _) = failed::<()>(&state, failure);
            (status, None, None, error)
        }
    };
    let mut body = json!({"decision_id": id, "policy": policy});
    match (&selection, &error) {
        (Some(selection), _) => body["selection"] = json!(selection),
        (None, Some(error)) => body["error"] = json!(error),
        (None, None) => {}
    }
    state
        .log(DecisionRecord {
            decision_id: id,
            timestamp: timestamp(at),
            policy,
            line: None,
            batch_id: None,
            case,
            task: None,
            answer: RecordedAnswer::SelectSteps { strategy: query.get("strategy").cloned(), selection, error },
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
        .await;
    (status, Json(body)).into_response()
}

/// `GET /v1/policy`: the active version, the versions kept, the last rejection, the checks.
async fn describe_policy(State(state): State<Arc<AppState>>) -> Response {
    let (active, kept, last_rejected) = state.versions.describe();
    Json(json!({
        "active": active,
        "versions": kept,
        "last_rejected": last_rejected,
        "checking": state.versions.checking(),
        "pin_sha256": state.versions.pins(),
        "uploads_enabled": state.allow_uploads,
        "golden_cases": state.versions.golden_cases(),
        "on_policy_error": state.mode.as_str(),
    }))
    .into_response()
}

/// `PUT /v1/policy?name=NAME`: a component in; checked, then active (200), or rejected (422,
/// with the check and the reason). 403 unless uploads are enabled, before the body is read.
/// The checks run on a thread of their own within the check budget, never holding up other
/// requests; a client that goes away stops them, and so does a newer candidate.
/// The header an upload's signature comes in.
pub(crate) const SIGNATURE_HEADER: &str = "x-runretry-signature";

async fn upload_policy(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !state.allow_uploads {
        let message = "uploads are disabled: start the server with --allow-uploads";
        return (StatusCode::FORBIDDEN, Json(json!({"error": {"kind": "forbidden", "message": message}})))
            .into_response();
    }
    let body = match state.read_body(&headers, body, MAX_UPLOAD_BYTES).await {
        Ok(read) => read.bytes,
        Err(failure) => return (failure.status, Json(json!({"error": failure.json()}))).into_response(),
    };
    let name = query.get("name").cloned().unwrap_or_else(|| "upload".into());
    // The signature line (`runretry sign` writes it to POLICY.sig), for a server with trusted
    // keys; bounded by the header limits, checked by the versions.
    let signature = headers.get(SIGNATURE_HEADER).and_then(|value| value.to_str().ok()).map(str::to_string);
    let interrupt = Interrupt::new(state.versions.check_budget());
    // Dropped with this handler: when the client disconnects, the checks stop.
    let _cancel_on_drop = CancelOnDrop(interrupt.clone());
    let (answer, answered) = tokio::sync::oneshot::channel();
    let versions = state.versions.clone();
    let spawned = std::thread::Builder::new().name("runretry-check".into()).spawn(move || {
        let _ = answer.send(versions.offer_interruptible(&name, Origin::Api, &body, signature.as_deref(), interrupt));
    });
    let offered = match spawned {
        Ok(_) => answered.await.map_err(|_| "the check's thread ended without an answer".to_string()),
        Err(e) => Err(format!("cannot start the check's thread: {e}")),
    };
    match offered {
        Ok(Ok(version)) => Json(json!({"active": version.info()})).into_response(),
        Ok(Err(rejection)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "error": {"kind": "rejected", "check": rejection.check, "message": rejection.to_string()},
                "rejected": rejection,
            })),
        )
            .into_response(),
        Err(message) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": ErrorReply::internal(message).json()})))
                .into_response()
        }
    }
}

/// Stops a candidate's checks when whoever waits for them is gone.
struct CancelOnDrop(Arc<Interrupt>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.stop(StopReason::Cancelled);
    }
}

/// `POST /v1/policy/rollback`, body empty or `{"revision": N}`: re-activate a kept version (the
/// one before the active version by default). 409 when there is none.
async fn rollback(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let body = match state.read_body(&headers, body, state.max_request_bytes).await {
        Ok(read) => read.bytes,
        Err(failure) => return (failure.status, Json(json!({"error": failure.json()}))).into_response(),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rollback {
        revision: Option<u64>,
    }
    let revision = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let mut deserializer = serde_json::Deserializer::from_slice(&body);
        match serde_path_to_error::deserialize::<_, Rollback>(&mut deserializer) {
            Ok(rollback) => rollback.revision,
            Err(e) => {
                let path = e.path().to_string();
                let failure = ErrorReply::bad_request(format!("request body: {path}: {}", e.inner()), Some(path));
                return (failure.status, Json(json!({"error": failure.json()}))).into_response();
            }
        }
    };
    match state.versions.rollback(revision) {
        Ok(version) => Json(json!({"active": version.info()})).into_response(),
        Err(message) => {
            (StatusCode::CONFLICT, Json(json!({"error": {"kind": "rollback", "message": message}}))).into_response()
        }
    }
}

/// `GET /health`: the process is up.
async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /health/ready`: a policy is active and the server is not stopping. Probes carry no
/// token, so which version is active (its sha256 and revision) is shown only with the token,
/// when one is set.
async fn ready(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        if state.token.as_ref().is_some_and(|token| !presents(&headers, token)) {
            return Json(json!({"status": "ready"})).into_response();
        }
        let active = state.versions.active();
        Json(json!({"status": "ready", "revision": active.revision, "sha256": active.sha256})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "stopping"}))).into_response()
    }
}

/// `GET /metrics`: Prometheus (OpenMetrics text).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render()).into_response()
}
