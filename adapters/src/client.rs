//! The adapters' own small HTTP client, for token endpoints (not for the upstream call, which the gateway's
//! upstream client makes): HTTP/1.1 over TCP or TLS (the gateway's upstream roots), with a deadline per request
//! and a bound on the answer's size.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The largest answer a token endpoint may send.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a request of the adapters' client failed (no secret in it: only what happened).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("could not be reached")]
    Unreachable,
    #[error("did not answer within {0:?}")]
    Timeout(Duration),
    #[error("sent an answer larger than {MAX_ANSWER} bytes or broke it off")]
    BadAnswer,
}

/// A pooled HTTP/1.1 client (cheap to clone).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("timeout", &self.timeout).finish()
    }
}

impl HttpClient {
    /// A client verifying servers with `tls` (the gateway's upstream roots); each request gets `timeout`.
    pub fn new(tls: rustls::ClientConfig, timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        HttpClient { client, timeout }
    }

    /// Sends `request`; the answer's head and whole body.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<(http::response::Parts, Bytes), ClientError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|_| ClientError::Unreachable)?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER).collect().await.map_err(|_| ClientError::BadAnswer)?;
            Ok((head, body.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange).await.unwrap_or(Err(ClientError::Timeout(self.timeout)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client without roots (for tests against plain-HTTP doubles).
    pub(crate) fn client() -> HttpClient {
        let tls =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
        HttpClient::new(tls, Duration::from_secs(2))
    }
}
