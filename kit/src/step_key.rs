//! The step-key grammar (docs/dagster-semantics.md §9): plain `name`, unresolved mapped `name[?]`,
//! and resolved instance `name[k]`. The one parser for it: the default policy tracks steps by it,
//! the host checks a policy's step keys with it.

use std::fmt;

/// A step key, borrowed from the string it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StepKey<'a> {
    /// `name`.
    Plain(&'a str),
    /// `name[?]`: a mapped step whose mapping is not known yet; holds `name`.
    Unresolved(&'a str),
    /// `name[k]`: one instance of a mapped step; holds `name` and `k`.
    Resolved(&'a str, &'a str),
}

impl<'a> StepKey<'a> {
    /// Parse a key. A key ending in `[...]` is mapped: `[?]` unresolved, anything else the
    /// mapping key (the last `[` opens it, as Dagster's keys never nest).
    pub fn parse(key: &'a str) -> Self {
        if let Some((name, mapping_key)) = key.strip_suffix(']').and_then(|body| body.rsplit_once('[')) {
            return if mapping_key == "?" { StepKey::Unresolved(name) } else { StepKey::Resolved(name, mapping_key) };
        }
        StepKey::Plain(key)
    }

    /// The step name, without any mapping.
    pub fn name(&self) -> &'a str {
        match *self {
            StepKey::Plain(name) | StepKey::Unresolved(name) | StepKey::Resolved(name, _) => name,
        }
    }
}

impl fmt::Display for StepKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepKey::Plain(name) => f.write_str(name),
            StepKey::Unresolved(name) => write!(f, "{name}[?]"),
            StepKey::Resolved(name, key) => write!(f, "{name}[{key}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StepKey;

    #[test]
    fn parses_and_prints_every_form() {
        for (text, key) in [
            ("op", StepKey::Plain("op")),
            ("op[?]", StepKey::Unresolved("op")),
            ("op[2]", StepKey::Resolved("op", "2")),
            ("op[a[b]", StepKey::Resolved("op[a", "b")),
            ("op]", StepKey::Plain("op]")),
        ] {
            assert_eq!(StepKey::parse(text), key, "{text}");
            assert_eq!(key.to_string(), text);
        }
    }
}
