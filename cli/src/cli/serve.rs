//! `runretry serve`: the arguments, spelt for the command line, of [`runretry_serve::ServeConfig`].

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use runretry::Error;
use runretry_serve::{validate_token, DecisionLogConfig, ServeConfig, Server};

use super::args::{OnErrorArg, PolicyArgs};
use crate::CommandError;

/// The environment variable a bearer token can come from (not an argument: `ps` shows those).
const TOKEN_VARIABLE: &str = "RUNRETRY_TOKEN";

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; loopback by default (0.0.0.0:8080 to serve other hosts).
    #[arg(long, default_value_t = served().listen)]
    listen: SocketAddr,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    on_policy_error: OnErrorArg,
    /// Golden cases (a case file or a directory of them) every new version must pass, after
    /// the contract suite. Repeatable.
    #[arg(long)]
    golden: Vec<PathBuf>,
    /// Decision fields not compared in golden cases (e.g. delay_seconds).
    #[arg(long, value_delimiter = ',')]
    golden_ignore_field: Vec<String>,
    /// Versions kept for `POST /v1/policy/rollback`, the active one included.
    #[arg(long, default_value_t = served().keep_versions)]
    keep_versions: usize,
    /// Accept only a policy with this SHA-256 (hex), from every source. Repeatable.
    #[arg(long)]
    pin_sha256: Vec<String>,
    /// Accept new versions by `PUT /v1/policy`.
    #[arg(long)]
    allow_uploads: bool,
    /// A file holding the bearer token every endpoint but /health* requires (or set
    /// RUNRETRY_TOKEN): one line of printable ASCII without spaces.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Largest request body, in bytes (uploads: 256 MiB); a larger Content-Length is refused
    /// (413) before the body is read.
    #[arg(long, default_value_t = served().max_request_bytes)]
    max_request_bytes: usize,
    /// Request-body bytes held at once across all requests.
    #[arg(long, default_value_t = served().max_buffered_bytes)]
    max_buffered_bytes: usize,
    /// Time to receive a whole request body, in milliseconds.
    #[arg(long, default_value_t = ms(served().body_timeout))]
    body_timeout_ms: u64,
    /// Time to receive a request's head, from connecting or from the previous answer (so also
    /// the idle keep-alive timeout), in milliseconds.
    #[arg(long, default_value_t = ms(served().header_timeout))]
    header_timeout_ms: u64,
    /// Time an answer may wait for the client to read it, in milliseconds.
    #[arg(long, default_value_t = ms(served().write_timeout))]
    write_timeout_ms: u64,
    /// Connections served at once (16 more answer only /health*); capped by the file limit.
    #[arg(long, default_value_t = served().max_connections)]
    max_connections: usize,
    /// Time all checks of one candidate version may take together, in milliseconds.
    #[arg(long, default_value_t = ms(served().check_budget))]
    check_budget_ms: u64,
    /// On SIGTERM or SIGINT: how long /health/ready answers 503 while the server still serves,
    /// in milliseconds, before it stops accepting and finishes the requests in flight.
    #[arg(long, default_value_t = ms(served().drain))]
    drain_ms: u64,
    /// Deadline of one request (a batch as a whole), queueing included, in milliseconds.
    #[arg(long, default_value_t = ms(served().request_deadline))]
    request_deadline_ms: u64,
    /// Policy calls at once (default: every core).
    #[arg(long)]
    workers: Option<usize>,
    /// How often the policy file is checked for changes, in milliseconds; 0 disables it.
    #[arg(long, default_value_t = served().poll_interval.map_or(0, ms))]
    poll_interval_ms: u64,
    /// Log every decision to this JSON Lines file (docs/decision-log.md).
    #[arg(long)]
    decision_log: Option<PathBuf>,
    /// Rotate the decision log past this many bytes.
    #[arg(long, default_value_t = logged().max_bytes, requires = "decision_log")]
    decision_log_max_bytes: u64,
    /// Rotated decision-log files kept.
    #[arg(long, default_value_t = logged().keep_files, requires = "decision_log")]
    decision_log_keep: usize,
    /// Mask the values of tags whose key matches this glob (case-insensitive), e.g. '*token*'.
    /// Repeatable.
    #[arg(long, requires = "decision_log")]
    decision_log_mask: Vec<String>,
    /// Bytes of decision-log records waiting to be written; past it records are dropped (and
    /// counted), answers go on.
    #[arg(long, default_value_t = logged().queue_bytes, requires = "decision_log")]
    decision_log_queue_bytes: usize,
    /// How long an answer waits for its record to be written, in milliseconds; past it answers
    /// stop waiting until the log catches up.
    #[arg(long, default_value_t = ms(logged().wait), requires = "decision_log")]
    decision_log_wait_ms: u64,
    /// Bytes of line records one batch may write; its decide-batch record counts the lines past
    /// it [default: a twentieth of --decision-log-max-bytes].
    #[arg(long, requires = "decision_log")]
    decision_log_batch_max_bytes: Option<u64>,
}

