//! Hostile test guest `open_socket` (see cli/tests/all/sandbox.rs for what must come of it).

use guests::hostile_policy;
use runretry_kit::{Decision, Run};

fn misbehave(_run: &Run) -> Decision {
    return Decision::none(match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => "LEAKED a connection".to_string(),
        Err(e) => format!("denied: {e}"),
    });
}

hostile_policy!(misbehave);

fn main() {}
