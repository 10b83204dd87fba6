//! The active policy and the versions kept for rollback. A candidate becomes a version only
//! after passing every check, then is swapped in atomically: each request loads the active
//! `Arc<Version>` once and keeps it, so requests in flight finish on the version they started
//! with while new ones get the new version.
//!
//! One candidate is compiled and checked at a time: a compile cannot be stopped half-way, and
//! fifty at once took every core and all the memory, so that none finished within its budget.
//! A candidate waits for its turn, and gives up waiting when a newer one arrives (so of a burst
//! of uploads only the one being checked and the newest are ever compiled), when its client
//! goes away, or when its budget runs out.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
pub use runretry::sha256_hex;
use serde::Serialize;

use runretry::calls::{Interrupt, StopReason};
use runretry::conformance::{check_candidate, CandidateSuite, ConformanceCase, Verdict};
use runretry::signing::TrustedKeys;
use runretry::text::escape_untrusted;
use runretry::Error;
use runretry::{Deployment, OnFailure, Policy, Sandbox, DEFAULT_POLICY_WASM};

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
    /// The policy, failing as `--on-policy-error` says.
    pub(crate) deployment: Deployment,
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
    /// Which check refused it: `pin`, `compile`, `contract` or `golden`; or why its checks
    /// stopped: `superseded` (a newer candidate came), `cancelled` (its client went away),
    /// `shutdown` (the server is stopping) or `time budget` (the checks ran out of time).
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
    /// The keys a candidate must be signed by, when set.
    pub(crate) trusted: Option<TrustedKeys>,
    /// The time all checks of one candidate may take together (compiling included).
    pub(crate) budget: Duration,
}

struct History {
    /// Oldest first; holds the active version.
    kept: VecDeque<Arc<Version>>,
    next_revision: u64,
    last_rejected: Option<Rejection>,
}

/// The candidate being checked.
struct Pending {
    interrupt: Arc<Interrupt>,
    info: CheckingInfo,
}

/// A candidate being checked, as `GET /v1/policy` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckingInfo {
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// Its file or upload name.
    pub name: String,
    /// How it arrived.
    pub origin: Origin,
    /// When its checks started, RFC 3339.
    pub since: String,
}

