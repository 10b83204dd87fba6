//! The sandbox a policy runs in, by audience: [`config`] is what a user sets (documented
//! public configuration), [`interrupt`] what a long-running host uses to end calls from
//! outside; [`engine`] and [`store`] are the private plumbing every call goes through.

use std::time::{Duration, Instant};

mod config;
mod engine;
mod interrupt;
mod store;

pub use config::{default_cache_dir, LimitKnob, LimitOverrides, SandboxConfig, LIMIT_KNOBS};
pub(crate) use engine::build_engine;
pub use interrupt::{Interrupt, StopReason};
pub(crate) use store::{begin_call, classify, new_store, HostState};

/// `deadline` from now; a deadline too far to represent is a year away (the same, in practice).
fn deadline_from_now(deadline: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(deadline).unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}
