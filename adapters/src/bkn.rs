//! `bkn-siasn`: BKN's SIASN API (Sistem Informasi ASN), behind BKN's WSO2 API manager. Every call carries two
//! tokens at once, as BKN's integration guide describes:
//!
//! - an API-manager token from the OAuth2 client-credentials endpoint (RFC 6749 §4.4, the consumer key and
//!   secret by HTTP Basic) in `Authorization: Bearer …`;
//! - an SSO token of the instansi's operator account from BKN's Keycloak realm (password grant, RFC 6749 §4.3,
//!   `client_id` in the form) in `Auth: bearer …`.
//!
//! Each comes from its own [`TokenProvider`]: cached, refreshed ahead of its own expiry, single-flight. A 401
//! from SIASN does not say which token it refused, so both are dropped and the request is sent once more with
//! fresh ones. The caller's own `Authorization` and `Auth` headers are replaced.
//!
//! Settings: `token_url`, `consumer_key`, `consumer_secret` (secrets) and optional `scope` for the API manager;
//! `sso_token_url`, `sso_client_id` (a string or a secret), optional `sso_client_secret`, `sso_username`,
//! `sso_password` (secrets) for the SSO.

use std::sync::Arc;

use http::header::{HeaderName, AUTHORIZATION};

use crate::client::HttpClient;
use crate::generic::sensitive;
use crate::registry::AdapterFactory;
use crate::secrets::Secrets;
use crate::settings::Settings;
use crate::token::{ClientAuth, TokenProvider, TokenSource};
use crate::{Adapter, AdapterError, BoxFuture, OutboundRequest};

const NAME: &str = "bkn-siasn";

/// The header SIASN reads the SSO token from.
pub const SSO_HEADER: HeaderName = HeaderName::from_static("auth");

/// The BKN SIASN adapter of one service.
#[derive(Debug)]
pub struct BknSiasn {
    api_manager: TokenProvider,
    sso: TokenProvider,
}

impl BknSiasn {
    /// The API manager's token provider (`Authorization: Bearer`).
    pub fn api_manager(&self) -> &TokenProvider {
        &self.api_manager
    }

    /// The SSO's token provider (`Auth: bearer`).
    pub fn sso(&self) -> &TokenProvider {
        &self.sso
    }
}

impl Adapter for BknSiasn {
    fn name(&self) -> &'static str {
        NAME
    }
    fn needs_request_body(&self) -> bool {
        true // kept, to be sent again with fresh tokens after a 401
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let (api, sso) = tokio::join!(self.api_manager.token(), self.sso.token());
            let (api, sso) = (api?, sso?);
            request.head.headers.insert(AUTHORIZATION, sensitive(NAME, &format!("Bearer {}", api.value()))?);
            request.head.headers.insert(SSO_HEADER, sensitive(NAME, &format!("bearer {}", sso.value()))?);
            Ok(())
        })
    }
    fn unauthorized(&self) {
        self.api_manager.invalidate();
        self.sso.invalidate();
    }
    fn retry_on_unauthorized(&self) -> bool {
        true
    }
}

/// Builds [`BknSiasn`] adapters.
pub(crate) struct BknSiasnFactory {
    http: HttpClient,
}

impl BknSiasnFactory {
    pub(crate) fn new(http: HttpClient) -> Self {
        BknSiasnFactory { http }
    }
}

impl AdapterFactory for BknSiasnFactory {
    fn name(&self) -> &'static str {
        NAME
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let token_url = s.url("token_url");
        let consumer_key = s.secret("consumer_key");
        let consumer_secret = s.secret("consumer_secret");
        let scope = s.optional_string("scope");
        let sso_token_url = s.url("sso_token_url");
        let sso_client_id = s.string_or_secret("sso_client_id");
        let sso_client_secret = s.optional_secret("sso_client_secret");
        let sso_username = s.secret("sso_username");
        let sso_password = s.secret("sso_password");
        s.finish()?;
        let api_manager = TokenSource::ClientCredentials {
            token_url: token_url.expect("checked"),
            client_id: consumer_key.expect("checked"),
            client_secret: consumer_secret.expect("checked"),
            auth: ClientAuth::Basic,
            scope,
        };
        let sso = TokenSource::Password {
            token_url: sso_token_url.expect("checked"),
            client_id: sso_client_id.expect("checked"),
            client_secret: sso_client_secret,
            username: sso_username.expect("checked"),
            password: sso_password.expect("checked"),
            scope: None,
        };
        Ok(Arc::new(BknSiasn {
            api_manager: TokenProvider::new(api_manager, self.http.clone()).for_adapter(NAME),
            sso: TokenProvider::new(sso, self.http.clone()).for_adapter(NAME),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_token_sources_are_required_and_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        for name in ["key", "secret", "user", "pass"] {
            std::fs::write(dir.path().join(name), "v").unwrap();
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), Default::default());
        let factory = BknSiasnFactory::new(crate::client::tests::client());
        let full = "token_url = \"http://127.0.0.1:9/oauth2/token\"\nconsumer_key = { secret = \"key\" }\n\
                    consumer_secret = { secret = \"secret\" }\nsso_token_url = \"http://127.0.0.1:9/auth/realms/r/protocol/openid-connect/token\"\n\
                    sso_client_id = \"lamtim\"\nsso_username = { secret = \"user\" }\nsso_password = { secret = \"pass\" }\n";
        let adapter = factory.build(&full.parse().unwrap(), &secrets).unwrap();
        assert_eq!(adapter.name(), "bkn-siasn");
        assert!(adapter.retry_on_unauthorized());
        let without_sso = "token_url = \"http://127.0.0.1:9/oauth2/token\"\nconsumer_key = { secret = \"key\" }\n\
                           consumer_secret = { secret = \"secret\" }\nsso_token_url = \"not a url\"\n";
        let problems = factory.build(&without_sso.parse().unwrap(), &secrets).unwrap_err();
        for setting in ["sso_token_url", "sso_client_id", "sso_username", "sso_password"] {
            assert!(problems.iter().any(|p| p.contains(&format!("`{setting}`"))), "{setting}: {problems:?}");
        }
    }
}
