//! Airflow 3.3.2's own retry delay, exactly: what `TaskInstance.next_retry_datetime`
//! (`airflow/models/taskinstance.py`) waits after a failed try when no retry policy overrides it,
//! so that a task policy can start from what Airflow would do, as run policies start from
//! Dagster's semantics.
//!
//! Airflow's rule, step by step (each step is a line of that function):
//! 1. The multiplier is `retry_exponential_backoff`, with 0 read as 1. Unless it is above 0 and
//!    not 1, the delay is `retry_delay` as it is: no backoff, no jitter, and no
//!    `max_retry_delay` cap.
//! 2. `min_backoff = ceil(retry_delay * multiplier ** (try_number - 1))` seconds; a float
//!    overflow (Python's `OverflowError`, from the power or from `ceil` of an infinity) makes it
//!    `[core] max_task_retry_delay`; below 1 it is 1.
//! 3. A jitter that is the same for the same try: the SHA-1 of
//!    `"{dag_id}#{task_id}#{logical_date}#{try_number}"`, read as a 160-bit integer, modulo
//!    `min_backoff`, added to it. `logical_date` is Python's `str()` of the date as the metadata
//!    database returns it (`2026-12-07 10:00:00+00:00`, with `.ffffff` when it has
//!    microseconds), or `None` for a run without one.
//! 4. That sum is capped at `[core] max_task_retry_delay` (24 h by default), then at the task's
//!    `max_retry_delay` when it is set and not zero.
//!
//! The differential test (`python/tests/airflow.rs`) checks this against Airflow's own
//! function on random settings, and `tests/airflow/retry-delay.json` keeps cases generated from
//! it for a native test.

pub use runretry_kit::RetrySettings;
use sha1::{Digest, Sha1};

/// The try that failed: what Airflow hashes for its jitter.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedTry<'a> {
    /// The DAG's id.
    pub dag_id: &'a str,
    /// The task's id.
    pub task_id: &'a str,
    /// The DAG run's logical date as Python's `str()` prints it (UTC: [`python_str_utc`]);
    /// `None` for a run without one (Airflow 3 allows it for manual and asset-triggered runs).
    pub logical_date: Option<&'a str>,
    /// The task instance's `try_number`: 1 for the first try.
    pub try_number: u32,
}

