//! The decision log: JSON Lines, one record per decision (schema: docs/decision-log.md).
//!
//! No torn lines: each record is one `write` of a complete line to a file opened for appending,
//! so a killed process leaves whole lines; a line cut short anyway (power loss, a full disk) is
//! cut off when the log is next opened ([`repair_torn_tail`]). Rotation by size: past
//! `max_bytes` the file becomes `NAME.1` (and `NAME.1` becomes `NAME.2`, ...), keeping
//! `keep_files` old files; a path that is not a regular file (`/dev/stdout`, a pipe to a log
//! shipper) is written to but never repaired or rotated. Tag values whose key matches a mask glob are replaced by
//! `"<masked>"` before the record is written.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

use runretry::Error;

/// Where and how decisions are logged.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionLogConfig {
    /// The log file; rotated files are `PATH.1`, `PATH.2`, ... (1 the newest).
    pub path: PathBuf,
    /// Rotate once the file would grow past this many bytes. Default 100 MiB. A record larger
    /// than this still goes whole into a file of its own.
    pub max_bytes: u64,
    /// Rotated files kept; older ones are deleted. Default 5: at most 600 MiB with the default
    /// size.
    pub keep_files: usize,
    /// Globs over tag keys (`*token*`, `secret/*`), case-insensitive: matching tags keep their key
    /// and get the value `"<masked>"`, in every tag map of the case and the decision (every
    /// JSON object under a key `tags` or ending in `_tags`). Masked values are lost for replay:
    /// do not mask the `dagster/*` tags a policy reads.
    pub mask: Vec<String>,
}

impl DecisionLogConfig {
    /// A log at `path` with the default size, rotation and no masking.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DecisionLogConfig { path: path.into(), max_bytes: 100 << 20, keep_files: 5, mask: Vec::new() }
    }
}

/// The value a masked tag gets.
pub(crate) const MASKED: &str = "<masked>";

struct Open {
    file: File,
    size: u64,
}

/// An open decision log, shared by every request.
pub(crate) struct DecisionLog {
    config: DecisionLogConfig,
    mask: GlobSet,
    /// A regular file: repaired on open and rotated by size (a pipe or a device is neither).
    regular: bool,
    open: Mutex<Open>,
}

impl DecisionLog {
    /// Open (or create) the log, cutting off a torn last line first.
    pub(crate) fn open(config: &DecisionLogConfig) -> Result<Self, Error> {
        let at_fault =
            |e: io::Error| Error::bad_input_caused(format!("decision log {}: {e}", config.path.display()), &e);
        let mut mask = GlobSetBuilder::new();
        for pattern in &config.mask {
            let glob = GlobBuilder::new(pattern).case_insensitive(true).build().map_err(|e| {
                Error::bad_input_caused(format!("--decision-log-mask {pattern:?}: not a glob: {e}"), &e)
            })?;
            mask.add(glob);
        }
        let mask = mask.build().map_err(|e| Error::bad_input_caused(format!("--decision-log-mask: {e}"), &e))?;
        let regular = std::fs::metadata(&config.path).map_or(true, |meta| meta.is_file());
        if regular && config.path.exists() {
            let cut = repair_torn_tail(&config.path).map_err(at_fault)?;
            if cut > 0 {
                tracing::warn!("decision log {}: cut a torn last line of {cut} bytes", config.path.display());
            }
        }
        let file = open_append(&config.path).map_err(at_fault)?;
        let size = file.metadata().map_err(at_fault)?.len();
        Ok(DecisionLog { config: config.clone(), mask, regular, open: Mutex::new(Open { file, size }) })
    }

    /// Mask the tag values of `record` whose keys match a mask glob.
    pub(crate) fn mask(&self, record: &mut Value) {
        if !self.mask.is_empty() {
            mask_tags(record, &self.mask, false);
            mask_error_on_masked_tag(record, &self.mask);
        }
    }

    /// Append records, one line each, rotating as needed. A failure is reported on stderr and
    /// the answer still goes out: the log must not stop retries.
    pub(crate) fn append<R: serde::Serialize>(&self, records: impl IntoIterator<Item = R>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for record in records {
            let mut record = serde_json::to_value(&record).expect("records serialise");
            self.mask(&mut record);
            let mut line = serde_json::to_vec(&record).expect("records serialise");
            line.push(b'\n');
            if let Err(e) = self.append_line(&mut open, &line) {
                tracing::error!("decision log {}: cannot write: {e}", self.config.path.display());
            }
        }
    }

    fn append_line(&self, open: &mut Open, line: &[u8]) -> io::Result<()> {
        if self.regular && open.size > 0 && open.size + line.len() as u64 > self.config.max_bytes {
            self.rotate()?;
            *open = Open { file: open_append(&self.config.path)?, size: 0 };
        }
        // One write of the whole line (write_all loops only on a short write, e.g. a full disk).
        open.file.write_all(line)?;
        open.size += line.len() as u64;
        Ok(())
    }

