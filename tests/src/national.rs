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
//! - [`TokenServer`]: a token endpoint at a path of its own, for a Keycloak realm's password grant with a public
//!   client (`client_id` in the form only, `invalid_grant` for a wrong user) beside WSO2's client credentials;
//!   [`IssuedTokens`] checks what it issued.
//! - [`DukcapilDouble`]: Dukcapil's NIK web service (`CALL_NIK`, `CALL_VERIFY_BY_ELEMEN`), checking the operator
//!   credentials in every body and answering under `content[0]`.
//! - [`BknDouble`]: BKN's SIASN API, 401 unless both the API manager's and the SSO's tokens are live.
//! - [`BsreDouble`]: BSrE's e-sign client service, HTTP Basic and a `multipart/form-data` upload
//!   ([`multipart_body`], [`parse_multipart`]).

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

// ---------------------------------------------------------------------------------------------------------
// Dukcapil, BKN SIASN, BSrE and their token endpoints.
// ---------------------------------------------------------------------------------------------------------

use bytes::Bytes;
use http::{HeaderMap, Method};

/// How a client proves itself at a [`TokenServer`] (RFC 6749).
#[derive(Clone, Debug)]
pub enum TokenGrant {
    /// §4.4 client credentials, the client authenticated by HTTP Basic or by `client_id`/`client_secret` in the
    /// form (§2.3.1); WSO2 API Manager (the SPLP, BKN's API gateway) issues its tokens this way.
    ClientCredentials { client_id: String, client_secret: String },
    /// §4.3 resource owner password credentials, as a Keycloak realm issues them (`client_id` in the form, the
    /// client secret optional): BKN's SSO.
    Password { client_id: String, username: String, password: String },
}

/// The tokens a [`TokenServer`] issued and when each expires; shared with the API doubles that check them.
#[derive(Clone)]
pub struct IssuedTokens {
    state: Arc<TokenState>,
}

struct TokenState {
    prefix: &'static str,
    grant: TokenGrant,
    lifetime: Mutex<Duration>,
    issued: Mutex<Vec<(String, Instant)>>,
    requests: AtomicUsize,
    down: AtomicBool,
}

impl IssuedTokens {
    /// Whether `token` was issued here and has not expired (nor been expired by [`TokenServer::expire_all`]).
    pub fn is_valid(&self, token: &str) -> bool {
        let now = Instant::now();
        self.state.issued.lock().unwrap().iter().any(|(t, expires)| t == token && *expires > now)
    }
}

/// An OAuth2 token endpoint (`POST {url}` with an `application/x-www-form-urlencoded` body) that issues opaque
/// bearer tokens living `lifetime` (`expires_in` in whole seconds, at least 1), answers a wrong client or user
/// with 401 (`invalid_client`, Keycloak's `invalid_grant`), and counts the requests it answered.
pub struct TokenServer {
    pub upstream: Upstream,
    path: &'static str,
    check: IssuedTokens,
}

impl TokenServer {
    /// A WSO2-like endpoint at `/oauth2/token` (the SPLP's and BKN's API manager).
    pub async fn client_credentials(prefix: &'static str, client_id: &str, secret: &str, lifetime: Duration) -> Self {
        let grant = TokenGrant::ClientCredentials { client_id: client_id.into(), client_secret: secret.into() };
        Self::start(prefix, "/oauth2/token", grant, lifetime).await
    }

    /// A Keycloak-like realm endpoint (`/auth/realms/{realm}/protocol/openid-connect/token`) for the password
    /// grant.
    pub async fn keycloak_password(
        prefix: &'static str,
        realm: &str,
        (client_id, username, password): (&str, &str, &str),
        lifetime: Duration,
    ) -> Self {
        let grant =
            TokenGrant::Password { client_id: client_id.into(), username: username.into(), password: password.into() };
        let path: &'static str = Box::leak(format!("/auth/realms/{realm}/protocol/openid-connect/token").into());
        Self::start(prefix, path, grant, lifetime).await
    }