/// Why Airflow itself fails to compute a delay: the one case is a NaN backoff (a zero
/// `retry_delay` times an infinite multiplier), where `math.ceil` raises `ValueError`.
#[derive(Clone, Debug, PartialEq)]
pub struct AirflowRaises(pub &'static str);

/// The delay, in seconds, that Airflow 3.3.2 waits before retrying `failed` under `settings`
/// when no retry policy overrides it (see the module's doc).
pub fn default_retry_delay(settings: &RetrySettings, failed: &FailedTry<'_>) -> Result<f64, AirflowRaises> {
    let backoff = settings.retry_exponential_backoff;
    let multiplier = if backoff != 0.0 { backoff } else { 1.0 };
    if !(multiplier != 1.0 && multiplier > 0.0) {
        return Ok(settings.retry_delay_seconds);
    }
    let max = settings.max_task_retry_delay_seconds;
    let power = multiplier.powf(f64::from(failed.try_number) - 1.0);
    // Python raises OverflowError when a finite base's power, or `ceil` of the product, is
    // infinite; Airflow then takes the cap.
    let overflow = max as f64;
    let min_backoff = if power.is_infinite() && multiplier.is_finite() {
        overflow
    } else {
        let product = settings.retry_delay_seconds * power;
        if product.is_nan() {
            return Err(AirflowRaises("ValueError: cannot convert float NaN to integer"));
        }
        if product.is_infinite() {
            overflow
        } else {
            product.ceil()
        }
    };
    let min_backoff = if min_backoff < 1.0 { 1.0 } else { min_backoff };
    // `min_backoff + hash % min_backoff` is at least `min_backoff`: from 2^63 on it is past any
    // cap an `i64` can hold, and below that it is exact in integers.
    // `i64::MAX as f64` is 2^63.
    let capped = if min_backoff >= i64::MAX as f64 {
        max
    } else {
        let min_backoff = min_backoff as u64;
        let jitter = try_hash_modulo(failed, min_backoff);
        let with_jitter = i128::from(min_backoff) + i128::from(jitter);
        with_jitter.min(i128::from(max)) as i64
    };
    let delay = capped as f64;
    Ok(match settings.max_retry_delay_seconds {
        Some(cap) if cap != 0.0 => cap.min(delay),
        _ => delay,
    })
}

/// Airflow's per-try jitter: the SHA-1 of `"{dag_id}#{task_id}#{logical_date}#{try_number}"`
/// as a big-endian integer, modulo `modulus` (at least 1).
fn try_hash_modulo(failed: &FailedTry<'_>, modulus: u64) -> u64 {
    let logical_date = failed.logical_date.unwrap_or("None");
    let key = format!("{}#{}#{}#{}", failed.dag_id, failed.task_id, logical_date, failed.try_number);
    let digest = Sha1::digest(key.as_bytes());
    let modulus = u128::from(modulus);
    let remainder = digest.iter().fold(0u128, |remainder, &byte| (remainder * 256 + u128::from(byte)) % modulus);
    remainder as u64
}

/// Python's `str()` of a UTC `datetime`: `YYYY-MM-DD HH:MM:SS+00:00`, with `.ffffff` before the
/// offset when there are microseconds.
pub fn python_str_utc(micros_since_epoch: i64) -> String {
    let seconds = micros_since_epoch.div_euclid(1_000_000);
    let micros = micros_since_epoch.rem_euclid(1_000_000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    let fraction = if micros == 0 { String::new() } else { format!(".{micros:06}") };
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}{fraction}+00:00")
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_python_prints_a_utc_datetime() {
        assert_eq!(python_str_utc(0), "1970-01-01 00:00:00+00:00");
        assert_eq!(python_str_utc(1_796_640_000_000_000), "2026-12-07 10:40:00+00:00");
        assert_eq!(python_str_utc(1_796_640_000_000_123), "2026-12-07 10:40:00.000123+00:00");
        assert_eq!(python_str_utc(951_782_400_000_000), "2000-02-29 00:00:00+00:00");
        assert_eq!(python_str_utc(-1), "1969-12-31 23:59:59.999999+00:00");
    }

    fn failed(try_number: u32) -> FailedTry<'static> {
        FailedTry { dag_id: "etl", task_id: "load", logical_date: None, try_number }
    }

    #[test]
    fn without_backoff_the_delay_is_the_retry_delay_uncapped() {
        let settings = RetrySettings {
            retry_delay_seconds: 90.5,
            max_retry_delay_seconds: Some(10.0),
            ..RetrySettings::default()
        };
        assert_eq!(default_retry_delay(&settings, &failed(7)), Ok(90.5));
        let one = RetrySettings { retry_exponential_backoff: 1.0, ..settings };
        assert_eq!(default_retry_delay(&one, &failed(7)), Ok(90.5));
        let negative = RetrySettings { retry_exponential_backoff: -2.0, ..settings };
        assert_eq!(default_retry_delay(&negative, &failed(7)), Ok(90.5));
    }

    #[test]
    fn an_exponential_delay_is_between_the_backoff_and_twice_it_then_capped() {
        let settings =
            RetrySettings { retry_delay_seconds: 10.0, retry_exponential_backoff: 2.0, ..RetrySettings::default() };
        for try_number in 1..=8 {
            let backoff = 10.0 * 2f64.powi(try_number as i32 - 1);
            let delay = default_retry_delay(&settings, &failed(try_number)).unwrap();
            assert!(delay >= backoff && delay < 2.0 * backoff && delay.fract() == 0.0, "{try_number}: {delay}");
        }
        assert_eq!(default_retry_delay(&settings, &failed(200)), Ok(86_400.0));
        assert_eq!(default_retry_delay(&settings, &failed(2_000)), Ok(86_400.0), "an overflow is the cap");
        let capped = RetrySettings { max_retry_delay_seconds: Some(15.5), ..settings };
        assert_eq!(default_retry_delay(&capped, &failed(5)), Ok(15.5));
        let zero = RetrySettings { retry_delay_seconds: 0.0, ..settings };
        assert_eq!(default_retry_delay(&zero, &failed(3)), Ok(1.0), "at least 1 s, plus 0 of jitter");
    }
}
