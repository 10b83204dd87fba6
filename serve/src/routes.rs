//! The HTTP endpoints. Every request loads the active version once and keeps it to the end;
//! policy calls (and parsing, which is CPU work too) run on tokio's blocking pool, at most
//! `workers` at once, never on the runtime's threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;

use runretry_kit::{Case, CaseError, Config, Decision, SelectionAnswer, Strategy};

use runretry::Error;
use runretry::Policy;
use runretry::{fall_back, OnPolicyError};

use super::auth::{require_token, Token};
use super::body::{BodyLimits, ReadBody, Unread};
use super::decision_log::DecisionLog;
use super::metrics::{Metrics, CONTENT_TYPE};
use super::versions::{Origin, Version, Versions};
use super::ServeConfig;
use runretry::decision_record::{DecisionRecord, RecordedAnswer, RecordedError, RecordedFallback, RecordedPolicy};
use runretry::{Interrupt, StopReason};

/// Largest policy component `PUT /v1/policy` accepts: interpreted guests (Python, JavaScript)
/// are tens of MiB.
const MAX_UPLOAD_BYTES: usize = 256 << 20;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) versions: Arc<Versions>,
    fallback: Option<Policy>,
    mode: OnPolicyError,
    config_override: Option<Config>,
    metrics: Arc<Metrics>,
    log: Option<Arc<DecisionLog>>,
    workers: Arc<Semaphore>,
    /// The number of workers, for a batch's share of them.
    worker_count: usize,
    deadline: Duration,
    allow_uploads: bool,
    ready: AtomicBool,
    bodies: BodyLimits,
    max_request_bytes: usize,
}

impl AppState {
    pub(crate) fn new(
        config: &ServeConfig,
        versions: Arc<Versions>,
        fallback: Option<Policy>,
        metrics: Arc<Metrics>,
        log: Option<Arc<DecisionLog>>,
    ) -> Self {
        AppState {
            versions,
            fallback,
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
    ) -> impl std::future::Future<Output = Result<T, Failure>> + Send + 'static {
        let workers = self.workers.clone();
        async move {
            let permit = workers.acquire_owned().await.map_err(|_| Failure::unavailable("stopping"))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work()
            })
            .await
            .map_err(|e| Failure::internal(format!("the decision's thread failed: {e}")))
        }
    }

    /// Decide with `version`, applying the fallback mode to a policy failure.
    fn decide(&self, version: &Version, case: &Case) -> Decided {
        match version.policy.decide(case) {
            Ok(decision) => Decided { result: Ok(decision), fell_back: None },
            Err(error) if error.is_bad_input() => Decided { result: Err(error), fell_back: None },
            Err(error) => {
                self.metrics.policy_error(error.kind());
                match fall_back(error.clone(), &version.name, self.fallback.as_ref(), case, self.mode) {
                    Ok(decision) => {
                        self.metrics.fallback(self.mode.as_str());
                        Decided { result: Ok(decision), fell_back: Some(error) }
                    }
                    Err(error) => Decided { result: Err(error), fell_back: None },
                }
            }
        }
    }

    fn parse(&self, source: &str, body: &[u8]) -> Result<Case, Failure> {
        let text =
            std::str::from_utf8(body).map_err(|e| Failure::bad_request(format!("{source}: not UTF-8: {e}"), None))?;
        let mut case = Case::from_json(source, text).map_err(Failure::from)?;
        if let Some(config) = self.config_override {
            case.config = config;
        }
        Ok(case)
    }

    /// What `/v1/decide` and `/v1/select-steps` share: read the body, then parse its case and
    /// run `work` on it on a worker, within the request deadline.
    async fn on_worker<T: Send + 'static>(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: Body,
        work: impl FnOnce(&AppState, &Case) -> Result<T, Failure> + Send + 'static,
    ) -> Result<(Case, T), Failure> {
        let body = self.read_body(headers, body, self.max_request_bytes).await?.bytes;
        match tokio::time::timeout(self.deadline, self.on_case("request body".into(), body, work)).await {
            Ok(Ok(result)) => result,
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::deadline(self.deadline)),
        }
    }

    /// Parse `body` as a case (named `source` in errors) and run `work` on it, on a worker.
    fn on_case<T: Send + 'static>(
        self: &Arc<Self>,
        source: String,
        body: Bytes,
        work: impl FnOnce(&AppState, &Case) -> Result<T, Failure> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<Result<(Case, T), Failure>, Failure>> + Send + 'static {
        let shared = self.clone();
        self.blocking(move || {
            let case = shared.parse(&source, &body)?;
            let answer = work(&shared, &case)?;
            Ok((case, answer))
        })
    }

    /// Read a request body of at most `max_bytes` (see `body`).
    async fn read_body(&self, headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<ReadBody, Failure> {
        self.bodies.read(headers, body, max_bytes).await.map_err(Failure::unreadable)
    }

    fn log(&self, records: impl IntoIterator<Item = DecisionRecord>) {
        // One append per record on a local file: microseconds, so done here rather than on
        // another thread, which keeps "answered" and "logged" in step.
        if let Some(log) = &self.log {
            log.append(records);
        }
    }
}

