//! Paths of the test and example guests, built from source by this crate's build script, and
//! `foreach_hostile!` / `foreach_example_policy!` to generate one test per guest.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
