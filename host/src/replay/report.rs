//! Rendering a [`ReplayReport`]: text for a terminal, JSON for tools, Markdown for a pull
//! request. The runner never prints; these only format.

use std::fmt::Write;

use super::{JobReport, KindCount, ReplayReport};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    /// Aligned plain text.
    Text,
    /// The report as one JSON object.
    Json,
    /// Tables, for a pull request or a CI summary.
    Markdown,
}

/// The report in `format`, ending with a newline.
pub fn render_replay(report: &ReplayReport, format: ReplayFormat) -> String {
    match format {
        ReplayFormat::Json => {
            let mut text = serde_json::to_string_pretty(report).expect("reports serialise");
            text.push('\n');
            text
        }
        ReplayFormat::Text => text(report),
        ReplayFormat::Markdown => markdown(report),
    }
}

/// The totals every format shows, as (label, value).
fn totals(report: &ReplayReport) -> Vec<(&'static str, String)> {
    vec![
        ("cases", report.cases.to_string()),
        ("changed", format!("{} ({:.2}%)", report.changed, report.changed_percent())),
        ("extra runs (their outcome unknown)", report.extra_runs.to_string()),
        ("avoided runs", report.avoided_runs.to_string()),
        ("extra steps re-executed", report.extra_steps.to_string()),
        ("steps no longer re-executed", report.fewer_steps.to_string()),
        ("added delay", format!("{:+.3} s", report.added_delay_seconds)),
        ("candidate errors", report.candidate_errors.to_string()),
        ("baseline errors", report.baseline_errors.to_string()),
    ]
}

fn samples(kind: &KindCount) -> String {
    kind.sample_run_ids.join(", ")
}

fn text(report: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "replay: candidate {} against baseline {}", report.candidate, report.baseline);
    let totals = totals(report);
    let width = totals.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in &totals {
        let _ = writeln!(out, "  {label:<width$}  {value}");
    }
    if !report.kinds.is_empty() {
        let _ = writeln!(out, "changes by kind:");
        for kind in &report.kinds {
            let _ = writeln!(out, "  {:<13} {:>7}  e.g. {}", kind.kind, kind.count, samples(kind));
        }
    }
    let changed: Vec<&JobReport> = report.jobs.iter().filter(|job| job.changed > 0).collect();
    if !changed.is_empty() {
        let _ = writeln!(out, "jobs with changes:");
        for job in changed {
            let _ = writeln!(out, "  {}: {} of {} changed{}", job.job, job.changed, job.cases, runs(job));
            for kind in &job.kinds {
                let _ = writeln!(out, "    {:<13} {:>7}  e.g. {}", kind.kind, kind.count, samples(kind));
            }
        }
    }
    out
}

/// ", 2 runs avoided, 1 extra run": the job's run counts that are not zero.
fn runs(job: &JobReport) -> String {
    let plural = |n: usize| if n == 1 { "run" } else { "runs" };
    let mut out = String::new();
    if job.avoided_runs > 0 {
        let _ = write!(out, ", {} {} avoided", job.avoided_runs, plural(job.avoided_runs));
    }
    if job.extra_runs > 0 {
        let _ = write!(out, ", {} extra {}", job.extra_runs, plural(job.extra_runs));
    }
    out
}

/// A Markdown table cell: pipes and newlines would break the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn markdown(report: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Replay: `{}` against `{}`\n",
        cell(&report.candidate).replace('`', "'"),
        cell(&report.baseline).replace('`', "'")
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    for (label, value) in totals(report) {
        let _ = writeln!(out, "| {label} | {value} |");
    }
    if !report.kinds.is_empty() {
        let _ = writeln!(out, "\n### Changes by kind\n\n| kind | decisions | sample run ids |\n|---|---:|---|");
        for kind in &report.kinds {
            let _ = writeln!(out, "| {} | {} | {} |", kind.kind, kind.count, cell(&samples(kind)));
        }
    }
    if report.jobs.iter().any(|job| job.changed > 0) {
        let _ = writeln!(
            out,
            "\n### Per job\n\n| job | cases | changed | avoided runs | extra runs | kind | decisions | sample run ids |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---|");
        for job in report.jobs.iter().filter(|job| job.changed > 0) {
            for (i, kind) in job.kinds.iter().enumerate() {
                let counts = if i == 0 {
                    format!(
                        "{} | {} | {} | {} | {}",
                        cell(&job.job),
                        job.cases,
                        job.changed,
                        job.avoided_runs,
                        job.extra_runs
                    )
                } else {
                    " | | | |".to_string()
                };
                let _ = writeln!(out, "| {counts} | {} | {} | {} |", kind.kind, kind.count, cell(&samples(kind)));
            }
        }
    }
    out
}
