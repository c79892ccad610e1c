//! Watching bodies while they stream, for the audit record: [`RequestTap`] (the request body's [`BodyTap`] on
//! its way upstream) hashes it and scans it for NIKs; [`Audited`] (around the response body on its way to the
//! caller, whatever that body is) hashes it, counts it, and when it ends hands the finished record to the
//! writer through the queue slot reserved before the response was released. For a `sync` service it holds back
//! the END of the body (the last data frame, or the end of a chunked/HTTP/2 stream) until the writer reports
//! the record durable; if the writer cannot, the body fails with [`RecordLost`] (in the wrapped body's own
//! error type) instead of completing, so a caller never sees a complete response whose record is not on disk.
//! A small `sync` body (known length up to 64 KiB) is read ahead before the head is released
//! ([`Audited::read_ahead`]), so that head and body leave together once the record is durable. Nothing is
//! buffered beyond that first frame: each frame passes through once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use ring::digest::{self, SHA256};
use tokio::sync::{mpsc, oneshot};

use super::nik::NikScanner;
use super::record::{ExchangeRecord, Record};
use super::writer::Job;
use super::Auditor;
use penghubung_types::tap::BodyTap;

/// The audit record of an exchange could not be made durable: an [`Audited`] body ends with this (converted
/// into its inner body's error type) instead of completing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the audit record of this exchange could not be written; the response is withheld")]
pub struct RecordLost;

/// What the request side learned, read by the response side when the exchange ends.
#[derive(Debug, Default)]
pub struct RequestOutcome {
    pub bytes_in: u64,
    /// Set when the request body reached its end.
    pub sha256: Option<[u8; 32]>,
    /// NIKs of the path, the query and the body.
    pub nik: NikScanner,
}

/// Shared between the two sides of one exchange (locked once by each, never across an await).
pub type SharedOutcome = Arc<Mutex<RequestOutcome>>;

fn finish(context: &mut digest::Context) -> [u8; 32] {
    let done = std::mem::replace(context, digest::Context::new(&SHA256)).finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(done.as_ref());
    out
}

/// Hashes and scans the request body as it streams to the upstream.
pub struct RequestTap {
    sha: digest::Context,
    nik: NikScanner,
    bytes: u64,
    out: SharedOutcome,
    finished: bool,
}

impl std::fmt::Debug for RequestTap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTap").field("bytes", &self.bytes).finish_non_exhaustive()
    }
}

impl RequestTap {
    pub fn new(out: SharedOutcome) -> Box<RequestTap> {
        Box::new(RequestTap {
            sha: digest::Context::new(&SHA256),
            nik: NikScanner::default(),
            bytes: 0,
            out,
            finished: false,
        })
    }

    fn publish(&mut self, sha256: Option<[u8; 32]>) {
        self.finished = true;
        self.nik.finish();
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.bytes_in = self.bytes;
        out.sha256 = sha256;
        out.nik.absorb(std::mem::take(&mut self.nik));
    }
}

impl BodyTap for RequestTap {
    fn observe(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.nik.feed(data);
        self.bytes += data.len() as u64;
    }

    /// The body ended: publish its digest.
    fn finish(&mut self) {
        if !self.finished {
            let digest = finish(&mut self.sha);
            self.publish(Some(digest));
        }
    }
}

impl Drop for RequestTap {
    fn drop(&mut self) {
        if !self.finished {
            self.publish(None); // cut off: bytes and NIKs so far, no digest
        }
    }
}

/// The response body of an audited exchange: any body `B`, whose error type can tell that the record was lost.
pub struct Audited<B> {
    inner: B,
    sha: digest::Context,
    bytes: u64,
    /// The record and its queue slot, until the record is handed over.
    pending: Option<(Box<ExchangeRecord>, mpsc::OwnedPermit<Job>)>,
    outcome: SharedOutcome,
    auditor: Arc<Auditor>,
    started: Instant,
    sync: bool,
    /// Waiting for durability (sync).
    ack: Option<oneshot::Receiver<bool>>,
    /// The last frame, held back until the record is durable (sync).
    held: Option<Frame<Bytes>>,
    /// A frame read ahead by [`Audited::read_ahead`], returned before anything else.
    first: Option<Frame<Bytes>>,
    ended: bool,
}

impl<B> std::fmt::Debug for Audited<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audited").field("bytes", &self.bytes).field("sync", &self.sync).finish_non_exhaustive()
    }
}

