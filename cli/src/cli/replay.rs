//! `runretry replay`: decide recorded cases again with a candidate and report what changes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use runretry::replay::{read_replay_input, render_replay, replay, Baseline, ReplayFormat, ReplayReport};
use runretry::{Deployment, Error, OnPolicyError};

use super::args::{RunRetriesArg, SandboxArgs};
use crate::CommandError;

/// Replays at least this long get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1_000;

#[derive(Args)]
pub(crate) struct ReplayArgs {
    /// The candidate policy component.
    #[arg(long)]
    candidate: PathBuf,
    /// The baseline policy component (default: the embedded default policy).
    #[arg(long, conflicts_with = "recorded")]
    baseline: Option<PathBuf>,
    /// Compare with the decisions recorded in a decision log instead of a baseline policy.
    #[arg(long)]
    recorded: bool,
    /// Cases, or decision-log records, one per line (`-` for stdin).
    input: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    format: FormatArg,
    /// Exit 1 when more decisions change than this: a count (`25`) or a percentage of the
    /// cases (`0.5%`).
    #[arg(long, value_parser = parse_threshold)]
    max_changed: Option<Threshold>,
    /// Decide on this many threads (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    #[command(flatten)]
    config: RunRetriesArg,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
    Markdown,
}

/// `--max-changed`: how many changed decisions are tolerated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Threshold {
    Count(usize),
    Percent(f64),
}

impl Threshold {
    fn exceeded_by(self, report: &ReplayReport) -> bool {
        match self {
            Threshold::Count(count) => report.changed > count,
            Threshold::Percent(percent) => report.changed_percent() > percent,
        }
    }
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let bad = || format!("{text:?} is neither a count (25) nor a percentage (0.5%)");
    match text.trim().strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Threshold::Percent(p)),
            _ => Err(bad()),
        },
        None => text.trim().parse().map(Threshold::Count).map_err(|_| bad()),
    }
}

pub(crate) fn run(args: ReplayArgs) -> Result<u8, CommandError> {
    let sandbox = args.sandbox.sandbox()?;
    let config = args.config.read()?;
    let (source, reader): (String, Box<dyn BufRead>) = if args.input.as_os_str() == "-" {
        ("<stdin>".into(), Box::new(std::io::stdin().lock()))
    } else {
        let file = std::fs::File::open(&args.input).map_err(|e| Error::unreadable(args.input.display(), &e))?;
        (args.input.display().to_string(), Box::new(std::io::BufReader::new(file)))
    };
    let entries = read_replay_input(&source, reader)?;
    let candidate = Deployment::load(&sandbox, Some(&args.candidate), OnPolicyError::Fail)?;
    let baseline_policy = match (&args.baseline, args.recorded) {
        (_, true) => None,
        (path, false) => Some(Deployment::load(&sandbox, path.as_deref(), OnPolicyError::Fail)?),
    };
    let baseline = baseline_policy.as_ref().map_or(Baseline::Recorded, Baseline::Policy);
    let decisions = entries.len() as u64 * if baseline_policy.is_some() { 2 } else { 1 };
    let bar = progress_bar(decisions);
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let report = replay(&entries, &candidate, baseline, config, jobs, &|| bar.inc(1));
    bar.finish_and_clear();
    let report = report?;
    let format = match args.format {
        FormatArg::Text => ReplayFormat::Text,
        FormatArg::Json => ReplayFormat::Json,
        FormatArg::Markdown => ReplayFormat::Markdown,
    };
    let _ = std::io::stdout().lock().write_all(render_replay(&report, format).as_bytes());
    match args.max_changed {
        Some(threshold) if threshold.exceeded_by(&report) => {
            eprintln!(
                "runretry: {} of {} decisions changed ({:.2}%), over --max-changed",
                report.changed,
                report.cases,
                report.changed_percent()
            );
            Ok(1)
        }
        _ => Ok(0),
    }
}

/// A bar on stderr for long replays, only when stderr is a terminal (a log file or a CI
/// capture gets no control characters).
fn progress_bar(decisions: u64) -> ProgressBar {
    if decisions < PROGRESS_FROM || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(decisions), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} decisions, eta {eta}") {
        bar.set_style(style);
    }
    bar
}
