//! What to do when a policy fails: fail, give up on the run, or decide with the default policy.

use std::path::Path;

use runretry_kit::{Case, Decision};

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

/// Decide with `policy`; on a policy failure apply `mode`. Bad input is never masked: no policy
/// could have answered it. `default` is the policy used by [`OnPolicyError::Default`].
pub(crate) fn decide(
    policy: &Policy,
    default: Option<&Policy>,
    case: &Case,
    mode: OnPolicyError,
) -> Result<Decision, Error> {
    match policy.decide(case) {
        Ok(decision) => Ok(decision),
        Err(error) => fall_back(error, policy.name(), default, case, mode),
    }
}

/// Apply `mode` to a policy failure: `error` came from the policy named `policy_name` (while
/// deciding, or while loading it: a broken deployment must not stop retries either).
pub fn fall_back(
    error: Error,
    policy_name: &str,
    default: Option<&Policy>,
    case: &Case,
    mode: OnPolicyError,
) -> Result<Decision, Error> {
    if error.is_bad_input() {
        return Err(error);
    }
    // The kind once: an error's text starts with its kind ("invalid policy component: ...").
    let text = error.to_string();
    let detail = text.strip_prefix(&format!("{}: ", error.kind())).unwrap_or(&text);
    let note = format!("policy {policy_name} failed ({}): {detail}", error.kind());
    match (mode, default) {
        (OnPolicyError::Fail, _) => Err(error),
        (OnPolicyError::GiveUp, _) => Ok(Decision {
            events: vec![note],
            ..Decision::none(format!("the retry policy failed, so the run is not retried ({})", error.kind()))
        }),
        (OnPolicyError::Default, Some(default)) => {
            let mut decision = default.decide(case)?;
            decision.events.insert(0, format!("{note}; decided with the default policy instead"));
            Ok(decision)
        }
        (OnPolicyError::Default, None) => Err(error),
    }
}

/// A policy as a deployment runs it: the policy (or why it did not load), what to do when it
/// fails, and the embedded default policy when that mode needs it. A policy that fails to load
/// is a policy failure like any other: a broken deployment must not stop retries, so `GiveUp`
/// and `Default` apply to it decision by decision.
pub struct Deployment {
    policy: Result<Policy, (String, Error)>,
    default: Option<Policy>,
    mode: OnPolicyError,
    /// The policy is the embedded default: ours, and stateless by construction.
    embedded: bool,
}

impl Deployment {
    /// Load the policy at `path` (the embedded default policy when `None`) in `sandbox`, for
    /// `mode`. Fails on bad input (an unreadable file) whatever the mode, and on any load
    /// failure under `Fail`.
    pub fn load(sandbox: &Sandbox, path: Option<&Path>, mode: OnPolicyError) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Deployment { policy: Ok(sandbox.load_default()?), default: None, mode, embedded: true });
        };
        // Only the `Default` mode needs the embedded policy beside the deployed one.
        let default = match mode {
            OnPolicyError::Default => Some(sandbox.load_default()?),
            OnPolicyError::Fail | OnPolicyError::GiveUp => None,
        };
        let policy = match sandbox.load_file(path) {
            Ok(policy) => Ok(policy),
            Err(error) if error.is_bad_input() || mode == OnPolicyError::Fail => return Err(error),
            Err(error) => Err((path.display().to_string(), error)),
        };
        Ok(Deployment { policy, default, mode, embedded: false })
    }

    /// Decide with the policy, applying the mode when it fails (or failed to load).
    pub fn decide(&self, case: &Case) -> Result<Decision, Error> {
        match &self.policy {
            Ok(policy) => decide(policy, self.default.as_ref(), case, self.mode),
            Err((name, error)) => fall_back(error.clone(), name, self.default.as_ref(), case, self.mode),
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

    /// The loaded policy, or the error it failed to load with.
    pub fn policy(&self) -> Result<&Policy, Error> {
        self.policy.as_ref().map_err(|(_, error)| error.clone())
    }

    /// What happens when the policy fails.
    pub fn mode(&self) -> OnPolicyError {
        self.mode
    }
}
