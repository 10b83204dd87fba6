//! The decision log: JSON Lines, one record per decision (schema: docs/decision-log.md).
//!
//! Records are written by a thread of the log's own, from a queue bounded in bytes, so a log
//! that stops taking records (a full disk, a pipe whose reader stalled) never holds up a
//! request: an answer waits for its record at most `wait` (and not at all while the log is
//! known to be behind), and a record that finds the queue full is dropped and counted. The
//! answers always go out: the log must not stop retries.
//!
//! No torn lines: each record is one `write` of a complete line to a file opened for appending,
//! so a killed process leaves whole lines. A write that fails part-way (ENOSPC, EFBIG, EIO) is
//! cut back to the last whole line before anything else is written, and a line cut short anyway
//! (a power loss) is cut off when the log is next opened ([`repair_torn_tail`]). Rotation by
//! size: past `max_bytes` the file becomes `NAME.1` (and `NAME.1` becomes `NAME.2`, ...),
//! keeping `keep_files` old files; a path that is not a regular file (`/dev/stdout`, a pipe to a
//! log shipper) is written to but never repaired or rotated. Tag values whose key matches a mask
//! glob are replaced by `"<masked>"` before the record is queued.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde_json::Value;

use runretry::Error;

use super::error::ServeError;
use super::metrics::Metrics;

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
    /// Bytes of records waiting to be written. Default 16 MiB: a quarter of a second of records
    /// at 20,000 decisions/s, enough to ride out a slow disk; what a log that stopped taking
    /// records (a stalled pipe reader) can cost in memory. A record that finds the queue full
    /// is dropped and counted (`runretry_decision_log_lost_total{reason="queue_full"}`).
    pub queue_bytes: usize,
    /// How long an answer waits for its record to be written. Default 500 ms: a record is
    /// written in microseconds, so an answer is normally in the log before it is sent; past
    /// this the log is behind, and answers stop waiting for it until it has caught up.
    pub wait: Duration,
    /// The records of one batch's lines take at most this many bytes; the batch's
    /// `decide-batch` record counts the lines past it. `None` (the default): a twentieth of
    /// `max_bytes` (5 MiB by default), so one request cannot push the history out of the log.
    pub batch_max_bytes: Option<u64>,
}

impl DecisionLogConfig {
    /// A log at `path` with the default size, rotation, queue and no masking.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DecisionLogConfig {
            path: path.into(),
            max_bytes: 100 << 20,
            keep_files: 5,
            mask: Vec::new(),
            queue_bytes: 16 << 20,
            wait: Duration::from_millis(500),
            batch_max_bytes: None,
        }
    }

    /// The bytes of line records one batch may write.
    pub(crate) fn batch_budget(&self) -> u64 {
        self.batch_max_bytes.unwrap_or(self.max_bytes / 20)
    }
}

/// The value a masked tag gets.
pub(crate) const MASKED: &str = "<masked>";

