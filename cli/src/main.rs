//! The `runretry` command line: parses arguments, calls the library, prints JSON.
//! Exit codes (docs/cli.md, "Exit codes"): 0 answered, 1 policy refused, 2 bad input, 3 policy failed.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::args::{OnErrorArg, PolicyArgs, SandboxArgs};

/// The subcommands with arguments of their own.
mod cli {
    pub(crate) mod args;
    pub(crate) mod example;
    pub(crate) mod files;
    pub(crate) mod log;
    pub(crate) mod replay;
    pub(crate) mod serve;
    pub(crate) mod sign;
}
use runretry::conformance::{run_suite, SuiteChoice};
use runretry::inspect::inspect;
use runretry::{AnyCase, Case, ConfigOverride, Deployment, Error, OnPolicyError, Sandbox, SelectionAnswer, Strategy};
use runretry_serve::ServeError;

#[derive(Parser)]
#[command(
    name = "runretry",
    version,
    about = "Run-retry policies for workflow orchestrators, as sandboxed WebAssembly components",
    // The table of docs/cli.md, "Exit codes", in short.
    after_help = "Exit codes: 0 answered (whatever the decision); 1 the policy refused a selection, a \
                  conformance suite failed, or a replay changed more than --max-changed; 2 bad usage or \
                  input (stderr names the file and field); 3 the policy failed (trap, deadline, fuel, \
                  memory, invalid output or component)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide what to do about a failed run, or a task's failed try (JSON case in, decision out).
    Decide {
        /// The case file, or `-` for stdin: a run case (`{"run": ...}`) or a task case
        /// (`{"task": ...}`); with --batch, a JSON Lines file of run cases.
        case: PathBuf,
        /// One case per line in, one decision (or error object) per line out, in order.
        #[arg(long)]
        batch: bool,
        /// With --batch: decide on this many threads (default: every core).
        #[arg(long, requires = "batch")]
        jobs: Option<usize>,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        on_policy_error: OnErrorArg,
    },
    /// The steps a re-execution runs with a strategy.
    SelectSteps {
        /// The case file, or `-` for stdin.
        case: PathBuf,
        /// ALL_STEPS, FROM_FAILURE or FROM_ASSET_FAILURE.
        #[arg(long, value_parser = str::parse::<Strategy>)]
        strategy: Strategy,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Check a policy against a conformance suite.
    Conformance {
        #[command(flatten)]
        policy: PolicyArgs,
        /// `default` (Dagster's semantics), `contract` (what every policy must hold), or a path
        /// to a case file or a directory of them.
        #[arg(long, default_value = "default")]
        suite: String,
        /// Decision fields not compared (e.g. delay_seconds for a backoff policy).
        #[arg(long, value_delimiter = ',')]
        ignore_field: Vec<String>,
    },
    /// Serve decisions over HTTP, with hot-swapped, checked policy versions (docs/service.md).
    Serve(Box<cli::serve::ServeArgs>),
    /// Decide recorded cases again with a candidate policy and report what changes.
    Replay(cli::replay::ReplayArgs),
    /// Write a key pair for signing policies (NAME.key, NAME.pub).
    Keygen(cli::sign::KeygenArgs),
    /// Sign a policy component: writes POLICY.sig, which `--trusted-key` asks for.
    Sign(cli::sign::SignArgs),
    /// Write one of the example policies (`--list` names them), to try or to start from.
    Example(cli::example::ExampleArgs),
    /// Describe a component: world, exports, imports, size, and whether it is a valid policy.
    Inspect {
        /// The component file.
        file: PathBuf,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
}

/// Why the command failed, with the exit code it maps to.
struct CommandError {
    code: u8,
    message: String,
}

impl From<Error> for CommandError {
    /// The error, then its root cause when the message does not already say it.
    fn from(error: Error) -> Self {
        let mut message = error.to_string();
        if let Some(root) = error.root_cause().map(|root| root.to_string()) {
            if !root.is_empty() && !message.contains(&root) {
                message = format!("{message}: caused by: {root}");
            }
        }
        CommandError { code: exit_code(&error), message }
    }
}

impl From<ServeError> for CommandError {
    /// The service's setup exits as any error of the core; a system that refuses what the
    /// flags ask for (the address is taken) is bad usage, 2; a panic, 101, as Rust's own.
    fn from(error: ServeError) -> Self {
        match error {
            ServeError::Setup(error) => error.into(),
            ServeError::Panicked => CommandError { code: 101, message: error.to_string() },
            system => CommandError { code: 2, message: system.to_string() },
        }
    }
}

fn exit_code(error: &Error) -> u8 {
    if error.is_bad_input() {
        2
    } else {
        3
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::log::install();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("runretry: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(command: Command) -> Result<u8, CommandError> {
    match command {
        Command::Decide { case, batch, jobs, policy, on_policy_error } => {
            let loaded = load(&policy, on_policy_error.mode)?;
            if batch {
                let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                return decide_batch(&case, &loaded, jobs);
            }
            match read_any_case(&case, &loaded.config)? {
                AnyCase::Run(case) => print_json(&loaded.deployment.decide(&case)?),
                AnyCase::Task(task) => print_json(&loaded.deployment.decide_task(&task)?),
            }
            Ok(0)
        }
        Command::SelectSteps { case, strategy, policy } => {
            let loaded = load(&policy, OnPolicyError::Fail)?;
            let case = read_case(&case, &loaded.config)?;
            let selection = loaded.deployment.policy()?.select_steps(&case.run, strategy)?;
            print_json(&selection);
            Ok(if matches!(selection, SelectionAnswer::Refused { .. }) { 1 } else { 0 })
        }
        Command::Conformance { policy, suite, ignore_field } => {
            let loaded = load(&policy, OnPolicyError::Fail)?;
            let choice = SuiteChoice::parse(&suite);
            let report = run_suite(loaded.deployment.policy()?, &choice, &ignore_field)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for failure in &report.failures {
                let _ = writeln!(out, "{failure}");
            }
            let _ = match report.skipped {
                0 => writeln!(out, "{} passed, {} failed", report.passed, report.failures.len()),
                skipped => writeln!(
                    out,
                    "{} passed, {} failed, {skipped} skipped (of a kind the policy does not decide)",
                    report.passed,
                    report.failures.len()
                ),
            };
            Ok(if report.failures.is_empty() { 0 } else { 1 })
        }
        Command::Serve(args) => cli::serve::serve(*args),
        Command::Replay(args) => cli::replay::run(args),
        Command::Example(args) => cli::example::run(args),
        Command::Keygen(args) => cli::sign::keygen(args),
        Command::Sign(args) => cli::sign::sign(args),
        Command::Inspect { file, sandbox: args } => {
            let sandbox = Sandbox::new(args.config())?;
            let bytes = std::fs::read(&file).map_err(|e| Error::unreadable(file.display(), &e))?;
            let name = file.display().to_string();
            let report = inspect(&sandbox, &name, &bytes);
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "{report}");
            // With --trusted-key: whether a trusting sandbox would load it.
            let trusted = match args.trusted_keys()? {
                Some(keys) => {
                    let signature = runretry::signing::read_signature(&file)?;
                    let verdict = keys.check(&name, &bytes, signature.as_deref());
                    let _ = match &verdict {
                        Ok(key) => writeln!(stdout, "signature: by trusted key {key}"),
                        Err(refused) => writeln!(stdout, "signature: refused: {refused}"),
                    };
                    verdict.is_ok()
                }
                None => true,
            };
            Ok(if report.satisfies_contract() && trusted { 0 } else { 3 })
        }
    }
}

/// The deployed policy and the `--config`/`--dagster-version` override of every case's
/// `run_retries`.
struct Loaded {
    deployment: Deployment,
    config: ConfigOverride,
}

fn load(args: &PolicyArgs, mode: OnPolicyError) -> Result<Loaded, CommandError> {
    let config = args.config.read()?;
    let sandbox = args.sandbox.sandbox()?;
    let deployment = Deployment::load(&sandbox, args.policy.as_deref(), mode)?;
    Ok(Loaded { deployment, config })
}

fn read_source(path: &Path) -> Result<(String, String), CommandError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| Error::unreadable("<stdin>", &e))?;
        return Ok(("<stdin>".into(), text));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable(path.display(), &e))?;
    Ok((path.display().to_string(), text))
}

