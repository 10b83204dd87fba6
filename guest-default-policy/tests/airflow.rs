//! The kept cases of Airflow's retry delay (`tests/airflow/retry-delay.jsonl`, generated from
//! Airflow 3.3.2 by `python/tests/airflow.rs`), natively: no Python needed.

#[path = "../../tests/airflow/check.rs"]
mod check;

#[test]
fn the_default_delay_is_airflows_on_the_kept_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/airflow/retry-delay.jsonl");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let failures: Vec<String> = text.lines().filter_map(|line| check::check(line).err()).collect();
    assert!(text.lines().count() >= 300, "{path}: fewer cases than kept");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        text.lines().count(),
        failures.join("\n")
    );
}
