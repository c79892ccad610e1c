//! HTTP/1.1 upstream connections, pooled per endpoint without locks: idle connections wait in a bounded
//! lock-free queue, a request takes one (or dials a new one: TCP with the connect timeout, then TLS verified
//! against the configured roots for `https` endpoints), and the connection goes back to the queue when the
//! response body has been read to the end. A request that could not be written because the pooled connection
//! had just been closed by the upstream (the keep-alive race) is re-sent on another connection: nothing of it
//! reached the upstream.
//!
//! This replaces hyper-util's general-purpose pool on the HTTP/1.1 hot path, where its per-request key hashing,
//! locking and future moves cost about a third of the gateway's own work per request.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;

use super::body::RequestBody;
use super::upstream::{Endpoint, UpstreamPool};

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Io(std::io::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("HTTP/1.1 handshake: {0}")]
    Handshake(hyper::Error),
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum SendError {
    /// No byte of the request reached the upstream.
    Connect(ConnectError),
    /// The exchange failed after the request was (at least partly) written, or the response was unusable.
    Exchange(hyper::Error),
}

/// An idle connection and since when it has been idle.
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// The idle connections of one endpoint.
pub struct IdleConnections {
    queue: ArrayQueue<Idle>,
}

impl std::fmt::Debug for IdleConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleConnections").field("idle", &self.queue.len()).finish()
    }
}

impl IdleConnections {
    pub fn new(capacity: usize) -> Self {
        Self { queue: ArrayQueue::new(capacity.max(1)) }
    }

    fn checkin(&self, sender: SendRequest<RequestBody>) {
        if !sender.is_closed() {
            // A full queue drops the connection, which closes it.
            let _ = self.queue.push(Idle { sender, since: Instant::now() });
        }
    }
}

/// How HTTP/1.1 connections of a pool are made.
#[derive(Clone)]
pub struct Dialer {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer").field("connect_timeout", &self.connect_timeout).finish()
    }
}

impl Dialer {
    /// A ready connection to `endpoint`: an idle one, or a new one.
    async fn checkout(&self, endpoint: &Endpoint) -> Result<SendRequest<RequestBody>, ConnectError> {
        while let Some(idle) = endpoint.idle.queue.pop() {
            if idle.sender.is_closed() || idle.since.elapsed() > self.idle_timeout {
                continue;
            }
            let mut sender = idle.sender;
            // Normally ready at once; right after a body ended the connection task may still be settling.
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        // Boxed: connecting (TCP, TLS, handshake) is rare with keep-alive and its state is kilobytes, which every
        // request's future would otherwise carry and move.
        Box::pin(self.connect(endpoint)).await
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<SendRequest<RequestBody>, ConnectError> {
        let host = endpoint.authority.host().trim_start_matches('[').trim_end_matches(']');
        let https = endpoint.scheme == http::uri::Scheme::HTTPS;
        let port = endpoint.authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Io)?;
        let _ = tcp.set_nodelay(true);
        if !https {
            return handshake(tcp).await;
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| ConnectError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Tls)?;
        handshake(tls).await
    }
}

async fn handshake<S>(io: S) -> Result<SendRequest<RequestBody>, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream connection ended");
        }
    });
    Ok(sender)
}

/// Sends `request` to endpoint `index` of `pool`. The response body hands the connection back when it ends.
pub async fn send(
    pool: &Arc<UpstreamPool>,
    dialer: &Dialer,
    index: usize,
    mut request: Request<RequestBody>,
) -> Result<Response<PooledBody>, SendError> {
    let endpoint = &pool.endpoints[index];
    // A pooled connection closed by the upstream just before use gives the request back unsent: try again.
    for _ in 0..3 {
        let mut sender = dialer.checkout(endpoint).await.map_err(SendError::Connect)?;
        match sender.try_send_request(request).await {
            Ok(response) => {
                let home = Some((sender, Arc::clone(pool), index));
                return Ok(response.map(|incoming| PooledBody::new(incoming, home)));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) => request = unsent,
                None => return Err(SendError::Exchange(e.into_error())),
            },
        }
    }
    Err(SendError::Connect(ConnectError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the upstream kept closing connections before the request could be sent",
    ))))
}

/// The upstream's response body; when it has been read to the end, its connection returns to the pool.
pub struct PooledBody {
    inner: Incoming,
    home: Option<(SendRequest<RequestBody>, Arc<UpstreamPool>, usize)>,
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").field("inner", &self.inner).finish()
    }
}

impl PooledBody {
    fn new(inner: Incoming, home: Option<(SendRequest<RequestBody>, Arc<UpstreamPool>, usize)>) -> Self {
        let mut body = Self { inner, home };
        if body.inner.is_end_stream() {
            body.release(); // empty bodies (204, HEAD) may never be polled
        }
        body
    }

    fn release(&mut self) {
        if let Some((sender, pool, index)) = self.home.take() {
            pool.endpoints[index].idle.checkin(sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(Some(Err(_))) => self.home = None, // a broken connection is not reused
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
