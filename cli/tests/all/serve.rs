//! `runretry serve` over loopback HTTP: the endpoints, hot swaps with their checks, rollback and
//! pinning, the decision log, and the load and fault tests (16 clients while versions swap; a
//! hostile version under load; a killed server's log). Servers listen on 127.0.0.1:0 and are
//! always stopped: an in-process [`Server`] stops on drop, a child process is killed on drop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use runretry::{Case, OnPolicyError, Sandbox, SandboxConfig, DEFAULT_POLICY_WASM};
use runretry_serve::{sha256_hex, DecisionLogConfig, ServeConfig, Server};
use serde_json::{json, Value};

use crate::support::{example_case, example_policy, example_text, repo, wait_for};

/// A server config for tests: any free loopback port, no file watching, a private compile cache.
pub(crate) fn config(cache: &Path) -> ServeConfig {
    ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        sandbox: SandboxConfig { cache_dir: Some(cache.join("cache")), ..SandboxConfig::default() },
        poll_interval: None,
        ..ServeConfig::default()
    }
}

/// A blocking HTTP client for one server (keep-alive; error statuses are answers, not errors).
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(addr: std::net::SocketAddr) -> Self {
        let config = ureq::Agent::config_builder().http_status_as_error(false).build();
        Client { agent: ureq::Agent::new_with_config(config), base: format!("http://{addr}"), token: None }
    }

    pub(crate) fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    fn send(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut response = match method {
            "GET" => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()?
            }
            _ => {
                let mut request = match method {
                    "PUT" => self.agent.put(&url),
                    _ => self.agent.post(&url),
                };
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(body.unwrap_or_default())?
            }
        };
        let status = response.status().as_u16();
        let text = response.body_mut().with_config().limit(64 << 20).read_to_string()?;
        Ok((status, text))
    }

    pub(crate) fn post(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, text) = self.send("POST", path, Some(body)).unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
    }

    pub(crate) fn put(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let (status, text) = self.send("PUT", path, Some(body)).unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        self.send("GET", path, None).unwrap()
    }

    pub(crate) fn get_json(&self, path: &str) -> Value {
        let (status, text) = self.get(path);
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// Example 01 (a retry under the default config) for run `run_id`.
pub(crate) fn case_for(run_id: &str) -> String {
    let mut case: Value = serde_json::from_str(&example_text("01")).unwrap();
    case["run"]["run_id"] = json!(run_id);
    case.to_string()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The default policy's answer to example 01, decided in-process, as JSON.
fn in_process_decision(case: &Case) -> Value {
    let sandbox = Sandbox::new(SandboxConfig { cache_dir: None, ..SandboxConfig::default() }).unwrap();
    serde_json::to_value(sandbox.load_default().unwrap().decide(case).unwrap()).unwrap()
}

/// Every line of a JSON Lines file, parsed (a line that does not parse fails the test).
pub(crate) fn log_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "{}: the last line is torn", path.display());
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}: {line}", path.display(), i + 1))
        })
        .collect()
}

#[test]
fn decide_answers_with_a_decision_id_and_the_deciding_policy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let (status, first) = client.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["decision"], in_process_decision(&example_case("01")));
    assert_eq!(first["policy"]["sha256"], sha256_hex(DEFAULT_POLICY_WASM));
    assert_eq!(first["policy"]["revision"], 1);
    let (_, second) = client.post("/v1/decide", example_text("01").as_bytes());
    let (a, b) = (first["decision_id"].as_str().unwrap(), second["decision_id"].as_str().unwrap());
    assert!(a.len() == 36 && a != b, "decision ids are unique UUIDs: {a} {b}");
    let policy = client.get_json("/v1/policy");
    assert_eq!(policy["active"]["sha256"], sha256_hex(DEFAULT_POLICY_WASM));
    assert_eq!(policy["active"]["revision"], 1);
    assert_eq!(policy["active"]["origin"], "startup");
    assert!(policy["active"]["loaded_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(policy["versions"].as_array().unwrap().len(), 1);
    assert!(policy["last_rejected"].is_null());
    assert_eq!(client.get_json("/health")["status"], "ok");
    assert_eq!(client.get_json("/health/ready")["revision"], 1);
}

#[test]
fn malformed_input_is_400_naming_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let mut case: Value = serde_json::from_str(&example_text("01")).unwrap();
    case["run"]["steps"][1]["status"] = json!("DONE");
    let (status, body) = client.post("/v1/decide", case.to_string().as_bytes());
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["kind"], "bad input");
    assert_eq!(body["error"]["path"], "run.steps[1].status");
    assert!(body["error"]["message"].as_str().unwrap().contains("DONE"), "{body}");
    assert!(body["decision_id"].is_string() && body["policy"]["sha256"].is_string());
    let (status, body) = client.post("/v1/decide", b"{\"run\": ");
    assert_eq!(status, 400, "{body}");
    let (status, body) = client.post("/v1/decide", b"[1, 2]");
    assert_eq!((status, body["error"]["kind"].as_str()), (400, Some("bad input")));
    let metrics = client.get("/metrics").1;
    assert!(metrics.contains("runretry_bad_requests_total 3"), "{metrics}");
}

