//! Which release's rules apply: every run-retry rule that changed between Dagster 1.10.12 and
//! 1.13.29, with the first release that has its current form (docs/dagster-versions.md §8, each
//! read from that release's code; docs/dagster-semantics.md §15).

use runretry_kit::DagsterVersion;

/// How FROM_ASSET_FAILURE finds the assets and checks to run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetKeys {
    /// 1.10.12–1.10.14 (`_get_skipped_entity_keys`): the planned steps' assets not materialised
    /// and their checks with no evaluation at all; no required keys, no blocking-check rule.
    PlannedNotDone,
    /// 1.10.15–1.10.20 (`_get_keys_to_reexecute`): today's algorithm, but over every step of the
    /// plan snapshot, planned or not.
    EverySnapshotStep,
    /// 1.10.21 on: today's algorithm over the planned steps.
    PlannedSteps,
}

/// The rules of one Dagster release, as far as a retry decision sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// The release these rules are of.
    pub version: DagsterVersion,
    /// FROM_ASSET_FAILURE's key computation.
    pub asset_keys: AssetKeys,
    /// 1.11.3 on: a retry with nothing to re-run is an error ("No steps needed to be retried",
    /// "No assets or asset checks needed"); before, it is launched (an empty step list, or the
    /// whole job).
    pub empty_selection_fails: bool,
    /// Before 1.10.16: a missing root run makes the failure-time decision raise, so nothing is
    /// decided and no `dagster/will_retry` is written; since, the run is not retried.
    pub missing_root_raises: bool,
    /// 1.12.0 on: `retry_run` passes the parent's `asset_check_selection`; before, the re-resolved
    /// job has none (every check of the selected assets runs) and an empty asset selection is
    /// the whole job.
    pub keeps_check_selection: bool,
    /// 1.12.19 on: a run of a deleted or finished backfill is not retried.
    pub backfill_gate: bool,
}

impl Rules {
    /// The rules of `version` (a supported release).
    pub fn of(version: DagsterVersion) -> Rules {
        let since = |major, minor, patch| version >= DagsterVersion::new(major, minor, patch);
        Rules {
            version,
            asset_keys: if since(1, 10, 21) {
                AssetKeys::PlannedSteps
            } else if since(1, 10, 15) {
                AssetKeys::EverySnapshotStep
            } else {
                AssetKeys::PlannedNotDone
            },
            empty_selection_fails: since(1, 11, 3),
            missing_root_raises: !since(1, 10, 16),
            keeps_check_selection: since(1, 12, 0),
            backfill_gate: since(1, 12, 19),
        }
    }

    /// The newest supported release's rules: what `select-steps` answers, having no config.
    pub fn newest() -> Rules {
        Rules::of(DagsterVersion::NEWEST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Rules {
        Rules::of(DagsterVersion::parse(text).unwrap())
    }

    #[test]
    fn each_rule_changes_at_its_release_and_not_before() {
        // (the last release with the old rule, the first with the new, whether rules have it)
        type Change = (&'static str, &'static str, fn(&Rules) -> bool);
        let changes: [Change; 6] = [
            ("1.10.14", "1.10.15", |r| r.asset_keys != AssetKeys::PlannedNotDone),
            ("1.10.20", "1.10.21", |r| r.asset_keys == AssetKeys::PlannedSteps),
            ("1.11.2", "1.11.3", |r| r.empty_selection_fails),
            ("1.10.15", "1.10.16", |r| !r.missing_root_raises),
            ("1.11.16", "1.12.0", |r| r.keeps_check_selection),
            ("1.12.18", "1.12.19", |r| r.backfill_gate),
        ];
        for (before, after, new_rule) in changes {
            assert!(!new_rule(&at(before)), "{before} already has the rule of {after}");
            assert!(new_rule(&at(after)), "{after} lacks its rule");
            assert!(new_rule(&Rules::newest()), "the newest release lacks the rule of {after}");
        }
        assert_eq!(at("1.10.12").asset_keys, AssetKeys::PlannedNotDone);
        assert_eq!(at("1.13.0"), Rules { version: DagsterVersion::new(1, 13, 0), ..Rules::newest() });
    }
}
