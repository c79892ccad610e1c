//! What every console request goes through: its language, its viewer (an operator certificate, or a session
//! cookie whose operator is still enabled), the CSRF token and `Origin` of a form posted, and the security
//! headers of every answer. The admin API's routes are performed from here ([`Ctx::perform`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use penghubung_admin::dispatch::{PeerAddress, PeerCertificate};
use penghubung_admin::handlers::ReplyBody;
use penghubung_manage::Actor;
use serde_json::Value;

use crate::error::ConsoleError;
use crate::layout::Lang;
use crate::Console;

/// The session cookie.
pub const SESSION_COOKIE: &str = "penghubung_session";
/// The sign-in form's pre-session cookie (the form's CSRF token is bound to it).
pub const LOGIN_COOKIE: &str = "penghubung_login";
/// The language cookie.
pub const LANG_COOKIE: &str = "penghubung_lang";

/// The policy every answer carries: nothing but this origin's own styles, scripts, images and forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' \
                                           data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every console answer (`Cache-Control: no-store` unless an asset set its own),
/// and keeps a `?lang=` choice in the language cookie.
pub async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let chosen = axum::extract::Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|q| q.0.get("lang").map(|l| Lang::parse(l)));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    if let Some(lang) = chosen {
        headers.append(header::SET_COOKIE, lang_cookie(lang));
    }
    response
}

/// The language cookie (not `HttpOnly`: it holds no secret; `SameSite=Strict` all the same).
pub fn lang_cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_str(&format!("{LANG_COOKIE}={}; Secure; SameSite=Strict; Path=/", lang.code()))
        .unwrap_or_else(|_| HeaderValue::from_static("penghubung_lang=id; Path=/"))
}

/// How the viewer signed in.
#[derive(Clone, Debug)]
pub enum Binding {
    /// A session (its id).
    Session(String),
    /// An operator certificate (its SHA-256 fingerprint); no session.
    Certificate(String),
}

/// The operator a request comes from.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub actor: Actor,
    pub binding: Binding,
    /// The CSRF token of this viewer's forms.
    pub csrf: String,
}

/// A request's context: its language and its viewer.
pub struct Ctx {
    pub lang: Lang,
    pub viewer: Viewer,
    /// The request's path (the navigation marks it; the language switch returns to it).
    pub path: String,
    pub(crate) console: Arc<Console>,
}

/// The cookie `name` of a request.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `Secure; HttpOnly; SameSite=Strict; Path=/`, expired at once when `value` is empty.
pub fn set_cookie(name: &str, value: &str) -> HeaderValue {
    let expiry = if value.is_empty() { "; Max-Age=0" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/{expiry}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The request's query string as a map.
pub fn query(parts: &Parts) -> HashMap<String, String> {
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default()
}

/// The language: `?lang=` first, then the cookie, Indonesian by default.
pub fn lang(parts: &Parts) -> Lang {
    query(parts).get("lang").map(String::as_str).or_else(|| cookie(parts, LANG_COOKIE)).map_or(Lang::Id, Lang::parse)
}

/// The peer's IP address (unspecified when the listener did not say).
pub fn peer_ip(parts: &Parts) -> IpAddr {
    parts.extensions.get::<PeerAddress>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.ip())
}

/// The peer's address, for audit records.
pub fn peer(parts: &Parts) -> Option<std::net::SocketAddr> {
    parts.extensions.get::<PeerAddress>().map(|p| p.0)
}

/// A form's fields.
pub type Fields = Vec<(String, String)>;

/// The first value of field `name`, trimmed (`None` when absent or empty).
pub fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// The first value of field `name` as given (not trimmed), or empty.
pub fn raw_field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// A POST's `Origin`, when sent, must be this console's (`https://` + the request's `Host`).
pub fn same_origin(parts: &Parts) -> bool {
    let Some(origin) = parts.headers.get(header::ORIGIN) else { return true };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("https://{host}")),
        _ => false,
    }
}

impl Console {
    /// The viewer of a request: its operator certificate's operator, else its session's (still enabled).
    pub async fn viewer(self: &Arc<Self>, parts: &Parts) -> Result<Viewer, ConsoleError> {
        let certificate = parts.extensions.get::<PeerCertificate>().and_then(|p| p.0.clone());
        if let Some(der) = certificate {
            let manager = Arc::clone(&self.admin.manager);
            let fingerprint = penghubung_manage::stored::fingerprint(&der);
            // A certificate the operators' CA issued but no enabled operator holds falls through to a session.
            if let Ok(actor) = blocking(move || Ok(manager.authenticate_certificate(&der)?)).await {
                let binding = format!("certificate:{fingerprint}");
                return Ok(Viewer {
                    actor,
                    csrf: self.csrf.token(&binding),
                    binding: Binding::Certificate(fingerprint),
                });
            }
        }
        let id = cookie(parts, SESSION_COOKIE).ok_or(ConsoleError::SignIn)?;
        let session = self.sessions.touch(id).ok_or(ConsoleError::SignIn)?;
        let manager = Arc::clone(&self.admin.manager);
        let operator = session.operator.clone();
        let actor = match blocking(move || Ok(manager.operator_actor(&operator)?)).await {
            Ok(actor) => actor,
            Err(_) => {
                self.sessions.remove(&session.id);
                return Err(ConsoleError::SignIn);
            }
        };
        let binding = format!("session:{}", session.id);
        Ok(Viewer { actor, csrf: self.csrf.token(&binding), binding: Binding::Session(session.id) })
    }

