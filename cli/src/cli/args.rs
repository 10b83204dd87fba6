//! The arguments several subcommands share, each declared once: the policy and its sandbox,
//! `--config`, `--on-policy-error`. The limit flags are not written here at all: one per row
//! of the core's [`LIMIT_KNOBS`], with its name, help and default.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use runretry::dagster_yaml::read_run_retries;
use runretry::signing::TrustedKeys;
use runretry::{
    ConfigOverride, DagsterVersion, Error, LimitOverrides, OnPolicyError, Sandbox, SandboxConfig, LIMIT_KNOBS,
};

/// A policy, the deployment's `run_retries`, and the sandbox it runs in.
#[derive(Args)]
pub(crate) struct PolicyArgs {
    /// A policy component; the embedded default policy when absent.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub config: RunRetriesArg,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// `--config` and `--dagster-version`.
#[derive(Args)]
pub(crate) struct RunRetriesArg {
    /// A Dagster instance file whose `run_retries:` block replaces each case's `config`.
    #[arg(long = "config")]
    pub path: Option<PathBuf>,
    /// The Dagster release whose run-retry rules apply to every case (X.Y.Z), replacing the
    /// case's `config.dagster_version`; absent there too, the newest supported.
    #[arg(long, value_name = "X.Y.Z")]
    pub dagster_version: Option<DagsterVersion>,
}

impl RunRetriesArg {
    /// What replaces parts of each case's `config`.
    pub fn read(&self) -> Result<ConfigOverride, Error> {
        let run_retries = self.path.as_deref().map(read_run_retries).transpose()?;
        Ok(ConfigOverride { run_retries, dagster_version: self.dagster_version })
    }
}

/// `--on-policy-error`.
#[derive(Args)]
pub(crate) struct OnErrorArg {
    /// What a failing policy leads to: `fail` reports the error (decide: exit 3; serve: HTTP
    /// 500 naming its kind), `give-up` answers `action: NONE`, `default` decides with the
    /// embedded default policy; both of the last say so in `events`.
    #[arg(long = "on-policy-error", default_value = "fail", value_parser = on_policy_error_parser())]
    pub mode: OnPolicyError,
}

fn on_policy_error_parser() -> impl TypedValueParser<Value = OnPolicyError> {
    PossibleValuesParser::new(OnPolicyError::ALL.map(OnPolicyError::as_str))
        .map(|text| OnPolicyError::parse(&text).expect("one of the possible values"))
}

/// The sandbox's limits and the compile cache.
#[derive(Args)]
pub(crate) struct SandboxArgs {
    #[command(flatten)]
    limits: LimitFlags,
    /// Do not read or write the compile cache.
    #[arg(long)]
    no_cache: bool,
    /// The compile cache's size, in MiB; the entries used least recently are deleted past it.
    #[arg(long, default_value_t = SandboxConfig::default().cache_max_bytes >> 20)]
    max_cache_mib: u64,
    /// Load only policies signed by this key (a public key file from `runretry keygen`; the
    /// signature is POLICY.sig). Repeatable, for rotation. The embedded default policy needs none.
    #[arg(long)]
    trusted_key: Vec<PathBuf>,
}

impl SandboxArgs {
    /// The sandbox, trusting the keys given (any policy when none is).
    pub fn sandbox(&self) -> Result<Sandbox, Error> {
        let sandbox = Sandbox::new(self.config())?;
        Ok(match self.trusted_keys()? {
            Some(keys) => sandbox.trusting(keys),
            None => sandbox,
        })
    }

    /// The keys of `--trusted-key`, when any is given.
    pub fn trusted_keys(&self) -> Result<Option<TrustedKeys>, Error> {
        if self.trusted_key.is_empty() {
            return Ok(None);
        }
        TrustedKeys::read(&self.trusted_key).map(Some)
    }

    /// The sandbox config: the defaults, overridden by the flags given.
    pub fn config(&self) -> SandboxConfig {
        let mut config = self.limits.0.apply(SandboxConfig::default());
        if self.no_cache {
            config.cache_dir = None;
        }
        config.cache_max_bytes = self.max_cache_mib.saturating_mul(1 << 20);
        config
    }
}

/// One flag per limit knob.
#[derive(Clone, Default)]
struct LimitFlags(LimitOverrides);

impl Args for LimitFlags {
    fn augment_args(mut command: Command) -> Command {
        for knob in &LIMIT_KNOBS {
            command = command.arg(
                Arg::new(knob.name)
                    .long(knob.flag().trim_start_matches('-').to_string())
                    .value_name("N")
                    .value_parser(clap::value_parser!(u64))
                    .help(format!("{} [default: {}]", knob.help, knob.default_value())),
            );
        }
        command
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for LimitFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut overrides = LimitOverrides::default();
        for knob in &LIMIT_KNOBS {
            if let Some(value) = matches.get_one::<u64>(knob.name) {
                knob.set(&mut overrides, *value);
            }
        }
        Ok(LimitFlags(overrides))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
