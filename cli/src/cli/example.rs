//! `runretry example`: the Rust example policies of `examples/`, embedded at build time, so
//! the docs' walkthroughs work from the wheels (no Rust toolchain needed).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use runretry::Error;

use super::files::write_whole;
use crate::CommandError;

/// `(name, description, component)`, one per Rust example policy, sorted by name.
const EXAMPLES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/examples.rs"));

#[derive(Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["name", "list"]))]
pub(crate) struct ExampleArgs {
    /// The example: backoff, circuit-breaker, ... (`--list` names them all).
    name: Option<String>,
    /// Where to write the component (it is binary: refused on a terminal without -o).
    #[arg(short, long, requires = "name")]
    output: Option<PathBuf>,
    /// List the examples with what each does.
    #[arg(long)]
    list: bool,
}

pub(crate) fn run(args: ExampleArgs) -> Result<u8, CommandError> {
    let mut stdout = std::io::stdout().lock();
    if args.list {
        for (name, description, component) in EXAMPLES {
            let _ = writeln!(stdout, "{name:<18} {description} ({} KiB)", component.len() >> 10);
        }
        return Ok(0);
    }
    let name = args.name.expect("clap requires a name without --list");
    let Some((_, _, component)) = EXAMPLES.iter().find(|(known, _, _)| *known == name) else {
        let names: Vec<&str> = EXAMPLES.iter().map(|(name, _, _)| *name).collect();
        return Err(Error::bad_input(format!("no example {name:?}: the examples are {}", names.join(", "))).into());
    };
    match &args.output {
        Some(path) => write_whole(path, component)?,
        None if std::io::IsTerminal::is_terminal(&stdout) => {
            return Err(Error::bad_input(format!(
                "the example is a binary component: give a file, `runretry example {name} -o {}.wasm`",
                name.replace('-', "_")
            ))
            .into())
        }
        None => stdout.write_all(component).map_err(|e| Error::bad_input_caused(format!("<stdout>: {e}"), &e))?,
    }
    Ok(0)
}
