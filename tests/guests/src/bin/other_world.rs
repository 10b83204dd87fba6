//! A component that is fine in itself but implements another world: must be refused as a policy.

wit_bindgen::generate!({ world: "greeter", path: "wit/greeter.wit" });

struct Greeter;

impl exports::test::greeter::greet::Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);

fn main() {}
