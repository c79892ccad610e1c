//! Doubles of national systems, real HTTP servers on `127.0.0.1:0` that behave like the public descriptions of
//! each system.
//!
//! - [`TokenEndpoint`]: an OAuth2 token endpoint (RFC 6749 §4.4 client credentials, §4.3 password grant) like
//!   WSO2 API Manager's `/oauth2/token` (the national SPLP) or a Keycloak realm's: it checks the client's
//!   credentials (HTTP Basic or form body), issues random tokens that expire, counts its token requests, and can
//!   be made to fail or to revoke what it issued. Its [`TokenCheck`] lets an API double answer 401 to a missing,
//!   unknown, revoked or expired token.
//! - [`bearer_api`]: an API double behind such an endpoint (the SPLP's gateway): 401 without a valid
//!   `Authorization: Bearer` token, else `handler`'s answer.
//! - [`write_secret`]: a secret file as the gateway wants it (mode 0600).

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::{full, TestBody, Upstream};

/// Writes secret `name` = `value` into `dir` with mode 0600.
pub fn write_secret(dir: &Path, name: &str, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Standard Base64 (for the doubles' HTTP Basic checks).
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() { char::from(ALPHABET[((n >> shift) & 63) as usize]) } else { '=' });
        }
    }
    out
}

/// Decodes `application/x-www-form-urlencoded`.
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(hex, 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// How the double wants the client to authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// `Authorization: Basic` (WSO2's consumer key and secret).
    Basic,
    /// `client_id` / `client_secret` in the form.
    Body,
}

/// What a token endpoint double accepts and how long its tokens live.
#[derive(Clone, Debug)]
pub struct TokenEndpointSpec {
    pub client_id: String,
    pub client_secret: String,
    pub auth: ClientAuthentication,
    /// For the password grant: the user's name and password (`None`: only client credentials).
    pub user: Option<(String, String)>,
    pub lifetime: Duration,
    /// How long each answer takes (so that concurrent callers overlap).
    pub delay: Duration,
}

impl TokenEndpointSpec {
    /// WSO2-like client credentials with HTTP Basic, tokens living `lifetime`.
    pub fn client_credentials(client_id: &str, client_secret: &str, lifetime: Duration) -> Self {
        TokenEndpointSpec {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth: ClientAuthentication::Basic,
            user: None,
            lifetime,
            delay: Duration::from_millis(50),
        }
    }
}

/// The state shared by a token endpoint and the API doubles that check its tokens.
#[derive(Debug)]
struct Issued {
    spec: TokenEndpointSpec,
    tokens: Mutex<HashMap<String, Instant>>,
    fetches: AtomicUsize,
    refused: AtomicUsize,
    failing: AtomicBool,
    lifetime_ms: AtomicUsize,
}

/// An OAuth2 token endpoint double (see the module documentation).
pub struct TokenEndpoint {
    pub server: Upstream,
    issued: Arc<Issued>,
}

/// Checks bearer tokens against what a [`TokenEndpoint`] issued.
#[derive(Clone, Debug)]
pub struct TokenCheck {
    issued: Arc<Issued>,
}

impl TokenCheck {
    /// Whether `value` (`Bearer <token>`, scheme case-insensitive) is a live token.
    pub fn accepts(&self, value: Option<&http::HeaderValue>) -> bool {
        let Some(value) = value.and_then(|v| v.to_str().ok()) else { return false };
        let Some((scheme, token)) = value.split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        self.issued.tokens.lock().unwrap().get(token).is_some_and(|expires| Instant::now() < *expires)
    }
}

impl TokenEndpoint {
    /// Starts the endpoint over plain HTTP; tokens at [`TokenEndpoint::url`].
    pub async fn start(spec: TokenEndpointSpec) -> TokenEndpoint {
        TokenEndpoint::start_with_tls(spec, None).await
    }

    /// Starts the endpoint, over TLS when `tls` is given.
    pub async fn start_with_tls(spec: TokenEndpointSpec, tls: Option<Arc<rustls::ServerConfig>>) -> TokenEndpoint {
        let lifetime_ms = AtomicUsize::new(usize::try_from(spec.lifetime.as_millis()).unwrap());
        let issued = Arc::new(Issued {
            spec,
            tokens: Mutex::default(),
            fetches: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            lifetime_ms,
        });
        let state = Arc::clone(&issued);
        let server = Upstream::start_with_tls(tls, move |request: Request<Incoming>| {
            let state = Arc::clone(&state);
            async move { token_answer(&state, request).await }
        })
        .await;
        TokenEndpoint { server, issued }
    }

