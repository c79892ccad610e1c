//! Outbound glue for national systems (the national SPLP, Dukcapil, BKN SIASN, BSrE ...). An [`Adapter`]
//! prepares a request on its way to a system whose authentication or message shape differs from plain HTTP: it
//! adds the credentials the gateway holds (so OPD applications never see them), fetches and caches the tokens
//! the system asks for, and maps the message both ways.
//!
//! - the contract: [`Adapter`], [`OutboundRequest`], [`InboundResponse`], [`AdapterError`] (this module);
//! - [`registry`]: [`AdapterFactory`] builds an adapter from a service document's `[adapter.settings]`;
//!   [`AdapterRegistry`] holds the factories by name and keeps built adapters (and their token caches) across
//!   reloads;
//! - [`secrets`]: the credentials, read from files (mode 0600/0400) or environment variables named in the
//!   config, never from a document; [`settings`] reads an adapter's settings and their secret references;
//! - [`token`]: OAuth2 token providers (client credentials, password grant), cached, refreshed ahead of expiry,
//!   single-flight, with backoff and a circuit breaker; [`client`] is their small HTTP client;
//! - the adapters: [`generic`] (`passthrough`, `basic`, `api-key`, `oauth2-client-credentials`) and [`splp`];
//!   of named national systems: [`dukcapil`] (NIK verification), [`bkn`] (`bkn-siasn`, two tokens) and [`bsre`]
//!   (electronic signatures).
#![forbid(unsafe_code)]

pub mod bkn;
pub mod bsre;
pub mod client;
pub mod dukcapil;
pub mod generic;
pub mod registry;
pub mod secrets;
pub mod settings;
pub mod splp;
pub mod token;

mod encoding;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use client::HttpClient;
pub use generic::Passthrough;
pub use registry::{AdapterFactory, AdapterRegistry};
pub use secrets::{Secret, SecretError, SecretValue, Secrets};
pub use token::{ClientAuth, Token, TokenProvider, TokenSource};

/// A boxed, sendable future: what the adapter hooks return (adapters are called through `dyn Adapter`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A request on its way to a national system, as the adapter sees it.
///
/// `head.uri`'s path and query are the target **relative to the service's upstream endpoint** (the part of the
/// caller's path after `/{opd}/{service}/v{n}`, `/` when empty): an adapter may rewrite them (e.g. prefix a
/// tenant path); the endpoint's own base path is put in front when the request is sent.
#[derive(Debug)]
pub struct OutboundRequest {
    pub head: http::request::Parts,
    /// The caller's body, read whole (at most the adapter's `max_body`) when [`Adapter::needs_request_body`];
    /// otherwise empty, and the caller's stream passes unchanged.
    pub body: Bytes,
}

/// A national system's answer on its way back to the caller, as the adapter sees it.
#[derive(Debug)]
pub struct InboundResponse {
    pub head: http::response::Parts,
    /// The upstream's body, read whole (at most the adapter's `max_body`) when [`Adapter::needs_response_body`];
    /// otherwise empty, and the upstream's stream passes unchanged.
    pub body: Bytes,
}

/// One national system's way of being called: credentials, tokens, message mapping.
///
/// An adapter is built once per service (and kept across reloads while its settings stay the same), then shared
/// by every request of that service: its state (cached tokens) must be safe to use concurrently.
pub trait Adapter: Send + Sync + 'static {
    /// The name service documents use, e.g. `splp`.
    fn name(&self) -> &'static str;

    /// Whether the request body must be buffered for [`Adapter::prepare`] (else `body` is empty and the stream
    /// passes). A buffered body can also be sent again after a 401 ([`Adapter::retry_on_unauthorized`]).
    fn needs_request_body(&self) -> bool;

    /// Whether the response body must be buffered for [`Adapter::map_response`].
    fn needs_response_body(&self) -> bool;

    /// Prepares the request for the national system: credentials, headers, target, body.
    fn prepare<'a>(&'a self, request: &'a mut OutboundRequest) -> BoxFuture<'a, Result<(), AdapterError>>;

    /// Whether the adapter maps the answer at all ([`Adapter::map_response`]); when not, the pipeline passes the
    /// answer on without calling it (no future per request for the adapters that only add credentials). An
    /// adapter that implements `map_response` answers `true`.
    fn maps_response(&self) -> bool {
        false
    }

    /// Maps the national system's answer into the shape the service's callers expect. Called only when
    /// [`Adapter::maps_response`]; the default leaves the answer as it is.
    fn map_response<'a>(&'a self, response: &'a mut InboundResponse) -> BoxFuture<'a, Result<(), AdapterError>> {
        let _ = response;
        Box::pin(async { Ok(()) })
    }

    /// The upstream answered 401: drop cached tokens. When [`Adapter::retry_on_unauthorized`], the pipeline then
    /// calls `prepare` and sends the request ONCE more.
    fn unauthorized(&self) {}

    /// Whether a 401 from the upstream is worth one more try with fresh credentials (adapters holding tokens).
    fn retry_on_unauthorized(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for dyn Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Adapter({})", self.name())
    }
}

/// Why an adapter could not carry a request. `detail` says what went wrong in words safe to show the caller:
/// never a credential, a token or a national system's internals.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdapterError {
    /// No token could be obtained from the national system's token endpoint (503 `adapter.token_unavailable`,
    /// with `Retry-After`).
    #[error("adapter `{adapter}` could not obtain a token from its national system: {detail}")]
    TokenUnavailable { adapter: &'static str, detail: String, retry_after: Duration },
    /// The national system refused the gateway's credentials (502 `adapter.upstream_refused`).
    #[error("the national system behind adapter `{adapter}` refused the gateway's credentials: {detail}")]
    UpstreamRefused { adapter: &'static str, detail: String },
    /// The message could not be mapped to or from the national system's shape (502 `adapter.mapping_failed`).
    #[error("adapter `{adapter}` could not map the message: {detail}")]
    MappingFailed { adapter: &'static str, detail: String },
    /// The body is larger than the adapter's `max_body` (413, `request.body_too_large`).
    #[error("the body is larger than the adapter's limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
}
