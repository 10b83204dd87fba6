//! The typed errors of the library boundary: what went wrong, in terms an orchestrator can act on.

use std::fmt;

/// Everything that can stop a policy from answering.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The input is malformed: bad JSON or YAML, a wrong field type, an unreadable file.
    /// `what` names the file and the field at fault.
    BadInput {
        /// Where and what, e.g. `case.json: run.steps[3].status: unknown variant "DONE"`.
        what: String,
        /// What caused it (an I/O or parse error), when there is a cause.
        cause: Option<Cause>,
    },
    /// The bytes are not a runretry policy component: not a component at all, the wrong world,
    /// a missing export, or an import outside the allow-list.
    InvalidComponent {
        /// Which file and what is wrong with it.
        reason: String,
        /// What caused it (wasmtime's compile or link error), when there is a cause.
        cause: Option<Cause>,
    },
    /// The call ran past its wall-clock deadline and was interrupted.
    DeadlineExceeded {
        /// The deadline in milliseconds.
        deadline_ms: u64,
    },
    /// The call used up its fuel budget (a hot loop that would starve the host).
    FuelExhausted {
        /// The budget, in fuel units (about one per Wasm instruction).
        fuel: u64,
    },
    /// The guest tried to grow memory or a table past the sandbox's cap.
    MemoryLimit {
        /// The linear-memory cap in bytes.
        limit_bytes: usize,
    },
    /// The guest overflowed its Wasm stack (deep or infinite recursion).
    StackOverflow,
    /// The guest trapped: a panic, `unreachable`, an out-of-bounds access...
    GuestTrap {
        /// What stopped the guest (its first line), then the Wasm backtrace.
        message: String,
        /// What the guest wrote to stderr before trapping (bounded, raw: escape it before
        /// showing it, as `Display` does), e.g. a panic message.
        stderr: String,
        /// The chain of errors behind the trap, outermost first, when wasmtime gave one.
        cause: Option<Cause>,
    },
    /// The guest answered, but the answer breaks the contract (unknown or duplicate step keys,
    /// a malformed decision, an oversized output).
    InvalidOutput {
        /// What is wrong, naming the field.
        reason: String,
    },
}

impl Error {
    /// A short, stable name for the kind of error (used in events and by the CLI).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadInput { .. } => "bad input",
            Error::InvalidComponent { .. } => "invalid policy component",
            Error::DeadlineExceeded { .. } => "deadline exceeded",
            Error::FuelExhausted { .. } => "fuel exhausted",
            Error::MemoryLimit { .. } => "memory limit",
            Error::StackOverflow => "stack overflow",
            Error::GuestTrap { .. } => "guest trap",
            Error::InvalidOutput { .. } => "invalid policy output",
        }
    }

    /// The kinds of a policy's own failures (every kind but bad input), as [`Error::kind`]
    /// names them.
    pub const POLICY_FAILURE_KINDS: [&'static str; 7] = [
        "invalid policy component",
        "deadline exceeded",
        "fuel exhausted",
        "memory limit",
        "stack overflow",
        "guest trap",
        "invalid policy output",
    ];

    /// True for errors of the input rather than of the policy (CLI exit 2 instead of 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::BadInput { .. })
    }

    /// Bad input: `what` names the file and the field at fault, as
    /// `case.json: run.steps[3].status: unknown variant "DONE"`.
    pub fn bad_input(what: impl Into<String>) -> Self {
        Error::BadInput { what: what.into(), cause: None }
    }

    /// Bad input with the error that revealed it (an I/O or parse error) as its source.
    pub fn bad_input_caused(what: impl Into<String>, cause: &(dyn std::error::Error + 'static)) -> Self {
        Error::BadInput { what: what.into(), cause: Some(Cause::from_error(cause)) }
    }

    /// A file that cannot be read, as every reader says it: `{file}: cannot read: {error}`,
    /// the I/O error kept as the cause. `file` is its path, or what stands for one
    /// (`<stdin>`, `cases.jsonl:12`, `policy p.wasm`).
    pub fn unreadable(file: impl fmt::Display, error: &std::io::Error) -> Self {
        Error::bad_input_caused(format!("{file}: cannot read: {error}"), error)
    }

    /// Not a runretry policy component: `reason` names the file and what is wrong with it.
    pub fn invalid_component(reason: impl Into<String>) -> Self {
        Error::InvalidComponent { reason: reason.into(), cause: None }
    }

    pub(crate) fn invalid_component_caused(reason: impl Into<String>, cause: &wasmtime::Error) -> Self {
        Error::InvalidComponent { reason: reason.into(), cause: Some(Cause::from_wasmtime(cause)) }
    }

    /// The innermost error behind this one, when it has a cause.
    pub fn root_cause(&self) -> Option<&Cause> {
        let mut cause = self.cause()?;
        while let Some(next) = cause.next.as_deref() {
            cause = next;
        }
        Some(cause)
    }

    fn cause(&self) -> Option<&Cause> {
        match self {
            Error::BadInput { cause, .. } | Error::InvalidComponent { cause, .. } | Error::GuestTrap { cause, .. } => {
                cause.as_ref()
            }
            _ => None,
        }
    }

    /// The reason quotes the policy's answer: clipped (a backstop; each check quotes briefly).
    pub(crate) fn invalid_output(reason: impl Into<String>) -> Self {
        Error::InvalidOutput { reason: clip_untrusted(&reason.into()) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput { what, .. } => write!(f, "bad input: {what}"),
            Error::InvalidComponent { reason, .. } => write!(f, "invalid policy component: {reason}"),
            Error::DeadlineExceeded { deadline_ms } => {
                write!(f, "policy exceeded its deadline of {deadline_ms} ms and was interrupted")
            }
            Error::FuelExhausted { fuel } => write!(f, "policy ran out of fuel ({fuel} units)"),
            Error::MemoryLimit { limit_bytes } => {
                write!(f, "policy hit the memory limit of {} MiB", limit_bytes / (1024 * 1024))
            }
            Error::StackOverflow => write!(f, "policy overflowed its wasm stack"),
            Error::GuestTrap { message, stderr, .. } => {
                // Both come from the guest (its stderr, its function names in the backtrace):
                // escaped, so a policy cannot clear a screen or forge a log line.
                let first_line = message.lines().next().unwrap_or("trap");
                write!(f, "policy trapped: {}", escape_untrusted(first_line))?;
                if !stderr.trim().is_empty() {
                    let lines: Vec<String> = stderr.trim().lines().map(escape_untrusted).collect();
                    write!(f, "; guest stderr: {}", lines.join(" | "))?;
                }
                Ok(())
            }
            Error::InvalidOutput { reason } => write!(f, "invalid policy output: {reason}"),
        }
    }
}

