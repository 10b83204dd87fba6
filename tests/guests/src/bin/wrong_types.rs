//! The contract's export, `runretry:policy/policy@0.4.0` with both functions, but their
//! types are not the contract's (see wit/wrong-types): refused when loaded, naming the function.

wit_bindgen::generate!({ world: "retry-policy", path: "wit/wrong-types" });

struct WrongTypes;

impl exports::runretry::policy::policy::Guest for WrongTypes {
    fn should_retry(run_id: String) -> String {
        format!("retry {run_id}")
    }

    fn select_steps(_run_id: String) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
}

export!(WrongTypes);

fn main() {}
