//! `runretry serve`: policies as an HTTP service (axum on tokio), with hot-swapped versions, a
//! decision log and Prometheus metrics.
//!
//! One module, one job:
//! - `versions`: the active policy and the last N versions; a candidate is compiled and checked
//!   (pin, contract suite, golden cases) before it is swapped in atomically;
//! - `routes`: the HTTP endpoints, deciding on a blocking pool, one version per request;
//! - `decision_log`: JSON Lines, one record per decision, written off the request path from a
//!   bounded queue, rotated by size, never torn;
//! - `metrics`: the Prometheus registry;
//! - `auth`: the optional bearer token;
//! - `body`: request bodies read within the size, time and memory limits;
//! - `listener`: connections, capped and timed out, and the graceful stop;
//! - `watch`: new versions from a file change or SIGHUP.
//!
//! [`Server::start`] runs a server on its own threads and returns at once; dropping the
//! [`Server`] stops it. The CLI's `runretry serve` is `Server::start` then [`Server::wait`].

#![deny(missing_docs)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runretry::ConfigOverride;

use runretry::conformance::{load_cases, ConformanceCase};
use runretry::signing::TrustedKeys;
use runretry::Error;
use runretry::OnPolicyError;
use runretry::SandboxConfig;
use runretry::{OnFailure, Sandbox, DEFAULT_POLICY_NAME, DEFAULT_POLICY_WASM};

mod auth;
mod body;
mod decision_log;
mod error;
mod listener;
mod metrics;
mod routes;
mod versions;
mod watch;

pub use auth::validate_token;
pub use decision_log::{repair_torn_tail, DecisionLogConfig};
pub use error::ServeError;
pub use versions::{sha256_hex, Origin, Rejection, VersionInfo};

