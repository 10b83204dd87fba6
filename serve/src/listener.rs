//! Connections, bounded: a cap on open connections (with a few spare ones that answer only the
//! health checks, so probes work while the cap is reached), a time limit on a request's head
//! that also closes idle keep-alive connections, a time limit on a stalled response write (a
//! client that never reads its answer), and a graceful stop.
//!
//! When every slot is taken, a new connection closes the one that has been quiet longest (no
//! request being handled and no byte either way for a second) and takes its place: otherwise
//! connections that never send a byte would hold every slot, the spare ones included, until
//! their head timeout, and a probe would wait behind them in the listen backlog.
//!
//! Every request must carry one `Host` header (HTTP/1.1); and a connection closes gracefully:
//! after its last answer it stops writing and reads (and drops) what the client still sends,
//! for a bounded time, so a client sending a body the server refused from its head (401, 403,
//! 413) reads that answer instead of a reset.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{header, Request, StatusCode, Version};
use axum::response::IntoResponse;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Connections beyond the cap that are still taken, to answer `/health*` only.
pub(crate) const SPARE_CONNECTIONS: usize = 16;

/// How long a connection must have been quiet (no request being handled, no byte either way)
/// before a new connection may take its place at the cap. Long enough that a client which has
/// just connected has had its request read, short enough that a probe is answered in time.
const QUIET_BEFORE_REPLACED: Duration = Duration::from_secs(1);

/// After its last answer, a connection reads and drops what the client still sends for at most
/// this long in all, and at most `LINGER_QUIET` without a byte, and at most `LINGER_BYTES`:
/// closing with unread bytes resets the connection, and the client loses the answer.
const LINGER_TIME: Duration = Duration::from_secs(5);
const LINGER_QUIET: Duration = Duration::from_secs(1);
/// The largest body the server reads at all (an upload).
const LINGER_BYTES: u64 = 256 << 20;

/// How connections are limited.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    /// Open connections served in full.
    pub(crate) max_connections: usize,
    /// Time to send a request's head, from connecting or from the previous answer.
    pub(crate) header_timeout: Duration,
    /// Time a response write may wait for the client to read.
    pub(crate) write_timeout: Duration,
}

