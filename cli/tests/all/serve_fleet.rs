//! A fleet (issue #28, point 4): replicas of `runretry serve` watching one policy directory, as
//! a Kubernetes Deployment mounting one volume runs them, converge on a swapped policy within
//! the documented time (a poll interval, then the candidate's checks), and no replica's log
//! mixes the versions: each switches once, and every decision is the policy its record names.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use runretry::DEFAULT_POLICY_WASM;
use runretry_serve::sha256_hex;

use crate::serve::{case_for, log_lines, Client, ServeProcess};
use crate::support::{example_policy, wait_for};

/// What docs/deployment.md promises: a replica takes a new file within its poll interval and
/// the candidate's checks, which `--check-budget-ms` bounds (60 s by default).
const POLL_MS: u64 = 200;
const CHECK_BUDGET: Duration = Duration::from_secs(60);

#[test]
fn three_replicas_watching_one_policy_converge_on_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.wasm");
    std::fs::write(&policy, DEFAULT_POLICY_WASM).unwrap();
    let backoff = std::fs::read(example_policy("backoff_policy")).unwrap();
    let (old, new) = (sha256_hex(DEFAULT_POLICY_WASM), sha256_hex(&backoff));
    let logs: Vec<_> = (0..3).map(|i| dir.path().join(format!("replica-{i}.jsonl"))).collect();
    let replicas: Vec<ServeProcess> = logs
        .iter()
        .map(|log| {
            let args = ["--policy", policy.to_str().unwrap(), "--decision-log", log.to_str().unwrap()];
            ServeProcess::start_polling(POLL_MS, &args)
        })
        .collect();

    let stop = AtomicBool::new(false);
    let converged: Vec<Duration> = std::thread::scope(|scope| {
        // A client per replica, deciding all along: before, during and after the swap.
        for (r, replica) in replicas.iter().enumerate() {
            let (stop, addr) = (&stop, replica.addr);
            scope.spawn(move || {
                let client = Client::new(addr);
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (status, answer) = client.post("/v1/decide", case_for(&format!("run-{r}-{i}")).as_bytes());
                    assert_eq!(status, 200, "replica {r}: {answer}");
                }
            });
        }
        for log in &logs {
            wait_for("decisions by the first version", || std::fs::read(log).is_ok_and(|t| t.len() > 10_000));
        }
        // The swap, as a deployment makes it: a new file renamed over the old, at once.
        let staged = dir.path().join(".policy.wasm.new");
        std::fs::write(&staged, &backoff).unwrap();
        std::fs::rename(&staged, &policy).unwrap();
        let swapped = Instant::now();
        let converged = replicas
            .iter()
            .map(|replica| {
                let client = Client::new(replica.addr);
                wait_for("the replica to take the new version", || {
                    client.get_json("/v1/policy")["active"]["sha256"] == new.as_str()
                });
                swapped.elapsed()
            })
            .collect();
        for log in &logs {
            wait_for("decisions by the new version", || std::fs::read_to_string(log).is_ok_and(|t| t.contains(&new)));
        }
        stop.store(true, Ordering::SeqCst);
        converged
    });
    println!("replicas on the new version after: {converged:?} (poll every {POLL_MS} ms)");
    for elapsed in &converged {
        assert!(*elapsed < Duration::from_millis(POLL_MS) + CHECK_BUDGET, "{elapsed:?}");
    }

    drop(replicas);
    for log in &logs {
        let records = log_lines(log);
        let versions: Vec<&str> = records.iter().map(|r| r["policy"]["sha256"].as_str().unwrap()).collect();
        let switch = versions.iter().position(|sha| *sha == new).expect("the new version decided");
        assert!(switch > 0, "{}: the old version decided nothing", log.display());
        assert!(versions[..switch].iter().all(|sha| *sha == old), "{}: an unknown version", log.display());
        assert!(versions[switch..].iter().all(|sha| *sha == new), "{}: the versions are mixed", log.display());
        // Each decision is its version's: the backoff policy delays a retry, Dagster's does not.
        for record in &records {
            let delay = record["decision"]["delay_seconds"].as_f64().unwrap();
            let by_backoff = record["policy"]["sha256"] == new.as_str();
            assert_eq!(delay > 0.0, by_backoff, "{}: {}", log.display(), record["decision"]);
        }
    }
}
