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
    let error = match policy.decide(case) {
        Ok(decision) => return Ok(decision),
        Err(error) if error.is_bad_input() => return Err(error),
        Err(error) => error,
    };
    let note = format!("policy {} failed ({}): {error}", policy.name(), error.kind());
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
