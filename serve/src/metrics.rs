//! The service's Prometheus metrics (OpenMetrics text on `GET /metrics`). A registry per server,
//! not a process-global recorder: a library may run several servers, and tests do.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Every metric the server keeps.
pub(crate) struct Metrics {
    registry: Registry,
    decisions: Family<Labels, Counter>,
    latency: Histogram,
    policy_errors: Family<Labels, Counter>,
    bad_requests: Counter,
    fallbacks: Family<Labels, Counter>,
    swaps: Family<Labels, Counter>,
    active_revision: Gauge<i64, std::sync::atomic::AtomicI64>,
    log_written: Counter,
    log_lost: Family<Labels, Counter>,
    log_queue_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    log_unlogged_batch_lines: Counter,
}

/// Why a decision-log record was lost: the queue in front of the log was full, or its write
/// failed (a full disk, a file-size limit, a closed pipe).
pub(crate) const LOST_REASONS: [&str; 2] = ["queue_full", "write_error"];

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("runretry");
        let decisions = Family::<Labels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions answered, by action and by the revision of the policy that decided",
            decisions.clone(),
        );
        // 50 µs to ~6.5 s: a warm sandboxed decision is ~50 µs, the sandbox deadline 5 s.
        let latency = Histogram::new(exponential_buckets(0.000_05, 2.0, 18));
        registry.register(
            "decision_latency_seconds",
            "Time from a request's arrival to its answer, per decision (a batch line counts alone)",
            latency.clone(),
        );
        let policy_errors = Family::<Labels, Counter>::default();
        registry.register("policy_errors", "Policy failures, by error kind", policy_errors.clone());
        let bad_requests = Counter::<u64, AtomicU64>::default();
        registry.register("bad_requests", "Requests refused as malformed (HTTP 400)", bad_requests.clone());
        let fallbacks = Family::<Labels, Counter>::default();
        registry.register(
            "fallbacks",
            "Policy failures answered by the configured fallback, by mode",
            fallbacks.clone(),
        );
        let swaps = Family::<Labels, Counter>::default();
        registry.register(
            "policy_swaps",
            "Policy version changes, by outcome: accepted, rejected, rollback",
            swaps.clone(),
        );
        let active_revision = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register("policy_active_revision", "The revision of the active policy", active_revision.clone());
        let log_written = Counter::<u64, AtomicU64>::default();
        registry.register("decision_log_written", "Decision-log records written", log_written.clone());
        let log_lost = Family::<Labels, Counter>::default();
        registry.register(
            "decision_log_lost",
            "Decision-log records lost, by reason: queue_full (the log is not keeping up), write_error",
            log_lost.clone(),
        );
        let log_queue_bytes = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "decision_log_queue_bytes",
            "Bytes of decision-log records waiting to be written",
            log_queue_bytes.clone(),
        );
        let log_unlogged_batch_lines = Counter::<u64, AtomicU64>::default();
        registry.register(
            "decision_log_unlogged_batch_lines",
            "Batch lines answered past their batch's share of the decision log: counted in the batch's \
             decide-batch record, without a record of their own",
            log_unlogged_batch_lines.clone(),
        );
        for reason in LOST_REASONS {
            let _ = log_lost.get_or_create(&vec![("reason", reason.to_string())]);
        }
        // Every series a dashboard or an alert names exists from the start, at zero: `rate()`
        // over a series that appears only with its first failure misses that failure.
        for kind in runretry::Error::POLICY_FAILURE_KINDS {
            let _ = policy_errors.get_or_create(&vec![("kind", kind.to_string())]);
        }
        for mode in runretry::OnPolicyError::ALL {
            if mode != runretry::OnPolicyError::Fail {
                let _ = fallbacks.get_or_create(&vec![("mode", mode.as_str().to_string())]);
            }
        }
        Metrics {
            registry,
            decisions,
            latency,
            policy_errors,
            bad_requests,
            fallbacks,
            swaps,
            active_revision,
            log_written,
            log_lost,
            log_queue_bytes,
            log_unlogged_batch_lines,
        }
    }

    pub(crate) fn decided(&self, action: &str, revision: u64, latency: Duration) {
        self.decisions
            .get_or_create(&vec![("action", action.to_string()), ("policy_revision", revision.to_string())])
            .inc();
        self.latency.observe(latency.as_secs_f64());
    }

    pub(crate) fn policy_error(&self, kind: &str) {
        self.policy_errors.get_or_create(&vec![("kind", kind.to_string())]).inc();
    }

    pub(crate) fn bad_request(&self) {
        self.bad_requests.inc();
    }

    pub(crate) fn fallback(&self, mode: &str) {
        self.fallbacks.get_or_create(&vec![("mode", mode.to_string())]).inc();
    }

    /// A version change; `revision` is the now active one (ignored for a rejection).
    pub(crate) fn swapped(&self, outcome: &str, revision: u64) {
        self.swaps.get_or_create(&vec![("outcome", outcome.to_string())]).inc();
        if outcome != "rejected" {
            self.active_revision.set(i64::try_from(revision).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn log_written(&self) {
        self.log_written.inc();
    }

    /// A decision-log record lost, for one of [`LOST_REASONS`].
    pub(crate) fn log_lost(&self, reason: &str) {
        self.log_lost.get_or_create(&vec![("reason", reason.to_string())]).inc();
    }

    pub(crate) fn log_queue_bytes(&self, bytes: usize) {
        self.log_queue_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub(crate) fn unlogged_batch_lines(&self, lines: usize) {
        self.log_unlogged_batch_lines.inc_by(lines as u64);
    }

    /// The exposition, OpenMetrics text (Prometheus reads it).
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// The content type of [`Metrics::render`].
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