/// An open decision log, shared by every request: the queue's producing end.
pub(crate) struct DecisionLog {
    path: PathBuf,
    mask: GlobSet,
    queue_bytes: usize,
    wait: Duration,
    batch_budget: u64,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

/// What the requests and the writer thread share.
struct Shared {
    queue: Mutex<Queue>,
    /// Records queued, or the log closed: the writer wakes.
    wake: Condvar,
    /// The writer has exited.
    done: Condvar,
}

#[derive(Default)]
struct Queue {
    records: VecDeque<Queued>,
    /// Bytes of the records queued or being written.
    bytes: usize,
    /// No more records: the writer writes what is queued and exits.
    closed: bool,
    /// The writer has exited.
    finished: bool,
    /// Records dropped since the queue filled up; 0 while it has room.
    dropped: u64,
    /// A record waited past `wait`: answers stop waiting until the queue is empty again.
    behind: bool,
}

struct Queued {
    line: Vec<u8>,
    /// Told once the line is written (or lost), when an answer waits for it.
    written: Option<tokio::sync::oneshot::Sender<()>>,
}

impl DecisionLog {
    /// Open (or create) the log, cutting off a torn last line first, and start its writer. A
    /// named pipe must have its reader already: with none, opening fails (ENXIO) rather than
    /// waiting for one, so a server whose log shipper is missing says so at start.
    pub(crate) fn open(config: &DecisionLogConfig, metrics: Arc<Metrics>) -> Result<Self, ServeError> {
        let mut mask = GlobSetBuilder::new();
        for pattern in &config.mask {
            let glob = GlobBuilder::new(pattern).case_insensitive(true).build().map_err(|e| {
                Error::bad_input_caused(format!("--decision-log-mask {pattern:?}: not a glob: {e}"), &e)
            })?;
            mask.add(glob);
        }
        let mask = mask.build().map_err(|e| Error::bad_input_caused(format!("--decision-log-mask: {e}"), &e))?;
        let mut sink = Sink::new(config);
        sink.open().map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::ENXIO) {
                " (nothing reads this named pipe: start its reader, the log shipper, first)"
            } else {
                ""
            };
            ServeError::system(format!("decision log {}: cannot open{hint}", config.path.display()), e)
        })?;
        let shared =
            Arc::new(Shared { queue: Mutex::new(Queue::default()), wake: Condvar::new(), done: Condvar::new() });
        let writer = {
            let (shared, metrics) = (shared.clone(), metrics.clone());
            std::thread::Builder::new()
                .name("runretry-decision-log".into())
                .spawn(move || write_queued(&shared, sink, &metrics))
                .map_err(|e| ServeError::system("cannot start the decision log's thread", e))?
        };
        // Never joined: a writer stuck on a stalled pipe must not hold up the process's exit
        // (`close` waits for it within a deadline instead).
        drop(writer);
        Ok(DecisionLog {
            path: config.path.clone(),
            mask,
            queue_bytes: config.queue_bytes.max(1),
            wait: config.wait,
            batch_budget: config.batch_budget(),
            shared,
            metrics,
        })
    }

    /// The bytes of line records one batch may write.
    pub(crate) fn batch_budget(&self) -> u64 {
        self.batch_budget
    }

    /// `record` as one line of the log, its tags masked.
    pub(crate) fn line<R: serde::Serialize>(&self, record: &R) -> Vec<u8> {
        let mut record = serde_json::to_value(record).expect("records serialise");
        self.mask(&mut record);
        let mut line = serde_json::to_vec(&record).expect("records serialise");
        line.push(b'\n');
        line
    }

    /// Mask the tag values of `record` whose keys match a mask glob.
    pub(crate) fn mask(&self, record: &mut Value) {
        if !self.mask.is_empty() {
            mask_tags(record, &self.mask, false);
            mask_error_on_masked_tag(record, &self.mask);
        }
    }

    /// Queue a line and wait for it to be written, for at most `wait` (and not at all while the
    /// log is behind). A line that finds the queue full is dropped and counted.
    pub(crate) async fn append(&self, line: Vec<u8>) {
        if let Some(written) = self.enqueue(line) {
            if tokio::time::timeout(self.wait, written).await.is_err() {
                let mut queue = self.lock();
                if !queue.behind {
                    queue.behind = true;
                    tracing::warn!(
                        "decision log {}: a record has waited {} ms to be written; answers go out without \
                         waiting for the log until it catches up",
                        self.path.display(),
                        self.wait.as_millis()
                    );
                }
            }
        }
    }

    /// Queue a line; what tells when it is written, if the answer should wait for it.
    fn enqueue(&self, line: Vec<u8>) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let mut queue = self.lock();
        if queue.closed {
            // Stopping, and the writer gone or about to be: nothing more is written.
            self.metrics.log_lost("queue_full");
            return None;
        }
        // A record is taken while the queue holds less than its size: at most that plus one
        // record are held, however large the record.
        if queue.bytes >= self.queue_bytes {
            if queue.dropped == 0 {
                tracing::error!(
                    "decision log {}: {} bytes of records wait to be written (--decision-log-queue-bytes): \
                     records are dropped until the log takes them again",
                    self.path.display(),
                    queue.bytes
                );
            }
            queue.dropped += 1;
            self.metrics.log_lost("queue_full");
            return None;
        }
        queue.bytes += line.len();
        self.metrics.log_queue_bytes(queue.bytes);
        let (tell, written) = tokio::sync::oneshot::channel();
        let waits = !queue.behind;
        queue.records.push_back(Queued { line, written: waits.then_some(tell) });
        self.shared.wake.notify_one();
        waits.then_some(written)
    }

    /// No more records: the writer writes what is queued, until `until` at the latest (a log
    /// that takes nothing, a stalled pipe, cannot hold up the exit).
    pub(crate) fn close(&self, until: Instant) {
        let mut queue = self.lock();
        queue.closed = true;
        self.shared.wake.notify_all();
        while !queue.finished {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::error!(
                    "decision log {}: {} records ({} bytes) not written at exit: the log is not taking them",
                    self.path.display(),
                    queue.records.len(),
                    queue.bytes
                );
                return;
            }
            queue = self.shared.done.wait_timeout(queue, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.shared.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for DecisionLog {
    /// The writer exits once it has written what is queued (a server that failed to start).
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// The writer thread: write the queued records in order until the log is closed and empty.
fn write_queued(shared: &Shared, mut sink: Sink, metrics: &Metrics) {
    let lock = || shared.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let record = {
            let mut queue = lock();
            loop {
                if let Some(record) = queue.records.pop_front() {
                    break record;
                }
                // Empty: an episode of a full queue, or of a log behind, is over.
                if queue.dropped > 0 {
                    tracing::warn!(
                        "decision log {}: taking records again; {} were dropped while its queue was full",
                        sink.path.display(),
                        queue.dropped
                    );
                    queue.dropped = 0;
                }
                if queue.behind {
                    tracing::info!(
                        "decision log {}: caught up; answers wait for their records again",
                        sink.path.display()
                    );
                    queue.behind = false;
                }
                if queue.closed {
                    queue.finished = true;
                    shared.done.notify_all();
                    return;
                }
                queue = shared.wake.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        match sink.write(&record.line) {
            Ok(()) => metrics.log_written(),
            Err(_) => metrics.log_lost("write_error"),
        }
        {
            let mut queue = lock();
            queue.bytes -= record.line.len();
            metrics.log_queue_bytes(queue.bytes);
        }
        if let Some(written) = record.written {
            let _ = written.send(());
        }
    }
}

/// The file end of the log, owned by the writer thread.
struct Sink {
    path: PathBuf,
    max_bytes: u64,
    keep_files: usize,
    /// A regular file: repaired, cut back after a failed write, and rotated by size (a pipe or
    /// a device is none of these, and is opened again after a failed write instead).
    regular: bool,
    file: Option<File>,
    /// The file's length: whole lines only.
    size: u64,
    /// A failed write may have left part of a line that could not be cut yet: cut it before
    /// anything else is written, or the next record would be glued to it.
    torn: bool,
    /// Records lost since writes began to fail; `None` while they succeed. One stderr line
    /// when an episode starts and one when it ends, not one per record.
    failing: Option<u64>,
}

impl Sink {
    fn new(config: &DecisionLogConfig) -> Self {
        Sink {
            path: config.path.clone(),
            max_bytes: config.max_bytes,
            keep_files: config.keep_files,
            regular: std::fs::metadata(&config.path).map_or(true, |meta| meta.is_file()),
            file: None,
            size: 0,
            torn: false,
            failing: None,
        }
    }

    /// Open the path: a regular file is cut after its last whole line first.
    fn open(&mut self) -> io::Result<()> {
        let file = if self.regular {
            let mut file = OpenOptions::new().read(true).append(true).create(true).open(&self.path)?;
            let cut = cut_torn_tail(&mut file)?;
            if cut > 0 {
                tracing::warn!("decision log {}: cut a torn last line of {cut} bytes", self.path.display());
            }
            self.size = file.metadata()?.len();
            file
        } else {
            // Not blocking on a named pipe without a reader (ENXIO instead); writes then block
            // again, on this thread only.
            let file = OpenOptions::new().append(true).custom_flags(libc::O_NONBLOCK).open(&self.path)?;
            set_blocking(&file)?;
            file
        };
        self.file = Some(file);
        self.torn = false;
        Ok(())
    }

    /// Write one line, reporting a failure on stderr once per episode.
    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        let written = self.try_write(line);
        match (&written, self.failing) {
            (Ok(()), Some(lost)) => {
                tracing::warn!("decision log {}: writing again; {lost} records were lost", self.path.display());
                self.failing = None;
            }
            (Err(e), None) => {
                tracing::error!(
                    "decision log {}: cannot write: {e}; records are lost until a write succeeds \
                     (runretry_decision_log_lost_total{{reason=\"write_error\"}}), answers go on",
                    self.path.display()
                );
                self.failing = Some(1);
            }
            (Err(_), Some(lost)) => self.failing = Some(lost + 1),
            (Ok(()), None) => {}
        }
        written
    }

    fn try_write(&mut self, line: &[u8]) -> io::Result<()> {
        if self.torn {
            self.cut()?;
        }
        if self.file.is_none() {
            self.open()?;
        }
        if self.regular && self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
            self.file = None;
            self.open()?;
        }
        let file = self.file.as_mut().expect("opened above");
        // One write of the whole line (write_all loops only on a short write, e.g. a full disk).
        match file.write_all(line) {
            Ok(()) => {
                self.size += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                if self.regular {
                    // Part of the line may be in the file: cut it now, or before the next write.
                    self.torn = true;
                    let _ = self.cut();
                } else {
                    // A pipe whose reader left (EPIPE) is of no more use: open it again next time.
                    self.file = None;
                }
                Err(e)
            }
        }
    }

    /// Cut the file back after its last whole line.
    fn cut(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => {
                cut_torn_tail(file)?;
                self.size = file.metadata()?.len();
                self.torn = false;
                Ok(())
            }
            // Opening cuts it.
            None => self.open(),
        }
    }

    /// `PATH.(k-1)` -> `PATH.k`, ..., `PATH` -> `PATH.1`, dropping what falls past `keep_files`.
    fn rotate(&self) -> io::Result<()> {
        let path = &self.path;
        let keep = self.keep_files;
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

/// Clear `O_NONBLOCK` on `file`.
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; F_GETFL/F_SETFL touch only its
    // status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `PATH.k`.
pub(crate) fn rotated(path: &Path, k: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// Cut a JSON Lines file after its last newline, so that a line torn by a crash (a power loss,
/// a full disk) does not stay in front of the next record. Returns the bytes cut.
pub fn repair_torn_tail(path: &Path) -> io::Result<u64> {
    cut_torn_tail(&mut OpenOptions::new().read(true).write(true).open(path)?)
}

/// [`repair_torn_tail`] on an open file (read access needed).
fn cut_torn_tail(file: &mut File) -> io::Result<u64> {
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
        let log = DecisionLog::open(&config, Arc::new(Metrics::new())).unwrap();
        for i in 0..200 {
            log.enqueue(log.line(&serde_json::json!({"i": i, "pad": "p".repeat(40)})));
        }
        log.close(Instant::now() + Duration::from_secs(30));
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

    /// A named pipe nobody reads is refused at once, naming it, instead of hanging the start.
    #[cfg(unix)]
    #[test]
    fn a_pipe_without_a_reader_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path in a fresh private directory.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let error = DecisionLog::open(&DecisionLogConfig::new(&path), Arc::new(Metrics::new())).err().unwrap();
        assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        assert!(error.to_string().contains("nothing reads this named pipe"), "{error}");
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
        // The reader first (a pipe without one is refused), blocking once the writer is there.
        let mut reader = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
        let config = DecisionLogConfig { max_bytes: 100, ..DecisionLogConfig::new(&path) };
        let log = DecisionLog::open(&config, Arc::new(Metrics::new())).unwrap();
        set_blocking(&reader).unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            text
        });
        for i in 0..50 {
            log.enqueue(log.line(&serde_json::json!({"i": i, "pad": "p".repeat(40)})));
        }
        log.close(Instant::now() + Duration::from_secs(30));
        drop(log);
        let text = reader.join().unwrap();
        assert_eq!(text.lines().count(), 50);
        assert!(!rotated(&path, 1).exists());
    }
}
