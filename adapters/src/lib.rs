//! Outbound glue for national systems (the national SPLP, Dukcapil, BKN SIASN, SIPD, BSrE ...). An
//! [`Adapter`] prepares a request on its way to a system whose authentication or message shape differs from
//! plain HTTP: it adds the credentials the gateway holds (so OPD applications never see them) and maps the
//! message. Adapters are registered by name in an [`AdapterRegistry`]; a service document names the adapter
//! it needs. The national adapters themselves come with the adapters issue; this crate fixes the contract.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

/// Why an adapter could not prepare a request.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter `{adapter}` has no credentials configured: {detail}")]
    MissingCredentials { adapter: &'static str, detail: String },
    #[error("adapter `{adapter}` cannot map the request: {detail}")]
    Mapping { adapter: &'static str, detail: String },
}

/// Outbound preparation of a request for one national system.
pub trait Adapter: Send + Sync + 'static {
    /// The name service documents use, e.g. `dukcapil-nik`.
    fn name(&self) -> &'static str;

    /// Adjusts the request head before it leaves the gateway (credentials, headers, target).
    fn prepare(&self, head: &mut http::request::Parts) -> Result<(), AdapterError>;
}

/// Sends requests unchanged: the adapter of every service that talks plain HTTP.
#[derive(Debug, Default, Clone, Copy)]
pub struct Passthrough;

impl Adapter for Passthrough {
    fn name(&self) -> &'static str {
        "passthrough"
    }

    fn prepare(&self, _head: &mut http::request::Parts) -> Result<(), AdapterError> {
        Ok(())
    }
}

/// Adapters by name, built once at start and shared read-only.
#[derive(Clone, Default)]
pub struct AdapterRegistry {
    adapters: BTreeMap<&'static str, Arc<dyn Adapter>>,
}

impl AdapterRegistry {
    /// A registry holding the built-in adapters.
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        registry.register(Arc::new(Passthrough));
        registry
    }

    /// Adds an adapter; returns the one it replaced, if any.
    pub fn register(&mut self, adapter: Arc<dyn Adapter>) -> Option<Arc<dyn Adapter>> {
        self.adapters.insert(adapter.name(), adapter)
    }

    /// The adapter called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Adapter>> {
        self.adapters.get(name)
    }

    /// Registered names, sorted (for `penghubung check` messages).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.adapters.keys().copied()
    }
}

impl std::fmt::Debug for AdapterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct StaticHeader;

    impl Adapter for StaticHeader {
        fn name(&self) -> &'static str {
            "static-header"
        }
        fn prepare(&self, head: &mut http::request::Parts) -> Result<(), AdapterError> {
            head.headers.insert("x-api-key", http::HeaderValue::from_static("held-by-the-gateway"));
            Ok(())
        }
    }

    #[test]
    fn registry_finds_adapters_by_name_and_they_prepare_requests() {
        let mut registry = AdapterRegistry::with_builtins();
        assert!(registry.register(Arc::new(StaticHeader)).is_none());
        assert_eq!(registry.names().collect::<Vec<_>>(), ["passthrough", "static-header"]);
        let (mut head, ()) = http::Request::new(()).into_parts();
        registry.get("static-header").unwrap().prepare(&mut head).unwrap();
        assert_eq!(head.headers["x-api-key"], "held-by-the-gateway");
        let (mut plain, ()) = http::Request::new(()).into_parts();
        registry.get("passthrough").unwrap().prepare(&mut plain).unwrap();
        assert!(plain.headers.is_empty());
        assert!(registry.get("dukcapil-nik").is_none());
    }
}
