//! The HTTPS client of the admin API that every management command uses: the operator's connection settings
//! (admin URL, the CA that signed the admin listener's certificate, the operator's certificate and key), found
//! like kubectl finds its kubeconfig, and one request at a time over TLS 1.2+ with the operator's client
//! certificate. Answers are JSON; an error answer (problem+json) becomes an [`AdminError`] that names its
//! stable `code` and lists every reason.
//!
//! Where each setting comes from, first found wins:
//! 1. the flags `--admin-url`, `--cacert`, `--operator-cert`, `--operator-key`;
//! 2. the environment: `PENGHUBUNG_ADMIN_URL`, `PENGHUBUNG_CACERT`, `PENGHUBUNG_OPERATOR_CERT`,
//!    `PENGHUBUNG_OPERATOR_KEY`;
//! 3. `--config penghubung.toml`, for the admin URL (`[admin] listen`) and the CA (the first `tls.client_ca_files`);
//! 4. the operator profile (`--profile FILE`, `PENGHUBUNG_PROFILE`, or `~/.config/penghubung/operator.toml`),
//!    which `penghubung init` writes: `admin_url`, `cacert`, `operator_cert`, `operator_key` (paths relative to
//!    the profile's folder);
//! 5. the admin URL defaults to `https://127.0.0.1:9443`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use penghubung_types::config::Config;

/// Where the admin listener answers when nothing says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "https://127.0.0.1:9443";

/// The operator profile's default place, under the home directory.
pub const DEFAULT_PROFILE: &str = ".config/penghubung/operator.toml";

/// How a management command reaches the admin API, as the operator gave it (see the module doc).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// The admin API, e.g. https://127.0.0.1:9443 [env: PENGHUBUNG_ADMIN_URL].
    #[arg(long, global = true)]
    pub admin_url: Option<String>,
    /// The CA certificate (PEM) that signed the admin listener's certificate [env: PENGHUBUNG_CACERT].
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// The operator's client certificate (PEM) [env: PENGHUBUNG_OPERATOR_CERT].
    #[arg(long, global = true)]
    pub operator_cert: Option<PathBuf>,
    /// The operator's private key (PEM) [env: PENGHUBUNG_OPERATOR_KEY].
    #[arg(long, global = true)]
    pub operator_key: Option<PathBuf>,
    /// The operator profile [env: PENGHUBUNG_PROFILE; default: ~/.config/penghubung/operator.toml].
    #[arg(long, global = true)]
    pub profile: Option<PathBuf>,
    /// penghubung.toml: supplies the admin URL and the CA.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// An operator profile file (`operator.toml`), as `penghubung init` writes it.
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_key: Option<PathBuf>,
}

impl Profile {
    /// Reads a profile; relative paths are taken from the profile's folder.
    pub fn read(path: &Path) -> Result<Profile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut profile: Profile =
            toml::from_str(&text).map_err(|e| format!("{} is not an operator profile: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [&mut profile.cacert, &mut profile.operator_cert, &mut profile.operator_key].into_iter().flatten() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(profile)
    }

    /// The profile as TOML text.
    pub fn to_toml(&self) -> String {
        let mut text = String::from("# Penghubung operator profile: how `penghubung` reaches the admin API as you.\n");
        text.push_str(&toml::to_string(self).unwrap_or_default());
        text
    }
}

/// The resolved settings of one admin API connection.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminTarget {
    /// `https://host:port`, without a trailing slash.
    pub url: String,
    pub cacert: PathBuf,
    pub operator_cert: PathBuf,
    pub operator_key: PathBuf,
}

impl ConnectionArgs {
    /// Resolves the settings from the flags, the environment, the config and the profile (see the module doc).
    pub fn resolve(&self) -> Result<AdminTarget, String> {
        self.resolve_with(&|name| std::env::var_os(name).filter(|v| !v.is_empty()))
    }

