//! What to do when a policy fails: fail, give up on the run (or task), or decide with the default policy.

use std::path::Path;

use runretry_kit::{Case, Decision, TaskCase, TaskDecision};

use crate::error::Error;
use crate::policy::{Policy, Sandbox, WarmPolicy};

/// The `--on-policy-error` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnPolicyError {
    /// Return the error (the CLI exits 3).
    #[default]
    Fail,
    /// Answer `action: NONE`, with the error in `events`.
    GiveUp,
    /// Decide with the embedded default policy, and say so in `events`.
    Default,
}

impl OnPolicyError {
    /// Every mode, in declaration order.
    pub const ALL: [OnPolicyError; 3] = [OnPolicyError::Fail, OnPolicyError::GiveUp, OnPolicyError::Default];

    /// The mode's name, as `--on-policy-error` spells it: `fail`, `give-up` or `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnPolicyError::Fail => "fail",
            OnPolicyError::GiveUp => "give-up",
            OnPolicyError::Default => "default",
        }
    }

    /// The mode named `text` (as [`as_str`](Self::as_str) spells it), if any.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

/// What a deployment does when its policy fails: the mode, and the embedded default policy when
/// the mode needs it. Loaded once and shared by every version a service swaps in.
#[derive(Clone)]
pub struct OnFailure {
    mode: OnPolicyError,
    default: Option<Policy>,
}

impl OnFailure {
    /// `mode`, with the embedded default policy loaded in `sandbox` when the mode is `Default`.
    pub fn new(sandbox: &Sandbox, mode: OnPolicyError) -> Result<Self, Error> {
        let default = match mode {
            OnPolicyError::Default => Some(sandbox.load_default()?),
            OnPolicyError::Fail | OnPolicyError::GiveUp => None,
        };
        Ok(OnFailure { mode, default })
    }

    /// The mode.
    pub fn mode(&self) -> OnPolicyError {
        self.mode
    }

    /// Apply the mode to `error`, a failure of the policy named `policy_name` (while deciding, or
    /// while loading it: a broken deployment must not stop retries either). Bad input is never
    /// masked: no policy could have answered it.
    fn apply<C: FallbackCase + ?Sized>(&self, error: Error, policy_name: &str, case: &C) -> Decided<C::Answer> {
        if error.is_bad_input() || self.mode == OnPolicyError::Fail {
            return Decided { decision: Err(error), fell_back: None };
        }
        // The kind once: an error's text starts with its kind ("invalid policy component: ...").
        let text = error.to_string();
        let detail = text.strip_prefix(&format!("{}: ", error.kind())).unwrap_or(&text);
        let note = format!("policy {policy_name} failed ({}): {detail}", error.kind());
        // `new` loads the default policy exactly for `Default`; `Fail` returned above.
        let decision = match &self.default {
            None => Ok(C::given_up(note, error.kind())),
            Some(default) => case.decide_with(default).map(|mut decision| {
                C::events(&mut decision).insert(0, format!("{note}; decided with the default policy instead"));
                decision
            }),
        };
        match decision {
            Ok(decision) => Decided { decision: Ok(decision), fell_back: Some(error) },
            Err(failed) => Decided { decision: Err(failed), fell_back: None },
        }
    }
}

/// What the fallback needs of a kind of case: how a policy decides it, and what giving up is.
trait FallbackCase {
    type Answer;
    fn decide_with(&self, policy: &Policy) -> Result<Self::Answer, Error>;
    /// The answer of `give-up`: no retry, saying why.
    fn given_up(note: String, kind: &str) -> Self::Answer;
    fn events(answer: &mut Self::Answer) -> &mut Vec<String>;
}

impl FallbackCase for Case {
    type Answer = Decision;

    fn decide_with(&self, policy: &Policy) -> Result<Decision, Error> {
        policy.decide(self)
    }

    fn given_up(note: String, kind: &str) -> Decision {
        Decision {
            events: vec![note],
            ..Decision::none(format!("the retry policy failed, so the run is not retried ({kind})"))
        }
    }

    fn events(answer: &mut Decision) -> &mut Vec<String> {
        &mut answer.events
    }
}

impl FallbackCase for TaskCase {
    type Answer = TaskDecision;

    fn decide_with(&self, policy: &Policy) -> Result<TaskDecision, Error> {
        policy.decide_task(self)
    }

    fn given_up(note: String, kind: &str) -> TaskDecision {
        TaskDecision {
            events: vec![note],
            ..TaskDecision::fail(format!("the retry policy failed, so the task is not retried ({kind})"))
        }
    }

    fn events(answer: &mut TaskDecision) -> &mut Vec<String> {
        &mut answer.events
    }
}

/// A decision (a run's by default, or a task's), and the policy's error when the fallback
/// answered in its place.
pub struct Decided<D = Decision> {
    /// The decision (the policy's, or the fallback's), or why there is none.
    pub decision: Result<D, Error>,
    /// The policy's error, when `decision` is the fallback's.
    pub fell_back: Option<Error>,
}

