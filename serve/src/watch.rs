//! New versions from the policy file: polled for changes (size and mtime; the hash then decides
//! whether anything changed), and read again on SIGHUP. Also the signals that stop the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::routes::AppState;
use super::versions::Origin;

/// Watch `path` every `poll` (when given) and on SIGHUP (when `signals`). `seen` is the file's
/// fingerprint from before it was first read, so a change made since is not missed.
pub(crate) fn spawn(state: Arc<AppState>, path: PathBuf, seen: Fingerprint, poll: Option<Duration>, signals: bool) {
    if let Some(every) = poll {
        tokio::spawn(poll_file(state.clone(), path.clone(), seen, every));
    }
    if signals {
        tokio::spawn(on_hangup(state, path));
    }
}

/// Size and modification time of the file, and of its signature (`POLICY.sig`, read again when
/// only it changes: a policy re-signed after it was swapped in): cheap to read, and what
/// changes when the files are written.
pub(crate) type Fingerprint = Option<((u64, SystemTime), Option<(u64, SystemTime)>)>;

pub(crate) fn fingerprint(path: &Path) -> Fingerprint {
    let stamp = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    Some((stamp(path)?, stamp(&runretry::signing::signature_path(path))))
}

async fn poll_file(state: Arc<AppState>, path: PathBuf, mut seen: Fingerprint, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let now = fingerprint(&path);
        // A file being replaced may be missing for a moment: wait for it to be back.
        if now.is_some() && now != seen {
            seen = now;
            reload(&state, &path, Origin::FileChange).await;
        }
    }
}

#[cfg(unix)]
async fn on_hangup(state: Arc<AppState>, path: PathBuf) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP; policy reloads by file change and upload only");
        return;
    };
    while hangups.recv().await.is_some() {
        reload(&state, &path, Origin::Signal).await;
    }
}

#[cfg(not(unix))]
async fn on_hangup(_state: Arc<AppState>, _path: PathBuf) {}

/// Read the file and offer it as a candidate, on a thread of its own (as an upload is): the
/// checks never hold up requests, and a server that stops does not wait for them. The outcome is
/// logged by the versions and shown by `GET /v1/policy`.
async fn reload(state: &Arc<AppState>, path: &Path, origin: Origin) {
    let (state, path) = (state.clone(), path.to_path_buf());
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("runretry-check".into()).spawn(move || {
        match super::read_policy(&path) {
            Ok((bytes, signature)) => {
                let _ = state.versions.offer(&path.display().to_string(), origin, &bytes, signature.as_deref());
            }
            Err(error) => tracing::warn!("{}", runretry::text::escape_untrusted(&error.to_string())),
        }
        let _ = done.send(());
    });
    if spawned.is_ok() {
        let _ = finished.await;
    }
}

/// Resolves on SIGINT or SIGTERM when `signals`; never otherwise.
pub(crate) async fn termination(signals: bool) {
    if !signals {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
