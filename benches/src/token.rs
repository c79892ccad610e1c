//! The token endpoint of `load --mode adapter`: a minimal OAuth2 client-credentials endpoint (`POST
//! /oauth2/token`, WSO2's path) that answers every request with a fresh bearer token living an hour, and counts
//! the requests it answered, so that the harness can show the `splp` adapter measured with a **cached** token
//! (one token request in the whole run). It runs on its own OS thread with a current-thread Tokio runtime, like
//! the harness's upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// The path tokens are asked for at.
pub const TOKEN_PATH: &str = "/oauth2/token";

/// A running token endpoint; stops (and joins its thread) when dropped.
pub struct TokenEndpoint {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TokenEndpoint {
    /// Binds `127.0.0.1:0` and starts answering on a dedicated thread.
    pub fn start() -> std::io::Result<TokenEndpoint> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("bench-token".into()).spawn(move || {
            runtime.block_on(serve(listener, counter, stopped));
        })?;
        Ok(TokenEndpoint { addr, requests, stop: Some(stop), thread: Some(thread) })
    }

    /// The token URL.
    pub fn url(&self) -> String {
        format!("http://{}{TOKEN_PATH}", self.addr)
    }

    /// Token requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, requests: Arc<AtomicUsize>, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench token endpoint: cannot register the listener: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let requests = Arc::clone(&requests);
                let service = service_fn(move |request: Request<Incoming>| {
                    let requests = Arc::clone(&requests);
                    async move {
                        let ok = request.method() == http::Method::POST && request.uri().path() == TOKEN_PATH;
                        let _ = request.into_body().collect().await;
                        let (status, body) = if ok {
                            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                            (StatusCode::OK, format!(
                                "{{\"access_token\":\"bench-token-{n}\",\"token_type\":\"Bearer\",\"expires_in\":3600}}"
                            ))
                        } else {
                            (StatusCode::NOT_FOUND, "{\"error\":\"not_found\"}".to_string())
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            _ = &mut stopped => break,
        }
    }
}
