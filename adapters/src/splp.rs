//! `splp`: the national SPLP (Sistem Penghubung Layanan Pemerintah), a WSO2 API Manager. The gateway is an
//! OAuth2 client (RFC 6749 §4.4): it asks the token endpoint (`/oauth2/token`) for a token with the Dinas's
//! consumer key and secret sent by HTTP Basic, and calls the API with `Authorization: Bearer <token>`, under
//! `/t/{tenant}/{context}/{version}/…` (WSO2's tenant path) or under the gateway URL the Dinas is given (then
//! the service's upstream endpoint holds the whole base path and `tenant`/`context`/`version` are left out).
//!
//! Settings: `token_url`, `consumer_key`, `consumer_secret` (secrets), optional `scope`, and optional
//! `tenant`, `context`, `version` (`context` and `version` together; `tenant` only with them).

use std::sync::Arc;

use http::header::AUTHORIZATION;

use crate::client::HttpClient;
use crate::registry::AdapterFactory;
use crate::secrets::Secrets;
use crate::settings::Settings;
use crate::token::{ClientAuth, TokenProvider, TokenSource};
use crate::{Adapter, AdapterError, BoxFuture, OutboundRequest};

/// The SPLP adapter of one service.
#[derive(Debug)]
pub struct Splp {
    tokens: TokenProvider,
    /// `/t/{tenant}/{context}/{version}` or `/{context}/{version}`, put in front of the request's path.
    prefix: Option<String>,
}

impl Splp {
    /// The provider of this adapter's tokens.
    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }
}

impl Adapter for Splp {
    fn name(&self) -> &'static str {
        "splp"
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
            request.head.headers.insert(AUTHORIZATION, token.bearer().clone());
            if let Some(prefix) = &self.prefix {
                prefix_path(&mut request.head.uri, prefix)?;
            }
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

/// Puts `prefix` in front of `uri`'s path (a path of `/` becomes the prefix alone).
fn prefix_path(uri: &mut http::Uri, prefix: &str) -> Result<(), AdapterError> {
    let path = uri.path();
    let mut target = String::with_capacity(prefix.len() + uri.path().len() + 16);
    target.push_str(prefix);
    if path != "/" {
        target.push_str(path);
    }
    if let Some(query) = uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let invalid = |_| AdapterError::MappingFailed { adapter: "splp", detail: "the SPLP path cannot be built".into() };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(target.parse().map_err(invalid)?);
    *uri = http::Uri::from_parts(parts)
        .map_err(|_| AdapterError::MappingFailed { adapter: "splp", detail: "the SPLP path cannot be built".into() })?;
    Ok(())
}

/// Builds [`Splp`] adapters.
pub(crate) struct SplpFactory {
    http: HttpClient,
}

impl SplpFactory {
    pub(crate) fn new(http: HttpClient) -> Self {
        SplpFactory { http }
    }
}

/// Whether `segment` can stand in a path as it is (WSO2 tenant domains, API contexts and versions).
fn is_path_segment(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
}

impl AdapterFactory for SplpFactory {
    fn name(&self) -> &'static str {
        "splp"
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let token_url = s.url("token_url");
        let consumer_key = s.secret("consumer_key");
        let consumer_secret = s.secret("consumer_secret");
        let scope = s.optional_string("scope");
        let tenant = s.optional_string("tenant");
        let context = s.optional_string("context");
        let version = s.optional_string("version");
        for (key, value) in [("tenant", &tenant), ("context", &context), ("version", &version)] {
            if value.as_deref().is_some_and(|v| !is_path_segment(v)) {
                s.problem(format!(
                    "[adapter.settings] `{key}` must be one path segment (letters, digits, `.`, `_`, `-`, `~`)"
                ));
            }
        }
        let prefix = match (tenant, context, version) {
            (None, None, None) => None,
            (None, Some(c), Some(v)) => Some(format!("/{c}/{v}")),
            (Some(t), Some(c), Some(v)) => Some(format!("/t/{t}/{c}/{v}")),
            _ => {
                s.problem("[adapter.settings] `context` and `version` go together; `tenant` only with them");
                None
            }
        };
        s.finish()?;
        let source = TokenSource::ClientCredentials {
            token_url: token_url.expect("checked"),
            client_id: consumer_key.expect("checked"),
            client_secret: consumer_secret.expect("checked"),
            auth: ClientAuth::Basic,
            scope,
        };
        let tokens = TokenProvider::new(source, self.http.clone()).for_adapter("splp");
        Ok(Arc::new(Splp { tokens, prefix }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenant_path_goes_in_front_of_the_request_path() {
        let cases = [
            ("/", "/t/kab.go.id/api/1.0"),
            ("/nik?x=1", "/t/kab.go.id/api/1.0/nik?x=1"),
            ("/a/b", "/t/kab.go.id/api/1.0/a/b"),
        ];
        for (target, expected) in cases {
            let mut uri: http::Uri = target.parse().unwrap();
            prefix_path(&mut uri, "/t/kab.go.id/api/1.0").unwrap();
            assert_eq!(uri, expected);
        }
    }

    #[test]
    fn settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["k", "s"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(dir.path().join(name), "v").unwrap();
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), Default::default());
        let http = crate::client::tests::client();
        let factory = SplpFactory::new(http);
        let base = "token_url = \"http://127.0.0.1:9/oauth2/token\"\nconsumer_key = { secret = \"k\" }\nconsumer_secret = { secret = \"s\" }\n";
        assert!(factory.build(&base.parse().unwrap(), &secrets).is_ok());
        let with = |extra: &str| factory.build(&format!("{base}{extra}").parse().unwrap(), &secrets).err();
        assert!(with("tenant = \"kab.go.id\"\ncontext = \"api\"\nversion = \"1\"\n").is_none());
        assert!(with("context = \"api\"\nversion = \"1\"\n").is_none());
        assert!(with("tenant = \"kab.go.id\"\n").unwrap()[0].contains("go together"));
        assert!(with("context = \"a/b\"\nversion = \"1\"\n").unwrap()[0].contains("one path segment"));
    }
}