    /// [`Self::resolve`] with the environment given as a function (for tests).
    pub fn resolve_with(&self, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<AdminTarget, String> {
        let env_string = |name: &str| env(name).map(|v| v.to_string_lossy().into_owned());
        let env_path = |name: &str| env(name).map(PathBuf::from);
        let (config_url, config_ca) = match &self.config {
            Some(path) => from_config(path)?,
            None => (None, None),
        };
        let profile_path = self.profile.clone().or_else(|| env_path("PENGHUBUNG_PROFILE"));
        let profile = match &profile_path {
            Some(path) => Profile::read(path)?,
            None => match env_path("HOME").map(|home| home.join(DEFAULT_PROFILE)) {
                Some(path) if path.is_file() => Profile::read(&path)?,
                _ => Profile::default(),
            },
        };
        let url = self
            .admin_url
            .clone()
            .or_else(|| env_string("PENGHUBUNG_ADMIN_URL"))
            .or(config_url)
            .or(profile.admin_url)
            .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string());
        let missing = |what: &str, flag: &str, var: &str| {
            format!(
                "no {what}: give {flag}, set {var}, or use an operator profile (--profile, or \
                 ~/.config/penghubung/operator.toml as `penghubung init` writes it)"
            )
        };
        let cacert = self
            .cacert
            .clone()
            .or_else(|| env_path("PENGHUBUNG_CACERT"))
            .or(config_ca)
            .or(profile.cacert)
            .ok_or_else(|| missing("CA certificate", "--cacert", "PENGHUBUNG_CACERT"))?;
        let operator_cert = self
            .operator_cert
            .clone()
            .or_else(|| env_path("PENGHUBUNG_OPERATOR_CERT"))
            .or(profile.operator_cert)
            .ok_or_else(|| missing("operator certificate", "--operator-cert", "PENGHUBUNG_OPERATOR_CERT"))?;
        let operator_key = self
            .operator_key
            .clone()
            .or_else(|| env_path("PENGHUBUNG_OPERATOR_KEY"))
            .or(profile.operator_key)
            .ok_or_else(|| missing("operator key", "--operator-key", "PENGHUBUNG_OPERATOR_KEY"))?;
        let url = url.trim_end_matches('/').to_string();
        if !url.starts_with("https://") {
            return Err(format!("the admin URL `{url}` must start with https://"));
        }
        Ok(AdminTarget { url, cacert, operator_cert, operator_key })
    }
}

/// The admin URL and CA a config names: `[admin] listen` and the first `tls.client_ca_files`.
fn from_config(path: &Path) -> Result<(Option<String>, Option<PathBuf>), String> {
    let config = Config::load(path).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })?;
    let url = admin_url_of(&config);
    let ca = config.tls.as_ref().and_then(|tls| tls.client_ca_files.first()).map(|file| config.resolve(file));
    Ok((url, ca))
}

/// The URL of the admin listener a config describes, when it has one (a wildcard address is reached on
/// loopback).
pub fn admin_url_of(config: &Config) -> Option<String> {
    let admin = config.admin.as_ref().filter(|admin| admin.enabled)?;
    let address = admin.listen;
    let host = match address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    Some(format!("https://{host}:{}", address.port()))
}

/// Why an admin API call failed.
#[derive(Debug)]
pub enum AdminError {
    /// The connection settings or a local file are wrong.
    Setup(String),
    /// The admin API could not be reached, or the TLS handshake failed.
    Connect(String),
    /// The admin API refused: its problem+json.
    Refused { status: u16, code: String, title: String, detail: String, problems: Vec<String> },
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Setup(message) | AdminError::Connect(message) => f.write_str(message),
            AdminError::Refused { status, code, title, detail, problems } => {
                write!(f, "{status} {code}: ")?;
                match (title.is_empty(), detail.is_empty()) {
                    (_, false) => f.write_str(detail)?,
                    (false, true) => f.write_str(title)?,
                    (true, true) => f.write_str("refused")?,
                }
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl AdminError {
    /// The stable code of a refusal (`admin.forbidden`, ...), if the API answered one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AdminError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The document's `ETag`, when the answer has one.
    pub etag: Option<String>,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`null` when empty).
    pub fn json(&self) -> Result<Value, AdminError> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| AdminError::Connect(format!("the admin API answered something that is not JSON: {e}")))
    }
}

/// A connection-less client: one TLS connection per request (a command makes a handful).
pub struct AdminClient {
    target: AdminTarget,
    tls: Arc<rustls::ClientConfig>,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
}

impl AdminClient {
    /// Builds the TLS client config from the target's files.
    pub fn new(target: AdminTarget) -> Result<AdminClient, AdminError> {
        let setup = AdminError::Setup;
        let authority = target
            .url
            .strip_prefix("https://")
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .filter(|a| !a.is_empty())
            .ok_or_else(|| setup(format!("`{}` is not an https URL", target.url)))?;
        let uri: http::uri::Authority =
            authority.parse().map_err(|e| setup(format!("`{}` is not an https URL: {e}", target.url)))?;
        let host = uri.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(443);
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| setup(format!("`{host}` is not a host name or address: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in penghubung_tls::read_certificates(&target.cacert).map_err(setup)? {
            roots.add(cert).map_err(|e| setup(format!("{}: {e}", target.cacert.display())))?;
        }
        let certs = penghubung_tls::read_certificates(&target.operator_cert).map_err(setup)?;
        let key = penghubung_tls::read_private_key(&target.operator_key).map_err(setup)?;
        let tls = rustls::ClientConfig::builder_with_provider(penghubung_tls::provider())
            .with_protocol_versions(penghubung_tls::PROTOCOL_VERSIONS)
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| setup(format!("operator certificate {}: {e}", target.operator_cert.display())))?;
        Ok(AdminClient { target, tls: Arc::new(tls), host, port, server_name })
    }

    /// The admin API's URL.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// The CA certificate file the connection trusts.
    pub fn cacert(&self) -> &Path {
        &self.target.cacert
    }

    /// `GET path` (under the admin URL, e.g. `/api/v1/services`).
    pub async fn get(&self, path: &str) -> Result<Answer, AdminError> {
        self.send(Method::GET, path, None, None).await
    }