/// Everything `runretry serve` is configured with. [`ServeConfig::default`] is the CLI's
/// defaults: loopback, the embedded default policy, no token, no uploads, no decision log.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen. Default `127.0.0.1:8080`: loopback, so exposing the service is a
    /// deliberate choice (`0.0.0.0:8080` in a container).
    pub listen: SocketAddr,
    /// The policy component; the embedded default policy when `None`. The file is watched
    /// (see `poll_interval`) and read again on SIGHUP.
    pub policy: Option<PathBuf>,
    /// The limits every policy runs under.
    pub sandbox: SandboxConfig,
    /// What to do when the policy fails on a request.
    pub on_policy_error: OnPolicyError,
    /// What replaces parts of every case's `config` (`--config dagster.yaml`, `--dagster-version`).
    pub config_override: ConfigOverride,
    /// Golden cases (conformance case files or directories) every candidate must pass, after
    /// the contract suite.
    pub golden: Vec<PathBuf>,
    /// Decision fields not compared in golden cases (e.g. `delay_seconds`).
    pub golden_ignore: Vec<String>,
    /// Versions kept for rollback, the active one included. Default 5; at least 1.
    pub keep_versions: usize,
    /// When not empty, only policies whose SHA-256 (lowercase hex) is listed are accepted,
    /// from every source: the start-up file, a file change, SIGHUP, an upload.
    pub pin_sha256: Vec<String>,
    /// When set, only policies signed by one of these keys are accepted, from every source:
    /// the start-up file and a file change or SIGHUP (with `POLICY.sig` beside it), an upload
    /// (with the `X-Runretry-Signature` header). The embedded default policy needs none.
    pub trusted_keys: Option<TrustedKeys>,
    /// Accept new versions by `PUT /v1/policy`. Default off.
    pub allow_uploads: bool,
    /// Require `Authorization: Bearer <token>` on every endpoint but `/health*`, and show the
    /// active version in `/health/ready` only with it. Printable ASCII without spaces
    /// ([`validate_token`]); [`Server::start`] refuses any other.
    pub token: Option<String>,
    /// Largest request body, in bytes. Default 16 MiB (a 10,000-step plan is under 1 MiB). A
    /// `Content-Length` over it is refused (413) before the body is read.
    pub max_request_bytes: usize,
    /// Request-body bytes held at once across all requests (uploads included). Default 256 MiB:
    /// slow or stalled bodies wait for room (and time out) instead of growing the process.
    pub max_buffered_bytes: usize,
    /// Time to receive a whole request body. Default 30 s.
    pub body_timeout: Duration,
    /// Time to receive a request's head, counted from the connection's start or from its
    /// previous answer, so also how long an idle keep-alive connection stays open. Default 15 s.
    pub header_timeout: Duration,
    /// Time a response may wait for the client to read it before the connection is closed.
    /// Default 30 s.
    pub write_timeout: Duration,
    /// Connections served at once. Default 512, and never more than the process's file
    /// descriptor limit allows (less a reserve). Beyond it, 16 more connections answer only
    /// `/health` and `/health/ready`; the rest wait in the listen backlog.
    pub max_connections: usize,
    /// The time all checks of one candidate version may take together, compiling included.
    /// Default 60 s. Past it the candidate is rejected (`time budget`).
    pub check_budget: Duration,
    /// On SIGTERM or SIGINT (with `signals`): how long `/health/ready` answers 503 while the
    /// server still serves, so load balancers stop sending; then it stops accepting, finishes
    /// the requests in flight (within `request_deadline`) and exits. Default 5 s.
    pub drain: Duration,
    /// Deadline for one request, queueing included; past it the answer is 503. Default 10 s:
    /// above the sandbox's per-call deadline (5 s), so a slow policy fails as itself first.
    /// A batch has this deadline as a whole.
    pub request_deadline: Duration,
    /// Policy calls at once (each on a blocking thread). Default: the number of cores.
    pub workers: usize,
    /// How often the policy file's size, mtime and hash are checked; `None` disables watching.
    /// Default 2 s.
    pub poll_interval: Option<Duration>,
    /// Where decisions are logged; `None` logs nothing.
    pub decision_log: Option<DecisionLogConfig>,
    /// Handle SIGHUP (reload the policy file), SIGINT and SIGTERM (stop gracefully). On for the
    /// CLI; an embedder that owns the process's signals leaves it off.
    pub signals: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            policy: None,
            sandbox: SandboxConfig::default(),
            on_policy_error: OnPolicyError::Fail,
            config_override: ConfigOverride::default(),
            golden: Vec::new(),
            golden_ignore: Vec::new(),
            keep_versions: 5,
            pin_sha256: Vec::new(),
            trusted_keys: None,
            allow_uploads: false,
            token: None,
            max_request_bytes: 16 << 20,
            max_buffered_bytes: 256 << 20,
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(15),
            write_timeout: Duration::from_secs(30),
            max_connections: 512,
            check_budget: Duration::from_secs(60),
            drain: Duration::from_secs(5),
            request_deadline: Duration::from_secs(10),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            poll_interval: Some(Duration::from_secs(2)),
            decision_log: None,
            signals: false,
        }
    }
}

/// At exit, the decision log's queued records get at least this long to be written.
const LOG_FLUSH_AT_LEAST: Duration = Duration::from_millis(200);

