//! The sandbox's limits at production scale: whatever tags a case may carry, the default policy
//! answers; big cases decide within the default limits; a batch of memory-hungry decisions gives
//! its memory back. (Deadlines under load are tested alone, in `tests/load.rs`.)

use std::process::{Command, Stdio};
use std::time::Duration;

use runretry::{Case, Sandbox, SandboxConfig};

fn sandbox(config: SandboxConfig) -> Sandbox {
    Sandbox::new(SandboxConfig { cache_dir: None, ..config }).unwrap()
}

/// A small seeded generator (xorshift), so a failing case reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A tag key or value from the corners: empty, huge, control and invisible characters, system
/// names behind a byte order mark, non-ASCII text.
fn extreme_text(rng: &mut Rng, value: bool, huge: bool) -> String {
    let pieces = [
        "",
        "\0",
        "\u{feff}",
        "\u{200b}",
        "\u{202e}",
        "\u{1b}[31m",
        "\n",
        "dagster/retry_number",
        "dagster/max_retries",
        "team",
        "😀",
        "x",
    ];
    let mut text = String::new();
    for _ in 0..rng.below(4) {
        text.push_str(pieces[rng.below(pieces.len())]);
    }
    match rng.below(if huge { 8 } else { 1 }) {
        0 if huge => text.push_str(&"k".repeat(if value { 70_000 } else { 2_000 })),
        1 if huge => text.push_str(&"v".repeat(65_535)),
        _ => {}
    }
    text
}

/// Cases the host accepts with extreme tags (on the run, the job, both; up to 12,000 of them),
/// decided by the embedded default policy in its sandbox: it always answers, never an invalid
/// output (a run Dagster stored must be retryable).
#[test]
fn whatever_tags_a_case_carries_the_default_policy_answers() {
    let policy = sandbox(SandboxConfig::default()).load_default().unwrap();
    let mut rng = Rng(0x5eed_1812);
    for i in 0..60 {
        let mut case = crate::support::example_case("01");
        let count = match i % 6 {
            0 => 10_001 + rng.below(2_000),
            _ => 1 + rng.below(40),
        };
        for _ in 0..count {
            let huge = count < 100;
            let pair = (extreme_text(&mut rng, false, huge), extreme_text(&mut rng, true, huge));
            match rng.below(3) {
                0 => case.run.job_tags.push(pair),
                _ => case.run.tags.push(pair),
            }
        }
        let text = serde_json::to_string(&case).unwrap();
        let Ok(case) = Case::from_json("generated", &text) else { continue };
        match policy.decide(&case) {
            Ok(_) => {}
            Err(e) if e.is_bad_input() => {}
            Err(e) => panic!("case {i} ({count} tags): the default policy failed on an accepted case: {e}"),
        }
    }
}

/// Every tag copied, one after another: the cost of a decision grows with the case, not with
/// its square (30,000 tags took the whole fuel budget).
#[test]
fn thirty_thousand_tags_and_a_ten_thousand_step_plan_decide_within_the_default_limits() {
    let policy = sandbox(SandboxConfig::default()).load_default().unwrap();
    let mut case = crate::support::example_case("01");
    case.run.tags.extend((0..30_000).map(|i| (format!("team/label_{i}"), format!("value-{i}"))));
    let decision = policy.decide(&case).expect("30,000 tags");
    assert_eq!(decision.new_run_tags.len(), 30_000 + 4, "every tag and the four a retry adds");
    let mut case = crate::support::example_case("01");
    case.run.steps = (0..10_000)
        .map(|i| {
            let upstream = if i == 0 { vec![] } else { vec![format!("step_{}", (i - 1) / 2)] };
            let status = if i % 97 == 13 { runretry::StepStatus::Failure } else { runretry::StepStatus::Success };
            runretry::Step { upstream, ..runretry::Step::new(&format!("step_{i}"), &[], status) }
        })
        .collect();
    let decision = policy.decide(&case).expect("a 10,000-step plan");
    assert!(decision.steps.unwrap().len() > 100);
}

/// Peak resident memory of a child, sampled until it exits (VmHWM only grows).
#[cfg(target_os = "linux")]
fn peak_rss_mib(child: &mut std::process::Child) -> f64 {
    let mut peak: f64 = 0.0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
                peak = peak.max(kib.trim().trim_end_matches("kB").trim().parse::<f64>().unwrap_or(0.0) / 1024.0);
            }
        }
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 48 lines of a guest that fills its 512 MiB memory cap, two at a time: the batch never holds
/// more than the two instances at work (before, freed instances kept their pages in batches of
/// 16: 2.4-6 GiB).
#[cfg(target_os = "linux")]
#[test]
fn a_batch_of_memory_hungry_decisions_gives_memory_back() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("cases.jsonl");
    let case = std::fs::read_to_string(crate::support::example("01")).unwrap();
    let case: serde_json::Value = serde_json::from_str(&case).unwrap();
    std::fs::write(&lines, (0..48).map(|_| case.to_string() + "\n").collect::<String>()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(["decide", "--batch", "--jobs", "2", "--policy", runretry_test_guests::hostile("memory_bomb")])
        .arg(&lines)
        .env("RUNRETRY_CACHE", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peak = peak_rss_mib(&mut child);
    eprintln!("batch of 48 memory bombs, --jobs 2: peak RSS {peak:.0} MiB");
    assert!(peak <= 2.0 * 512.0 + 200.0, "peak RSS {peak:.0} MiB, over jobs x cap + 200 MiB");
}

#[test]
fn serve_refuses_two_tokens_and_says_what_fail_means() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "from-file").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_runretry"))
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&file)
        .env("RUNRETRY_TOKEN", "from-env")
        .env("RUNRETRY_CACHE", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--token-file") && stderr.contains("RUNRETRY_TOKEN"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_runretry")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("HTTP 500"), "{help}");
}

/// Every limit and timeout `runretry serve` takes is documented in `docs/deployment.md`.
#[test]
fn every_limit_of_serve_has_a_line_in_the_deployment_guide() {
    let help = Command::new(env!("CARGO_BIN_EXE_runretry")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let guide = std::fs::read_to_string(crate::support::repo().join("docs/deployment.md")).unwrap();
    let flags: Vec<&str> = help
        .split_whitespace()
        .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|word| word.starts_with("--"))
        .filter(|flag| flag.starts_with("--max-") || flag.ends_with("-ms") || *flag == "--workers" || *flag == "--fuel")
        .collect();
    assert!(flags.len() >= 12, "{flags:?}");
    for flag in flags {
        assert!(guide.contains(&format!("`{flag}`")), "docs/deployment.md does not document {flag}");
    }
}
