//! Deciding JSON Lines: one case per line in, one answer per line out, in input order. Cases
//! are decided on several threads at once, and each answer is handed over as soon as it and
//! every line before it are decided (so a caller that writes one case and waits gets its answer).
//! Each thread reuses one instance of the embedded default policy (`Deployment::decide_reusing`);
//! any other policy gets a fresh instance per decision.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use runretry_kit::{Case, Decision};

use crate::dagster_yaml::ConfigOverride;

use crate::error::Error;
use crate::fallback::Deployment;
use crate::policy::WarmPolicy;

/// The answer to one line of a batch.
#[derive(Debug)]
pub struct BatchAnswer {
    /// The line's number, from 1.
    pub line: usize,
    /// The decision, or why there is none (a bad line, a failed policy).
    pub result: Result<Decision, Error>,
}

/// A line to decide: its place among the non-blank lines, its line number, its text.
type Work = (usize, usize, String);

/// Decide every non-blank line of `input` (`source` names it in errors) with `deployment` on
/// `jobs` threads, replacing each case's `config` with `config` when given. `answer` receives
/// the answers in line order and returns false to stop (its reader went away). An unreadable
/// input ends the batch with that error, after the answers to the lines before it.
pub fn decide_batch(
    input: impl BufRead,
    source: &str,
    deployment: &Deployment,
    config: ConfigOverride,
    jobs: usize,
    answer: impl FnMut(BatchAnswer) -> bool + Send,
) -> Result<(), Error> {
    let jobs = jobs.max(1);
    let (work_sender, work) = mpsc::sync_channel::<Work>(jobs * 4);
    let work = Mutex::new(work);
    let (done_sender, done) = mpsc::channel::<(usize, BatchAnswer)>();
    let stopped = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (done_sender, work) = (done_sender.clone(), &work);
            scope.spawn(move || {
                let mut instance = None;
                loop {
                    // Hold the lock only to take a line, not while deciding it.
                    let Ok((place, line, text)) = work.lock().expect("no worker panics holding it").recv() else {
                        return;
                    };
                    let result = decide_line(&format!("{source}:{line}"), &text, deployment, config, &mut instance);
                    if done_sender.send((place, BatchAnswer { line, result })).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_sender);
        let stopped = &stopped;
        scope.spawn(move || in_order(done, answer, stopped));
        let read = read_lines(input, source, &work_sender, stopped);
        drop(work_sender);
        read
    })
}

/// Send the non-blank lines to the workers until the input ends or the answers are unwanted.
fn read_lines(
    input: impl BufRead,
    source: &str,
    work: &mpsc::SyncSender<Work>,
    stopped: &AtomicBool,
) -> Result<(), Error> {
    let mut place = 0;
    for (index, text) in input.lines().enumerate() {
        if stopped.load(Ordering::Relaxed) {
            break;
        }
        let line = index + 1;
        let text = text.map_err(|e| Error::unreadable(format_args!("{source}:{line}"), &e))?;
        if text.trim().is_empty() {
            continue;
        }
        if work.send((place, line, text)).is_err() {
            break;
        }
        place += 1;
    }
    Ok(())
}

/// Hand answers over in input order as they arrive in any order.
fn in_order(
    done: mpsc::Receiver<(usize, BatchAnswer)>,
    mut answer: impl FnMut(BatchAnswer) -> bool,
    stopped: &AtomicBool,
) {
    let mut pending = BTreeMap::new();
    let mut next = 0;
    for (place, ready) in done {
        pending.insert(place, ready);
        while let Some(ready) = pending.remove(&next) {
            next += 1;
            if !stopped.load(Ordering::Relaxed) && !answer(ready) {
                stopped.store(true, Ordering::Relaxed);
            }
        }
    }
}

fn decide_line(
    source: &str,
    text: &str,
    deployment: &Deployment,
    config: ConfigOverride,
    instance: &mut Option<WarmPolicy>,
) -> Result<Decision, Error> {
    let mut case = Case::from_json(source, text)?;
    config.apply(&mut case.config);
    deployment.decide_reusing(instance, &case)
}
