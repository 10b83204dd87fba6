//! Signed policies (issue #28, point 2): `runretry keygen` and `runretry sign`; `--trusted-key`
//! on `decide` refuses a policy that is unsigned, changed since it was signed, or signed by an
//! unknown key, and takes several keys for rotation; the service refuses an unsigned start-up
//! file, upload or file change, keeps the active version, and takes the signed one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use runretry::signing::{signature_path, TrustedKeys};
use runretry_serve::{sha256_hex, ServeConfig, Server};

use crate::serve::{config, Client};
use crate::support::{example, example_policy, wait_for};

fn runretry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(args)
        .current_dir(dir)
        .env("RUNRETRY_CACHE", "off")
        .output()
        .expect("run runretry")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `runretry keygen NAME` in `dir`: the public key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let output = runretry(dir, &["keygen", name]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    dir.join(format!("{name}.pub"))
}

fn sign(dir: &Path, key: &str, policy: &Path) {
    let output = runretry(dir, &["sign", "--key", key, policy.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

fn copy_example(name: &str, to: &Path) -> Vec<u8> {
    let bytes = std::fs::read(example_policy(name)).unwrap();
    std::fs::write(to, &bytes).unwrap();
    bytes
}

#[test]
fn decide_takes_only_a_policy_signed_by_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let ops = keygen(dir.path(), "ops");
    let mode = std::fs::metadata(dir.path().join("ops.key")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    let again = runretry(dir.path(), &["keygen", "ops"]);
    assert_eq!(again.status.code(), Some(2), "keygen must not overwrite a key");

    let policy = dir.path().join("backoff.wasm");
    copy_example("backoff_policy", &policy);
    let case = example("01");
    let decide = |keys: &[&Path]| {
        let mut args = vec!["decide", "--policy", policy.to_str().unwrap()];
        for key in keys {
            args.extend(["--trusted-key", key.to_str().unwrap()]);
        }
        args.push(&case);
        runretry(dir.path(), &args)
    };

    let unsigned = decide(&[&ops]);
    assert_eq!(unsigned.status.code(), Some(3), "{}", text(&unsigned.stderr));
    assert!(text(&unsigned.stderr).contains("is not signed"), "{}", text(&unsigned.stderr));

    sign(dir.path(), "ops.key", &policy);
    let signed = decide(&[&ops]);
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    assert!(text(&signed.stdout).contains("delay_seconds"));
    // Without --trusted-key nothing is asked, as before.
    assert_eq!(decide(&[]).status.code(), Some(0));

    // Rotation: a second key trusted beside the first; a policy signed by either loads.
    let next = keygen(dir.path(), "next");
    sign(dir.path(), "next.key", &policy);
    assert_eq!(decide(&[&ops, &next]).status.code(), Some(0));
    let unknown = decide(&[&ops]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(text(&unknown.stderr).contains("which is not trusted"), "{}", text(&unknown.stderr));

    // The policy changed after it was signed.
    let mut bytes = std::fs::read(&policy).unwrap();
    bytes.extend_from_slice(&[0, 1, 0]);
    std::fs::write(&policy, &bytes).unwrap();
    let changed = decide(&[&ops, &next]);
    assert_eq!(changed.status.code(), Some(3));
    assert!(text(&changed.stderr).contains("for another component"), "{}", text(&changed.stderr));

    // `inspect` says whether a trusting sandbox would load it.
    let inspected = runretry(dir.path(), &["inspect", "--trusted-key", "ops.pub", policy.to_str().unwrap()]);
    assert_eq!(inspected.status.code(), Some(3));
    assert!(text(&inspected.stdout).contains("signature: refused"), "{}", text(&inspected.stdout));

    // The embedded default policy needs no signature.
    let default = runretry(dir.path(), &["decide", "--trusted-key", "ops.pub", &case]);
    assert_eq!(default.status.code(), Some(0), "{}", text(&default.stderr));
}

/// `PUT /v1/policy` with the signature header; the status and body.
fn upload(addr: std::net::SocketAddr, component: &[u8], signature: Option<&str>) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let header = signature.map(|line| format!("X-Runretry-Signature: {}\r\n", line.trim())).unwrap_or_default();
    write!(
        stream,
        "PUT /v1/policy?name=upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}Content-Length: {}\r\n\r\n",
        component.len()
    )
    .unwrap();
    stream.write_all(component).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer)
}

#[test]
fn the_service_takes_only_signed_versions_and_keeps_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let ops = keygen(dir.path(), "ops");
    let keys = TrustedKeys::read(&[ops]).unwrap();
    let policy = dir.path().join("policy.wasm");
    let backoff = copy_example("backoff_policy", &policy);
    let trusting = |policy: &Path| ServeConfig {
        policy: Some(policy.to_path_buf()),
        trusted_keys: Some(keys.clone()),
        allow_uploads: true,
        poll_interval: Some(Duration::from_millis(50)),
        ..config(dir.path())
    };

    // At start: an unsigned file is refused, naming why.
    let refused = Server::start(trusting(&policy)).err().expect("an unsigned policy must not start");
    assert!(refused.to_string().contains("is not signed"), "{refused}");
    sign(dir.path(), "ops.key", &policy);
    let server = Server::start(trusting(&policy)).unwrap();
    assert_eq!(server.active().sha256, sha256_hex(&backoff));

    // An upload without a signature, or with another component's, is refused; the active
    // version stays.
    let breaker = std::fs::read(example_policy("circuit_breaker_policy")).unwrap();
    let (status, answer) = upload(server.local_addr(), &breaker, None);
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("signature") && answer.contains("is not signed"), "{answer}");
    let backoff_signature = std::fs::read_to_string(signature_path(&policy)).unwrap();
    let (status, answer) = upload(server.local_addr(), &breaker, Some(&backoff_signature));
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("for another component"), "{answer}");
    assert_eq!(server.active().sha256, sha256_hex(&backoff));

    // Signed, it is taken.
    let breaker_file = dir.path().join("breaker.wasm");
    std::fs::write(&breaker_file, &breaker).unwrap();
    sign(dir.path(), "ops.key", &breaker_file);
    let breaker_signature = std::fs::read_to_string(signature_path(&breaker_file)).unwrap();
    let (status, answer) = upload(server.local_addr(), &breaker, Some(&breaker_signature));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.active().sha256, sha256_hex(&breaker));

    // The watched file replaced by an unsigned policy (its old signature beside it): refused,
    // the active version stays; once signed, it is taken, with no other change.
    let retry_budget = std::fs::read(example_policy("retry_budget_policy")).unwrap();
    std::fs::write(&policy, &retry_budget).unwrap();
    wait_for("the file change to be refused", || {
        let status = policy_status(server.local_addr());
        status.contains(&sha256_hex(&retry_budget)) && status.contains("signature")
    });
    assert_eq!(server.active().sha256, sha256_hex(&breaker));
    sign(dir.path(), "ops.key", &policy);
    wait_for("the re-signed file to be taken", || server.active().sha256 == sha256_hex(&retry_budget));
    server.shutdown().unwrap();
}

/// `GET /v1/policy`: the active version, and the last rejected candidate with the check at fault.
fn policy_status(addr: std::net::SocketAddr) -> String {
    Client::new(addr).get("/v1/policy").1
}