    /// Starts an endpoint for `grant` at `path`.
    pub async fn start(prefix: &'static str, path: &'static str, grant: TokenGrant, lifetime: Duration) -> Self {
        let state = Arc::new(TokenState {
            prefix,
            grant,
            lifetime: Mutex::new(lifetime),
            issued: Mutex::new(Vec::new()),
            requests: AtomicUsize::new(0),
            down: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let upstream = Upstream::start(move |req: Request<Incoming>| {
            let state = Arc::clone(&shared);
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                realm_token_answer(&state, path, &parts.method, parts.uri.path(), &parts.headers, &body)
            }
        })
        .await;
        TokenServer { upstream, path, check: IssuedTokens { state } }
    }

    /// The token URL.
    pub fn url(&self) -> String {
        format!("{}{}", self.upstream.url(), self.path)
    }

    /// What API doubles check tokens against.
    pub fn check(&self) -> IssuedTokens {
        self.check.clone()
    }

    /// Token requests answered with a token.
    pub fn issued(&self) -> usize {
        self.check.state.requests.load(Ordering::SeqCst)
    }

    /// Expires every token issued so far (the APIs answer 401 to them from now on).
    pub fn expire_all(&self) {
        let past = Instant::now();
        for (_, expires) in self.check.state.issued.lock().unwrap().iter_mut() {
            *expires = past;
        }
    }

    /// The lifetime of tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        *self.check.state.lifetime.lock().unwrap() = lifetime;
    }

    /// While down, every request is answered 503 (an endpoint under maintenance).
    pub fn set_down(&self, down: bool) {
        self.check.state.down.store(down, Ordering::SeqCst);
    }
}

