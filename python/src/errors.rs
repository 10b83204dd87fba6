//! Python exceptions mirroring the host's error kinds ([`runretry::Error`]).
//!
//! `RunretryError` is the root. `BadInput` is the caller's fault; every
//! other kind is a `PolicyError`: the policy failed, and `on_policy_error` decides what follows.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(runretry, RunretryError, PyException, "Every error raised by runretry.");
create_exception!(
    runretry,
    BadInput,
    RunretryError,
    "The input is malformed: bad JSON, a wrong field type, an unreadable file. The message names the field."
);
create_exception!(runretry, PolicyError, RunretryError, "The policy failed to answer.");
create_exception!(runretry, DeadlineExceeded, PolicyError, "The policy ran past its wall-clock deadline.");
create_exception!(runretry, FuelExhausted, PolicyError, "The policy used up its fuel budget.");
create_exception!(runretry, MemoryLimit, PolicyError, "The policy tried to grow memory past the sandbox's cap.");
create_exception!(runretry, GuestTrap, PolicyError, "The policy trapped (a panic, `unreachable`, ...).");
create_exception!(runretry, StackOverflow, GuestTrap, "The policy overflowed its Wasm stack.");
create_exception!(runretry, InvalidOutput, PolicyError, "The policy's answer breaks the contract.");
create_exception!(runretry, InvalidComponent, PolicyError, "The file is not a runretry policy component.");

/// Add the exception classes to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RunretryError", py.get_type::<RunretryError>())?;
    m.add("BadInput", py.get_type::<BadInput>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("DeadlineExceeded", py.get_type::<DeadlineExceeded>())?;
    m.add("FuelExhausted", py.get_type::<FuelExhausted>())?;
    m.add("MemoryLimit", py.get_type::<MemoryLimit>())?;
    m.add("GuestTrap", py.get_type::<GuestTrap>())?;
    m.add("StackOverflow", py.get_type::<StackOverflow>())?;
    m.add("InvalidOutput", py.get_type::<InvalidOutput>())?;
    m.add("InvalidComponent", py.get_type::<InvalidComponent>())?;
    Ok(())
}

/// The Python exception for a host error; its message is the host's, which names the field or
/// file at fault, and `kind` is the host's stable kind name.
pub(crate) fn to_py(error: runretry::Error) -> PyErr {
    use runretry::Error as E;
    let message = error.to_string();
    let err = match &error {
        E::BadInput { .. } => BadInput::new_err(message),
        E::InvalidComponent { .. } => InvalidComponent::new_err(message),
        E::DeadlineExceeded { .. } => DeadlineExceeded::new_err(message),
        E::FuelExhausted { .. } => FuelExhausted::new_err(message),
        E::MemoryLimit { .. } => MemoryLimit::new_err(message),
        E::StackOverflow => StackOverflow::new_err(message),
        E::GuestTrap { .. } => GuestTrap::new_err(message),
        E::InvalidOutput { .. } => InvalidOutput::new_err(message),
        // The enum is non-exhaustive: a kind added later is still a policy failure.
        _ => PolicyError::new_err(message),
    };
    Python::attach(|py| {
        // Best effort: an attribute the caller can branch on without parsing the message.
        let _ = err.value(py).setattr("kind", error.kind());
    });
    err
}

/// Bad input found on the Python side of the boundary (a case that is not a dict or a string).
pub(crate) fn bad_input(message: impl Into<String>) -> PyErr {
    let err = BadInput::new_err(message.into());
    Python::attach(|py| {
        let _ = err.value(py).setattr("kind", "bad input");
    });
    err
}
