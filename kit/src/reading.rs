//! Small readers policies share: a numeric setting from a tag, a window in words.

use crate::model::tag;

/// The number in tag `key`, at least `min`; `default` when the tag is absent, and also, with an
/// event saying so pushed to `events`, when it is not such a number. Policies read their
/// settings this way so that a typo in a tag never fails a decision.
pub fn number_tag(tags: &[(String, String)], key: &str, default: f64, min: f64, events: &mut Vec<String>) -> f64 {
    match tag(tags, key) {
        None => default,
        Some(raw) => match raw.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && value >= min => value,
            _ => {
                events.push(format!("Ignoring tag {key}={raw:?}: not a number >= {min}; using {default}"));
                default
            }
        },
    }
}

/// A time span for a reason or an event: "24 h", "90 min" or "45 s".
pub fn duration_words(seconds: f64) -> String {
    match seconds {
        s if s >= 3600.0 && s % 3600.0 == 0.0 => format!("{} h", s / 3600.0),
        s if s >= 60.0 && s % 60.0 == 0.0 => format!("{} min", s / 60.0),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_number_falls_back_with_an_event() {
        let tags = vec![("a".to_string(), " 2.5 ".to_string()), ("b".to_string(), "-1".to_string())];
        let mut events = Vec::new();
        assert_eq!(number_tag(&tags, "a", 1.0, 0.0, &mut events), 2.5);
        assert_eq!(number_tag(&tags, "missing", 1.0, 0.0, &mut events), 1.0);
        assert!(events.is_empty());
        assert_eq!(number_tag(&tags, "b", 7.0, 0.0, &mut events), 7.0);
        assert_eq!(events, ["Ignoring tag b=\"-1\": not a number >= 0; using 7"]);
    }

    #[test]
    fn durations_read_in_the_largest_whole_unit() {
        assert_eq!(duration_words(86_400.0), "24 h");
        assert_eq!(duration_words(5_400.0), "90 min");
        assert_eq!(duration_words(45.0), "45 s");
    }
}
