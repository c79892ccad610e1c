//! The generic adapters, for national endpoints without an adapter of their own: with them a Dinas connects a
//! new endpoint by configuration alone.
//!
//! | name | settings | on each request |
//! |---|---|---|
//! | `passthrough` | none | nothing (the request goes as it came) |
//! | `basic` | `username`, `password` (secrets) | `Authorization: Basic …` |
//! | `api-key` | `key` (secret), `header` or `query` | the key in that header, or that query parameter |
//! | `oauth2-client-credentials` | `token_url`, `client_id`, `client_secret`, `auth` (`basic`/`body`), `scope`, `header`, `scheme` | `Authorization: Bearer <token>` (RFC 6749 §4.4) |
//!
//! Each replaces whatever the caller sent in the place its credential goes: a caller cannot choose the
//! gateway's credentials.

use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};

use crate::client::HttpClient;
use crate::encoding::{base64, form_pair};
use crate::registry::AdapterFactory;
use crate::secrets::{Secret, Secrets};
use crate::settings::Settings;
use crate::token::{ClientAuth, TokenProvider, TokenSource};
use crate::{Adapter, AdapterError, BoxFuture, OutboundRequest};

/// Sends requests unchanged: an explicit "no adapter" (useful to compare with one).
#[derive(Debug, Default, Clone, Copy)]
pub struct Passthrough;

impl Adapter for Passthrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }
    fn needs_request_body(&self) -> bool {
        false
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, _: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async { Ok(()) })
    }
}

pub(crate) struct PassthroughFactory;

impl AdapterFactory for PassthroughFactory {
    fn name(&self) -> &'static str {
        "passthrough"
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        Settings::new(settings, secrets).finish()?;
        Ok(Arc::new(Passthrough))
    }
}

/// A credential that could not be read at request time (a secret file removed or made unreadable since).
pub(crate) fn credential_unavailable(adapter: &'static str, error: &crate::SecretError) -> AdapterError {
    AdapterError::TokenUnavailable {
        adapter,
        detail: format!("a credential is unavailable: {error}"),
        retry_after: std::time::Duration::from_secs(30),
    }
}

/// A header value holding a credential: marked sensitive (HTTP/2 never indexes it).
pub(crate) fn sensitive(adapter: &'static str, value: &str) -> Result<HeaderValue, AdapterError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| AdapterError::MappingFailed {
        adapter,
        detail: "a credential cannot be written into a header".to_string(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// HTTP Basic credentials held by the gateway.
#[derive(Debug)]
pub struct Basic {
    username: Secret,
    password: Secret,
}

impl Basic {
    /// The `Authorization` value for `username` and `password` (RFC 7617).
    pub fn authorization(
        adapter: &'static str,
        username: &Secret,
        password: &Secret,
    ) -> Result<HeaderValue, AdapterError> {
        let user = username.value().map_err(|e| credential_unavailable(adapter, &e))?;
        let pass = password.value().map_err(|e| credential_unavailable(adapter, &e))?;
        let pair = format!("{}:{}", user.expose(), pass.expose());
        sensitive(adapter, &format!("Basic {}", base64(pair.as_bytes())))
    }
}

impl Adapter for Basic {
    fn name(&self) -> &'static str {
        "basic"
    }
    fn needs_request_body(&self) -> bool {
        false
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let value = Basic::authorization("basic", &self.username, &self.password)?;
            request.head.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }
    fn retry_on_unauthorized(&self) -> bool {
        true // the password may have been rotated in its file meanwhile
    }
}

pub(crate) struct BasicFactory;

impl AdapterFactory for BasicFactory {
    fn name(&self) -> &'static str {
        "basic"
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let username = s.string_or_secret("username");
        let password = s.secret("password");
        s.finish()?;
        Ok(Arc::new(Basic { username: username.expect("checked"), password: password.expect("checked") }))
    }
}

/// Where an API key goes.
#[derive(Debug)]
enum KeyPlace {
    Header(HeaderName),
    Query(String),
}

/// An API key held by the gateway, in a header or a query parameter.
#[derive(Debug)]
pub struct ApiKey {
    key: Secret,
    place: KeyPlace,
}

impl Adapter for ApiKey {
    fn name(&self) -> &'static str {
        "api-key"
    }
    fn needs_request_body(&self) -> bool {
        false
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let key = self.key.value().map_err(|e| credential_unavailable("api-key", &e))?;
            match &self.place {
                KeyPlace::Header(name) => {
                    request.head.headers.insert(name.clone(), sensitive("api-key", key.expose())?);
                }
                KeyPlace::Query(parameter) => set_query_parameter(&mut request.head.uri, parameter, key.expose())?,
            }
            Ok(())
        })
    }
    fn retry_on_unauthorized(&self) -> bool {
        true
    }
}

