//! What to do when a policy fails: fail, give up on the run, or decide with the default policy.

use crate::case::Case;
use crate::decision::Decision;
use crate::error::Error;
use crate::policy::Policy;

/// The `--on-policy-error` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnPolicyError {
    /// Return the error (the CLI exits 3).
    #[default]
    Fail,
    /// Answer `action: NONE`, with the error in `events`.
    GiveUp,
    /// Decide with the embedded default policy, and say so in `events`.
    Default,
}

/// Decide with `policy`; on a policy failure apply `mode`. Bad input is never masked: no policy
/// could have answered it. `default` is the policy used by [`OnPolicyError::Default`].
pub fn decide(policy: &Policy, default: Option<&Policy>, case: &Case, mode: OnPolicyError) -> Result<Decision, Error> {
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
    let note = format!("policy {policy_name} failed ({}): {error}", error.kind());
    match (mode, default) {
        (OnPolicyError::Fail, _) => Err(error),
        (OnPolicyError::GiveUp, _) => Ok(Decision::give_up(
            vec![note],
            format!("the retry policy failed, so the run is not retried ({})", error.kind()),
        )),
        (OnPolicyError::Default, Some(default)) => {
            let mut decision = default.decide(case)?;
            decision.events.insert(0, format!("{note}; decided with the default policy instead"));
            Ok(decision)
        }
        (OnPolicyError::Default, None) => Err(error),
    }
}
