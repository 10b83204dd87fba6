//! A component that is fine in itself but implements another world.

wit_bindgen::generate!({ world: "greeter", path: "wit" });

struct Greeter;

impl exports::test::greeter::greet::Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);