/// A running server. Dropping it stops it (gracefully: requests in flight are answered).
pub struct Server {
    addr: SocketAddr,
    state: Arc<routes::AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Load and check the policy, open the decision log, bind the address, and serve on
    /// threads of its own. Fails when the policy does not pass its checks (the reason names
    /// the check), the golden cases do not parse, or the address or log cannot be opened.
    pub fn start(config: ServeConfig) -> Result<Server, ServeError> {
        return_large_blocks_to_the_system();
        if let Some(token) = &config.token {
            validate_token(token).map_err(|why| Error::bad_input(format!("the bearer token {why}")))?;
        }
        ignore_file_size_signal();
        let golden = load_golden(&config.golden)?;
        let sandbox = Sandbox::new(config.sandbox.clone())?;
        let metrics = Arc::new(metrics::Metrics::new());
        let versions = Arc::new(versions::Versions::new(
            sandbox.clone(),
            OnFailure::new(&sandbox, config.on_policy_error)?,
            versions::Checks {
                golden,
                ignore: config.golden_ignore.clone(),
                pins: normalise_pins(&config.pin_sha256)?,
                trusted: config.trusted_keys.clone(),
                budget: config.check_budget,
            },
            config.keep_versions.max(1),
            metrics.clone(),
        ));
        let seen = config.policy.as_deref().and_then(watch::fingerprint);
        let (name, (bytes, signature)) = match &config.policy {
            Some(path) => (path.display().to_string(), read_policy(path)?),
            None => (DEFAULT_POLICY_NAME.to_string(), (DEFAULT_POLICY_WASM.to_vec(), None)),
        };
        versions
            .offer(&name, Origin::Startup, &bytes, signature.as_deref())
            .map_err(|rejection| rejection.into_error())?;
        let log = match &config.decision_log {
            Some(log) => Some(Arc::new(decision_log::DecisionLog::open(log, metrics.clone())?)),
            None => None,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| ServeError::system(format!("cannot listen on {}", config.listen), e))?;
        let addr =
            listener.local_addr().map_err(|e| ServeError::system(format!("cannot listen on {}", config.listen), e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("runretry-serve")
            .build()
            .map_err(|e| ServeError::system("cannot start the server's runtime", e))?;
        let state = Arc::new(routes::AppState::new(&config, versions, metrics, log));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("runretry-serve".into())
            .spawn(move || {
                let deadline = config.request_deadline;
                let stopped_at = Arc::new(std::sync::Mutex::new(None));
                let served =
                    runtime.block_on(run(listener, thread_state.clone(), config, seen, stop, stopped_at.clone()));
                // The records still queued are written within what is left of the request
                // deadline from the stop (at least a moment): a log that takes nothing, a
                // stalled pipe, cannot hold up the exit.
                if let Some(log) = &thread_state.log {
                    let stopped = stopped_at.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or_else(Instant::now);
                    log.close((stopped + deadline).max(Instant::now() + LOG_FLUSH_AT_LEAST));
                }
                served
            })
            .map_err(|e| ServeError::system("cannot start the server's thread", e))?;
        Ok(Server { addr, state, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The address the server listens on (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve until SIGINT or SIGTERM (with [`ServeConfig::signals`]) or until the server stops.
    pub fn wait(mut self) -> Result<(), ServeError> {
        let thread = self.thread.take().expect("joined only here or on drop");
        thread.join().unwrap_or(Err(ServeError::Panicked))
    }

    /// Stop accepting connections, answer the requests in flight, and return.
    pub fn shutdown(mut self) -> Result<(), ServeError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ServeError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Err(ServeError::Panicked)),
            None => Ok(()),
        }
    }

    /// Offer a new version as `PUT /v1/policy` would (whether or not uploads are enabled):
    /// checked, then swapped in, or rejected with the reason.
    pub fn offer(&self, name: &str, bytes: &[u8]) -> Result<VersionInfo, Rejection> {
        self.offer_signed(name, bytes, None)
    }

    /// [`offer`](Self::offer) with the component's signature line (`POLICY.sig`), which a
    /// server with [`ServeConfig::trusted_keys`] asks for.
    pub fn offer_signed(&self, name: &str, bytes: &[u8], signature: Option<&str>) -> Result<VersionInfo, Rejection> {
        self.state.versions.offer(name, Origin::Api, bytes, signature).map(|version| version.info())
    }

    /// Test hook (and last resort): swap in a component after compiling it, skipping the
    /// contract suite and the golden cases. The pin still applies. A hostile policy activated
    /// this way must cost only the requests it decides.
    #[doc(hidden)]
    pub fn activate_unchecked(&self, name: &str, bytes: &[u8]) -> Result<VersionInfo, Rejection> {
        self.state.versions.activate_unchecked(name, bytes).map(|version| version.info())
    }

    /// The active version.
    pub fn active(&self) -> VersionInfo {
        self.state.versions.active().info()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The server's life: serve, watch the file, handle signals, until told to stop. A signal
/// drains first (not ready, still serving, for `drain`); [`Server::shutdown`] does not.
async fn run(
    listener: std::net::TcpListener,
    state: Arc<routes::AppState>,
    config: ServeConfig,
    seen: watch::Fingerprint,
    stop: tokio::sync::oneshot::Receiver<()>,
    stopped_at: Arc<std::sync::Mutex<Option<Instant>>>,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| ServeError::system("cannot listen", e))?;
    if let Some(path) = config.policy.clone() {
        watch::spawn(state.clone(), path, seen, config.poll_interval, config.signals);
    }
    tokio::spawn(give_back_free_memory());
    let app = routes::router(state.clone(), &config);
    let health = routes::health_router(state.clone());
    let (signals, drain) = (config.signals, config.drain);
    let stopping = state.clone();
    let shutdown = async move {
        let signalled = tokio::select! {
            _ = stop => false,
            _ = watch::termination(signals) => true,
        };
        // Not ready from now on: a load balancer stops sending while the last answers go out.
        stopping.set_ready(false);
        // A candidate being checked is given up: the server must stop within its drain.
        stopping.versions.stop_pending(runretry::calls::StopReason::Shutdown);
        if signalled {
            tracing::info!("stopping: not ready, serving for {} ms more", drain.as_millis());
            tokio::time::sleep(drain).await;
        }
        // From here the requests in flight have the request deadline, and the log's flush what
        // is left of it.
        *stopped_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    };
    let limits = listener::ConnectionLimits {
        max_connections: connection_cap(config.max_connections),
        header_timeout: config.header_timeout,
        write_timeout: config.write_timeout,
    };
    listener::serve(listener, app, health, limits, shutdown, config.request_deadline).await;
    Ok(())
}

/// `wanted` connections, or fewer when the file-descriptor limit (raised to its hard limit
/// first) would run out: each connection is one descriptor, and the process needs a reserve for
/// its files, the decision log and the spare health-check connections.
fn connection_cap(wanted: usize) -> usize {
    const RESERVE: libc::rlim_t = 64;
    let Some(limit) = raise_file_limit() else { return wanted.max(1) };
    let room = limit.saturating_sub(RESERVE + listener::SPARE_CONNECTIONS as libc::rlim_t);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
}

/// Raise the soft limit on open files to the hard limit, as servers do; the limit in force.
fn raise_file_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// A write past the file-size limit (`RLIMIT_FSIZE`) then fails with EFBIG, which the decision
/// log reports and survives, instead of killing the process (SIGXFSZ's default action).
fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler; it only changes what the signal does to the process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Every few seconds, hand the allocator's free memory back to the system: after a burst of
/// clients, each runtime thread's arena holds freed pages that the process would otherwise keep.
async fn give_back_free_memory() {
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free pages to the system; it takes the arenas' locks.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}

/// Large buffers (request bodies, batch answers) are given back to the system when freed. glibc
/// otherwise raises its mmap threshold to the largest block freed so far, after which such
/// blocks come from its heap and stay with the process after the clients that needed them left.
fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; a fixed threshold is always valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
}

fn load_golden(paths: &[PathBuf]) -> Result<Vec<ConformanceCase>, Error> {
    let mut cases = Vec::new();
    for path in paths {
        cases.extend(load_cases(path)?);
    }
    Ok(cases)
}

/// Pins as lowercase hex, refusing anything that is not a SHA-256.
fn normalise_pins(pins: &[String]) -> Result<Vec<String>, Error> {
    pins.iter()
        .map(|pin| {
            let pin = pin.trim().to_ascii_lowercase();
            if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(pin)
            } else {
                Err(Error::bad_input(format!("--pin-sha256 {pin:?}: not a SHA-256 (64 hexadecimal digits)")))
            }
        })
        .collect()
}

pub(crate) fn read_policy(path: &std::path::Path) -> Result<(Vec<u8>, Option<String>), Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::unreadable(format_args!("policy {}", path.display()), &e))?;
    Ok((bytes, runretry::signing::read_signature(path)?))
}
