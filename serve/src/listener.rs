//! Connections, bounded: a cap on open connections (with a few spare ones that answer only the
//! health checks, so probes work while the cap is reached), a time limit on a request's head
//! that also closes idle keep-alive connections, a time limit on a stalled response write (a
//! client that never reads its answer), and a graceful stop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Connections beyond the cap that are still taken, to answer `/health*` only.
pub(crate) const SPARE_CONNECTIONS: usize = 16;

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
    let graceful = GracefulShutdown::new();
    let full = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let spare = Arc::new(Semaphore::new(SPARE_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    loop {
        // A slot first, then the connection: a server at its limit leaves new connections in
        // the kernel's backlog instead of spending file descriptors on them.
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = take_slot(&full, &spare) => slot,
        };
        let stream = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, or the connection was reset before it was taken.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (service, keep_alive) = match slot {
            Slot::Full(_) => (app.clone(), true),
            Slot::Spare(_) => (health.clone(), false),
        };
        let mut http = http.clone();
        http.keep_alive(keep_alive);
        let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            let _slot = slot;
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

async fn take_slot(full: &Arc<Semaphore>, spare: &Arc<Semaphore>) -> Slot {
    if let Ok(permit) = full.clone().try_acquire_owned() {
        return Slot::Full(permit);
    }
    if let Ok(permit) = spare.clone().try_acquire_owned() {
        return Slot::Spare(permit);
    }
    tokio::select! {
        Ok(permit) = full.clone().acquire_owned() => Slot::Full(permit),
        Ok(permit) = spare.clone().acquire_owned() => Slot::Spare(permit),
    }
}

/// A stream whose writes fail once one has waited `limit` for the peer to read: the connection
/// then closes, and the answer it held is freed.
struct WriteTimeout {
    stream: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn new(stream: TcpStream, limit: Duration) -> Self {
        WriteTimeout { stream, limit, stalled: None }
    }

    /// A write's outcome: one that went through ends a stall; a pending one is timed.
    fn track(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if written.is_pending() {
            return self.check_stall(cx);
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

impl AsyncRead for WriteTimeout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
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

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
