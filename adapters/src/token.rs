//! OAuth2 token providers (RFC 6749 §4.4 client credentials, §4.3 resource owner password): the token a
//! national system asks for, fetched from its token endpoint and shared by every request.
//!
//! - **Cached, refreshed ahead of expiry:** a token is used until `refresh_at` (its lifetime less a fifth of it,
//!   at most 60 s early); between `refresh_at` and expiry one request refreshes it while the others keep using
//!   the current one.
//! - **Single-flight:** callers without a usable token wait on one fetch (100 concurrent callers on a cold cache
//!   make exactly one token request).
//! - **Invalidated after a 401** from the national system ([`TokenProvider::invalidate`]).
//! - **Backoff and circuit breaker:** after a failed fetch the endpoint is left alone for 1 s, doubling with each
//!   further failure up to 30 s; meanwhile callers get [`AdapterError::TokenUnavailable`] with the time left as
//!   `retry_after`, without calling it (or the still valid current token, if there is one).
//!
//! Neither a token nor a credential is ever logged or put into an error.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::Full;

use crate::client::HttpClient;
use crate::encoding::{base64, form_pair, form_value};
use crate::secrets::{Secret, SecretValue};
use crate::AdapterError;

/// The lifetime assumed when a token endpoint does not say (`expires_in` absent).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// The first pause after a failed fetch; doubled with each further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)` (WSO2 API Manager, most endpoints).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

/// Where and how a token is obtained.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// RFC 6749 §4.4: the gateway is the client.
    ClientCredentials {
        token_url: http::Uri,
        client_id: Secret,
        client_secret: Secret,
        auth: ClientAuth,
        scope: Option<String>,
    },
    /// RFC 6749 §4.3: a service account's user name and password (a Keycloak realm's SSO token); the client
    /// id (and secret, for a confidential client) go in the body.
    Password {
        token_url: http::Uri,
        client_id: Secret,
        client_secret: Option<Secret>,
        username: Secret,
        password: Secret,
        scope: Option<String>,
    },
}

/// An access token and its times. Cheap to clone; its value shows as `[redacted]`.
#[derive(Debug, Clone)]
pub struct Token {
    access_token: SecretValue,
    /// `Bearer <token>`, built once per token (marked sensitive).
    bearer: http::HeaderValue,
    /// `token_type` as the endpoint sent it (`Bearer` when absent).
    pub token_type: Arc<str>,
    pub expires_at: Instant,
    pub refresh_at: Instant,
}

impl Token {
    /// The access token, to put into a request header.
    pub fn value(&self) -> &str {
        self.access_token.expose()
    }

    /// `Bearer <token>` as a header value (RFC 6750 §2.1), built once per token: the `Authorization` most
    /// adapters send, without formatting per request.
    pub fn bearer(&self) -> &http::HeaderValue {
        &self.bearer
    }
}

/// A cached, single-flight, circuit-broken token source (see the module documentation).
pub struct TokenProvider {
    adapter: &'static str,
    source: TokenSource,
    http: HttpClient,
    /// Read by every request without a lock (an `ArcSwap` load), written by the one fetching caller.
    current: ArcSwapOption<Token>,
    /// Held while fetching: the single flight, and the breaker's state.
    flight: tokio::sync::Mutex<Breaker>,
    fetches: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    last_error: Option<AdapterError>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider").field("adapter", &self.adapter).field("source", &self.source).finish()
    }
}

