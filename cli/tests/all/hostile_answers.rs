//! Issue #31: hostile answers against the service. A candidate whose packed answer claims 2^32
//! tags killed the server while it was merely being checked, taking the active policy with it.

use runretry_serve::{ServeConfig, Server};

use crate::serve::{config, Client};
use crate::support::example_text;

/// Every hostile packed guest, uploaded as a candidate: refused by the contract check, while the
/// server goes on deciding with the active policy.
#[test]
fn a_hostile_candidate_is_refused_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServeConfig { allow_uploads: true, ..config(dir.path()) }).unwrap();
    let client = Client::new(server.local_addr());
    for guest in ["packed_map_header", "packed_empty_strings", "packed_unknown_field", "packed_huge_error"] {
        let component = std::fs::read(runretry_test_guests::hostile(guest)).unwrap();
        let (status, body) = client.put(&format!("/v1/policy?name={guest}.wasm"), &component);
        assert_eq!((status, body["error"]["check"].as_str()), (422, Some("contract")), "{guest}: {body}");
        assert!(body.to_string().len() < 20_000, "{guest}: the refusal is {} bytes", body.to_string().len());
        let (status, decided) = client.post("/v1/decide", example_text("01").as_bytes());
        assert_eq!((status, decided["decision"]["action"].as_str()), (200, Some("LAUNCH_NEW")), "{decided}");
        assert_eq!(decided["policy"]["revision"], 1, "{guest} must not have become active");
    }
}