impl<B> Audited<B> {
    /// Wraps `inner`; `record` is complete except for what the body tells (bytes out, digest, latency).
    pub fn new(
        inner: B,
        record: Box<ExchangeRecord>,
        permit: mpsc::OwnedPermit<Job>,
        outcome: SharedOutcome,
        auditor: Arc<Auditor>,
        started: Instant,
        sync: bool,
    ) -> Audited<B> {
        Audited {
            inner,
            sha: digest::Context::new(&SHA256),
            bytes: 0,
            pending: Some((record, permit)),
            outcome,
            auditor,
            started,
            sync,
            ack: None,
            held: None,
            first: None,
            ended: false,
        }
    }

    /// For a response without a body (HEAD, 204, 304: hyper may never poll it): completes the record now and
    /// returns, for a sync exchange, what to wait on before releasing the response.
    pub fn finish_empty(&mut self) -> Option<oneshot::Receiver<bool>> {
        self.ended = true;
        self.submit(true);
        self.ack.take()
    }

    /// Completes the record and queues it; for a sync exchange that completed, starts waiting for durability.
    fn submit(&mut self, complete: bool) {
        let Some((mut record, permit)) = self.pending.take() else { return };
        record.bytes_out = self.bytes;
        record.latency_us = self.started.elapsed().as_micros() as u64;
        record.complete = complete;
        if complete {
            record.response_sha256 = Some(finish(&mut self.sha));
        }
        {
            let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
            record.bytes_in = outcome.bytes_in;
            record.request_sha256 = outcome.sha256;
            let nik = std::mem::take(&mut outcome.nik);
            record.nik_overflow = nik.overflow;
            record.nik = nik.into_keyed(self.auditor.nik_key());
        }
        if self.sync && complete {
            let (done, wait) = oneshot::channel();
            permit.send(Job::Record(Record::Exchange(record), Some(done)));
            self.ack = Some(wait);
        } else {
            permit.send(Job::Record(Record::Exchange(record), None));
        }
    }
}

impl<B> Audited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: From<RecordLost>,
{
    /// For a `sync` exchange: reads the first frame now, before the head is released. A body that ends with
    /// it (most API answers) is then complete and its record durable, so head and body leave together in one
    /// write, instead of the head first and the end after the fsync (two writes and two wake-ups of the
    /// caller). A longer body continues to stream afterwards, its end held back as usual. Cancelling this
    /// (a timeout) loses nothing: the body keeps its state and streams as if it had not been called.
    pub async fn read_ahead(&mut self) -> Result<(), B::Error> {
        match std::future::poll_fn(|cx| Pin::new(&mut *self).poll_frame(cx)).await {
            Some(Ok(frame)) => {
                self.first = Some(frame);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Ok(()),
        }
    }
}

impl<B> Body for Audited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: From<RecordLost>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(frame) = this.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        loop {
            if let Some(ack) = this.ack.as_mut() {
                let durable = match Pin::new(ack).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result.unwrap_or(false),
                };
                this.ack = None;
                if !durable {
                    this.held = None;
                    return Poll::Ready(Some(Err(RecordLost.into())));
                }
                if let Some(frame) = this.held.take() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                return Poll::Ready(None);
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        this.sha.update(data);
                        this.bytes += data.len() as u64;
                    }
                    if !this.inner.is_end_stream() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    this.ended = true;
                    this.submit(true);
                    if this.ack.is_some() {
                        this.held = Some(frame);
                        continue;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    this.submit(false);
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    this.submit(true);
                    if this.ack.is_some() {
                        continue;
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        // Until the record is handed over (and, for sync, durable) the end is not released.
        self.first.is_none()
            && self.pending.is_none()
            && self.ack.is_none()
            && self.held.is_none()
            && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // What is left of the upstream's body, plus the frames taken from it but not yet returned.
        let inner = self.inner.size_hint();
        let taken = [&self.first, &self.held]
            .into_iter()
            .filter_map(|f| f.as_ref()?.data_ref().map(|d| d.len() as u64))
            .sum::<u64>();
        if taken == 0 {
            return inner;
        }
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + taken);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + taken);
        }
        hint
    }
}

impl<B> Drop for Audited<B> {
    fn drop(&mut self) {
        // The caller went away (or the connection broke) before the end: the record says so.
        self.submit(false);
    }
}
