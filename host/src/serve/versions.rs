//! The active policy and the versions kept for rollback. A candidate becomes a version only
//! after passing every check, then is swapped in atomically: each request loads the active
//! `Arc<Version>` once and keeps it, so requests in flight finish on the version they started
//! with while new ones get the new version.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::conformance::{run_cases, run_suite, ConformanceCase, SuiteChoice};
use crate::error::Error;
use crate::policy::{Policy, Sandbox};

use super::metrics::Metrics;

/// Where a version came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The policy the server started with.
    Startup,
    /// The policy file changed on disk.
    FileChange,
    /// SIGHUP asked for the policy file to be read again.
    Signal,
    /// `PUT /v1/policy`, or [`Server::offer`](super::Server::offer).
    Api,
    /// Activated without checks (a test hook).
    Unchecked,
}

/// A policy version: its bytes' identity, and the loaded policy.
pub(crate) struct Version {
    pub(crate) revision: u64,
    pub(crate) sha256: String,
    pub(crate) name: String,
    pub(crate) origin: Origin,
    pub(crate) loaded_at: SystemTime,
    pub(crate) policy: Policy,
}

/// What is known of a version, as `GET /v1/policy` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionInfo {
    /// Accepted versions are numbered 1, 2, ... in order of acceptance (a rollback re-activates
    /// a kept version under its own revision).
    pub revision: u64,
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// The file it was read from, or the name it was uploaded under.
    pub name: String,
    /// How it arrived.
    pub origin: Origin,
    /// When it was accepted, RFC 3339.
    pub loaded_at: String,
}

/// A candidate that was refused, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rejection {
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// Its file or upload name.
    pub name: String,
    /// How it arrived.
    pub origin: Origin,
    /// When it was refused, RFC 3339.
    pub at: String,
    /// Which check refused it: `pin`, `compile`, `contract` or `golden`.
    pub check: &'static str,
    /// Why, naming the failing cases.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy {} (sha256 {}) rejected by the {} check: {}", self.name, self.sha256, self.check, self.reason)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// The rejection as a library error (an invalid component for this deployment).
    pub(crate) fn into_error(self) -> Error {
        Error::invalid_component(self.to_string())
    }
}

/// What every candidate must pass.
pub(crate) struct Checks {
    pub(crate) golden: Vec<ConformanceCase>,
    pub(crate) ignore: Vec<String>,
    /// Allowed SHA-256s; empty allows any.
    pub(crate) pins: Vec<String>,
}

struct History {
    /// Oldest first; holds the active version.
    kept: VecDeque<Arc<Version>>,
    next_revision: u64,
    last_rejected: Option<Rejection>,
}

/// The versions of one server.
pub(crate) struct Versions {
    /// `None` only before the start-up policy is accepted (the server is not listening then).
    active: ArcSwapOption<Version>,
    history: Mutex<History>,
    /// Candidates are checked one at a time: two swaps must not race to be active.
    checking: Mutex<()>,
    sandbox: Sandbox,
    checks: Checks,
    keep: usize,
    metrics: Arc<Metrics>,
}

/// SHA-256 of `bytes`, lowercase hex: how versions and pins name a component.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn now_rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

impl Version {
    pub(crate) fn info(&self) -> VersionInfo {
        VersionInfo {
            revision: self.revision,
            sha256: self.sha256.clone(),
            name: self.name.clone(),
            origin: self.origin,
            loaded_at: now_rfc3339(self.loaded_at),
        }
    }
}

impl Versions {
    pub(crate) fn new(sandbox: Sandbox, checks: Checks, keep: usize, metrics: Arc<Metrics>) -> Self {
        Versions {
            active: ArcSwapOption::empty(),
            history: Mutex::new(History { kept: VecDeque::new(), next_revision: 1, last_rejected: None }),
            checking: Mutex::new(()),
            sandbox,
            checks,
            keep,
            metrics,
        }
    }

    /// The active version: load it once per request and keep it to the end.
    pub(crate) fn active(&self) -> Arc<Version> {
        self.active.load_full().expect("the server listens only once a version is active")
    }

    /// Check a candidate and, if it passes, make it the active version. Bytes identical to the
    /// active version's change nothing (a SIGHUP with an unchanged file).
    pub(crate) fn offer(&self, name: &str, origin: Origin, bytes: &[u8]) -> Result<Arc<Version>, Rejection> {
        self.admit(name, origin, bytes, true)
    }

    /// Swap in a component after compiling it, without the contract suite or golden cases.
    pub(crate) fn activate_unchecked(&self, name: &str, bytes: &[u8]) -> Result<Arc<Version>, Rejection> {
        self.admit(name, Origin::Unchecked, bytes, false)
    }

