//! Candidate versions that are slow, superseded or abandoned never hold up the service; names a
//! client chose reach logs escaped; SIGTERM drains as documented; and the small points of an
//! operator's day (the auth scheme's case, metrics present at zero, masked values in errors).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use runretry_serve::{ServeConfig, Server};
use serde_json::Value;

use crate::serve::{case_for, config, log_lines, server_logging_masked, Client, ServeProcess};
use crate::support::{example_policy, wait_for};

fn uploads(dir: &std::path::Path) -> ServeConfig {
    ServeConfig { allow_uploads: true, ..config(dir) }
}

fn looping() -> Vec<u8> {
    std::fs::read(runretry_test_guests::hostile("infinite_loop")).unwrap()
}

fn backoff() -> Vec<u8> {
    std::fs::read(example_policy("backoff_policy")).unwrap()
}

/// `PUT /v1/policy` written on a raw socket, so the test decides when the client goes away.
fn raw_upload(addr: std::net::SocketAddr, name: &str, component: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "PUT /v1/policy?name={name} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", component.len())
        .unwrap();
    stream.write_all(component).unwrap();
    stream
}

fn checking(client: &Client) -> Value {
    client.get_json("/v1/policy")["checking"].clone()
}

#[test]
fn a_slow_candidate_holds_up_no_rollback_and_a_newer_candidate_supersedes_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(uploads(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    assert_eq!(client.put("/v1/policy?name=backoff.wasm", &backoff()).0, 200);
    std::thread::scope(|scope| {
        let addr = server.local_addr();
        let slow = scope.spawn(move || Client::new(addr).put("/v1/policy?name=loop.wasm", &looping()));
        wait_for("the looping candidate's checks to start", || checking(&client)["name"] == "loop.wasm");
        // While it is checked: reads and a rollback answer, and requests are decided.
        let (status, body) = client.post("/v1/policy/rollback", b"");
        assert_eq!((status, &body["active"]["revision"]), (200, &serde_json::json!(1)), "{body}");
        assert_eq!(client.post("/v1/decide", case_for("during-check").as_bytes()).0, 200);
        assert!(!slow.is_finished(), "the checks ended before the test could look (they loop)");
        assert_eq!(checking(&client)["name"], "loop.wasm");
        // A newer candidate takes its place and is accepted; the older one answers at once.
        let (status, body) = client.put("/v1/policy?name=backoff-again.wasm", &backoff());
        assert_eq!(status, 200, "{body}");
        let (status, body) = slow.join().unwrap();
        assert_eq!((status, body["error"]["check"].as_str()), (422, Some("superseded")), "{body}");
    });
    let policy = client.get_json("/v1/policy");
    assert_eq!(policy["active"]["name"], "backoff-again.wasm", "{policy}");
    assert!(policy["checking"].is_null(), "{policy}");
}

#[test]
fn a_candidate_past_its_budget_is_rejected_and_checks_stop_at_the_first_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    // Neither fuel nor the per-call deadline stop the loop within the budget: only the budget.
    let sandbox =
        runretry::SandboxConfig { fuel: u64::MAX / 2, deadline: Duration::from_secs(60), ..config(dir.path()).sandbox };
    let server =
        Server::start(ServeConfig { check_budget: Duration::from_secs(6), sandbox, ..uploads(dir.path()) }).unwrap();
    let client = Client::new(server.local_addr());
    let (status, body) = client.put("/v1/policy?name=loop.wasm", &looping());
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("time budget")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("6000 ms"), "{body}");
    let (status, body) =
        client.put("/v1/policy?name=panic.wasm", &std::fs::read(runretry_test_guests::hostile("panic")).unwrap());
    assert_eq!((status, body["error"]["check"].as_str()), (422, Some("contract")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("checks stop at the first failing case") && message.contains("FAIL "), "{message}");
}