impl From<runretry_kit::CaseError> for Error {
    /// A case that does not parse or validate is bad input, named by source and JSON path.
    fn from(error: runretry_kit::CaseError) -> Self {
        Error::BadInput { what: error.to_string(), cause: None }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause().map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// One link of the chain of errors behind an [`Error`], kept as text so that errors stay
/// `Clone`, comparable and `Send` whatever caused them.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    message: String,
    next: Option<Box<Cause>>,
}

impl Cause {
    /// The chain of a standard error: `error`, then its `source()`s.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        Cause::from_messages(std::iter::successors(Some(error), |e| e.source()).map(|e| e.to_string()))
    }

    /// The chain of a wasmtime error (its context layers, then the error they wrap).
    pub(crate) fn from_wasmtime(error: &wasmtime::Error) -> Self {
        Cause::from_messages(error.chain().map(|e| e.to_string()))
    }

    fn from_messages(messages: impl Iterator<Item = String>) -> Self {
        let messages: Vec<String> = messages.collect();
        let mut chain: Option<Cause> = None;
        for message in messages.into_iter().rev() {
            chain = Some(Cause { message, next: chain.map(Box::new) });
        }
        chain.unwrap_or(Cause { message: String::new(), next: None })
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_untrusted(&self.message))
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.next.as_deref().map(|next| next as &(dyn std::error::Error + 'static))
    }
}

/// Most bytes of a guest's own text (a refusal, its error, a trap's message) that an error or
/// an answer carries: enough for any message meant for a person, and a 50 MiB one cannot flood
/// a terminal, a log or a batch answer.
pub const MAX_GUEST_TEXT_BYTES: usize = 4096;

/// A guest's text cut to [`MAX_GUEST_TEXT_BYTES`] (at a character boundary), the cut marked with
/// how much was left out. Not escaped: `escape_untrusted` does that where it is shown.
pub fn clip_untrusted(text: &str) -> String {
    clip_to(text, MAX_GUEST_TEXT_BYTES)
}

/// `text` cut to at most `max` bytes (at a character boundary), the cut marked with how much was
/// left out: [`clip_untrusted`] with another bound.
pub fn clip_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} more bytes cut]", &text[..end], text.len() - end)
}

/// Text from a guest made safe for a terminal or a log: control characters, and the invisible
/// characters that reorder or hide text, become visible escapes (`\u{1b}`).
pub fn escape_untrusted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_hidden_format_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Invisible characters that change how text reads without showing themselves: zero-width
/// characters, bidirectional overrides and isolates, and the byte order mark.
pub(crate) fn is_hidden_format_char(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::Error;

    /// One error of every kind but bad input. The match below makes a new variant a compile
    /// error here until it is listed, so `POLICY_FAILURE_KINDS` cannot miss it.
    fn every_policy_failure() -> Vec<Error> {
        let listed = |error: &Error| match error {
            Error::BadInput { .. } => false,
            Error::InvalidComponent { .. }
            | Error::DeadlineExceeded { .. }
            | Error::FuelExhausted { .. }
            | Error::MemoryLimit { .. }
            | Error::StackOverflow
            | Error::GuestTrap { .. }
            | Error::InvalidOutput { .. } => true,
        };
        let errors = vec![
            Error::InvalidComponent { reason: String::new(), cause: None },
            Error::DeadlineExceeded { deadline_ms: 1 },
            Error::FuelExhausted { fuel: 1 },
            Error::MemoryLimit { limit_bytes: 1 },
            Error::StackOverflow,
            Error::GuestTrap { message: String::new(), stderr: String::new(), cause: None },
            Error::InvalidOutput { reason: String::new() },
        ];
        assert!(errors.iter().all(listed));
        errors
    }

    #[test]
    fn the_policy_failure_kinds_are_the_kinds_of_every_policy_failure() {
        let kinds: Vec<&str> = every_policy_failure().iter().map(Error::kind).collect();
        assert_eq!(kinds, Error::POLICY_FAILURE_KINDS);
    }
}
