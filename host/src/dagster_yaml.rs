//! Reading the `run_retries:` block of a Dagster instance file (`dagster.yaml`).

use std::path::Path;

use serde::Deserialize;

use crate::error::Error;
use runretry_kit::{DagsterVersion, RunRetries};

/// What a deployment sets in every case's `config`, whatever the case says: the `run_retries`
/// block of its instance file (the CLI's and the service's `--config`) and its Dagster version
/// (`--dagster-version`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConfigOverride {
    /// Replaces the case's `config`; the case's Dagster version stays unless the block has one.
    pub run_retries: Option<RunRetries>,
    /// Replaces the case's Dagster version.
    pub dagster_version: Option<DagsterVersion>,
}

impl ConfigOverride {
    /// Set what is overridden in `config`.
    pub fn apply(&self, config: &mut RunRetries) {
        if let Some(run_retries) = self.run_retries {
            let version = config.dagster_version;
            *config = RunRetries { dagster_version: run_retries.dagster_version.or(version), ..run_retries };
        }
        if let Some(version) = self.dagster_version {
            config.dagster_version = Some(version);
        }
    }
}

/// Only `run_retries` matters; every other key of the instance file is ignored.
#[derive(Deserialize)]
struct InstanceFile {
    #[serde(default)]
    run_retries: Option<RunRetries>,
}

/// The `run_retries` block of the file at `path`; Dagster's defaults when the block is absent.
pub fn read_run_retries(path: &Path) -> Result<RunRetries, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable(path.display(), &e))?;
    parse_run_retries(&path.display().to_string(), &text)
}

/// Parse `run_retries` from YAML text; `source` names the file in errors, with the field path
/// (`run_retries.max_retries`) and YAML line.
pub fn parse_run_retries(source: &str, text: &str) -> Result<RunRetries, Error> {
    if text.trim().is_empty() {
        return Ok(RunRetries::default());
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    let file: InstanceFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        Error::bad_input(format!("{source}: {path}: {}", e.into_inner()))
    })?;
    Ok(file.run_retries.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_block_and_ignores_other_keys() {
        let text = "storage:\n  sqlite: {base_dir: /tmp}\nrun_retries:\n  enabled: true\n  max_retries: 3\n";
        let config = parse_run_retries("dagster.yaml", text).unwrap();
        assert_eq!(
            config,
            RunRetries { enabled: true, max_retries: 3, retry_on_asset_or_op_failure: true, ..RunRetries::default() }
        );
    }

    #[test]
    fn absent_block_gives_dagster_defaults() {
        assert_eq!(parse_run_retries("d.yaml", "telemetry: {enabled: false}\n").unwrap(), RunRetries::default());
        assert_eq!(parse_run_retries("d.yaml", "").unwrap(), RunRetries::default());
    }

    #[test]
    fn bad_value_names_file_and_field() {
        let err = parse_run_retries("dagster.yaml", "run_retries:\n  max_retries: three\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("dagster.yaml") && text.contains("run_retries.max_retries"), "{text}");
    }

    #[test]
    fn unknown_key_in_block_is_an_error() {
        let err = parse_run_retries("dagster.yaml", "run_retries:\n  max_retry: 3\n").unwrap_err();
        assert!(err.to_string().contains("max_retry"), "{err}");
    }
}