// The flags' defaults are the library's, declared once there.
fn served() -> ServeConfig {
    ServeConfig::default()
}

fn logged() -> DecisionLogConfig {
    DecisionLogConfig::new("")
}

fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn serve(args: ServeArgs) -> Result<u8, CommandError> {
    let config = config(args)?;
    let server = Server::start(config)?;
    // The one line on stdout: scripts and tests read the port from it (--listen ...:0).
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{}", server.local_addr()).and_then(|()| out.flush());
    drop(out);
    server.wait()?;
    Ok(0)
}

fn config(args: ServeArgs) -> Result<ServeConfig, CommandError> {
    let token = match (&args.token_file, std::env::var_os(TOKEN_VARIABLE)) {
        (Some(path), Some(_)) => {
            return Err(Error::bad_input(format!(
                "the bearer token is given twice, by --token-file {} and by {TOKEN_VARIABLE}: set one",
                path.display()
            ))
            .into())
        }
        // The token alone on one line; surrounding whitespace (a final newline) is not part of it.
        (Some(path), None) => {
            let token = std::fs::read_to_string(path)
                .map_err(|e| Error::unreadable(format_args!("token file {}", path.display()), &e))?
                .trim()
                .to_string();
            validate_token(&token)
                .map_err(|why| Error::bad_input(format!("{}: the bearer token {why}", path.display())))?;
            Some(token)
        }
        (None, Some(token)) => {
            let token = token
                .into_string()
                .map_err(|_| Error::bad_input(format!("{TOKEN_VARIABLE} is not valid UTF-8")))?
                .trim()
                .to_string();
            validate_token(&token)
                .map_err(|why| Error::bad_input(format!("{TOKEN_VARIABLE}: the bearer token {why}")))?;
            Some(token)
        }
        (None, None) => None,
    };
    let defaults = ServeConfig::default();
    Ok(ServeConfig {
        listen: args.listen,
        config_override: args.policy.config.read()?,
        policy: args.policy.policy,
        sandbox: args.policy.sandbox.config(),
        on_policy_error: args.on_policy_error.mode,
        golden: args.golden,
        golden_ignore: args.golden_ignore_field,
        keep_versions: args.keep_versions,
        pin_sha256: args.pin_sha256,
        trusted_keys: args.policy.sandbox.trusted_keys()?,
        allow_uploads: args.allow_uploads,
        token,
        max_request_bytes: args.max_request_bytes,
        max_buffered_bytes: args.max_buffered_bytes,
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        write_timeout: Duration::from_millis(args.write_timeout_ms),
        max_connections: args.max_connections,
        check_budget: Duration::from_millis(args.check_budget_ms),
        drain: Duration::from_millis(args.drain_ms),
        request_deadline: Duration::from_millis(args.request_deadline_ms),
        workers: args.workers.unwrap_or(defaults.workers),
        poll_interval: (args.poll_interval_ms > 0).then(|| Duration::from_millis(args.poll_interval_ms)),
        decision_log: args.decision_log.map(|path| DecisionLogConfig {
            max_bytes: args.decision_log_max_bytes,
            keep_files: args.decision_log_keep,
            mask: args.decision_log_mask,
            queue_bytes: args.decision_log_queue_bytes,
            wait: Duration::from_millis(args.decision_log_wait_ms),
            batch_max_bytes: args.decision_log_batch_max_bytes,
            ..DecisionLogConfig::new(path)
        }),
        signals: true,
    })
}