struct Decided {
    result: Result<Decision, Error>,
    /// The policy's error, when the fallback answered instead.
    fell_back: Option<Error>,
}

/// Why there is no answer: an HTTP status, and the error object the body carries.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    kind: String,
    message: String,
    /// The JSON path at fault, for malformed input.
    path: Option<String>,
}

impl Failure {
    fn bad_request(message: String, path: Option<String>) -> Self {
        Failure { status: StatusCode::BAD_REQUEST, kind: "bad input".into(), message, path }
    }

    fn unavailable(message: &str) -> Self {
        Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "unavailable".into(),
            message: message.into(),
            path: None,
        }
    }

    fn deadline(deadline: Duration) -> Self {
        Failure {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "request deadline exceeded".into(),
            message: format!("no answer within the request deadline of {} ms", deadline.as_millis()),
            path: None,
        }
    }

    /// The body could not be read: over the size limit (413), too slow (408), cut short (400).
    fn unreadable(unread: Unread) -> Self {
        Failure { status: unread.status, kind: unread.kind.into(), message: unread.message, path: None }
    }

    fn internal(message: String) -> Self {
        Failure { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal".into(), message, path: None }
    }

    fn json(&self) -> Value {
        json!(self.recorded())
    }

    fn recorded(&self) -> RecordedError {
        RecordedError { kind: self.kind.clone(), message: self.message.clone(), path: self.path.clone() }
    }
}

impl From<CaseError> for Failure {
    fn from(error: CaseError) -> Self {
        let path = error.path.clone();
        Failure::bad_request(error.to_string(), path)
    }
}

impl From<Error> for Failure {
    /// Bad input is the client's (400); anything else is the policy's failure (500), named by
    /// its kind.
    fn from(error: Error) -> Self {
        let status = if error.is_bad_input() { StatusCode::BAD_REQUEST } else { StatusCode::INTERNAL_SERVER_ERROR };
        Failure { status, kind: error.kind().into(), message: error.to_string(), path: None }
    }
}

