//! Making and keeping HTTP/1.1 upstream connections: the [`Dialer`] that opens them (TCP with the connect
//! timeout, then TLS verified against the configured roots for `https` endpoints), the [`Connection`] with its
//! buffers, and the bounded lock-free queue of an endpoint's [`IdleConnections`]; [`stream`] is the plain/TLS
//! byte stream under a connection. The pool ([`crate::upstream`]) holds these and the HTTP/1.1 exchange
//! ([`crate::h1`]) uses them; this module needs neither.

pub mod stream;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_queue::ArrayQueue;
use http::uri::Authority;
use rustls::pki_types::ServerName;
use tokio_util::io::poll_read_buf;

use penghubung_types::deadline::{LazyTimer, StallWatch};
use stream::Stream;

/// Read buffer reserved for a response head (and a small body with it).
pub(crate) const HEAD_BUFFER: usize = 8 * 1024;

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Io(io::Error),
    #[error("connect timed out")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(io::Error),
}

/// How long a connection idles in the pool before its reuse also asks the kernel whether unsolicited bytes wait
/// (see [`Connection::is_reusable`]); under load connections come back within microseconds and skip the call.
const PEEK_AFTER_IDLE: Duration = Duration::from_millis(1);

/// An open connection to an upstream endpoint, with its buffers (kept across requests).
#[derive(Debug)]
pub struct Connection {
    pub(crate) stream: Stream,
    pub(crate) read_buf: BytesMut,
    pub(crate) write_buf: Vec<u8>,
    idle_since: Instant,
    /// Watches each exchange's deadline (re-armed lazily: no timer is set per request).
    pub(crate) timer: LazyTimer,
    /// The pause allowed while a response body waits for more bytes (the service's request timeout). Kept
    /// here, in the boxed connection, so that the response body that moves through the stack stays small.
    pub(crate) body_stall: StallWatch,
}

impl Connection {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            read_buf: BytesMut::with_capacity(HEAD_BUFFER),
            write_buf: Vec::with_capacity(1024),
            idle_since: Instant::now(),
            timer: LazyTimer::default(),
            body_stall: StallWatch::default(),
        }
    }

    /// Whether an idle connection can carry another request: idle no longer than `idle_timeout`, and nothing
    /// (neither the upstream's close nor stray bytes, such as a second response nobody asked for) waiting to be
    /// read. What tokio's reactor already reported costs no system call; a connection idle for longer than
    /// [`PEEK_AFTER_IDLE`] is also asked of the kernel, since bytes that arrived while the reactor was not
    /// polled are not reported yet. (A response the upstream sends unasked *after* the next request was written
    /// cannot be told apart from the answer by anyone; the answer it displaces is then found pending and the
    /// connection is closed.)
    pub(crate) fn is_reusable(&mut self, idle_timeout: Duration) -> bool {
        let idle = self.idle_since.elapsed();
        idle <= idle_timeout && self.stream.is_quiet() && (idle < PEEK_AFTER_IDLE || self.stream.kernel_quiet())
    }

    /// Reads more bytes into the read buffer (at least `room` bytes of space are made first).
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() - self.read_buf.len() < room / 4 {
            self.read_buf.reserve(room);
        }
        poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf)
    }
}

/// The idle connections of one endpoint. Connections are boxed once when made: checking one out, into a
/// response body, and back in moves a pointer, not the connection's state.
pub struct IdleConnections {
    queue: ArrayQueue<Box<Connection>>,
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

    /// Closes the idle connections that have been idle longer than `idle_timeout` or that the upstream closed
    /// (or wrote to unasked); keeps the others. Returns how many were closed. Requests may take and return
    /// connections meanwhile: the queue is only ever popped and pushed.
    pub fn sweep(&self, idle_timeout: Duration) -> usize {
        let mut closed = 0;
        for _ in 0..self.queue.len() {
            let Some(mut connection) = self.queue.pop() else { break };
            if connection.is_reusable(idle_timeout) {
                // Still usable; the queue has room for it again unless requests filled it meanwhile.
                let _ = self.queue.push(connection);
            } else {
                closed += 1;
            }
        }
        closed
    }

    /// How many connections are idle.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes an idle connection, if any (whether it is still usable is the taker's to ask).
    pub(crate) fn pop(&self) -> Option<Box<Connection>> {
        self.queue.pop()
    }

    pub(crate) fn checkin(&self, mut connection: Box<Connection>) {
        connection.idle_since = Instant::now();
        // A full queue drops the connection, which closes it.
        let _ = self.queue.push(connection);
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
    /// A new connection to `authority`: TCP with the connect timeout, then TLS verified against the configured
    /// roots when `https`.
    pub(crate) async fn connect(&self, authority: &Authority, https: bool) -> Result<Box<Connection>, ConnectError> {
        let host = authority.host().trim_start_matches('[').trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Io)?;
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(Box::new(Connection::new(Stream::Plain(tcp))));
        }
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| ConnectError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(ConnectError::Tls)?;
        Ok(Box::new(Connection::new(Stream::Tls(Box::new(tls)))))
    }
}