    /// `http://127.0.0.1:port/oauth2/token` (`https://` when started over TLS: see [`TokenEndpoint::https_url`]).
    pub fn url(&self) -> String {
        format!("{}/oauth2/token", self.server.url())
    }

    /// `https://127.0.0.1:port/oauth2/token`.
    pub fn https_url(&self) -> String {
        format!("https://{}/oauth2/token", self.server.addr)
    }

    /// Token requests answered with a token.
    pub fn fetches(&self) -> usize {
        self.issued.fetches.load(Ordering::SeqCst)
    }

    /// Token requests refused (wrong credentials or grant).
    pub fn refused(&self) -> usize {
        self.issued.refused.load(Ordering::SeqCst)
    }

    /// While `true`, every token request gets 500.
    pub fn set_failing(&self, failing: bool) {
        self.issued.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes every token issued so far invalid (as if revoked).
    pub fn revoke_all(&self) {
        self.issued.tokens.lock().unwrap().clear();
    }

    /// The lifetime of the tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        self.issued.lifetime_ms.store(usize::try_from(lifetime.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// Every token issued so far (to look for them where they must not be).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.issued.tokens.lock().unwrap().keys().cloned().collect()
    }

    /// A checker of this endpoint's tokens, for API doubles.
    pub fn check(&self) -> TokenCheck {
        TokenCheck { issued: Arc::clone(&self.issued) }
    }
}

async fn token_answer(state: &Issued, request: Request<Incoming>) -> Response<TestBody> {
    let json = |status: StatusCode, body: serde_json::Value| {
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = status;
        response.headers_mut().insert("content-type", "application/json".parse().unwrap());
        response
    };
    tokio::time::sleep(state.spec.delay).await;
    let (head, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if state.failing.load(Ordering::SeqCst) {
        return json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({"error": "server_error"}));
    }
    let form = parse_form(&body);
    let spec = &state.spec;
    let basic = format!("Basic {}", base64(format!("{}:{}", spec.client_id, spec.client_secret).as_bytes()));
    let client_ok = match spec.auth {
        ClientAuthentication::Basic => head.headers.get("authorization").is_some_and(|v| v == basic.as_str()),
        ClientAuthentication::Body => {
            form.get("client_id") == Some(&spec.client_id) && form.get("client_secret") == Some(&spec.client_secret)
        }
    };
    let grant_ok = match (form.get("grant_type").map(String::as_str), &spec.user) {
        (Some("client_credentials"), None) => true,
        (Some("password"), Some((user, password))) => {
            form.get("username") == Some(user) && form.get("password") == Some(password)
        }
        _ => false,
    };
    let form_ok = head.headers.get("content-type").is_some_and(|v| v == "application/x-www-form-urlencoded");
    if head.method != http::Method::POST || head.uri.path() != "/oauth2/token" || !form_ok || !client_ok || !grant_ok {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return json(StatusCode::UNAUTHORIZED, serde_json::json!({"error": "invalid_client"}));
    }
    let lifetime = Duration::from_millis(state.lifetime_ms.load(Ordering::SeqCst) as u64);
    let token = format!("tok{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    state.tokens.lock().unwrap().insert(token.clone(), Instant::now() + lifetime);
    state.fetches.fetch_add(1, Ordering::SeqCst);
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs_f64(),
            "scope": "default",
        }),
    )
}

/// An API double behind a token endpoint: 401 (with `WWW-Authenticate`) unless the request carries a live token
/// of `check`, else `handler`'s answer.
pub async fn bearer_api<F, Fut>(check: TokenCheck, handler: F) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    bearer_api_with_tls(None, check, handler).await
}

/// [`bearer_api`], over TLS when `tls` is given.
pub async fn bearer_api_with_tls<F, Fut>(
    tls: Option<Arc<rustls::ServerConfig>>,
    check: TokenCheck,
    handler: F,
) -> Upstream
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    Upstream::start_with_tls(tls, move |request: Request<Incoming>| {
        let (check, handler) = (check.clone(), handler.clone());
        async move {
            if check.accepts(request.headers().get("authorization")) {
                handler(request).await
            } else {
                let mut response = Response::new(full("{\"fault\":\"invalid credentials\"}"));
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response.headers_mut().insert("www-authenticate", "Bearer error=\"invalid_token\"".parse().unwrap());
                response
            }
        }
    })
    .await
}