fn read_case(path: &Path, config: &ConfigOverride) -> Result<Case, CommandError> {
    let (source, text) = read_source(path)?;
    let mut case = Case::from_json(&source, &text).map_err(Error::from)?;
    config.apply(&mut case.config);
    Ok(case)
}

/// A run case (with the override applied) or a task case, told apart by its top-level key.
fn read_any_case(path: &Path, config: &ConfigOverride) -> Result<AnyCase, CommandError> {
    let (source, text) = read_source(path)?;
    let mut case = AnyCase::from_json(&source, &text).map_err(Error::from)?;
    if let AnyCase::Run(case) = &mut case {
        config.apply(&mut case.config);
    }
    Ok(case)
}

/// JSON Lines: every line answered in order, each answer flushed at once (an orchestrator that
/// writes a case and waits for its answer must get it); a bad line gets an error object and the
/// batch goes on. Exits 0 when every line was decided, else 2 or 3 after the last line.
fn decide_batch(path: &Path, loaded: &Loaded, jobs: usize) -> Result<u8, CommandError> {
    let (source, reader): (String, Box<dyn BufRead>) = if path == Path::new("-") {
        ("<stdin>".into(), Box::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path.display(), &e))?;
        (path.display().to_string(), Box::new(std::io::BufReader::new(file)))
    };
    let mut worst = 0u8;
    let stdout = std::io::stdout();
    runretry::batch::decide_batch(reader, &source, &loaded.deployment, loaded.config, jobs, |answer| {
        let json = match answer.result {
            Ok(decision) => serde_json::to_string(&decision),
            Err(error) => {
                worst = worst.max(exit_code(&error));
                serde_json::to_string(&serde_json::json!({
                    "line": answer.line,
                    "error": error.to_string(),
                    "kind": error.kind(),
                }))
            }
        };
        // A closed stdout means nobody is listening: stop.
        let mut out = stdout.lock();
        writeln!(out, "{}", json.expect("answers serialise")).and_then(|()| out.flush()).is_ok()
    })?;
    Ok(worst)
}

/// Print an answer. A closed stdout (`runretry decide ... | head -1`) is not an error worth a
/// panic: the reader has what it wanted.
fn print_json<T: serde::Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).expect("answers serialise");
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
