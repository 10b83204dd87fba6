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
    },
    /// The bytes are not a runretry policy component: not a component at all, the wrong world,
    /// a missing export, or an import outside the allow-list.
    InvalidComponent {
        /// Which file and what is wrong with it.
        reason: String,
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
        /// The trap and its backtrace, as wasmtime reports it.
        message: String,
        /// What the guest wrote to stderr before trapping (bounded), e.g. a panic message.
        stderr: String,
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

    /// True for errors of the input rather than of the policy (CLI exit 2 instead of 3).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::BadInput { .. })
    }

    #[doc(hidden)]
    pub fn bad_input(what: impl Into<String>) -> Self {
        Error::BadInput { what: what.into() }
    }

    pub(crate) fn invalid_component(reason: impl Into<String>) -> Self {
        Error::InvalidComponent { reason: reason.into() }
    }

    pub(crate) fn invalid_output(reason: impl Into<String>) -> Self {
        Error::InvalidOutput { reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadInput { what } => write!(f, "bad input: {what}"),
            Error::InvalidComponent { reason } => write!(f, "invalid policy component: {reason}"),
            Error::DeadlineExceeded { deadline_ms } => {
                write!(f, "policy exceeded its deadline of {deadline_ms} ms and was interrupted")
            }
            Error::FuelExhausted { fuel } => write!(f, "policy ran out of fuel ({fuel} units)"),
            Error::MemoryLimit { limit_bytes } => {
                write!(f, "policy hit the memory limit of {} MiB", limit_bytes / (1024 * 1024))
            }
            Error::StackOverflow => write!(f, "policy overflowed its wasm stack"),
            Error::GuestTrap { message, stderr } => {
                let first_line = message.lines().next().unwrap_or("trap");
                write!(f, "policy trapped: {first_line}")?;
                if !stderr.trim().is_empty() {
                    let lines: Vec<&str> = stderr.trim().lines().collect();
                    write!(f, "; guest stderr: {}", lines.join(" | "))?;
                }
                Ok(())
            }
            Error::InvalidOutput { reason } => write!(f, "invalid policy output: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
