//! `bsre`: electronic signatures at BSrE (Balai Sertifikasi Elektronik, BSSN), through its e-sign client
//! service. The instansi's account is HTTP Basic; a signing request (`POST /api/sign/pdf`) is a
//! `multipart/form-data` upload of the document (`file`), the signer's `nik` and `passphrase`, and the display
//! options (`tampilan`, `image`, `page`, `xAxis`, …); the answer is the signed PDF.
//!
//! The gateway holds the account: the adapter puts its `Authorization: Basic …` on every request (replacing
//! the caller's). The upload streams through unread: the signer's passphrase, which only the caller knows, is
//! never buffered, logged, audited or kept (the audit's body scanner records the `nik` as an HMAC, like every
//! NIK in a body). Because the body is not kept, a request is not sent twice: BSrE refusing the account (401 or
//! 403) is answered 502 `adapter.upstream_refused`, so that an OPD application never mistakes it for its own
//! credentials being wrong.
//!
//! Settings: `username` (a string or a secret), `password` (a secret).

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::StatusCode;

use crate::generic::Basic;
use crate::registry::AdapterFactory;
use crate::secrets::{Secret, Secrets};
use crate::settings::Settings;
use crate::{Adapter, AdapterError, BoxFuture, InboundResponse, OutboundRequest};

const NAME: &str = "bsre";

/// The BSrE adapter of one service.
#[derive(Debug)]
pub struct Bsre {
    username: Secret,
    password: Secret,
}

impl Adapter for Bsre {
    fn name(&self) -> &'static str {
        NAME
    }
    fn needs_request_body(&self) -> bool {
        false // the upload, passphrase included, streams through unread
    }
    fn needs_response_body(&self) -> bool {
        false
    }
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            let value = Basic::authorization(NAME, &self.username, &self.password)?;
            request.head.headers.insert(AUTHORIZATION, value);
            Ok(())
        })
    }
    fn maps_response(&self) -> bool {
        true
    }
    fn map_response<'a>(&'a self, response: &'a mut InboundResponse) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            match response.head.status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AdapterError::UpstreamRefused {
                    adapter: NAME,
                    detail: format!("BSrE refused the instansi's account (HTTP {})", response.head.status.as_u16()),
                }),
                _ => Ok(()),
            }
        })
    }
}

/// Builds [`Bsre`] adapters.
pub(crate) struct BsreFactory;

impl AdapterFactory for BsreFactory {
    fn name(&self) -> &'static str {
        NAME
    }
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let mut s = Settings::new(settings, secrets);
        let username = s.string_or_secret("username");
        let password = s.secret("password");
        s.finish()?;
        Ok(Arc::new(Bsre { username: username.expect("checked"), password: password.expect("checked") }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[tokio::test]
    async fn the_account_replaces_the_callers_authorization_and_a_refusal_is_the_gateways() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bsre-password"), "sandi").unwrap();
        std::fs::set_permissions(dir.path().join("bsre-password"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let secrets = Secrets::new(Some(dir.path().to_path_buf()), Default::default());
        let settings = "username = \"esign\"\npassword = { secret = \"bsre-password\" }\n".parse().unwrap();
        let adapter = BsreFactory.build(&settings, &secrets).unwrap();
        assert!(!adapter.needs_request_body(), "the upload streams through unread");
        let (head, ()) = http::Request::post("/api/sign/pdf")
            .header(AUTHORIZATION, "Basic ZnJvbTpjYWxsZXI=")
            .body(())
            .unwrap()
            .into_parts();
        let mut request = OutboundRequest { head, body: Bytes::new() };
        adapter.prepare(&mut request).await.unwrap();
        assert_eq!(request.head.headers.get_all(AUTHORIZATION).iter().count(), 1);
        assert_eq!(request.head.headers[AUTHORIZATION], "Basic ZXNpZ246c2FuZGk="); // esign:sandi
        for (status, refused) in [(200, false), (400, false), (401, true), (403, true)] {
            let (head, ()) = http::Response::builder().status(status).body(()).unwrap().into_parts();
            let mut response = InboundResponse { head, body: Bytes::new() };
            let result = adapter.map_response(&mut response).await;
            assert_eq!(matches!(result, Err(AdapterError::UpstreamRefused { .. })), refused, "{status}");
        }
    }
}