    /// The context of a page: the viewer (or the sign-in page) and the language.
    pub async fn context(self: &Arc<Self>, parts: &Parts) -> Result<Ctx, ConsoleError> {
        let viewer = self.viewer(parts).await?;
        Ok(Ctx { lang: lang(parts), viewer, path: parts.uri.path().to_string(), console: Arc::clone(self) })
    }

    /// The context of a form posted: the viewer, then the form's `Origin` and its CSRF token.
    pub async fn form_context(
        self: &Arc<Self>,
        parts: &Parts,
        fields: &Fields,
    ) -> Result<Ctx, (Option<Ctx>, ConsoleError)> {
        let ctx = self.context(parts).await.map_err(|e| (None, e))?;
        let binding = match &ctx.viewer.binding {
            Binding::Session(id) => format!("session:{id}"),
            Binding::Certificate(fingerprint) => format!("certificate:{fingerprint}"),
        };
        if !same_origin(parts) || !self.csrf.check(&binding, field(fields, "csrf")) {
            return Err((Some(ctx), ConsoleError::Csrf));
        }
        Ok(ctx)
    }
}

impl Ctx {
    /// Performs the admin API's route `name` as the viewer; its JSON answer.
    pub async fn perform(
        &self,
        name: &'static str,
        params: Vec<(String, String)>,
        query: HashMap<String, String>,
        body: Option<Value>,
    ) -> Result<Value, ConsoleError> {
        let console = Arc::clone(&self.console);
        let actor = self.viewer.actor.clone();
        let body = body.map(|b| serde_json::to_vec(&b).unwrap_or_default()).unwrap_or_default();
        blocking(move || {
            let reply = penghubung_admin::dispatch::perform(&console.admin, &actor, name, &params, &query, &body)?;
            Ok(match reply.body {
                ReplyBody::Json(value) => value,
                _ => Value::Null,
            })
        })
        .await
    }

    /// Whether the viewer's roles allow `op` on something of `opd` (the management plane's table and scope).
    pub fn may(&self, op: penghubung_manage::Operation, opd: Option<&str>) -> bool {
        penghubung_manage::authorize(&self.viewer.actor, op, opd).is_ok()
    }
}

/// Runs store work on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ConsoleError::Unavailable(format!("the operation did not complete: {e}"))))
}

/// A redirect (303) to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `POST /language` (`lang` = `id` or `en`): sets the language cookie and goes back to the dashboard (or the
/// sign-in page). No state of the gateway changes, so no CSRF token is needed; the `Origin` is still checked.
pub async fn language(State(_console): State<Arc<Console>>, parts: Parts, Form(fields): Form<Fields>) -> Response {
    if !same_origin(&parts) {
        return crate::error::page(None, Lang::Id, ConsoleError::Csrf);
    }
    let lang = Lang::parse(field(&fields, "lang").unwrap_or("id"));
    let back = match field(&fields, "back") {
        Some(back) if back.starts_with('/') && !back.starts_with("//") => back.to_string(),
        _ => "/".to_string(),
    };
    let mut response = see_other(&back);
    response.headers_mut().append(header::SET_COOKIE, lang_cookie(lang));
    response
}

/// `host:port` of a Redis URL (never its password).
pub fn redis_address(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host = rest.split('/').next()?.split(',').next()?; // a Sentinel URL: its first sentinel
    (!host.is_empty()).then(|| if host.contains(':') { host.to_string() } else { format!("{host}:6379") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], uri: &str) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_foreign_origin_is_refused_and_none_is_allowed() {
        assert!(same_origin(&parts(&[("host", "127.0.0.1:9443")], "/x")));
        assert!(same_origin(&parts(&[("host", "127.0.0.1:9443"), ("origin", "https://127.0.0.1:9443")], "/x")));
        assert!(!same_origin(&parts(&[("host", "127.0.0.1:9443"), ("origin", "https://evil.example")], "/x")));
        assert!(!same_origin(&parts(&[("host", "127.0.0.1:9443"), ("origin", "http://127.0.0.1:9443")], "/x")));
        assert!(!same_origin(&parts(&[("host", "127.0.0.1:9443"), ("origin", "null")], "/x")));
        // HTTP/2: the authority instead of Host.
        assert!(same_origin(&parts(&[("origin", "https://127.0.0.1:9443")], "https://127.0.0.1:9443/x")));
    }

    #[test]
    fn cookies_the_language_and_redis_addresses() {
        let p = parts(&[("cookie", "a=1; penghubung_session=abc; penghubung_lang=en")], "/x");
        assert_eq!(cookie(&p, SESSION_COOKIE), Some("abc"));
        assert_eq!(lang(&p), Lang::En);
        assert_eq!(lang(&parts(&[("cookie", "penghubung_lang=en")], "/x?lang=id")), Lang::Id, "the query first");
        assert_eq!(lang(&parts(&[], "/x")), Lang::Id, "Indonesian by default");
        let set = set_cookie(SESSION_COOKIE, "abc");
        assert_eq!(set, "penghubung_session=abc; Secure; HttpOnly; SameSite=Strict; Path=/");
        assert!(set_cookie(SESSION_COOKIE, "").to_str().unwrap().ends_with("Max-Age=0"));
        assert_eq!(redis_address("redis://:geheim@10.0.0.9:6380/0").as_deref(), Some("10.0.0.9:6380"));
        assert_eq!(redis_address("redis://cache").as_deref(), Some("cache:6379"));
    }
}