/// The versions of one server.
pub(crate) struct Versions {
    /// `None` only before the start-up policy is accepted (the server is not listening then).
    active: ArcSwapOption<Version>,
    history: Mutex<History>,
    /// The candidate being checked, if any. Checks run without a lock, so rollbacks and reads
    /// never wait for them; a newer candidate stops this one, and only the newest may become
    /// active.
    pending: Mutex<Option<Pending>>,
    /// Whether a candidate is being compiled or checked (see the module's doc).
    checker_busy: Mutex<bool>,
    /// Signalled when the checker is free, or when a waiting candidate is stopped.
    checker_free: Condvar,
    sandbox: Sandbox,
    /// What every accepted version does when it fails.
    on_failure: OnFailure,
    checks: Checks,
    keep: usize,
    metrics: Arc<Metrics>,
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
    pub(crate) fn new(
        sandbox: Sandbox,
        on_failure: OnFailure,
        checks: Checks,
        keep: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Versions {
            active: ArcSwapOption::empty(),
            history: Mutex::new(History { kept: VecDeque::new(), next_revision: 1, last_rejected: None }),
            pending: Mutex::new(None),
            checker_busy: Mutex::new(false),
            checker_free: Condvar::new(),
            sandbox,
            on_failure,
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
    pub(crate) fn offer(
        &self,
        name: &str,
        origin: Origin,
        bytes: &[u8],
        signature: Option<&str>,
    ) -> Result<Arc<Version>, Rejection> {
        self.offer_interruptible(name, origin, bytes, signature, Interrupt::new(self.checks.budget))
    }

    /// [`offer`](Self::offer), with checks that `interrupt` can stop (a client that went away).
    pub(crate) fn offer_interruptible(
        &self,
        name: &str,
        origin: Origin,
        bytes: &[u8],
        signature: Option<&str>,
        interrupt: Arc<Interrupt>,
    ) -> Result<Arc<Version>, Rejection> {
        self.admit(name, origin, bytes, signature, Some(interrupt))
    }

    /// Swap in a component after compiling it, without the contract suite or golden cases.
    pub(crate) fn activate_unchecked(&self, name: &str, bytes: &[u8]) -> Result<Arc<Version>, Rejection> {
        self.admit(name, Origin::Unchecked, bytes, None, None)
    }

    /// The budget for one candidate's checks.
    pub(crate) fn check_budget(&self) -> Duration {
        self.checks.budget
    }

    /// Stop the candidate being checked, if any (the server is stopping).
    pub(crate) fn stop_pending(&self, reason: StopReason) {
        if let Some(pending) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            pending.interrupt.stop(reason);
        }
        self.checker_free.notify_all();
    }

    /// Wait for the checker to be free and take it, unless `interrupt` stops this candidate
    /// first (then why). Stops are seen at once when they notify `checker_free` (a newer
    /// candidate, shutdown), within a poll otherwise (a client gone, the budget).
    fn take_checker(&self, interrupt: &Interrupt) -> Result<CheckerTurn<'_>, StopReason> {
        const POLL: Duration = Duration::from_millis(50);
        let mut busy = self.checker_busy.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(reason) = interrupt.reason() {
                return Err(reason);
            }
            if !*busy {
                *busy = true;
                return Ok(CheckerTurn(self));
            }
            busy = self.checker_free.wait_timeout(busy, POLL).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn checker(&self) -> MutexGuard<'_, bool> {
        self.checker_busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pin, compiling, then (when `checks` is given) the contract suite and the golden
    /// cases, stopped by the interrupt: a newer candidate, a client gone, the time budget.
    fn admit(
        &self,
        name: &str,
        origin: Origin,
        bytes: &[u8],
        signature: Option<&str>,
        checks: Option<Arc<Interrupt>>,
    ) -> Result<Arc<Version>, Rejection> {
        let name = &clean_name(name);
        let sha256 = sha256_hex(bytes);
        if let Some(active) = self.active.load_full() {
            if active.sha256 == sha256 {
                return Ok(active);
            }
        }
        let reject = |check: &'static str, reason: String| {
            let at = String::new();
            self.reject(Rejection { sha256: sha256.clone(), name: name.clone(), origin, at, check, reason })
        };
        self.check_pin(&sha256).map_err(|reason| reject("pin", reason))?;
        // Before compiling: an unsigned candidate costs a hash, not a compile. The embedded
        // default policy is part of the binary, trusted as it is.
        if let Some(keys) = self.checks.trusted.as_ref().filter(|_| bytes != DEFAULT_POLICY_WASM) {
            keys.check(name, bytes, signature).map_err(|refused| reject("signature", refused.to_string()))?;
        }
        // This candidate is now the newest: an older one still being checked stops.
        let interrupt = checks.clone().unwrap_or_else(|| Interrupt::new(Duration::MAX));
        let info =
            CheckingInfo { sha256: sha256.clone(), name: name.clone(), origin, since: now_rfc3339(SystemTime::now()) };
        let newest = Pending { interrupt: interrupt.clone(), info };
        if let Some(older) = self.pending.lock().unwrap_or_else(|e| e.into_inner()).replace(newest) {
            older.interrupt.stop(StopReason::Superseded);
            // An older candidate waiting for its turn gives up now, not at its next poll.
            self.checker_free.notify_all();
        }
        let stopped = |reason: StopReason| {
            let budget = self.checks.budget.as_millis();
            let (check, why) = match reason {
                StopReason::Superseded => ("superseded", "a newer candidate arrived while it was checked".to_string()),
                StopReason::Cancelled => ("cancelled", "its client went away while it was checked".to_string()),
                StopReason::Shutdown => ("shutdown", "the server is stopping".to_string()),
                StopReason::OutOfTime => ("time budget", format!("its checks took longer than {budget} ms")),
            };
            reject(check, why)
        };
        let _turn = match self.take_checker(&interrupt) {
            Ok(turn) => turn,
            Err(reason) => {
                self.forget_pending(&interrupt);
                return Err(stopped(reason));
            }
        };
        let policy = match self.sandbox.load_bytes(name, bytes) {
            Ok(policy) => policy,
            Err(e) => {
                self.forget_pending(&interrupt);
                return Err(reject("compile", e.to_string()));
            }
        };
        if checks.is_some() {
            let candidate = policy.interruptible(interrupt.clone());
            let verdict =
                check_candidate(&candidate, &self.checks.golden, &self.checks.ignore, &|| interrupt.reason().is_some());
            match verdict {
                Verdict::Passed => {}
                Verdict::Stopped => {
                    self.forget_pending(&interrupt);
                    return Err(stopped(interrupt.reason().unwrap_or(StopReason::Cancelled)));
                }
                Verdict::Failed { suite, failure } => {
                    self.forget_pending(&interrupt);
                    let check = match suite {
                        CandidateSuite::Contract => "contract",
                        CandidateSuite::Golden => "golden",
                    };
                    return Err(reject(check, summarise(suite.name(), &failure)));
                }
            }
        }
        // Only the newest candidate is accepted, and only while nothing stopped it.
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.as_ref().is_some_and(|newest| Arc::ptr_eq(&newest.interrupt, &interrupt)) {
            drop(pending);
            return Err(stopped(StopReason::Superseded));
        }
        *pending = None;
        if let Some(reason) = interrupt.reason().filter(|_| checks.is_some()) {
            drop(pending);
            return Err(stopped(reason));
        }
        Ok(self.accept(name, origin, sha256, policy.uninterruptible()))
    }