pub(crate) fn router(state: Arc<AppState>, config: &ServeConfig) -> Router {
    // Bodies are read by the handlers themselves (`AppState::read_body`), within the limits.
    let mut app = Router::new()
        .route("/v1/decide", post(decide))
        .route("/v1/decide/batch", post(decide_batch))
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

/// Build the answer and the record of one decision (or of its failure), and count it.
fn answer_decision(
    state: &AppState,
    id: String,
    at: SystemTime,
    version: &Version,
    outcome: Result<(Case, Decided), Failure>,
    started: Instant,
) -> Answered {
    let latency = started.elapsed();
    // The case is logged whenever it parsed, the policy's failure included.
    let (case, outcome) = match outcome {
        Ok((case, decided)) => (Some(case), Ok(decided)),
        Err(failure) => (None, Err(failure)),
    };
    let (status, decision, error, fallback) = match outcome {
        Ok(Decided { result: Ok(decision), fell_back }) => {
            state.metrics.decided(decision.action.as_str(), version.revision, latency);
            let fallback = fell_back.map(|error| RecordedFallback {
                mode: state.mode.as_str().into(),
                kind: error.kind().into(),
                message: error.to_string(),
            });
            (StatusCode::OK, Some(decision), None, fallback)
        }
        Ok(Decided { result: Err(error), .. }) => failed(state, Failure::from(error)),
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
    let record = DecisionRecord {
        decision_id: id,
        timestamp: timestamp(at),
        policy,
        line: None,
        case,
        answer: RecordedAnswer::Decide { decision, error, fallback },
        latency_ms: latency.as_secs_f64() * 1000.0,
    };
    Answered { status, body, record }
}

fn failed<T>(
    state: &AppState,
    failure: Failure,
) -> (StatusCode, Option<T>, Option<RecordedError>, Option<RecordedFallback>) {
    if failure.status == StatusCode::BAD_REQUEST {
        state.metrics.bad_request();
    }
    (failure.status, None, Some(failure.recorded()), None)
}

/// `POST /v1/decide`: a case (the CLI's case JSON) in; the decision, its id and the deciding
/// policy out.
async fn decide(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let (started, at, id) = (Instant::now(), SystemTime::now(), decision_id());
    let version = state.versions.active();
    let decided = {
        let version = version.clone();
        state.on_worker(&headers, body, move |state, case| Ok(state.decide(&version, case))).await
    };
    let answered = answer_decision(&state, id, at, &version, decided, started);
    state.log([answered.record]);
    (answered.status, Json(answered.body)).into_response()
}

/// `POST /v1/decide/batch`: one case per line in (blank lines skipped), one answer per line
/// out, in order, each with `line` (from 1). Every line is decided by the same version. The
/// request deadline covers the batch: lines not decided by then answer with that error. A body
/// that cannot be read (over the size limit) gets one JSON error, as `/v1/decide` would.
async fn decide_batch(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let (started, at) = (Instant::now(), SystemTime::now());
    let deadline = tokio::time::Instant::now() + state.deadline;
    let version = state.versions.active();
    let read = state.read_body(&headers, body, state.max_request_bytes).await;
    let body = match read {
        Ok(read) => read.bytes,
        Err(failure) => {
            let answered = answer_decision(&state, decision_id(), at, &version, Err(failure), started);
            state.log([answered.record]);
            return (answered.status, Json(answered.body)).into_response();
        }
    };
    // At most `workers` lines in flight: a batch takes its turn with the other requests for the
    // workers instead of queueing all its lines ahead of them.
    let lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(index, line)| (index + 1, body.slice_ref(line)))
        .collect::<Vec<_>>();
    let mut in_flight = std::collections::VecDeque::with_capacity(state.worker_count);
    let mut out = String::new();
    let mut records = Vec::new();
    let mut lines = lines.into_iter().peekable();
    while lines.peek().is_some() || !in_flight.is_empty() {
        if in_flight.len() < state.worker_count {
            if let Some((number, line)) = lines.next() {
                let version = version.clone();
                let work = state.on_case(format!("request body:{number}"), line, move |state, case| {
                    Ok(state.decide(&version, case))
                });
                in_flight.push_back((number, tokio::spawn(work)));
                continue;
            }
        }
        let Some((number, mut task)) = in_flight.pop_front() else { break };
        let outcome = match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(result))) => result,
            Ok(Ok(Err(failure))) => Err(failure),
            Ok(Err(join)) => Err(Failure::internal(format!("the decision's task failed: {join}"))),
            Err(_) => {
                task.abort();
                Err(Failure::deadline(state.deadline))
            }
        };
        let mut answered = answer_decision(&state, decision_id(), at, &version, outcome, started);
        answered.body["line"] = json!(number);
        answered.record.line = Some(number);
        out.push_str(&serde_json::to_string(&answered.body).expect("answers serialise"));
        out.push('\n');
        records.push(answered.record);
    }
    state.log(records);
    ([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response()
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
            Err(Failure::bad_request(
                format!("query parameter strategy: {text:?} is not one of {}", known.join(", ")),
                Some("?strategy".into()),
            ))
        }
        None => Err(Failure::bad_request(
            "query parameter strategy is required (ALL_STEPS, FROM_FAILURE, ...)".into(),
            Some("?strategy".into()),
        )),
    };
    let outcome = match strategy {
        Ok(strategy) => {
            let version = version.clone();
            let select = move |state: &AppState, case: &Case| {
                version.policy.select_steps(&case.run, strategy).map_err(|error| {
                    if !error.is_bad_input() {
                        state.metrics.policy_error(error.kind());
                    }
                    Failure::from(error)
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
    state.log([DecisionRecord {
        decision_id: id,
        timestamp: timestamp(at),
        policy,
        line: None,
        case,
        answer: RecordedAnswer::SelectSteps { strategy: query.get("strategy").cloned(), selection, error },
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    }]);
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
    let interrupt = Interrupt::new(state.versions.check_budget());
    // Dropped with this handler: when the client disconnects, the checks stop.
    let _cancel_on_drop = CancelOnDrop(interrupt.clone());
    let (answer, answered) = tokio::sync::oneshot::channel();
    let versions = state.versions.clone();
    let spawned = std::thread::Builder::new().name("runretry-check".into()).spawn(move || {
        let _ = answer.send(versions.offer_interruptible(&name, Origin::Api, &body, interrupt));
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
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": Failure::internal(message).json()})))
            .into_response(),
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
                let failure = Failure::bad_request(format!("request body: {path}: {}", e.inner()), Some(path));
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

/// `GET /health/ready`: a policy is active and the server is not stopping.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
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
