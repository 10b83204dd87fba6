//! Ending a policy's calls from outside, for a long-running host (the service's candidate checks).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::deadline_from_now;

/// Why calls were stopped from outside (see [`Interrupt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// Whoever waited for the outcome is gone (a client that disconnected).
    Cancelled = 1,
    /// A newer candidate took this one's place.
    Superseded = 2,
    /// The server is stopping.
    Shutdown = 3,
    /// The time budget ran out.
    OutOfTime = 4,
}

/// Ends a policy's calls from outside, before their own deadline: a candidate's checks when they
/// are cancelled, superseded, or out of their total time budget. The guest sees it at its next
/// epoch tick, as it sees its deadline.
pub struct Interrupt {
    stopped: AtomicU8,
    until: Instant,
}

impl Interrupt {
    /// An interrupt that fires by itself once `budget` has passed.
    pub fn new(budget: Duration) -> Arc<Self> {
        Arc::new(Interrupt { stopped: AtomicU8::new(0), until: deadline_from_now(budget) })
    }

    /// Stop the calls; the first reason given is the one kept.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.stopped.compare_exchange(0, reason as u8, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Why the calls must stop, if they must.
    pub fn reason(&self) -> Option<StopReason> {
        if self.stopped.load(Ordering::SeqCst) == 0 && Instant::now() >= self.until {
            self.stop(StopReason::OutOfTime);
        }
        match self.stopped.load(Ordering::SeqCst) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::Superseded),
            3 => Some(StopReason::Shutdown),
            4 => Some(StopReason::OutOfTime),
            _ => None,
        }
    }
}