    /// The candidate `interrupt` belongs to is done: no longer pending, unless a newer one is.
    fn forget_pending(&self, interrupt: &Arc<Interrupt>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.as_ref().is_some_and(|p| Arc::ptr_eq(&p.interrupt, interrupt)) {
            *pending = None;
        }
    }

    /// The candidate being checked, if any.
    pub(crate) fn checking(&self) -> Option<CheckingInfo> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|p| p.info.clone())
    }

    /// Make a kept version active again: `revision`, or the one before the active version.
    pub(crate) fn rollback(&self, revision: Option<u64>) -> Result<Arc<Version>, String> {
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
        tracing::info!("rolled back to revision {} ({}, sha256 {})", target.revision, target.name, target.sha256);
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
            deployment: Deployment::of(policy, self.on_failure.clone()),
        });
        history.next_revision += 1;
        // Bytes offered again replace their older copy: a sha256 is kept once, and a rollback
        // goes to the version before this one, not to the same bytes.
        history.kept.retain(|kept| kept.sha256 != version.sha256);
        history.kept.push_back(version.clone());
        while history.kept.len() > self.keep {
            history.kept.pop_front();
        }
        self.active.store(Some(version.clone()));
        self.metrics.swapped("accepted", version.revision);
        tracing::info!(
            "policy revision {} active ({}, sha256 {}, {:?})",
            version.revision,
            version.name,
            version.sha256,
            origin
        );
        version
    }

    fn reject(&self, mut rejection: Rejection) -> Rejection {
        rejection.at = now_rfc3339(SystemTime::now());
        tracing::warn!("{}", escape_untrusted(&rejection.to_string()));
        self.metrics.swapped("rejected", 0);
        self.history.lock().unwrap_or_else(|e| e.into_inner()).last_rejected = Some(rejection.clone());
        rejection
    }
}

/// The checker, held by one candidate: freed (and the waiting candidates woken) when dropped.
struct CheckerTurn<'a>(&'a Versions);

impl Drop for CheckerTurn<'_> {
    fn drop(&mut self) {
        *self.0.checker() = false;
        self.0.checker_free.notify_all();
    }
}

/// Longest version name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// A version's name as it is stored, shown and logged: a client chose it (`?name=`), so control
/// and invisible characters are escaped (no forged log lines) and the length is bounded.
fn clean_name(name: &str) -> String {
    clip(escape_untrusted(name), MAX_NAME_CHARS)
}

/// `text` cut to `max_chars` characters, `...` marking a cut.
fn clip(text: String, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The first failing case, on a line's worth (a failure lists every difference, and a trap
/// repeats the guest's stderr).
fn summarise(suite: &str, failure: &runretry::conformance::CaseFailure) -> String {
    const LONGEST: usize = 240;
    let shown = clip(failure.to_string(), LONGEST);
    format!("the {suite} failed (checks stop at the first failing case): {shown}")
}
