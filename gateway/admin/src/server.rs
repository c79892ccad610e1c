//! The admin listener: accepts TCP connections, completes the TLS handshake within `[admin]
//! handshake_timeout` (a certificate is requested, not required), puts the verified client certificate and the
//! peer's address on every request of the connection ([`PeerCertificate`], [`PeerAddress`]) and serves the router over HTTP/1.1 or HTTP/2, with at
//! most [`MAX_CONNECTIONS`] open. Stops accepting on shutdown and lets open requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::dispatch::{PeerAddress, PeerCertificate};
use crate::tls::AdminTls;

/// How long open admin requests may take to finish once the listener stops.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Open admin connections at most; a new one past it is closed at once (the admin plane serves a few operators).
pub const MAX_CONNECTIONS: usize = 256;

/// A request head must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The running accept loop.
pub struct Listener {
    pub address: SocketAddr,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
    connections_done: mpsc::Receiver<()>,
}

impl Listener {
    /// Starts accepting on `listener`.
    pub fn start(listener: TcpListener, tls: Arc<AdminTls>, router: Router, handshake_timeout: Duration) -> Listener {
        let address = listener.local_addr().unwrap_or_else(|_| ([127, 0, 0, 1], 0).into());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (token, connections_done) = mpsc::channel(1);
        let accept = tokio::spawn(accept_loop(listener, tls, router, handshake_timeout, shutdown_rx, token));
        Listener { address, shutdown, accept, connections_done }
    }

    /// Stops accepting and waits (at most [`SHUTDOWN_GRACE`]) for open connections.
    pub async fn shutdown(self) {
        let Listener { shutdown, accept, mut connections_done, .. } = self;
        let _ = shutdown.send(true);
        let _ = accept.await;
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, connections_done.recv()).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<AdminTls>,
    router: Router,
    handshake_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    token: mpsc::Sender<()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(target: "penghubung::admin", %peer, "admin connection refused: {MAX_CONNECTIONS} open");
                    continue;
                };
                let connection = Connection {
                    _slot: slot,
                    acceptor: tls.acceptor(),
                    router: router.clone(),
                    handshake_timeout,
                    shutdown: shutdown.clone(),
                    _token: token.clone(),
                };
                tokio::spawn(connection.serve(stream, peer));
            }
            Err(e) => {
                tracing::warn!(target: "penghubung::admin", error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One accepted connection.
struct Connection {
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    handshake_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the connection ends; the shutdown waits for every token.
    _token: mpsc::Sender<()>,
    /// One of [`MAX_CONNECTIONS`], released when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream, peer: SocketAddr) {
        let stream = match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(target: "penghubung::admin", %peer, error = %e, "admin TLS handshake refused");
                return;
            }
            Err(_) => {
                tracing::info!(target: "penghubung::admin", %peer, "admin TLS handshake timed out");
                return;
            }
        };
        let certificate = PeerCertificate(
            stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()).map(|c| Arc::from(c.as_ref())),
        );
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(certificate.clone());
            request.extensions_mut().insert(PeerAddress(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = self.shutdown.changed() => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    }
}
