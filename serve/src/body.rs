//! Reading a request body within the service's limits: a size cap refused from the
//! `Content-Length` before a byte is read (so no `100 Continue` goes out), a time limit for the
//! whole body, and a budget of body bytes held at once across every request, so slow or stalled
//! uploads cannot grow the process without bound.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bodies up to this size are not counted against the byte budget: a case is a few KiB, and
/// big bodies holding the whole budget must not keep small ones waiting. The connection cap
/// bounds what they hold together (512 connections: 32 MiB).
pub(crate) const UNCOUNTED_BYTES: usize = 64 << 10;

/// An over-limit body this small is read and dropped before the 413 goes out (see `read`).
const DISCARDED_BYTES: usize = 1 << 20;
/// How long dropping it may take.
const DISCARD_TIME: Duration = Duration::from_secs(1);

/// Read a body to its end (or the deadline), keeping nothing.
async fn discard(mut body: Body, deadline: tokio::time::Instant) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, body.frame()).await {}
}

/// The limits every body is read under.
pub(crate) struct BodyLimits {
    /// How long reading one whole body may take.
    pub(crate) timeout: Duration,
    /// Body bytes buffered at once, across requests: one permit per byte.
    budget: Arc<Semaphore>,
    /// The budget's size, for error messages and refusals.
    budget_bytes: usize,
}

/// A body read whole, with its share of the byte budget held until it is dropped.
pub(crate) struct ReadBody {
    pub(crate) bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Why a body was not read: the status and the error kind the answer carries.
#[derive(Debug)]
pub(crate) struct Unread {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl BodyLimits {
    pub(crate) fn new(timeout: Duration, budget_bytes: usize) -> Self {
        // A semaphore holds at most `Semaphore::MAX_PERMITS`; nobody buffers more than that.
        let budget_bytes = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        BodyLimits { timeout, budget: Arc::new(Semaphore::new(budget_bytes)), budget_bytes }
    }

    /// Read `body` whole: at most `max_bytes`, within the time limit and the byte budget.
    pub(crate) async fn read(&self, headers: &HeaderMap, body: Body, max_bytes: usize) -> Result<ReadBody, Unread> {
        let cap = max_bytes.min(self.budget_bytes);
        let too_large = |size: String| Unread {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "request too large",
            message: format!("the request body is {size}, over the limit of {cap} bytes"),
        };
        let declared = match headers.get(header::CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse().ok())) {
            None => None,
            Some(Some(length)) => Some(length),
            Some(None) => {
                return Err(Unread {
                    status: StatusCode::BAD_REQUEST,
                    kind: "bad input",
                    message: "Content-Length is not a number of bytes".into(),
                })
            }
        };
        let deadline = tokio::time::Instant::now() + self.timeout;
        if let Some(length) = declared.filter(|&length: &usize| length > cap) {
            // A client that sent a small body without waiting for `100 Continue` would see the
            // connection reset, its answer lost, if the unread body were left behind: read and
            // drop it. A large one, or one the client holds back, is not read at all.
            let waits_for_continue =
                headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if !waits_for_continue && length <= DISCARDED_BYTES {
                discard(body, deadline.min(tokio::time::Instant::now() + DISCARD_TIME)).await;
            }
            return Err(too_large(format!("{length} bytes (Content-Length)")));
        }
        let timed_out = || Unread {
            status: StatusCode::REQUEST_TIMEOUT,
            kind: "request timeout",
            message: format!("the request body was not received within {} ms", self.timeout.as_millis()),
        };
        // A declared length takes its whole share up front (one allocation, no regrowth); a
        // chunked body takes its share chunk by chunk.
        let mut held = match declared {
            Some(length) if length > UNCOUNTED_BYTES => {
                Some(self.reserve(length, deadline).await.ok_or_else(timed_out)?)
            }
            _ => None,
        };
        let mut buffer = Vec::with_capacity(declared.unwrap_or(0));
        let mut body = body;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Unread {
                        status: StatusCode::BAD_REQUEST,
                        kind: "bad input",
                        message: format!("the request body could not be read: {e}"),
                    })
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else { continue };
            if buffer.len() + data.len() > cap {
                return Err(too_large(format!("over {cap} bytes")));
            }
            // A chunked body is counted once it outgrows the uncounted size, from its first byte.
            let counted = buffer.len() + data.len() > UNCOUNTED_BYTES;
            if declared.is_none() && counted {
                let bytes = if held.is_none() { buffer.len() + data.len() } else { data.len() };
                let more = self.reserve(bytes, deadline).await.ok_or_else(timed_out)?;
                match &mut held {
                    Some(permit) => permit.merge(more),
                    None => held = Some(more),
                }
            }
            buffer.extend_from_slice(&data);
        }
        Ok(ReadBody { bytes: Bytes::from(buffer), _budget: held })
    }

    /// `bytes` of the budget, waiting until `deadline` for other requests to release theirs.
    async fn reserve(&self, bytes: usize, deadline: tokio::time::Instant) -> Option<OwnedSemaphorePermit> {
        let permits = u32::try_from(bytes).ok()?;
        tokio::time::timeout_at(deadline, self.budget.clone().acquire_many_owned(permits)).await.ok()?.ok()
    }
}