#[test]
fn batch_answers_every_line_in_order_with_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let body = format!("{}\n\n{}\nnot json\n{}\n", case_for("run-1"), case_for("run-2"), case_for("run-3"));
    let (status, text) = client.send("POST", "/v1/decide/batch", Some(body.as_bytes())).unwrap();
    assert_eq!(status, 200, "{text}");
    let answers: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let lines: Vec<u64> = answers.iter().map(|a| a["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [1, 3, 4, 5]);
    for (answer, run) in [(&answers[0], "run-1"), (&answers[1], "run-2"), (&answers[3], "run-3")] {
        assert_eq!(answer["decision"]["new_run_tags"]["dagster/parent_run_id"], run, "{answer}");
    }
    assert_eq!(answers[2]["error"]["kind"], "bad input");
    assert!(answers[2]["error"]["message"].as_str().unwrap().contains("request body:4"), "{}", answers[2]);
    let ids: HashSet<&str> = answers.iter().map(|a| a["decision_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    assert!(answers.iter().all(|a| a["policy"] == answers[0]["policy"]));
}

#[test]
fn select_steps_answers_the_selection_or_names_the_missing_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let case = example_text("10");
    let (status, body) = client.post("/v1/select-steps?strategy=ALL_STEPS", case.as_bytes());
    assert_eq!(status, 200, "{body}");
    let case = example_case("10");
    let all: Vec<&str> = case.run.steps.iter().map(|s| s.key.as_str()).collect();
    let mut got: Vec<&str> =
        body["selection"]["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    got.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(got, want);
    let (status, body) = client.post("/v1/select-steps", example_text("10").as_bytes());
    assert_eq!((status, body["error"]["path"].as_str()), (400, Some("?strategy")));
    let (status, body) = client.post("/v1/select-steps?strategy=SOME", example_text("10").as_bytes());
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_bearer_token_guards_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { token: Some("s3cret".into()), ..config(dir.path()) }).unwrap();
    let anonymous = Client::new(server.local_addr());
    let (status, body) = anonymous.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!((status, body["error"]["kind"].as_str()), (401, Some("unauthorized")));
    assert_eq!(anonymous.get("/metrics").0, 401);
    assert_eq!(anonymous.get("/v1/policy").0, 401);
    assert_eq!(anonymous.get("/health").0, 200);
    assert_eq!(anonymous.get("/health/ready").0, 200);
    let wrong = Client::new(server.local_addr()).with_token("s3cre");
    assert_eq!(wrong.post("/v1/decide", example_text("01").as_bytes()).0, 401);
    let right = Client::new(server.local_addr()).with_token("s3cret");
    assert_eq!(right.post("/v1/decide", example_text("01").as_bytes()).0, 200);
}

#[test]
fn a_request_over_the_size_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { max_request_bytes: 300, ..config(dir.path()) }).unwrap();
    let client = Client::new(server.local_addr());
    let (status, body) = client.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!((status, body["error"]["kind"].as_str()), (413, Some("request too large")), "{body}");
    assert!(body["decision_id"].is_string() && body["policy"]["sha256"].is_string(), "{body}");
    let (status, body) = client.post("/v1/decide/batch", case_for("r").as_bytes());
    assert_eq!((status, body["error"]["kind"].as_str()), (413, Some("request too large")), "{body}");
    let (status, _) = client.post("/v1/select-steps?strategy=ALL_STEPS", example_text("01").as_bytes());
    assert_eq!(status, 413);
    assert_eq!(client.post("/v1/decide", br#"{"run": {"run_id": "r", "status": "FAILURE"}}"#).0, 200);
}

#[test]
fn a_failing_policy_answers_its_error_kind_or_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let panic = read(runretry_test_guests::hostile("panic"));
    let failing = Server::start(config(dir.path())).unwrap();
    failing.activate_unchecked("panic.wasm", &panic).unwrap();
    let (status, body) = Client::new(failing.local_addr()).post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["kind"], "guest trap");
    assert_eq!(body["policy"]["sha256"], sha256_hex(&panic));

    let giving_up =
        Server::start(ServeConfig { on_policy_error: OnPolicyError::GiveUp, ..config(dir.path()) }).unwrap();
    giving_up.activate_unchecked("panic.wasm", &panic).unwrap();
    let client = Client::new(giving_up.local_addr());
    let (status, body) = client.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"]["action"], "NONE");
    assert_eq!(body["fallback"]["mode"], "give-up");
    assert_eq!(body["fallback"]["kind"], "guest trap");
    let metrics = client.get("/metrics").1;
    assert!(metrics.contains(r#"runretry_policy_errors_total{kind="guest trap"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"runretry_fallbacks_total{mode="give-up"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"runretry_decisions_total{action="NONE",policy_revision="2"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"runretry_policy_swaps_total{outcome="accepted"} 2"#), "{metrics}");
    assert!(metrics.contains("runretry_decision_latency_seconds_bucket"), "{metrics}");
}

/// A policy that never answers: the request gets 503 at its deadline (the policy call is cut
/// off by the sandbox's own, later deadline), and so does a request queued behind it.
#[test]
fn a_request_past_its_deadline_is_503_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let base = config(dir.path());
    let server = Server::start(ServeConfig {
        sandbox: SandboxConfig {
            fuel: u64::MAX / 2,
            deadline: std::time::Duration::from_secs(2),
            ..base.sandbox.clone()
        },
        request_deadline: std::time::Duration::from_millis(200),
        workers: 1,
        decision_log: Some(DecisionLogConfig::new(&log)),
        ..base
    })
    .unwrap();
    let looping = read(runretry_test_guests::hostile("infinite_loop"));
    server.activate_unchecked("loop.wasm", &looping).unwrap();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let addr = server.local_addr();
                scope.spawn(move || Client::new(addr).post("/v1/decide", example_text("01").as_bytes()))
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["kind"], "request deadline exceeded");
        assert_eq!(body["policy"]["sha256"], sha256_hex(&looping));
    }
    drop(server);
    let records = log_lines(&log);
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["error"]["kind"] == "request deadline exceeded" && r["decision"].is_null()));
}