/// A connection's slot: in full, or a spare one that answers the health checks only.
enum Slot {
    Full(#[allow(dead_code)] OwnedSemaphorePermit),
    Spare(#[allow(dead_code)] OwnedSemaphorePermit),
}

/// Serve `app` on `listener` until `stop` resolves, then stop accepting, let the requests in
/// flight finish for at most `grace`, and return. `health` answers on spare connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    health: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let app = app.layer(axum::middleware::from_fn(require_one_host));
    let health = health.layer(axum::middleware::from_fn(require_one_host));
    let graceful = GracefulShutdown::new();
    let full = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let spare = Arc::new(Semaphore::new(SPARE_CONNECTIONS));
    let connections = Arc::new(Connections::new());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        // A slot first, then the connection: a server at its limit leaves new connections in
        // the kernel's backlog instead of spending file descriptors on them. Unless one is
        // waiting there: then the connection quiet longest makes room for it.
        let (slot, accepted) = match free_slot(&full, &spare) {
            Some(slot) => (slot, None),
            None => tokio::select! {
                _ = &mut stop => break,
                slot = take_slot(&full, &spare) => (slot, None),
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let slot = tokio::select! {
                        _ = &mut stop => break,
                        slot = make_room(&connections, &full, &spare) => slot,
                    };
                    (slot, Some(stream))
                }
            },
        };
        let stream = match accepted {
            Some(stream) => stream,
            None => tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors, or the connection was reset before it was taken.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            },
        };
        let _ = stream.set_nodelay(true);
        let (service, keep_alive) = match slot {
            Slot::Full(_) => (app.clone(), true),
            Slot::Spare(_) => (health.clone(), false),
        };
        let (activity, registered) = connections.open();
        let mut http = http.clone();
        http.keep_alive(keep_alive);
        let io = TokioIo::new(Stream::new(stream, limits.write_timeout, activity.clone()));
        let service = Counted { inner: TowerToHyperService::new(service), activity: activity.clone() };
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _slot = slot;
            let _registered = registered;
            tokio::select! {
                _ = connection => {}
                // Dropping the connection closes it: it was quiet, so nothing is lost.
                _ = activity.replaced.notified() => {}
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

fn free_slot(full: &Arc<Semaphore>, spare: &Arc<Semaphore>) -> Option<Slot> {
    if let Ok(permit) = full.clone().try_acquire_owned() {
        return Some(Slot::Full(permit));
    }
    spare.clone().try_acquire_owned().ok().map(Slot::Spare)
}

async fn take_slot(full: &Arc<Semaphore>, spare: &Arc<Semaphore>) -> Slot {
    if let Some(slot) = free_slot(full, spare) {
        return slot;
    }
    tokio::select! {
        Ok(permit) = full.clone().acquire_owned() => Slot::Full(permit),
        Ok(permit) = spare.clone().acquire_owned() => Slot::Spare(permit),
    }
}

/// A slot for a connection accepted at the cap: the one a connection quiet for long enough gives
/// up when it is closed, or the first one freed otherwise.
async fn make_room(connections: &Connections, full: &Arc<Semaphore>, spare: &Arc<Semaphore>) -> Slot {
    loop {
        if let Some(slot) = free_slot(full, spare) {
            return slot;
        }
        if connections.replace_quietest() {
            return take_slot(full, spare).await;
        }
        tokio::select! {
            slot = take_slot(full, spare) => return slot,
            _ = tokio::time::sleep(QUIET_BEFORE_REPLACED / 10) => {}
        }
    }
}

/// The open connections, so that a full server can close the one that has been quiet longest.
struct Connections {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// What one connection is doing: written by its stream and its service, read by the accept loop.
struct Activity {
    epoch: Instant,
    /// When a byte last went either way, or the connection opened: milliseconds since `epoch`.
    last_active: AtomicU64,
    /// Requests whose handler has not answered yet.
    in_flight: AtomicUsize,
    /// The last answer is out and the connection is closing: nothing is lost by closing it now.
    closing: AtomicBool,
    /// Told to close, to make room for a new connection.
    replaced: Notify,
}

impl Activity {
    fn touch(&self) {
        self.last_active.store(millis_since(self.epoch), Ordering::Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A connection's entry in [`Connections`], removed when dropped.
struct Registered {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.connections.open.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

impl Connections {
    fn new() -> Self {
        Connections { epoch: Instant::now(), next_id: AtomicU64::new(0), open: Mutex::new(HashMap::new()) }
    }

    fn open(self: &Arc<Self>) -> (Arc<Activity>, Registered) {
        let activity = Arc::new(Activity {
            epoch: self.epoch,
            last_active: AtomicU64::new(millis_since(self.epoch)),
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            replaced: Notify::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, activity.clone());
        (activity, Registered { connections: self.clone(), id })
    }

    /// Close the connection quiet longest (a closing one first), if one has been quiet for
    /// `QUIET_BEFORE_REPLACED`; whether there was one. Its slot is freed as its task ends.
    fn replace_quietest(&self) -> bool {
        let quiet_since = millis_since(self.epoch)
            .saturating_sub(u64::try_from(QUIET_BEFORE_REPLACED.as_millis()).unwrap_or(u64::MAX));
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let quietest = open
            .iter()
            .filter(|(_, activity)| activity.in_flight.load(Ordering::SeqCst) == 0)
            .filter_map(|(&id, activity)| {
                let closing = activity.closing.load(Ordering::SeqCst);
                let last_active = activity.last_active.load(Ordering::Relaxed);
                (closing || last_active <= quiet_since).then_some((!closing, last_active, id))
            })
            .min();
        let Some((_, _, id)) = quietest else { return false };
        if let Some(activity) = open.remove(&id) {
            activity.replaced.notify_one();
        }
        true
    }
}

/// A connection's service, counting its requests in flight: a connection whose handler is still
/// working (a slow policy, a check) is busy, not quiet, however long it has sent nothing.
struct Counted<S> {
    inner: S,
    activity: Arc<Activity>,
}

/// One request in flight, until dropped (answered, or its connection gone).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Counted<S>
where
    S: hyper::service::Service<Request<Incoming>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight(self.activity.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        })
    }
}

/// HTTP/1.1 requires exactly one `Host` header (RFC 9112, section 3.2): a request with none, or
/// with several, is answered 400. An HTTP/1.0 request may have none.
async fn require_one_host(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let message = match hosts {
        0 if request.version() >= Version::HTTP_11 => "an HTTP/1.1 request must have a Host header".to_string(),
        0 | 1 => return next.run(request).await,
        _ => format!("a request must have one Host header, not {hosts}"),
    };
    (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": {"kind": "bad input", "message": message}})))
        .into_response()
}

/// A connection's stream: its writes fail once one has waited `limit` for the peer to read (the
/// connection then closes, and the answer it held is freed); every byte either way is noted in
/// its activity; and its shutdown lingers (see `poll_shutdown`).
struct Stream {
    stream: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    activity: Arc<Activity>,
    linger: Option<Linger>,
}

/// A closing connection's reading of what the client still sends.
struct Linger {
    /// The end of `LINGER_TIME`.
    until: Pin<Box<Sleep>>,
    /// The end of `LINGER_QUIET`, pushed back by every byte read.
    quiet: Pin<Box<Sleep>>,
    /// What is left of `LINGER_BYTES`.
    left: u64,
}

impl Stream {
    fn new(stream: TcpStream, limit: Duration, activity: Arc<Activity>) -> Self {
        Stream { stream, limit, stalled: None, activity, linger: None }
    }

    /// A write's outcome: one that went through ends a stall; a pending one is timed.
    fn track(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if written.is_pending() {
            return self.check_stall(cx);
        }
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        self.stalled = None;
        written
    }

    /// After a write that is pending: fail once the stall has lasted `limit`.
    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of the answer for {} ms", limit.as_millis()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        read
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.track(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.track(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// The answer is out: send FIN, then read and drop what the client still sends (the rest of
    /// a body refused from its head) until it closes its side, for at most `LINGER_TIME` (and
    /// `LINGER_QUIET` without a byte) and `LINGER_BYTES`. Closing a socket with unread bytes
    /// resets the connection, and a client still sending would see the reset, not the answer.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            this.activity.closing.store(true, Ordering::SeqCst);
            this.linger = Some(Linger {
                until: Box::pin(tokio::time::sleep(LINGER_TIME)),
                quiet: Box::pin(tokio::time::sleep(LINGER_QUIET)),
                left: LINGER_BYTES,
            });
        }
        let linger = this.linger.as_mut().expect("set above");
        let mut scratch = [0u8; 16 << 10];
        // A few reads at a time: a client sending fast must not keep this thread from others.
        for _ in 0..64 {
            if linger.left == 0
                || linger.until.as_mut().poll(cx).is_ready()
                || linger.quiet.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    linger.left = linger.left.saturating_sub(buf.filled().len() as u64);
                    linger.quiet.as_mut().reset(tokio::time::Instant::now() + LINGER_QUIET);
                }
                // The client closed its side, or the connection broke: nothing is left to lose.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
