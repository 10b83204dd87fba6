//! `runretry keygen` and `runretry sign`: an Ed25519 key pair, and the detached signature
//! (`POLICY.sig`) a deployment started with `--trusted-key` asks for (docs/deployment.md, "Signed
//! policies").

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use runretry::signing::{self, TrustedKeys};
use runretry::Error;

use super::files::write_whole;
use crate::CommandError;

#[derive(Args)]
pub(crate) struct KeygenArgs {
    /// Writes NAME.key (the secret key, mode 0600) and NAME.pub (the public key to trust);
    /// refuses to overwrite either.
    name: PathBuf,
}

#[derive(Args)]
pub(crate) struct SignArgs {
    /// The secret key (NAME.key from `runretry keygen`).
    #[arg(long)]
    key: PathBuf,
    /// The policy component; its signature goes to POLICY.sig.
    policy: PathBuf,
}

pub(crate) fn keygen(args: KeygenArgs) -> Result<u8, CommandError> {
    let (secret, public) = signing::generate_key_pair()?;
    let secret_path = with_suffix(&args.name, ".key");
    let public_path = with_suffix(&args.name, ".pub");
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(Error::bad_input(format!("{}: exists; keygen does not overwrite a key", path.display())).into());
        }
    }
    write_new(&secret_path, &secret, 0o600)?;
    write_new(&public_path, &public, 0o644)?;
    let id = TrustedKeys::read(std::slice::from_ref(&public_path))?.ids()[0].to_string();
    let _ = writeln!(
        std::io::stdout().lock(),
        "{} (secret: keep it where policies are signed, not where they run)\n{} (key {id}: give it to --trusted-key)",
        secret_path.display(),
        public_path.display()
    );
    Ok(0)
}

pub(crate) fn sign(args: SignArgs) -> Result<u8, CommandError> {
    let secret = signing::read_key_file(&args.key)?;
    let component = std::fs::read(&args.policy).map_err(|e| Error::unreadable(args.policy.display(), &e))?;
    let line = signing::sign(&args.key.display().to_string(), &secret, &component)?;
    let path = signing::signature_path(&args.policy);
    write_whole(&path, format!("{line}\n").as_bytes())?;
    let _ = writeln!(std::io::stdout().lock(), "{}", path.display());
    Ok(0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Create `path` with `mode`, failing if it exists (no race with another keygen).
fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let cannot = |e: std::io::Error| Error::bad_input_caused(format!("{}: cannot write: {e}", path.display()), &e);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(cannot)?;
    file.write_all(text.as_bytes()).map_err(cannot)
}