fn realm_token_answer(
    state: &TokenState,
    token_path: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<TestBody> {
    if state.down.load(Ordering::SeqCst) {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"error": "temporarily_unavailable"}),
        );
    }
    if path != token_path {
        return json_response(StatusCode::NOT_FOUND, &serde_json::json!({"error": "not_found"}));
    }
    if method != Method::POST || !content_type_is(headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let form = parse_form(body);
    let field = |name: &str| form.get(name).map(String::as_str);
    let authorised = match &state.grant {
        TokenGrant::ClientCredentials { client_id, client_secret } => {
            if field("grant_type") != Some("client_credentials") {
                return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
            }
            let presented = basic_credentials(headers)
                .or_else(|| Some((field("client_id")?.to_string(), field("client_secret")?.to_string())));
            presented.is_some_and(|(id, secret)| id == *client_id && secret == *client_secret)
        }
        TokenGrant::Password { client_id, username, password } => {
            if field("grant_type") != Some("password") {
                return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
            }
            if field("client_id") != Some(client_id.as_str()) {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            field("username") == Some(username.as_str()) && field("password") == Some(password.as_str())
        }
    };
    if !authorised {
        let code = if matches!(state.grant, TokenGrant::Password { .. }) { "invalid_grant" } else { "invalid_client" };
        return oauth_error(StatusCode::UNAUTHORIZED, code);
    }
    let n = state.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let lifetime = *state.lifetime.lock().unwrap();
    let token = format!("{}-{n}-{}", state.prefix, fastrand::u64(..));
    state.issued.lock().unwrap().push((token.clone(), Instant::now() + lifetime));
    json_response(
        StatusCode::OK,
        &serde_json::json!({"access_token": token, "token_type": "Bearer",
            "expires_in": lifetime.as_secs().max(1), "scope": "default"}),
    )
}

fn oauth_error(status: StatusCode, code: &str) -> Response<TestBody> {
    let mut response = json_response(status, &serde_json::json!({"error": code}));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Basic"));
    }
    response
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<TestBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// The bearer token of `Authorization: Bearer …` (or of another header in the same form, like BKN's `Auth`).
pub fn bearer(headers: &HeaderMap, header: &str) -> Option<String> {
    let value = headers.get(header)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// The user and password of `Authorization: Basic …`.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Decodes standard Base64 (RFC 4648 §4).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let text = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        acc = acc << 6 | u32::from(value(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The operator credentials the Dukcapil double expects in every request body.
#[derive(Clone, Debug)]
pub struct DukcapilCredentials {
    pub user_id: String,
    pub password: String,
    pub ip_user: String,
}

/// The path of Dukcapil's NIK lookup for the institution `LAMTIM` (`/dukcapil/get_json/{instansi}/CALL_NIK`).
pub const DUKCAPIL_CALL_NIK: &str = "/dukcapil/get_json/LAMTIM/CALL_NIK";
/// The path of Dukcapil's verification by elements (each field answered `Sesuai (…)` or `Tidak Sesuai (…)`).
pub const DUKCAPIL_VERIFY: &str = "/dukcapil/get_json/LAMTIM/CALL_VERIFY_BY_ELEMEN";
/// The `RESPON` of a body without the right operator credentials.
pub const DUKCAPIL_REFUSED: &str = "User ID atau Password salah";

/// Fictitious residents the Dukcapil double knows, as Dukcapil spells its fields.
pub fn dukcapil_residents() -> Vec<serde_json::Value> {
    vec![
        serde_json::json!({"NIK": "1807015508900002", "NO_KK": "1807010101200001", "NAMA_LGKP": "SITI AMINAH",
            "TMPT_LHR": "SUKADANA", "TGL_LHR": "15-08-1990", "JENIS_KLMIN": "Perempuan", "AGAMA": "ISLAM",
            "STATUS_KAWIN": "KAWIN", "JENIS_PKRJN": "WIRASWASTA", "NAMA_LGKP_IBU": "FATIMAH",
            "ALAMAT": "DESA SUKADANA", "NO_RT": "2", "NO_RW": "1", "KEL_NAME": "SUKADANA", "KEC_NAME": "SUKADANA",
            "KAB_NAME": "LAMPUNG TIMUR", "PROP_NAME": "LAMPUNG"}),
        serde_json::json!({"NIK": "1807011203850001", "NO_KK": "1807010101200001", "NAMA_LGKP": "BUDI SANTOSO",
            "TMPT_LHR": "METRO", "TGL_LHR": "12-03-1985", "JENIS_KLMIN": "Laki-laki", "AGAMA": "ISLAM",
            "STATUS_KAWIN": "KAWIN", "JENIS_PKRJN": "PETANI/PEKEBUN", "NAMA_LGKP_IBU": "AMINAH",
            "ALAMAT": "DESA PASAR SUKADANA", "NO_RT": "3", "NO_RW": "1", "KEL_NAME": "PASAR SUKADANA",
            "KEC_NAME": "SUKADANA", "KAB_NAME": "LAMPUNG TIMUR", "PROP_NAME": "LAMPUNG"}),
    ]
}

/// Dukcapil's web service for NIK verification: JSON `POST`s to `/dukcapil/get_json/{instansi}/CALL_NIK` (by
/// `NIK`) and `…/CALL_VERIFY_BY_ELEMEN` (`NIK` and the elements to compare), each body carrying the operator's
/// `user_id`, `password` and `IP_USER`; the answer is a page whose `content[0]` holds the record, the
/// verification, or a `RESPON` message (wrong credentials, NIK not found), always with status 200.
pub struct DukcapilDouble {
    pub upstream: Upstream,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl DukcapilDouble {
    pub async fn start(credentials: DukcapilCredentials) -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        let upstream = Upstream::start(move |req: Request<Incoming>| {
            let (credentials, seen) = (credentials.clone(), Arc::clone(&seen));
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                dukcapil_answer(&credentials, &seen, &parts.method, parts.uri.path(), &parts.headers, &body)
            }
        })
        .await;
        DukcapilDouble { upstream, bodies }
    }

    pub fn url(&self) -> String {
        self.upstream.url()
    }

    /// The JSON bodies received, in order.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }
}

fn dukcapil_page(content: Vec<serde_json::Value>) -> Response<TestBody> {
    let n = content.len();
    json_response(
        StatusCode::OK,
        &serde_json::json!({"content": content, "lastPage": true, "numberOfElements": n, "sort": null,
            "totalElements": n, "firstPage": true, "number": 0, "size": n}),
    )
}

fn dukcapil_answer(
    credentials: &DukcapilCredentials,
    seen: &Mutex<Vec<serde_json::Value>>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<TestBody> {
    if method != Method::POST || !content_type_is(headers, "application/json") {
        return json_response(StatusCode::METHOD_NOT_ALLOWED, &serde_json::json!({"message": "POST JSON only"}));
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return json_response(StatusCode::BAD_REQUEST, &serde_json::json!({"message": "JSON tidak valid"}));
    };
    seen.lock().unwrap().push(request.clone());
    let text = |name: &str| request.get(name).and_then(|v| v.as_str());
    if text("user_id") != Some(credentials.user_id.as_str())
        || text("password") != Some(credentials.password.as_str())
        || text("IP_USER") != Some(credentials.ip_user.as_str())
    {
        return dukcapil_page(vec![serde_json::json!({"RESPON": DUKCAPIL_REFUSED})]);
    }
    let residents = dukcapil_residents();
    let Some(resident) = text("NIK").and_then(|nik| residents.iter().find(|r| r["NIK"] == nik)) else {
        return dukcapil_page(vec![serde_json::json!({"RESPON": "Data Tidak Ditemukan"})]);
    };
    if path.ends_with("/CALL_NIK") {
        return dukcapil_page(vec![resident.clone()]);
    }
    if path.ends_with("/CALL_VERIFY_BY_ELEMEN") {
        let threshold = text("TRESHOLD").and_then(|t| t.parse::<u32>().ok()).unwrap_or(90);
        let mut answer = serde_json::Map::new();
        answer.insert("NIK".into(), "Sesuai".into());
        for (field, given) in request.as_object().into_iter().flatten() {
            let (Some(given), Some(known)) = (given.as_str(), resident.get(field).and_then(|v| v.as_str())) else {
                continue;
            };
            if matches!(field.as_str(), "NIK" | "user_id" | "password" | "IP_USER" | "TRESHOLD") {
                continue;
            }
            let score = if given.eq_ignore_ascii_case(known) { 100 } else { 0 };
            let verdict = if score >= threshold { "Sesuai" } else { "Tidak Sesuai" };
            answer.insert(field.clone(), format!("{verdict} ({score})").into());
        }
        return dukcapil_page(vec![serde_json::Value::Object(answer)]);
    }
    json_response(StatusCode::NOT_FOUND, &serde_json::json!({"message": "layanan tidak ada"}))
}

/// The path prefix of BKN's SIASN API behind its API manager.
pub const BKN_API: &str = "/apisiasn/1.0";
/// A fictitious civil servant the BKN double knows.
pub const BKN_NIP: &str = "198507122010011002";

/// BKN's SIASN API as its public integration guide describes it: every call needs an API-manager token from the
/// OAuth2 client-credentials endpoint in `Authorization: Bearer …` **and** an SSO token from the Keycloak realm
/// (password grant) in `Auth: bearer …`; a missing or expired token of either kind is answered 401. `GET
/// /apisiasn/1.0/pns/data-utama/{nip}` answers the civil servant's main record.
pub struct BknDouble {
    pub upstream: Upstream,
    refused: Arc<AtomicUsize>,
}

impl BknDouble {
    pub async fn start(apim: IssuedTokens, sso: IssuedTokens) -> Self {
        let refused = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&refused);
        let upstream = Upstream::start(move |req: Request<Incoming>| {
            let (apim, sso, count) = (apim.clone(), sso.clone(), Arc::clone(&count));
            async move {
                let api_token = bearer(req.headers(), "authorization");
                if !api_token.is_some_and(|t| apim.is_valid(&t)) {
                    count.fetch_add(1, Ordering::SeqCst);
                    return json_response(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({"code": "900901", "message": "Invalid Credentials",
                            "description": "Invalid Credentials. Make sure you have provided the correct security credentials"}),
                    );
                }
                let sso_token = bearer(req.headers(), "auth");
                if !sso_token.is_some_and(|t| sso.is_valid(&t)) {
                    count.fetch_add(1, Ordering::SeqCst);
                    return json_response(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({"success": false, "message": "Token SSO tidak valid atau kedaluwarsa"}),
                    );
                }
                let path = req.uri().path().to_string();
                match path.strip_prefix(&format!("{BKN_API}/pns/data-utama/")) {
                    Some(BKN_NIP) if req.method() == Method::GET => json_response(
                        StatusCode::OK,
                        &serde_json::json!({"success": true, "mapData": null, "message": "success", "data": {
                            "id": "A8ACA7397AEB3912E040640A040269BB", "nipBaru": BKN_NIP, "nama": "AHMAD FAUZI",
                            "gelarDepan": "", "gelarBelakang": "S.Kom", "tempatLahir": "METRO",
                            "tglLahir": "12-07-1985", "jenisKelamin": "M", "golRuangAkhir": "III/c",
                            "jabatanNama": "Pranata Komputer Ahli Muda", "unorNama": "Dinas Komunikasi dan Informatika",
                            "instansiIndukNama": "Pemerintah Kab. Lampung Timur", "nik": "1807011207850003"}}),
                    ),
                    Some(_) => json_response(
                        StatusCode::NOT_FOUND,
                        &serde_json::json!({"success": false, "message": "Data tidak ditemukan"}),
                    ),
                    None => json_response(StatusCode::NOT_FOUND, &serde_json::json!({"message": "not found"})),
                }
            }
        })
        .await;
        BknDouble { upstream, refused }
    }

    pub fn url(&self) -> String {
        self.upstream.url()
    }

    /// Requests answered 401 (a token missing, unknown or expired).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Bytes,
}

/// A `multipart/form-data` body (RFC 7578) of `parts` with `boundary`.
pub fn multipart_body(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, filename, data) in parts {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(filename) = filename {
            out.extend_from_slice(format!("; filename=\"{filename}\"\r\nContent-Type: application/pdf").as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The parts of a `multipart/form-data` body, or why it is not one.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let (kind, params) = content_type.split_once(';').ok_or("no boundary")?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("not multipart/form-data: {kind}"));
    }
    let boundary = params
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or("no boundary")?;
    let delimiter = format!("--{boundary}");
    let find = |haystack: &[u8], from: usize, needle: &[u8]| {
        haystack[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, 0, delimiter.as_bytes()).ok_or("no first boundary")? + delimiter.len();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at += 2; // CRLF after the boundary
        let head_end = find(body, at, b"\r\n\r\n").ok_or("a part without a head")?;
        let head = String::from_utf8_lossy(&body[at..head_end]).into_owned();
        let data_start = head_end + 4;
        let next = find(body, data_start, format!("\r\n{delimiter}").as_bytes()).ok_or("no closing boundary")?;
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("a part without Content-Disposition")?;
        let param = |key: &str| {
            disposition
                .split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")).map(|v| v.trim_end_matches('"').to_string()))
        };
        parts.push(Part {
            name: param("name").ok_or("a part without a name")?,
            filename: param("filename"),
            data: Bytes::copy_from_slice(&body[data_start..next]),
        });
        at = next + 2 + delimiter.len();
    }
}

/// The signer the BSrE double knows: NIK and passphrase (fictitious).
pub const BSRE_SIGNER: (&str, &str) = ("1807015508900002", "rahasia-penanda-tangan");
/// What the BSrE double puts before the file it "signs".
pub const BSRE_SIGNED_MARK: &[u8] = b"%BSrE-signed\n";

/// BSrE's e-signature client service (esign-client-service): `POST /api/sign/pdf` with HTTP Basic (the
/// institution's account) and a `multipart/form-data` body of `file` (the PDF), `nik`, `passphrase` and the
/// display options (`tampilan` = `invisible` | `visible`, `image`, `page`, `xAxis`, …); answers the signed PDF
/// (`application/pdf`, with an `id_dokumen` header), 400 with a JSON `error` for a wrong passphrase or unknown
/// signer, 401 without the account's credentials. `GET /api/user/status/{nik}` answers a signer's status.
pub struct BsreDouble {
    pub upstream: Upstream,
    signed: Arc<Mutex<Vec<Vec<String>>>>,
}

impl BsreDouble {
    pub async fn start(user: &str, password: &str) -> Self {
        let account = (user.to_string(), password.to_string());
        let signed = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&signed);
        let upstream = Upstream::start(move |req: Request<Incoming>| {
            let (account, log) = (account.clone(), Arc::clone(&log));
            async move {
                let (parts, body) = req.into_parts();
                if basic_credentials(&parts.headers).as_ref() != Some(&account) {
                    let mut response = json_response(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({"error": "Unauthorized", "status_code": 401}),
                    );
                    response.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Basic realm=\"esign\""),
                    );
                    return response;
                }
                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                bsre_answer(&log, &parts.method, parts.uri.path(), &parts.headers, &body)
            }
        })
        .await;
        BsreDouble { upstream, signed }
    }

    pub fn url(&self) -> String {
        self.upstream.url()
    }

    /// For each document signed, the names of the parts it came with, in order.
    pub fn signed(&self) -> Vec<Vec<String>> {
        self.signed.lock().unwrap().clone()
    }
}

