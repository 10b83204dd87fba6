//! Paths of the test and example guests, built from source by this crate's build script, and
//! `foreach_hostile!` / `foreach_example_policy!` to generate one test per guest.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component of the hostile guest built with `feature`.
pub fn hostile(feature: &str) -> &'static str {
    macro_rules! pick {
        ($name:ident, $path:expr) => {
            if stringify!($name) == feature {
                return $path;
            }
        };
    }
    foreach_hostile!(pick);
    panic!("no hostile guest {feature:?}: add the feature to tests/guests/hostile/Cargo.toml")
}

/// The component of the example policy `name` (`backoff_policy`: the crate name, `_` for `-`).
pub fn example_policy(name: &str) -> &'static str {
    macro_rules! pick {
        ($name:ident, $path:expr, [$($suite:expr),*], [$($ignored:expr),*]) => {
            if stringify!($name) == name {
                return $path;
            }
        };
    }
    foreach_example_policy!(pick);
    panic!("no example policy {name:?} in examples/")
}