    /// Sends one request with a JSON body; a non-2xx answer becomes [`AdminError::Refused`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Answer, AdminError> {
        let body = match body {
            Some(value) => Some(Bytes::from(serde_json::to_vec(value).map_err(|e| AdminError::Setup(e.to_string()))?)),
            None => None,
        };
        self.send_bytes(method, path, body, if_match).await
    }

    /// Sends one request whose body (JSON) is given as bytes, e.g. a store export as it was saved.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        if_match: Option<&str>,
    ) -> Result<Answer, AdminError> {
        let connect = |e: &dyn std::fmt::Display| {
            AdminError::Connect(format!("cannot reach the admin API at {}: {e}", self.target.url))
        };
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| connect(&e))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| connect(&e))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| connect(&e))?;
        let driver = tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, format!("{}:{}", self.host, self.port))
            .header(http::header::ACCEPT, "application/json, application/problem+json");
        if let Some(etag) = if_match {
            request = request.header(http::header::IF_MATCH, etag);
        }
        let payload = match body {
            Some(bytes) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                bytes
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(payload)).map_err(|e| AdminError::Setup(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| connect(&e))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| connect(&e))?.to_bytes();
        driver.abort();
        let etag = parts.headers.get(http::header::ETAG).and_then(|v: &HeaderValue| v.to_str().ok()).map(String::from);
        if parts.status.is_success() {
            return Ok(Answer { status: parts.status.as_u16(), etag, body });
        }
        Err(refusal(parts.status, &body))
    }
}

/// A non-2xx answer as an error: the problem+json's code, title, detail and problems.
fn refusal(status: StatusCode, body: &[u8]) -> AdminError {
    let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| problem.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut detail = text("detail");
    if problem.is_null() && !body.is_empty() {
        detail = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
    }
    let problems = problem
        .get("problems")
        .and_then(Value::as_array)
        .map(|list| list.iter().map(|p| p.as_str().map_or_else(|| p.to_string(), String::from)).collect())
        .unwrap_or_default();
    let code = match text("code") {
        code if code.is_empty() => format!("http.{}", status.as_u16()),
        code => code,
    };
    AdminError::Refused { status: status.as_u16(), code, title: text("title"), detail, problems }
}

/// A path segment, percent-encoded where it must be.
pub fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, SEGMENT).to_string()
}

/// A query value, percent-encoded.
pub fn query_value(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
const QUERY: &percent_encoding::AsciiSet = SEGMENT;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("operator.toml");
        std::fs::write(
            &profile,
            "admin_url = \"https://profile:9443\"\ncacert = \"ca.crt\"\noperator_cert = \"op.crt\"\noperator_key = \"op.key\"\n",
        )
        .unwrap();
        let args = ConnectionArgs { profile: Some(profile.clone()), ..Default::default() };
        let target = args.resolve_with(&env(&[])).unwrap();
        assert_eq!(target.url, "https://profile:9443");
        assert_eq!(target.cacert, dir.path().join("ca.crt"), "relative to the profile's folder");
        let target = args
            .resolve_with(&env(&[("PENGHUBUNG_ADMIN_URL", "https://env:1/"), ("PENGHUBUNG_OPERATOR_KEY", "/k")]))
            .unwrap();
        assert_eq!((target.url.as_str(), target.operator_key.as_path()), ("https://env:1", Path::new("/k")));
        let args = ConnectionArgs { admin_url: Some("https://flag:2".into()), ..args };
        let target = args.resolve_with(&env(&[("PENGHUBUNG_ADMIN_URL", "https://env:1")])).unwrap();
        assert_eq!(target.url, "https://flag:2");
    }

    #[test]
    fn a_missing_setting_is_named_with_how_to_give_it() {
        let home = tempfile::tempdir().unwrap();
        let e = ConnectionArgs::default()
            .resolve_with(&env(&[("HOME", home.path().to_str().unwrap()), ("PENGHUBUNG_CACERT", "/ca")]))
            .unwrap_err();
        assert!(e.contains("--operator-cert") && e.contains("PENGHUBUNG_OPERATOR_CERT"), "{e}");
        let args = ConnectionArgs {
            admin_url: Some("http://plain:80".into()),
            cacert: Some("/a".into()),
            operator_cert: Some("/b".into()),
            operator_key: Some("/c".into()),
            ..Default::default()
        };
        assert!(args.resolve_with(&env(&[])).unwrap_err().contains("https://"));
    }

    #[test]
    fn a_problem_becomes_an_error_with_every_reason() {
        let body = br#"{"type":"about:blank","title":"Invalid store","status":422,"detail":"the change breaks the store","code":"admin.invalid_store","problems":["opd `x` unknown","tier `y` unknown"]}"#;
        let e = refusal(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(e.code(), Some("admin.invalid_store"));
        let text = e.to_string();
        assert!(text.contains("422 admin.invalid_store") && text.contains("opd `x` unknown"), "{text}");
        assert!(text.contains("tier `y` unknown"), "{text}");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
