//! Where an issuer's key set comes from: an HTTPS URL (verified against the upstream roots; plain HTTP only on
//! loopback, as the config allows), fetched with hyper within [`FETCH_TIMEOUT`] and at most [`MAX_JWKS_BYTES`],
//! or a local file read on each refresh.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use penghubung_tls::UpstreamTls;
use penghubung_types::config::{Config, JwtIssuerConfig};

/// A key-set fetch must complete within this.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest key set read (a JWKS holds a few keys; anything bigger is not one).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The HTTP(S) client key sets are fetched with.
pub type JwksClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A client trusting the upstream roots (`upstream.ca_files`, the system bundle).
pub fn http_client(upstream_tls: &UpstreamTls) -> JwksClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(upstream_tls.default_config().clone())
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Where one issuer's key set is read from.
pub enum JwksSource {
    /// Boxed: the client is large, and there is one source per issuer.
    Url {
        uri: http::Uri,
        client: Box<JwksClient>,
    },
    File(PathBuf),
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::Url { uri, .. } => write!(f, "{uri}"),
            JwksSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl JwksSource {
    /// The issuer's `jwks_url` or `jwks_file` (the config has checked that exactly one is set).
    pub fn from_config(settings: &JwtIssuerConfig, config: &Config, client: &JwksClient) -> Result<JwksSource, String> {
        match (&settings.jwks_url, &settings.jwks_file) {
            (Some(url), None) => match url.parse() {
                Ok(uri) => Ok(JwksSource::Url { uri, client: Box::new(client.clone()) }),
                Err(e) => Err(format!("jwt issuer `{}`: jwks_url `{url}` is not a URL: {e}", settings.name)),
            },
            (None, Some(file)) => Ok(JwksSource::File(config.resolve(file))),
            _ => Err(format!("jwt issuer `{}`: set exactly one of jwks_url and jwks_file", settings.name)),
        }
    }

    /// The key set's bytes.
    pub async fn fetch(&self) -> Result<Bytes, String> {
        match self {
            JwksSource::File(path) => {
                let data = tokio::fs::read(path).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                if data.len() > MAX_JWKS_BYTES {
                    return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display()));
                }
                Ok(data.into())
            }
            JwksSource::Url { uri, client } => {
                let request = http::Request::get(uri.clone())
                    .header(http::header::ACCEPT, "application/jwk-set+json, application/json")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let exchange = async {
                    let response = client.request(request).await.map_err(|e| format!("request failed: {e}"))?;
                    if response.status() != http::StatusCode::OK {
                        return Err(format!("answered {}", response.status()));
                    }
                    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES);
                    body.collect().await.map(|b| b.to_bytes()).map_err(|e| format!("body: {e}"))
                };
                tokio::time::timeout(FETCH_TIMEOUT, exchange)
                    .await
                    .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
            }
        }
    }
}