/// Golden cases for swaps: the default suite, delays aside (so the backoff policy passes and the
/// wrong policy does not).
fn golden(config: ServeConfig) -> ServeConfig {
    ServeConfig {
        golden: vec![repo().join("tests/conformance")],
        golden_ignore: vec!["delay_seconds".into()],
        allow_uploads: true,
        ..config
    }
}

#[test]
fn uploads_are_checked_swapped_rolled_back_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let backoff = read(example_policy("backoff_policy"));
    let server = Server::start(golden(config(dir.path()))).unwrap();
    let client = Client::new(server.local_addr());
    let (status, body) = client.put("/v1/policy?name=backoff.wasm", &backoff);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"]["revision"], 2);
    assert_eq!(body["active"]["name"], "backoff.wasm");
    let (_, decided) = client.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(decided["policy"]["revision"], 2);
    assert!(decided["decision"]["delay_seconds"].as_f64().unwrap() > 0.0, "{decided}");

    let (status, body) = client.put("/v1/policy?name=wrong.wasm", &read(runretry_test_guests::WRONG_MAX_RETRIES));
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("golden")), "{body}");
    let (status, body) = client.put("/v1/policy?name=panic.wasm", &read(runretry_test_guests::hostile("panic")));
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("contract")), "{body}");
    let (status, body) = client.put("/v1/policy?name=junk", b"not a component");
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("compile")), "{body}");
    let policy = client.get_json("/v1/policy");
    assert_eq!(policy["active"]["revision"], 2, "a rejected candidate leaves the active version");
    assert_eq!(policy["last_rejected"]["name"], "junk");
    assert!(policy["last_rejected"]["reason"].as_str().unwrap().contains("not a WebAssembly file"), "{policy}");

    let (status, body) = client.post("/v1/policy/rollback", b"");
    assert_eq!((status, &body["active"]["revision"]), (200, &json!(1)), "{body}");
    assert_eq!(client.post("/v1/decide", example_text("01").as_bytes()).1["policy"]["revision"], 1);
    let (status, body) = client.post("/v1/policy/rollback", b"");
    assert_eq!(status, 409, "nothing older than revision 1: {body}");
    let (status, body) = client.post("/v1/policy/rollback", br#"{"revision": 2}"#);
    assert_eq!((status, &body["active"]["revision"]), (200, &json!(2)), "{body}");
    let (status, body) = client.post("/v1/policy/rollback", br#"{"revison": 2}"#);
    assert_eq!(status, 400, "{body}");
    let metrics = client.get("/metrics").1;
    assert!(metrics.contains(r#"runretry_policy_swaps_total{outcome="rejected"} 3"#), "{metrics}");
    assert!(metrics.contains(r#"runretry_policy_swaps_total{outcome="rollback"} 2"#), "{metrics}");
    drop(server);

    let pinned = Server::start(ServeConfig {
        pin_sha256: vec![sha256_hex(DEFAULT_POLICY_WASM).to_uppercase()],
        ..golden(config(dir.path()))
    })
    .unwrap();
    let (status, body) = Client::new(pinned.local_addr()).put("/v1/policy", &backoff);
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("pin")), "{body}");
    let refused = Server::start(ServeConfig { pin_sha256: vec![sha256_hex(&backoff)], ..config(dir.path()) });
    let error = refused.err().expect("the embedded policy is not the pinned one").to_string();
    assert!(error.contains("pin") && error.contains(&sha256_hex(DEFAULT_POLICY_WASM)), "{error}");
    let closed = Server::start(config(dir.path())).unwrap();
    let (status, body) = Client::new(closed.local_addr()).put("/v1/policy", &backoff);
    assert_eq!((status, body["error"]["kind"].as_str()), (403, Some("forbidden")));
}

#[test]
fn the_policy_file_is_watched_and_a_bad_change_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.wasm");
    std::fs::write(&file, DEFAULT_POLICY_WASM).unwrap();
    let server = Server::start(ServeConfig {
        policy: Some(file.clone()),
        poll_interval: Some(std::time::Duration::from_millis(20)),
        ..config(dir.path())
    })
    .unwrap();
    let client = Client::new(server.local_addr());
    replace(&file, &read(example_policy("backoff_policy")));
    wait_for("the file change to be swapped in", || client.get_json("/v1/policy")["active"]["revision"] == 2);
    assert_eq!(client.get_json("/v1/policy")["active"]["origin"], "file_change");
    replace(&file, b"half a component");
    wait_for("the bad file to be rejected", || !client.get_json("/v1/policy")["last_rejected"].is_null());
    let policy = client.get_json("/v1/policy");
    assert_eq!(policy["active"]["revision"], 2);
    assert_eq!(policy["last_rejected"]["check"], "compile");
    assert_eq!(policy["last_rejected"]["origin"], "file_change");
}

/// Replace a file the way deployments should: write beside it, then rename over it.
fn replace(file: &Path, bytes: &[u8]) {
    let next = file.with_extension("next");
    std::fs::write(&next, bytes).unwrap();
    std::fs::rename(&next, file).unwrap();
}

/// A server logging decisions to `dir/decisions.jsonl`, masking tags named like `*token*`.
pub(crate) fn server_logging_masked(dir: &Path) -> (Server, PathBuf) {
    let log = dir.join("decisions.jsonl");
    let server = Server::start(ServeConfig {
        decision_log: Some(DecisionLogConfig { mask: vec!["*token*".into()], ..DecisionLogConfig::new(&log) }),
        ..config(dir)
    })
    .unwrap();
    (server, log)
}

#[test]
fn the_decision_log_records_every_answer_with_tags_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = server_logging_masked(dir.path());
    let client = Client::new(server.local_addr());
    let mut case: Value = serde_json::from_str(&example_text("01")).unwrap();
    case["run"]["tags"] = json!({"team/api_token": "hunter2", "owner": "data"});
    let (_, decided) = client.post("/v1/decide", case.to_string().as_bytes());
    let (_, refused) = client.post("/v1/decide", b"{}");
    drop(server);
    let records = log_lines(&log);
    assert_eq!(records.len(), 2);
    let (record, bad) = (&records[0], &records[1]);
    assert_eq!(record["decision_id"], decided["decision_id"]);
    assert_eq!(record["policy"], decided["policy"]);
    assert_eq!(record["decision"]["new_run_tags"]["team/api_token"], "<masked>");
    assert_eq!(decided["decision"]["new_run_tags"]["team/api_token"], "hunter2", "only the log is masked");
    assert_eq!(record["case"]["run"]["tags"], json!({"team/api_token": "<masked>", "owner": "data"}));
    assert!(record["error"].is_null() && record["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(record["timestamp"].as_str().unwrap().ends_with('Z'));
    Case::from_json("record", &record["case"].to_string()).expect("a logged case is a case");
    assert_eq!(bad["decision_id"], refused["decision_id"]);
    assert_eq!(bad["error"]["kind"], "bad input");
    assert!(bad["case"].is_null() && bad["decision"].is_null());
}

/// `/v1/decide-task` answers a task case as the core does and logs it as a `decide-task`
/// record with the task case; a run-only version falls back as any failing policy.
#[test]
fn decide_task_answers_a_task_case_and_logs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = server_logging_masked(dir.path());
    let client = Client::new(server.local_addr());
    let task = json!({"task": {"dag_id": "etl", "task_id": "load", "run_id": "manual__1", "try_number": 1,
        "max_tries": 2, "settings": {"retries": 2, "retry_delay_seconds": 45},
        "exception": {"class_name": "builtins.ConnectionError", "message": "reset"}}});
    let (status, decided) = client.post("/v1/decide-task", task.to_string().as_bytes());
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["decision"]["action"], "retry");
    assert_eq!(decided["decision"]["delay_seconds"], 45.0);
    assert_eq!(decided["policy"]["sha256"], sha256_hex(DEFAULT_POLICY_WASM));
    let (status, bad) = client.post("/v1/decide-task", br#"{"task": {"dag_id": "etl"}}"#);
    assert_eq!((status, bad["error"]["kind"].as_str()), (400, Some("bad input")), "{bad}");
    let (status, run_case) = client.post("/v1/decide-task", example_text("01").as_bytes());
    assert_eq!(status, 400, "a run case is not a task case: {run_case}");
    drop(server);
    let records = log_lines(&log);
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["endpoint"], "decide-task");
    assert_eq!(records[0]["decision"], decided["decision"]);
    assert_eq!(records[0]["task"]["task_id"], "load");
    assert!(records[0]["case"].is_null());
    assert_eq!(records[1]["error"]["kind"], "bad input");
}

/// `clients` threads with a connection each share `requests` numbered 0, 1, ...: each takes the
/// next number `g` (counted in `started`), waits until `ready(g)`, and sends `send(client, g)`.
/// The answers of all, in no particular order.
fn load<T: Send>(
    addr: std::net::SocketAddr,
    clients: usize,
    requests: usize,
    started: &AtomicUsize,
    ready: impl Fn(usize) -> bool + Sync,
    send: impl Fn(&Client, usize) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let (ready, send) = (&ready, &send);
                scope.spawn(move || {
                    let client = Client::new(addr);
                    let mut answers = Vec::new();
                    loop {
                        let g = started.fetch_add(1, Ordering::SeqCst);
                        if g >= requests {
                            return answers;
                        }
                        while !ready(g) {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        answers.push(send(&client, g));
                    }
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    })
}

/// The load and swap test: 16 clients send 20,000 decisions while the policy is swapped 50
/// times, alternating good candidates (the default policy and the backoff policy, told apart by
/// their answers' delays) with bad ones (a wrong policy the golden cases catch, a panicking one
/// the contract suite catches). Swaps are spread through the load: swap k starts once 200
/// requests of band k (requests 400k..400k+399) have started, and band k+1 waits for it.
#[test]
fn sixteen_clients_and_fifty_swaps_lose_no_request_and_mix_no_version() {
    const CLIENTS: usize = 16;
    const REQUESTS: usize = 20_000;
    const SWAPS: usize = 50;
    const BAND: usize = REQUESTS / SWAPS;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let server =
        Server::start(ServeConfig { decision_log: Some(DecisionLogConfig::new(&log)), ..golden(config(dir.path())) })
            .unwrap();
    let addr = server.local_addr();
    let default_sha = sha256_hex(DEFAULT_POLICY_WASM);
    let backoff = read(example_policy("backoff_policy"));
    let backoff_sha = sha256_hex(&backoff);
    let candidates: [(&str, Vec<u8>, bool); 4] = [
        ("backoff", backoff, true),
        ("wrong_max_retries", read(runretry_test_guests::WRONG_MAX_RETRIES), false),
        ("default", DEFAULT_POLICY_WASM.to_vec(), true),
        ("panic", read(runretry_test_guests::hostile("panic")), false),
    ];
    let started = AtomicUsize::new(0);
    let swaps_done = AtomicUsize::new(0);
    let (answers, swaps) = std::thread::scope(|scope| {
        let swapper = scope.spawn(|| {
            let client = Client::new(addr);
            let mut outcomes = Vec::new();
            for k in 0..SWAPS {
                while started.load(Ordering::SeqCst) < k * BAND + BAND / 2 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let (name, bytes, good) = &candidates[k % candidates.len()];
                let (status, body) = client.put(&format!("/v1/policy?name={name}"), bytes);
                assert_eq!(status, if *good { 200 } else { 422 }, "swap {k} ({name}): {body}");
                outcomes.push(body);
                swaps_done.store(k + 1, Ordering::SeqCst);
            }
            outcomes
        });
        let answers = load(
            addr,
            CLIENTS,
            REQUESTS,
            &started,
            |g| swaps_done.load(Ordering::SeqCst) >= (g / BAND).min(SWAPS),
            |client, g| {
                let run_id = format!("run-{g}");
                let (status, body) = client.post("/v1/decide", case_for(&run_id).as_bytes());
                (run_id, status, body)
            },
        );
        (answers, swapper.join().unwrap())
    });
    assert_eq!(swaps.len(), SWAPS);
    assert_eq!(answers.len(), REQUESTS, "every request answered");
    let mut revisions: BTreeMap<u64, String> = BTreeMap::new();
    let mut ids = HashSet::new();
    for (run_id, status, body) in &answers {
        assert_eq!(*status, 200, "{run_id}: {body}");
        let decision = &body["decision"];
        assert_eq!(decision["new_run_tags"]["dagster/parent_run_id"], json!(run_id), "the answer is to this request");
        let sha = body["policy"]["sha256"].as_str().unwrap();
        let revision = body["policy"]["revision"].as_u64().unwrap();
        // The answer is the named version's own: the backoff policy delays, the default does not.
        let delay = decision["delay_seconds"].as_f64().unwrap();
        if sha == default_sha {
            assert_eq!(delay, 0.0, "{run_id}: named the default policy, answered with a delay: {body}");
        } else {
            assert_eq!(sha, backoff_sha, "{run_id}: only good versions decide: {body}");
            assert!(delay > 0.0, "{run_id}: named the backoff policy, answered without a delay: {body}");
        }
        let known = revisions.entry(revision).or_insert_with(|| sha.to_string());
        assert_eq!(known, sha, "revision {revision} named two policies");
        assert!(ids.insert(body["decision_id"].as_str().unwrap().to_string()), "a decision id reused");
    }
    assert!(revisions.len() >= SWAPS / 4, "answers came from many versions: {revisions:?}");
    let logged = log_lines(&log);
    assert_eq!(logged.len(), REQUESTS, "one record per decision");
    let logged: HashSet<String> = logged.iter().map(|r| r["decision_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(logged, ids, "every answer logged, nothing else");
    let policy = Client::new(addr).get_json("/v1/policy");
    // The swaps alternate two good policies: each sha256 is kept once, as its newest revision.
    let kept: HashSet<&str> =
        policy["versions"].as_array().unwrap().iter().map(|v| v["sha256"].as_str().unwrap()).collect();
    assert_eq!(kept, HashSet::from([default_sha.as_str(), backoff_sha.as_str()]), "{policy}");
    assert_eq!(policy["versions"].as_array().unwrap().len(), 2, "{policy}");
    assert_eq!(policy["last_rejected"]["name"], candidates[(SWAPS - 1) % candidates.len()].0);
}

/// A hostile version activated under load, bypassing the checks: its own requests fail with its
/// error; every request decided by another version answers.
#[test]
fn a_hostile_version_under_load_costs_only_its_own_requests() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 2_400;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let addr = server.local_addr();
    let hostile = read(runretry_test_guests::hostile("panic"));
    let hostile_sha = sha256_hex(&hostile);
    let started = AtomicUsize::new(0);
    let phase = AtomicUsize::new(0);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let (started, phase) = (&started, &phase);
        let (server, hostile) = (&server, &hostile);
        scope.spawn(move || {
            for (at, step) in [(800, 1), (1_600, 2)] {
                while started.load(Ordering::SeqCst) < at {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                if step == 1 {
                    server.activate_unchecked("hostile.wasm", hostile).unwrap();
                } else {
                    server.offer("default.wasm", DEFAULT_POLICY_WASM).unwrap();
                }
                phase.store(step, Ordering::SeqCst);
            }
        });
        // Each third of the load waits for its phase: some requests are sure to meet the
        // hostile version, and some the good one after it.
        load(
            addr,
            CLIENTS,
            REQUESTS,
            started,
            |g| phase.load(Ordering::SeqCst) >= (g / 800).min(2),
            |client, g| client.post("/v1/decide", case_for(&format!("run-{g}")).as_bytes()),
        )
    });
    assert_eq!(answers.len(), REQUESTS);
    let mut by_policy: HashMap<bool, usize> = HashMap::new();
    for (status, body) in &answers {
        let hostile_decided = body["policy"]["sha256"] == json!(hostile_sha);
        *by_policy.entry(hostile_decided).or_default() += 1;
        if hostile_decided {
            assert_eq!(*status, 500, "{body}");
            assert_eq!(body["error"]["kind"], "guest trap", "{body}");
        } else {
            assert_eq!(*status, 200, "only the hostile version's requests may fail: {body}");
            assert_eq!(body["decision"]["action"], "LAUNCH_NEW");
        }
    }
    assert!(by_policy[&true] >= 1 && by_policy[&false] >= 1600, "{by_policy:?}");
    let client = Client::new(addr);
    assert_eq!(client.get_json("/v1/policy")["active"]["revision"], 3);
    let (status, body) = client.post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(status, 200, "the server serves on after the hostile version: {body}");
}

/// `runretry serve` as a child process, killed (SIGKILL) when dropped.
pub(crate) struct ServeProcess {
    child: Child,
    pub(crate) addr: std::net::SocketAddr,
}

impl ServeProcess {
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::spawn(Self::command(args))
    }

    /// Started with its limit on open files (soft and hard) set to `files`.
    #[cfg(unix)]
    pub(crate) fn start_with_file_limit(args: &[&str], files: u64) -> Self {
        use std::os::unix::process::CommandExt;
        let mut command = Self::command(args);
        // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: files as libc::rlim_t, rlim_max: files as libc::rlim_t };
                match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        Self::spawn(command)
    }

    /// `runretry serve ARGS` on 127.0.0.1:0, its stdout piped (the first line names the
    /// address), its stderr inherited.
    pub(crate) fn command(args: &[&str]) -> Command {
        Self::command_polling(0, args)
    }

    /// `runretry serve ARGS` polling its policy file every `every_ms` (0: not at all).
    pub(crate) fn start_polling(every_ms: u64, args: &[&str]) -> Self {
        Self::spawn(Self::command_polling(every_ms, args))
    }

    fn command_polling(every_ms: u64, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runretry"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--poll-interval-ms", &every_ms.to_string()])
            .args(args)
            .env("RUNRETRY_CACHE", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        command
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().expect("run runretry serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| {
            let _ = child.kill();
            panic!("runretry serve did not start: {line:?}")
        });
        let addr = addr.parse().unwrap();
        ServeProcess { child, addr }
    }

    /// The exit status, once the process has exited by itself within `within`.
    pub(crate) fn exited_within(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + within;
        while std::time::Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    pub(crate) fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Kill the server (SIGKILL) while clients are writing, and tear the log's last line the way a
/// power cut could: on restart the log is repaired, every line parses, and every answer a
/// client received before the kill is in it.
#[test]
fn a_killed_server_leaves_a_whole_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let log_arg = log.display().to_string();
    let mut server = ServeProcess::start(&["--decision-log", &log_arg]);
    let stop = AtomicBool::new(false);
    let answered = AtomicUsize::new(0);
    let received: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, answered, addr) = (&stop, &answered, server.addr);
                scope.spawn(move || {
                    let client = Client::new(addr);
                    let mut ids = Vec::new();
                    for i in 0..5_000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let body = case_for(&format!("run-{c}-{i}"));
                        match client.send("POST", "/v1/decide", Some(body.as_bytes())) {
                            Ok((200, text)) => {
                                let answer: Value = serde_json::from_str(&text).unwrap();
                                ids.push(answer["decision_id"].as_str().unwrap().to_string());
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok((status, text)) => panic!("{status}: {text}"),
                            Err(_) => break, // the server was killed
                        }
                    }
                    ids
                })
            })
            .collect();
        // Answers follow their log line: count what the clients got (on a loaded machine they
        // lag the log), so the kill comes with requests in flight and 300 answers received.
        wait_for("300 answered decisions", || answered.load(Ordering::SeqCst) >= 300);
        server.kill();
        stop.store(true, Ordering::SeqCst);
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    assert!(received.len() >= 300, "{}", received.len());
    let before = log_lines(&log);
    let logged: HashSet<&str> = before.iter().map(|r| r["decision_id"].as_str().unwrap()).collect();
    assert!(received.iter().all(|id| logged.contains(id.as_str())), "an answered decision is missing from the log");
    let mut torn = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut torn, br#"{"decision_id":"torn","case":{"run":"#).unwrap();
    drop(torn);

    let restarted = ServeProcess::start(&["--decision-log", &log_arg]);
    let (status, answer) = Client::new(restarted.addr).post("/v1/decide", example_text("01").as_bytes());
    assert_eq!(status, 200, "{answer}");
    drop(restarted);
    let after = log_lines(&log);
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after.last().unwrap()["decision_id"], answer["decision_id"]);
}

#[cfg(unix)]
#[test]
fn sighup_reads_the_policy_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("policy.wasm");
    std::fs::write(&file, DEFAULT_POLICY_WASM).unwrap();
    let server = ServeProcess::start(&["--policy", &file.display().to_string()]);
    let client = Client::new(server.addr);
    assert_eq!(client.get_json("/v1/policy")["active"]["revision"], 1);
    replace(&file, &read(example_policy("backoff_policy")));
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGHUP) }, 0);
    wait_for("SIGHUP to swap the file in", || client.get_json("/v1/policy")["active"]["revision"] == 2);
    let active = client.get_json("/v1/policy")["active"].clone();
    assert_eq!(active["origin"], "signal");
    assert_eq!(active["sha256"], sha256_hex(&read(example_policy("backoff_policy"))));
}