    /// `PATH.(k-1)` -> `PATH.k`, ..., `PATH` -> `PATH.1`, dropping what falls past `keep_files`.
    fn rotate(&self) -> io::Result<()> {
        let path = &self.config.path;
        let keep = self.config.keep_files;
        if keep == 0 {
            return std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(rotated(path, keep));
        for k in (1..keep).rev() {
            match std::fs::rename(rotated(path, k), rotated(path, k + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(path, rotated(path, 1))
    }
}

/// `PATH.k`.
pub(crate) fn rotated(path: &Path, k: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Cut a JSON Lines file after its last newline, so that a line torn by a crash (a power loss,
/// a full disk) does not stay in front of the next record. Returns the bytes cut.
pub fn repair_torn_tail(path: &Path) -> io::Result<u64> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 << 10];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(newline) = part.iter().rposition(|&b| b == b'\n') {
            let keep = start + newline as u64 + 1;
            if keep < len {
                file.set_len(keep)?;
                file.sync_all()?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(len)
}

/// Walk `value`; inside a tag map (`in_tags`) replace the values of matching keys.
fn mask_tags(value: &mut Value, mask: &GlobSet, in_tags: bool) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if in_tags && mask.is_match(key) {
                    *item = Value::String(MASKED.into());
                } else {
                    mask_tags(item, mask, !in_tags && is_tag_map(key));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask_tags(item, mask, false)),
        _ => {}
    }
}

/// A case refused for a masked tag's value (a number where a string belongs, say) has the
/// value in its error message: replace the message, keep the path.
fn mask_error_on_masked_tag(record: &mut Value, mask: &GlobSet) {
    let Some(error) = record.get_mut("error").and_then(Value::as_object_mut) else { return };
    let Some(path) = error.get("path").and_then(Value::as_str) else { return };
    // `run.tags.KEY` or `run.group[0].tags.KEY`: the key follows the tag map's name.
    let masked =
        path.split_once(".tags.").or_else(|| path.split_once("_tags.")).is_some_and(|(_, key)| mask.is_match(key));
    if masked {
        let message = format!("{path}: the value of a masked tag is not valid ({MASKED})");
        error.insert("message".into(), Value::String(message));
    }
}

/// Tag maps are named `tags` or `*_tags` in cases and decisions (`new_run_tags`, `job_tags`).
fn is_tag_map(key: &str) -> bool {
    key == "tags" || key.ends_with("_tags")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(patterns: &[&str]) -> GlobSet {
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            set.add(GlobBuilder::new(p).case_insensitive(true).build().unwrap());
        }
        set.build().unwrap()
    }

    #[test]
    fn masks_tag_values_in_every_tag_map_and_nothing_else() {
        let mut record = serde_json::json!({
            "case": {"run": {"run_id": "secret-run", "tags": {"team/API_TOKEN": "abc", "owner": "me"},
                     "group": [{"tags": {"api_token": "x"}}], "job_tags": {"token": "y"}}},
            "decision": {"new_run_tags": {"my_token": "z"}, "reason": "token"}
        });
        mask_tags(&mut record, &globs(&["*token*"]), false);
        assert_eq!(record["case"]["run"]["tags"]["team/API_TOKEN"], MASKED);
        assert_eq!(record["case"]["run"]["tags"]["owner"], "me");
        assert_eq!(record["case"]["run"]["group"][0]["tags"]["api_token"], MASKED);
        assert_eq!(record["case"]["run"]["job_tags"]["token"], MASKED);
        assert_eq!(record["decision"]["new_run_tags"]["my_token"], MASKED);
        assert_eq!(record["decision"]["reason"], "token");
        assert_eq!(record["case"]["run"]["run_id"], "secret-run");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_whole_lines_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), 5);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(repair_torn_tail(&path).unwrap(), 0);
        std::fs::write(&path, "no newline at all").unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), 17);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn a_torn_line_longer_than_a_read_chunk_is_cut_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let torn = "x".repeat(200_000);
        std::fs::write(&path, format!("{{}}\n{torn}")).unwrap();
        assert_eq!(repair_torn_tail(&path).unwrap(), 200_000);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
    }

    #[test]
    fn rotation_keeps_the_configured_number_of_files_each_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let config = DecisionLogConfig { max_bytes: 1000, keep_files: 2, ..DecisionLogConfig::new(&path) };
        let log = DecisionLog::open(&config).unwrap();
        log.append((0..200).map(|i| serde_json::json!({"i": i, "pad": "p".repeat(40)})));
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let mut last = None;
        for file in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.len() <= 1000 && text.ends_with('\n'), "{}", file.display());
            for line in text.lines() {
                let i = serde_json::from_str::<Value>(line).unwrap()["i"].as_u64().unwrap();
                assert!(last.is_none_or(|l| i == l + 1), "records in order across files");
                last = Some(i);
            }
        }
        assert_eq!(last, Some(199));
    }

    /// A pipe to a log shipper cannot be renamed or cut: it is written to as it is.
    #[cfg(unix)]
    #[test]
    fn a_pipe_is_written_whole_and_never_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path in a fresh private directory.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let reader = {
            let path = path.clone();
            std::thread::spawn(move || std::fs::read_to_string(path).unwrap())
        };
        let config = DecisionLogConfig { max_bytes: 100, ..DecisionLogConfig::new(&path) };
        let log = DecisionLog::open(&config).unwrap();
        log.append((0..50).map(|i| serde_json::json!({"i": i, "pad": "p".repeat(40)})));
        drop(log);
        let text = reader.join().unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(!rotated(&path, 1).exists());
    }
}
