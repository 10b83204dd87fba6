// A runretry policy in JavaScript: retry only failures whose reason is on an allow-list.
//
// The allow-list comes from the run's `runretry/retry_reasons` tag (comma-separated
// RunFailureReason values; `none` stands for a failure without a reason), defaulting to the
// crash-like reasons. A retry re-runs the failed, interrupted and never-run steps plus
// everything downstream, waits `runretry/delay_seconds` (default 0), and stays within the run
// group's `max_retries` budget (the `dagster/max_retries` tag, else the deployment's config).

// ANCHOR: rule
const DEFAULT_REASONS = ["none", "UNEXPECTED_TERMINATION", "RUN_WORKER_RESTART", "START_TIMEOUT"];

function tag(tags, key) {
  const found = tags.find(([k]) => k === key);
  return found ? found[1] : undefined;
}

// The WIT variant `failure-reason` arrives as { tag: "step-failure" } or { tag: "other", val }.
function reasonName(reason) {
  if (reason === undefined || reason === null) return "none";
  if (reason.tag === "other") return reason.val;
  return reason.tag.toUpperCase().replaceAll("-", "_");
}
// ANCHOR_END: rule

function noRetry(reason) {
  return {
    action: "none",
    retryNumber: undefined,
    strategy: undefined,
    steps: undefined,
    newRunTags: [],
    failedRunTags: [["dagster/will_retry", "false"]],
    resubmitRunId: undefined,
    delaySeconds: 0,
    events: [],
    reason,
    assetSelection: undefined,
    assetCheckSelection: undefined,
  };
}

// Step granularity: the failed run's asset selections carry over unchanged.
function selection(run, steps) {
  return { steps, assetSelection: run.assetSelection, assetCheckSelection: run.assetCheckSelection };
}

// Failed, interrupted and never-run steps, then everything downstream of them (one pass over
// a downstream index, so a 10,000-step plan stays cheap in an interpreter).
function fromFailure(run) {
  const downstream = new Map();
  for (const step of run.steps) {
    for (const up of step.upstream) {
      if (!downstream.has(up)) downstream.set(up, []);
      downstream.get(up).push(step.key);
    }
  }
  const rerun = new Set();
  const queue = [];
  for (const step of run.steps) {
    if (["failure", "in-progress", "not-started", "resource-init-failure"].includes(step.status)) {
      rerun.add(step.key);
      queue.push(step.key);
    }
  }
  while (queue.length > 0) {
    for (const child of downstream.get(queue.pop()) ?? []) {
      if (!rerun.has(child)) {
        rerun.add(child);
        queue.push(child);
      }
    }
  }
  return [...rerun].sort();
}

export const policy = {
  shouldRetry(run, failure, config) {
    if (!config.enabled) return noRetry("run retries are disabled");
    const allowed = (tag(run.tags, "runretry/retry_reasons") ?? DEFAULT_REASONS.join(","))
      .split(",")
      .map((r) => r.trim());
    const reason = reasonName(failure.reason);
    if (!allowed.includes(reason)) {
      return noRetry(`failure reason ${reason} is not in runretry/retry_reasons (${allowed.join(", ")})`);
    }
    const existing = run.group.filter((m) => m.exists);
    const members = existing.length > 0 ? existing.length : 1;
    const rawMax = tag(run.tags, "dagster/max_retries");
    const limit = rawMax === undefined ? Number(config.maxRetries) : Number.parseInt(rawMax, 10) || 0;
    if (members > limit) return noRetry(`run group has ${members} runs; max_retries is ${limit}`);
    let steps = fromFailure(run);
    let strategy = "from-failure";
    if (steps.length === 0) {
      steps = [...new Set(run.steps.map((s) => s.key))].sort();
      strategy = "all-steps";
    }
    const delay = Number.parseFloat(tag(run.tags, "runretry/delay_seconds") ?? "0");
    return {
      action: "launch-new",
      retryNumber: members,
      strategy,
      steps,
      newRunTags: [
        ...run.tags.filter(([k]) => !k.startsWith("dagster/")),
        ["dagster/retry_number", String(members)],
        ["dagster/parent_run_id", run.runId],
        ["dagster/root_run_id", run.rootRunId ?? run.runId],
      ],
      failedRunTags: [["dagster/will_retry", "true"]],
      resubmitRunId: undefined,
      delaySeconds: Number.isFinite(delay) && delay >= 0 ? delay : 0,
      events: [],
      reason: `failure reason ${reason} is retryable; retry ${members} of ${limit}`,
      assetSelection: run.assetSelection,
      assetCheckSelection: run.assetCheckSelection,
    };
  },

  selectSteps(run, strategy) {
    if (strategy === "all-steps") return selection(run, [...new Set(run.steps.map((s) => s.key))].sort());
    if (strategy === "from-asset-failure") throw "this policy does not select by asset";
    const steps = fromFailure(run);
    if (steps.length === 0) throw "No steps needed to be retried in the failed run.";
    return selection(run, steps);
  },
};