/// A policy as a deployment runs it: the policy (or why it did not load), what to do when it
/// fails, and the embedded default policy when that mode needs it. A policy that fails to load
/// is a policy failure like any other: a broken deployment must not stop retries, so `GiveUp`
/// and `Default` apply to it decision by decision.
pub struct Deployment {
    policy: Result<Policy, (String, Error)>,
    on_failure: OnFailure,
    /// The policy is the embedded default: ours, and stateless by construction.
    embedded: bool,
}

impl Deployment {
    /// Load the policy at `path` (the embedded default policy when `None`) in `sandbox`, for
    /// `mode`. Fails on bad input (an unreadable file) whatever the mode, and on any load
    /// failure under `Fail`.
    pub fn load(sandbox: &Sandbox, path: Option<&Path>, mode: OnPolicyError) -> Result<Self, Error> {
        let on_failure = OnFailure::new(sandbox, mode)?;
        let Some(path) = path else {
            return Ok(Deployment { policy: Ok(sandbox.load_default()?), on_failure, embedded: true });
        };
        match sandbox.load_file(path) {
            Ok(policy) => Ok(Deployment::of(policy, on_failure)),
            Err(error) if error.is_bad_input() || mode == OnPolicyError::Fail => Err(error),
            Err(error) => Ok(Deployment::failed_to_load(path.display().to_string(), error, on_failure)),
        }
    }

    /// A policy already loaded (a version a service swapped in), failing as `on_failure` says.
    pub fn of(policy: Policy, on_failure: OnFailure) -> Self {
        Deployment { policy: Ok(policy), on_failure, embedded: false }
    }

    /// A policy `name` that could not be loaded, for `error`: every decision applies
    /// `on_failure` to it (a file a Python loader cannot read, under `give-up` or `default`).
    pub fn failed_to_load(name: String, error: Error, on_failure: OnFailure) -> Self {
        Deployment { policy: Err((name, error)), on_failure, embedded: false }
    }

    /// Decide with the policy, applying the mode when it fails (or failed to load).
    pub fn decide(&self, case: &Case) -> Result<Decision, Error> {
        self.decide_telling(case).decision
    }

    /// [`decide`](Self::decide), telling whether the fallback answered (and the policy's error).
    pub fn decide_telling(&self, case: &Case) -> Decided {
        match &self.policy {
            Ok(policy) => match policy.decide(case) {
                Ok(decision) => Decided { decision: Ok(decision), fell_back: None },
                Err(error) => self.on_failure.apply(error, policy.name(), case),
            },
            Err((name, error)) => self.on_failure.apply(error.clone(), name, case),
        }
    }

    /// Decide about a task's failed try with the policy, applying the mode when it fails (or
    /// failed to load): `give-up` fails the task, `default` decides as Airflow would.
    pub fn decide_task(&self, task: &TaskCase) -> Result<TaskDecision, Error> {
        self.decide_task_telling(task).decision
    }

    /// [`decide_task`](Self::decide_task), telling whether the fallback answered.
    pub fn decide_task_telling(&self, task: &TaskCase) -> Decided<TaskDecision> {
        match &self.policy {
            Ok(policy) => match policy.decide_task(task) {
                Ok(decision) => Decided { decision: Ok(decision), fell_back: None },
                Err(error) => self.on_failure.apply(error, policy.name(), task),
            },
            Err((name, error)) => self.on_failure.apply(error.clone(), name, task),
        }
    }

    /// Like [`decide`](Self::decide), but for the embedded default policy reuses one instance
    /// (kept in `instance`, one per thread) across calls: it is ours and stateless by
    /// construction, and a decision then costs no instantiation. Any other policy still gets a
    /// fresh instance per decision. A failure drops the instance and decides afresh.
    pub fn decide_reusing(&self, instance: &mut Option<WarmPolicy>, case: &Case) -> Result<Decision, Error> {
        if self.embedded {
            if instance.is_none() {
                *instance = self.policy.as_ref().ok().and_then(|policy| policy.warm().ok());
            }
            if let Some(warm) = instance {
                match warm.decide(case) {
                    Ok(decision) => return Ok(decision),
                    Err(error) if error.is_bad_input() => return Err(error),
                    Err(_) => *instance = None,
                }
            }
        }
        self.decide(case)
    }

    /// The SHA-256 of the component whose decision `decided` holds: the policy's, or the
    /// embedded default policy's when the fallback decided with it; `None` when no component
    /// decided (an error, or `give-up`'s answer).
    pub fn decided_by<D>(&self, decided: &Decided<D>) -> Option<&str> {
        match (&decided.decision, &decided.fell_back, &self.policy) {
            (Err(_), _, _) => None,
            (Ok(_), None, Ok(policy)) => Some(policy.sha256()),
            (Ok(_), _, _) => self.on_failure.default.as_ref().map(Policy::sha256),
        }
    }

    /// The loaded policy, or the error it failed to load with.
    pub fn policy(&self) -> Result<&Policy, Error> {
        self.policy.as_ref().map_err(|(_, error)| error.clone())
    }

    /// What happens when the policy fails.
    pub fn mode(&self) -> OnPolicyError {
        self.on_failure.mode
    }
}