impl TokenProvider {
    pub fn new(source: TokenSource, http: HttpClient) -> Self {
        TokenProvider {
            adapter: "token",
            source,
            http,
            current: ArcSwapOption::const_empty(),
            flight: tokio::sync::Mutex::new(Breaker::default()),
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Names the adapter in this provider's errors.
    pub fn for_adapter(mut self, adapter: &'static str) -> Self {
        self.adapter = adapter;
        self
    }

    /// How many token requests this provider has made.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A usable token: the cached one, or a fresh one (see the module documentation).
    pub async fn token(&self) -> Result<Arc<Token>, AdapterError> {
        let now = Instant::now();
        let cached = self.cached();
        match &cached {
            Some(token) if now < token.refresh_at => return Ok(token.clone()),
            // Due for refresh but still valid: one caller refreshes, the others go on with it.
            Some(token) if now < token.expires_at => {
                return match self.flight.try_lock() {
                    Ok(mut breaker) => Ok(self.refresh(&mut breaker).await.unwrap_or_else(|_| token.clone())),
                    Err(_) => Ok(token.clone()),
                };
            }
            _ => {}
        }
        let mut breaker = self.flight.lock().await;
        self.refresh(&mut breaker).await
    }

    /// Drops the cached token (the national system answered 401 with it).
    pub fn invalidate(&self) {
        self.current.store(None);
    }

    fn cached(&self) -> Option<Arc<Token>> {
        self.current.load_full()
    }

    /// Under the flight lock: the token another caller fetched meanwhile, or a fetch unless the breaker is open.
    async fn refresh(&self, breaker: &mut Breaker) -> Result<Arc<Token>, AdapterError> {
        let now = Instant::now();
        let cached = self.cached();
        if let Some(token) = cached.as_ref().filter(|t| now < t.refresh_at) {
            return Ok(token.clone());
        }
        let valid = cached.filter(|t| now < t.expires_at);
        if let Some(until) = breaker.open_until.filter(|until| now < *until) {
            return match valid {
                Some(token) => Ok(token),
                None => Err(self.unavailable(breaker.last_error.as_ref(), until - now)),
            };
        }
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch().await {
            Ok(token) => {
                *breaker = Breaker::default();
                let token = Arc::new(token);
                self.current.store(Some(token.clone()));
                Ok(token)
            }
            Err(error) => {
                let backoff = FIRST_BACKOFF.saturating_mul(1 << breaker.failures.min(5)).min(MAX_BACKOFF);
                breaker.failures = breaker.failures.saturating_add(1);
                breaker.open_until = Some(Instant::now() + backoff);
                tracing::warn!(adapter = self.adapter, failures = breaker.failures, backoff_s = backoff.as_secs(), error = %error, "token request failed");
                breaker.last_error = Some(error);
                match valid {
                    Some(token) => Ok(token),
                    None => Err(self.unavailable(breaker.last_error.as_ref(), backoff)),
                }
            }
        }
    }

    /// The error to answer while no token can be had: the last failure's kind, with `retry_after`.
    fn unavailable(&self, last: Option<&AdapterError>, retry_after: Duration) -> AdapterError {
        match last {
            Some(AdapterError::UpstreamRefused { adapter, detail }) => {
                AdapterError::UpstreamRefused { adapter, detail: detail.clone() }
            }
            Some(AdapterError::TokenUnavailable { detail, .. }) => {
                AdapterError::TokenUnavailable { adapter: self.adapter, detail: detail.clone(), retry_after }
            }
            _ => AdapterError::TokenUnavailable {
                adapter: self.adapter,
                detail: "the token endpoint is failing".to_string(),
                retry_after,
            },
        }
    }

    /// One token request.
    async fn fetch(&self) -> Result<Token, AdapterError> {
        let adapter = self.adapter;
        let unavailable =
            |detail: String| AdapterError::TokenUnavailable { adapter, detail, retry_after: FIRST_BACKOFF };
        let secret = |s: &Secret| s.value().map_err(|e| unavailable(e.to_string()));
        let mut form = String::new();
        let mut basic = None;
        let token_url = match &self.source {
            TokenSource::ClientCredentials { token_url, client_id, client_secret, auth, scope } => {
                form_pair(&mut form, "grant_type", "client_credentials");
                let (id, secret_value) = (secret(client_id)?, secret(client_secret)?);
                match auth {
                    ClientAuth::Basic => basic = Some((id, secret_value)),
                    ClientAuth::Body => {
                        form_pair(&mut form, "client_id", id.expose());
                        form_pair(&mut form, "client_secret", secret_value.expose());
                    }
                }
                if let Some(scope) = scope {
                    form_pair(&mut form, "scope", scope);
                }
                token_url
            }
            TokenSource::Password { token_url, client_id, client_secret, username, password, scope } => {
                form_pair(&mut form, "grant_type", "password");
                form_pair(&mut form, "client_id", secret(client_id)?.expose());
                if let Some(client_secret) = client_secret {
                    form_pair(&mut form, "client_secret", secret(client_secret)?.expose());
                }
                form_pair(&mut form, "username", secret(username)?.expose());
                form_pair(&mut form, "password", secret(password)?.expose());
                if let Some(scope) = scope {
                    form_pair(&mut form, "scope", scope);
                }
                token_url
            }
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if let Some((id, secret_value)) = basic {
            let pair = format!("{}:{}", form_value(id.expose()), form_value(secret_value.expose()));
            request = request.header(AUTHORIZATION, format!("Basic {}", base64(pair.as_bytes())));
        }
        let request = request
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| unavailable("the token request could not be built".to_string()))?;
        let sent = Instant::now();
        let (head, body) = self.http.send(request).await.map_err(|e| unavailable(format!("the token endpoint {e}")))?;
        match head.status {
            StatusCode::OK => {}
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(AdapterError::UpstreamRefused {
                    adapter,
                    detail: format!("the token endpoint refused the gateway's client credentials ({})", head.status),
                })
            }
            status => return Err(unavailable(format!("the token endpoint answered {status}"))),
        }
        parse_token(&body, sent).ok_or_else(|| unavailable("the token endpoint's answer holds no access token".into()))
    }
}

/// A token endpoint's JSON answer (RFC 6749 §5.1) as a [`Token`], its times counted from `sent`.
fn parse_token(body: &[u8], sent: Instant) -> Option<Token> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let access_token = json.get("access_token")?.as_str().filter(|t| !t.is_empty())?;
    let token_type = json.get("token_type").and_then(|t| t.as_str()).unwrap_or("Bearer");
    let lifetime = match json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_f64().map(Duration::from_secs_f64),
        Some(serde_json::Value::String(s)) => s.parse::<u64>().ok().map(Duration::from_secs),
        _ => None,
    }
    .filter(|d| !d.is_zero())
    .unwrap_or(DEFAULT_LIFETIME);
    let early = (lifetime / 5).min(Duration::from_secs(60));
    let mut bearer = http::HeaderValue::from_str(&format!("Bearer {access_token}")).ok()?;
    bearer.set_sensitive(true);
    Some(Token {
        access_token: SecretValue::new(access_token),
        bearer,
        token_type: token_type.into(),
        expires_at: sent + lifetime,
        refresh_at: sent + lifetime - early,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_refreshed_a_fifth_of_its_life_early_at_most_a_minute() {
        let sent = Instant::now();
        let token = parse_token(br#"{"access_token":"abc","token_type":"Bearer","expires_in":3600}"#, sent).unwrap();
        assert_eq!(token.value(), "abc");
        assert_eq!(token.bearer(), "Bearer abc");
        assert!(token.bearer().is_sensitive());
        assert_eq!(token.expires_at - sent, Duration::from_secs(3600));
        assert_eq!(token.expires_at - token.refresh_at, Duration::from_secs(60));
        let short = parse_token(br#"{"access_token":"abc","expires_in":"10"}"#, sent).unwrap();
        assert_eq!(short.expires_at - short.refresh_at, Duration::from_secs(2));
        let unsaid = parse_token(br#"{"access_token":"abc"}"#, sent).unwrap();
        assert_eq!(unsaid.expires_at - sent, DEFAULT_LIFETIME);
        assert!(format!("{unsaid:?}").contains("[redacted]") && !format!("{unsaid:?}").contains("abc"));
        for bad in [&b"{}"[..], br#"{"access_token":""}"#, b"not json", br#"{"access_token":"a\nb"}"#] {
            assert!(parse_token(bad, sent).is_none());
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_opens_the_breaker() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let source = TokenSource::ClientCredentials {
            token_url: format!("http://127.0.0.1:{port}/oauth2/token").parse().unwrap(),
            client_id: Secret::literal("id"),
            client_secret: Secret::literal("secret"),
            auth: ClientAuth::Basic,
            scope: None,
        };
        let provider = TokenProvider::new(source, crate::client::tests::client()).for_adapter("test");
        let first = provider.token().await.unwrap_err();
        assert!(
            matches!(first, AdapterError::TokenUnavailable { adapter: "test", retry_after, .. } if retry_after == FIRST_BACKOFF),
            "{first:?}"
        );
        let second = provider.token().await.unwrap_err();
        assert!(matches!(second, AdapterError::TokenUnavailable { retry_after, .. } if retry_after <= FIRST_BACKOFF));
        assert_eq!(provider.fetches(), 1, "the open breaker answers without calling");
        assert!(!first.to_string().contains("secret"));
    }
}
