//! Files the command line writes (an example policy, a signature): whole or not at all.

use runretry::Error;

/// Write `bytes` to `path` whole or not at all: a temporary file beside it, then a rename.
pub(crate) fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let cannot = |e: std::io::Error| Error::bad_input_caused(format!("{}: cannot write: {e}", path.display()), &e);
    let file_name = path.file_name().ok_or_else(|| Error::bad_input(format!("{}: not a file name", path.display())))?;
    let temporary = path.with_file_name(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    std::fs::write(&temporary, bytes).map_err(cannot)?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        cannot(e)
    })
}
