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