/// Sets query parameter `name` of `uri` to `value`, dropping any the caller sent under that name.
fn set_query_parameter(uri: &mut http::Uri, name: &str, value: &str) -> Result<(), AdapterError> {
    let mut query = String::new();
    for pair in uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or("");
        if key != name {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(pair);
        }
    }
    form_pair(&mut query, name, value);
    let path_and_query = format!("{}?{query}", uri.path());
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(path_and_query.parse().map_err(|_| AdapterError::MappingFailed {
        adapter: "api-key",
        detail: "the request target cannot carry the key".to_string(),
    })?);
    *uri = http::Uri::from_parts(parts).map_err(|_| AdapterError::MappingFailed {
        adapter: "api-key",
        detail: "the request target cannot carry the key".to_string(),
    })?;
    Ok(())
}

pub(crate) struct ApiKeyFactory;

impl AdapterFactory for ApiKeyFactory {
    fn name(&self) -> &'static str {
        "api-key"
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let key = s.secret("key");
        let header = s.optional_string("header");
        let query = s.optional_string("query");
        let place = match (header, query) {
            (Some(header), None) => match HeaderName::from_bytes(header.as_bytes()) {
                Ok(name) => Some(KeyPlace::Header(name)),
                Err(_) => {
                    s.problem(format!("[adapter.settings] `header`: `{header}` is not a header name"));
                    None
                }
            },
            (None, Some(query)) if !query.is_empty() => Some(KeyPlace::Query(query)),
            _ => {
                s.problem("[adapter.settings] set exactly one of `header` (a header name) or `query` (a parameter)");
                None
            }
        };
        s.finish()?;
        Ok(Arc::new(ApiKey { key: key.expect("checked"), place: place.expect("checked") }))
    }
}

/// Bearer tokens from an OAuth2 client-credentials token endpoint (RFC 6749 §4.4).
#[derive(Debug)]
pub struct OAuth2ClientCredentials {
    tokens: TokenProvider,
    header: HeaderName,
    scheme: String,
}

impl Adapter for OAuth2ClientCredentials {
    fn name(&self) -> &'static str {
        "oauth2-client-credentials"
    }
    fn needs_request_body(&self) -> bool {
        true // kept, to be sent again with a fresh token after a 401
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let token = self.tokens.token().await?;
            let value = if self.scheme == "Bearer" {
                token.bearer().clone()
            } else {
                sensitive(self.name(), &format!("{} {}", self.scheme, token.value()))?
            };
            request.head.headers.insert(self.header.clone(), value);
            Ok(())
        })
    }
    fn unauthorized(&self) {
        self.tokens.invalidate();
    }
    fn retry_on_unauthorized(&self) -> bool {
        true
    }
}

pub(crate) struct OAuth2Factory {
    http: HttpClient,
}

impl OAuth2Factory {
    pub(crate) fn new(http: HttpClient) -> Self {
        OAuth2Factory { http }
    }
}

/// `auth = "basic" | "body"` (default `basic`).
pub(crate) fn client_auth(s: &mut Settings<'_>) -> ClientAuth {
    match s.optional_string("auth").as_deref() {
        None | Some("basic") => ClientAuth::Basic,
        Some("body") => ClientAuth::Body,
        Some(other) => {
            s.problem(format!("[adapter.settings] `auth` is `basic` or `body`, not `{other}`"));
            ClientAuth::Basic
        }
    }
}

impl AdapterFactory for OAuth2Factory {
    fn name(&self) -> &'static str {
        "oauth2-client-credentials"
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let token_url = s.url("token_url");
        let client_id = s.string_or_secret("client_id");
        let client_secret = s.secret("client_secret");
        let auth = client_auth(&mut s);
        let scope = s.optional_string("scope");
        let header = s.optional_string("header").unwrap_or_else(|| "authorization".to_string());
        let scheme = s.optional_string("scheme").unwrap_or_else(|| "Bearer".to_string());
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| s.problem(format!("[adapter.settings] `header`: `{header}` is not a header name")))
            .ok();
        s.finish()?;
        let source = TokenSource::ClientCredentials {
            token_url: token_url.expect("checked"),
            client_id: client_id.expect("checked"),
            client_secret: client_secret.expect("checked"),
            auth,
            scope,
        };
        let tokens = TokenProvider::new(source, self.http.clone()).for_adapter("oauth2-client-credentials");
        Ok(Arc::new(OAuth2ClientCredentials { tokens, header: header.expect("checked"), scheme }))
    }
}