fn bsre_answer(
    log: &Mutex<Vec<Vec<String>>>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<TestBody> {
    let error = |status: StatusCode, message: &str, code: u32| {
        json_response(status, &serde_json::json!({"error": message, "status_code": code}))
    };
    if let Some(nik) = path.strip_prefix("/api/user/status/").filter(|_| method == Method::GET) {
        return if nik == BSRE_SIGNER.0 {
            json_response(
                StatusCode::OK,
                &serde_json::json!({"status_code": 1111, "message": "Pengguna terdaftar", "status": "ISSUE"}),
            )
        } else {
            error(StatusCode::BAD_REQUEST, "Pengguna tidak terdaftar", 1110)
        };
    }
    if path != "/api/sign/pdf" || method != Method::POST {
        return error(StatusCode::NOT_FOUND, "Not Found", 404);
    }
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let parts = match parse_multipart(content_type, body) {
        Ok(parts) => parts,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Format permintaan salah: {e}"), 2000),
    };
    let part = |name: &str| parts.iter().find(|p| p.name == name);
    let text = |name: &str| part(name).map(|p| String::from_utf8_lossy(&p.data).into_owned());
    let Some(file) = part("file").filter(|f| f.filename.is_some() && !f.data.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "Dokumen tidak ditemukan", 2021);
    };
    if !matches!(text("tampilan").as_deref(), Some("invisible" | "visible")) {
        return error(StatusCode::BAD_REQUEST, "Parameter tampilan salah", 2022);
    }
    if text("nik").as_deref() != Some(BSRE_SIGNER.0) {
        return error(StatusCode::BAD_REQUEST, "Pengguna tidak terdaftar", 1110);
    }
    if text("passphrase").as_deref() != Some(BSRE_SIGNER.1) {
        return error(StatusCode::BAD_REQUEST, "Passphrase anda salah", 2031);
    }
    log.lock().unwrap().push(parts.iter().map(|p| p.name.clone()).collect());
    let mut signed = BSRE_SIGNED_MARK.to_vec();
    signed.extend_from_slice(&file.data);
    let mut response = Response::new(full(signed));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/pdf"));
    response.headers_mut().insert("id_dokumen", http::HeaderValue::from_static("a1b2c3d4"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decoding_matches_rfc4648_vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn multipart_parses_what_it_builds() {
        let body = multipart_body("b0undary", &[("file", Some("a.pdf"), b"%PDF-1.4 x\r\n"), ("nik", None, b"123")]);
        let parts = parse_multipart("multipart/form-data; boundary=b0undary", &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name.as_str(), parts[0].filename.as_deref()), ("file", Some("a.pdf")));
        assert_eq!(&parts[0].data[..], b"%PDF-1.4 x\r\n");
        assert_eq!((parts[1].name.as_str(), &parts[1].data[..]), ("nik", &b"123"[..]));
        assert!(parse_multipart("application/json", &body).is_err());
    }
}
