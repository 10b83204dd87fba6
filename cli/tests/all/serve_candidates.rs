//! Candidate versions that are slow, superseded or abandoned never hold up the service; names a
//! client chose reach logs escaped; SIGTERM drains as documented; and the small points of an
//! operator's day (the auth scheme's case, metrics present at zero, masked values in errors).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use runretry_serve::{ServeConfig, Server};
use serde_json::Value;

use crate::serve::{case_for, config, log_lines, server_logging_masked, Client, ServeProcess};
use crate::support::{cache_entries, example_policy, variant, wait_for};

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

/// Issue #31: 50 concurrent uploads all compiled at once, superseded ones included, and with
/// clients deciding meanwhile none was accepted. At most one candidate compiles at a time, and
/// one superseded while it waits for its turn is never compiled.
#[test]
fn concurrent_uploads_compile_one_at_a_time_and_the_newest_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(uploads(dir.path())).unwrap();
    let addr = server.local_addr();
    let cache = dir.path().join("cache");
    let before = cache_entries(&cache).len();
    let uploads = 20;
    let components: Vec<Vec<u8>> = (0..uploads).map(|n| variant(&backoff(), n)).collect();
    let done = AtomicBool::new(false);
    let start = Barrier::new(components.len());
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let deciders: Vec<_> = (0..4)
            .map(|c| {
                let done = &done;
                scope.spawn(move || {
                    let client = Client::new(addr);
                    for i in 0.. {
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        let (status, body) =
                            client.post("/v1/decide", case_for(&format!("decider-{c}-{i}")).as_bytes());
                        assert_eq!(status, 200, "{body}");
                    }
                })
            })
            .collect();
        let start = &start;
        let uploaders: Vec<_> = components
            .iter()
            .enumerate()
            .map(|(n, component)| {
                scope.spawn(move || {
                    start.wait();
                    Client::new(addr).put(&format!("/v1/policy?name=v{n}"), component)
                })
            })
            .collect();
        let answers = uploaders.into_iter().map(|u| u.join().unwrap()).collect();
        done.store(true, Ordering::SeqCst);
        deciders.into_iter().for_each(|d| d.join().unwrap());
        answers
    });
    let accepted: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert!(!accepted.is_empty(), "no upload was accepted: {answers:?}");
    for (status, body) in &answers {
        assert!(*status == 200 || body["error"]["check"] == "superseded", "{status}: {body}");
    }
    let policy = Client::new(addr).get_json("/v1/policy");
    assert!(policy["checking"].is_null(), "{policy}");
    assert_eq!(
        policy["active"]["revision"],
        accepted.iter().map(|a| &a["active"]["revision"]).max_by_key(|r| r.as_u64()).unwrap().clone()
    );
    let compiled = cache_entries(&cache).len() - before;
    assert!(compiled <= 5, "{compiled} of {uploads} concurrent candidates were compiled");
}

/// Issue #31: `/health/ready` showed the active version's sha256 and revision to anyone.
#[test]
fn readiness_names_the_version_only_to_a_client_with_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { token: Some("s3cret".into()), ..config(dir.path()) }).unwrap();
    let (status, body) = Client::new(server.local_addr()).get("/health/ready");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &body["status"]), (200, &Value::from("ready")), "{body}");
    assert!(body.get("sha256").is_none() && body.get("revision").is_none(), "{body}");
    let body = Client::new(server.local_addr()).with_token("s3cret").get_json("/health/ready");
    assert_eq!(body["revision"], 1, "{body}");
    assert!(body["sha256"].is_string(), "{body}");
}

/// Issue #31: a token file of two lines started a server that answered 401 to everything.
#[test]
fn a_token_file_of_more_than_one_line_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret\nsecond line\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--poll-interval-ms", "0", "--token-file"])
        .arg(&file)
        .env("RUNRETRY_CACHE", "off")
        .env_remove("RUNRETRY_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runretry serve started with a two-line token file");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "the error names the file: {stderr}");
    assert!(!stderr.contains("s3cret"), "the error shows the token: {stderr}");
    // One line, with its newline, is a token.
    std::fs::write(&file, "s3cret\n").unwrap();
    let server = ServeProcess::start(&["--token-file", &file.display().to_string()]);
    assert_eq!(Client::new(server.addr).with_token("s3cret").get("/v1/policy").0, 200);
}

/// Issue #31: offering the bytes of a kept version again kept its sha256 twice.
#[test]
fn a_version_offered_again_is_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(uploads(dir.path())).unwrap();
    let client = Client::new(server.local_addr());
    assert_eq!(client.put("/v1/policy?name=backoff.wasm", &backoff()).0, 200);
    let (status, body) = client.put("/v1/policy?name=default-again.wasm", runretry::DEFAULT_POLICY_WASM);
    assert_eq!((status, &body["active"]["revision"]), (200, &Value::from(3)), "{body}");
    let policy = client.get_json("/v1/policy");
    let kept: Vec<&str> =
        policy["versions"].as_array().unwrap().iter().map(|v| v["sha256"].as_str().unwrap()).collect();
    assert_eq!(kept.len(), 2, "{policy}");
    assert_ne!(kept[0], kept[1], "{policy}");
    // A rollback goes to the version before, not to an older copy of the same bytes.
    let (status, body) = client.post("/v1/policy/rollback", b"");
    assert_eq!((status, &body["active"]["name"]), (200, &Value::from("backoff.wasm")), "{body}");
}