    /// The pin, compiling, then (when `checked`) the contract suite and the golden cases.
    fn admit(&self, name: &str, origin: Origin, bytes: &[u8], checked: bool) -> Result<Arc<Version>, Rejection> {
        let _one_at_a_time = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        let sha256 = sha256_hex(bytes);
        if let Some(active) = self.active.load_full() {
            if active.sha256 == sha256 {
                return Ok(active);
            }
        }
        let reject = |check: &'static str, reason: String| {
            let at = String::new();
            self.reject(Rejection { sha256: sha256.clone(), name: name.into(), origin, at, check, reason })
        };
        self.check_pin(&sha256).map_err(|reason| reject("pin", reason))?;
        let policy = self.sandbox.load_bytes(name, bytes).map_err(|e| reject("compile", e.to_string()))?;
        if checked {
            let contract =
                run_suite(&policy, &SuiteChoice::Contract, &[]).map_err(|e| reject("contract", e.to_string()))?;
            if let Some(reason) = summarise("contract suite", contract.passed, &contract.failures) {
                return Err(reject("contract", reason));
            }
            if !self.checks.golden.is_empty() {
                let golden = run_cases(&policy, &self.checks.golden, &self.checks.ignore);
                if let Some(reason) = summarise("golden cases", golden.passed, &golden.failures) {
                    return Err(reject("golden", reason));
                }
            }
        }
        Ok(self.accept(name, origin, sha256, policy))
    }

    /// Make a kept version active again: `revision`, or the one before the active version.
    pub(crate) fn rollback(&self, revision: Option<u64>) -> Result<Arc<Version>, String> {
        let _one_at_a_time = self.checking.lock().unwrap_or_else(|e| e.into_inner());
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let active = self.active();
        let target = match revision {
            Some(revision) => history.kept.iter().find(|v| v.revision == revision).cloned().ok_or_else(|| {
                let kept: Vec<String> = history.kept.iter().map(|v| v.revision.to_string()).collect();
                format!("revision {revision} is not kept (kept: {})", kept.join(", "))
            })?,
            None => {
                let place = history.kept.iter().position(|v| Arc::ptr_eq(v, &active)).unwrap_or(0);
                match place.checked_sub(1).and_then(|p| history.kept.get(p)) {
                    Some(previous) => previous.clone(),
                    None => {
                        return Err(format!("no version older than the active revision {} is kept", active.revision))
                    }
                }
            }
        };
        self.active.store(Some(target.clone()));
        self.metrics.swapped("rollback", target.revision);
        eprintln!(
            "runretry serve: rolled back to revision {} ({}, sha256 {})",
            target.revision, target.name, target.sha256
        );
        Ok(target)
    }

    /// The active version, the versions kept (oldest first) and the last rejection.
    pub(crate) fn describe(&self) -> (VersionInfo, Vec<VersionInfo>, Option<Rejection>) {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let kept = history.kept.iter().map(|v| v.info()).collect();
        (self.active().info(), kept, history.last_rejected.clone())
    }

    pub(crate) fn pins(&self) -> &[String] {
        &self.checks.pins
    }

    pub(crate) fn golden_cases(&self) -> usize {
        self.checks.golden.len()
    }

    fn check_pin(&self, sha256: &str) -> Result<(), String> {
        if self.checks.pins.is_empty() || self.checks.pins.iter().any(|pin| pin == sha256) {
            Ok(())
        } else {
            Err(format!("sha256 {sha256} is not pinned (allowed: {})", self.checks.pins.join(", ")))
        }
    }

    fn accept(&self, name: &str, origin: Origin, sha256: String, policy: Policy) -> Arc<Version> {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let version = Arc::new(Version {
            revision: history.next_revision,
            sha256,
            name: name.to_string(),
            origin,
            loaded_at: SystemTime::now(),
            policy,
        });
        history.next_revision += 1;
        history.kept.push_back(version.clone());
        while history.kept.len() > self.keep {
            history.kept.pop_front();
        }
        self.active.store(Some(version.clone()));
        self.metrics.swapped("accepted", version.revision);
        eprintln!(
            "runretry serve: policy revision {} active ({}, sha256 {}, {:?})",
            version.revision, version.name, version.sha256, origin
        );
        version
    }

    fn reject(&self, mut rejection: Rejection) -> Rejection {
        rejection.at = now_rfc3339(SystemTime::now());
        eprintln!("runretry serve: {rejection}");
        self.metrics.swapped("rejected", 0);
        self.history.lock().unwrap_or_else(|e| e.into_inner()).last_rejected = Some(rejection.clone());
        rejection
    }
}

/// `None` when every case passed; else how many failed and the first few, by name.
fn summarise(suite: &str, passed: usize, failures: &[crate::conformance::CaseFailure]) -> Option<String> {
    if failures.is_empty() {
        return None;
    }
    const SHOWN: usize = 3;
    // A failure lists every difference (a trap repeats the guest's stderr): keep a line's worth.
    const LONGEST: usize = 240;
    let shown: Vec<String> = failures
        .iter()
        .take(SHOWN)
        .map(|f| {
            let text = f.to_string();
            match text.char_indices().nth(LONGEST) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text,
            }
        })
        .collect();
    let more = failures.len().saturating_sub(SHOWN);
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    Some(format!("{} of {} {suite} failed: {}{more}", failures.len(), passed + failures.len(), shown.join("; ")))
}