#[test]
fn a_client_that_goes_away_cancels_its_candidates_checks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(uploads(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let upload = raw_upload(server.local_addr(), "loop.wasm", &looping());
    wait_for("the checks to start", || checking(&client)["name"] == "loop.wasm");
    drop(upload);
    wait_for("the checks to be cancelled", || {
        let policy = client.get_json("/v1/policy");
        policy["checking"].is_null() && policy["last_rejected"]["check"] == "cancelled"
    });
    assert_eq!(client.get_json("/v1/policy")["active"]["revision"], 1);
}

#[cfg(unix)]
#[test]
fn sigterm_drains_not_ready_then_exits_even_while_a_candidate_is_checked() {
    let mut server = ServeProcess::start(&["--allow-uploads", "--drain-ms", "1500"]);
    let client = Client::new(server.addr);
    let mut upload = raw_upload(server.addr, "loop.wasm", &looping());
    wait_for("the checks to start", || checking(&client)["name"] == "loop.wasm");
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child's pid, with a signal it handles.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    // Draining: still accepting, not ready, still deciding.
    wait_for("readiness to turn 503", || Client::new(server.addr).get("/health/ready").0 == 503);
    assert!(signalled.elapsed() < Duration::from_millis(1500), "the drain is over already");
    assert_eq!(Client::new(server.addr).get("/health").0, 200);
    assert_eq!(Client::new(server.addr).post("/v1/decide", case_for("draining").as_bytes()).0, 200);
    let mut answer = String::new();
    let _ = upload.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 422") && answer.contains(r#""check":"shutdown""#), "{answer}");
    let status = server.exited_within(Duration::from_secs(20)).expect("the server did not exit after SIGTERM");
    assert!(status.success(), "{status}");
    let took = signalled.elapsed();
    assert!(took >= Duration::from_millis(1500), "exited before its drain period: {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
}

#[test]
fn upload_names_reach_logs_escaped_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(uploads(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    let forged = "x%0Arunretry%20serve%3A%20policy%20revision%2099%20active%0D%1B%5B2K%E2%80%AE";
    let long = "a".repeat(20_000);
    let (status, body) = client.put(&format!("/v1/policy?name={forged}{long}"), &backoff());
    assert_eq!(status, 200, "{body}");
    let name = body["active"]["name"].as_str().unwrap();
    assert!(!name.chars().any(|c| c.is_control() || c == '\u{202e}'), "{name:?}");
    assert!(name.starts_with(r"x\u{a}runretry serve: policy revision 99 active\u{d}\u{1b}[2K\u{202e}"), "{name:?}");
    assert!(name.chars().count() <= 203, "a {}-character name is kept", name.chars().count());
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { token: Some("s3cret".into()), ..config(dir.path()) }).unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        write!(
            stream,
            "GET /v1/policy HTTP/1.1\r\nHost: x\r\nAuthorization: {scheme} s3cret\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{scheme}: {answer}");
    }
}

#[test]
fn failure_metrics_are_exported_at_zero_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).unwrap();
    let metrics = Client::new(server.local_addr()).get("/metrics").1;
    for series in [
        r#"runretry_policy_errors_total{kind="guest trap"} 0"#,
        r#"runretry_policy_errors_total{kind="deadline exceeded"} 0"#,
        r#"runretry_policy_errors_total{kind="invalid policy output"} 0"#,
        r#"runretry_fallbacks_total{mode="default"} 0"#,
        r#"runretry_fallbacks_total{mode="give-up"} 0"#,
    ] {
        assert!(metrics.contains(series), "{series} is missing:\n{metrics}");
    }
}

#[test]
fn a_masked_tag_value_does_not_leak_through_an_error_in_the_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = server_logging_masked(dir.path());
    let mut case: Value = serde_json::from_str(&case_for("masked")).unwrap();
    case["run"]["tags"]["api_token"] = serde_json::json!(987654321);
    let (status, body) = Client::new(server.local_addr()).post("/v1/decide", case.to_string().as_bytes());
    assert_eq!(status, 400, "{body}");
    drop(server);
    let records = log_lines(&log);
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("987654321"), "the masked value is in the log: {text}");
    assert_eq!(records[0]["error"]["path"], "run.tags.api_token", "{text}");
}
