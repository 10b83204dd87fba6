//! Why the service did not start or stopped: its setup (the core's typed [`Error`]), or the
//! system refusing what it needs. Kept apart so a port already taken is not "bad input".

use std::fmt;

use runretry::Error;

/// Why [`Server::start`](crate::Server::start) failed, or the server stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// What the service was given is at fault: the policy (it does not load or pass its
    /// checks), a pin, the golden cases, the token, the decision log's mask. The core's error,
    /// with its kind.
    Setup(Error),
    /// The system refused what the service needs: the address to listen on, the decision
    /// log's file, a thread, the runtime. `what` says which, with the system's reason.
    System {
        /// What could not be had, e.g. `cannot listen on 127.0.0.1:8080`.
        what: String,
        /// The system's error.
        cause: std::io::Error,
    },
    /// A thread of the server panicked: a bug in runretry.
    Panicked,
}

impl ServeError {
    /// The system refused `what`.
    pub(crate) fn system(what: impl Into<String>, cause: std::io::Error) -> Self {
        ServeError::System { what: what.into(), cause }
    }
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Setup(error) => error.fmt(f),
            ServeError::System { what, cause } => write!(f, "{what}: {cause}"),
            ServeError::Panicked => write!(f, "a thread of the server panicked (a bug: please report it)"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Setup(error) => Some(error),
            ServeError::System { cause, .. } => Some(cause),
            ServeError::Panicked => None,
        }
    }
}

impl From<Error> for ServeError {
    fn from(error: Error) -> Self {
        ServeError::Setup(error)
    }
}
