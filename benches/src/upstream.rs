//! The load harness's upstream: a minimal HTTP/1.1 keep-alive server that answers every request with `200` and
//! the same fixed body (1 KiB by default), after reading the request's body if it has one. It runs on its own
//! OS thread with a current-thread Tokio runtime, so it never shares worker threads with the load generator,
//! and it does as little work per request as hyper allows: every target (direct, Penghubung, nginx, haproxy)
//! is measured against this same backend.
//!
//! Started by `cargo run -p penghubung-benches --release --bin load`; not a benchmark by itself.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// A running upstream; stops (and joins its thread) when dropped.
pub struct Upstream {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Binds `127.0.0.1:0` and starts serving `body_size` bytes per response on a dedicated thread.
    pub fn start(body_size: usize) -> std::io::Result<Upstream> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let body = Bytes::from(vec![b'x'; body_size]);
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("bench-upstream".into()).spawn(move || {
            runtime.block_on(serve(listener, body, stopped));
        })?;
        Ok(Upstream { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, body: Bytes, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench upstream: cannot register the listener: {e}");
            return;
        }
    };
    let content_type = HeaderValue::from_static("application/octet-stream");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                let content_type = content_type.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let mut response = Response::new(Full::new(body.clone()));
                    response.headers_mut().insert(CONTENT_TYPE, content_type.clone());
                    async move {
                        // A request body (`load --mode contract` POSTs) is read to its end and dropped.
                        if !hyper::body::Body::is_end_stream(request.body()) {
                            let _ = request.into_body().collect().await;
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = &mut stopped => break,
        }
    }
}
