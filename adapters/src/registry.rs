//! Adapters by name. A service document names an adapter and gives its settings; [`AdapterRegistry::resolve`]
//! builds it with the named [`AdapterFactory`] when the snapshot is compiled, and keeps the built adapter for
//! that service while its name and settings stay the same, so that an adapter (and its cached tokens) survives
//! a reload.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::client::HttpClient;
use crate::secrets::Secrets;
use crate::{bkn, bsre, dukcapil, generic, splp, Adapter};

/// Builds one kind of adapter from a service's `[adapter.settings]`.
pub trait AdapterFactory: Send + Sync {
    /// The name a service document uses (`[adapter] name`).
    fn name(&self) -> &'static str;

    /// The adapter for `settings`, or every problem with them (unknown settings, missing or undefined secrets),
    /// each naming the setting and the secret, never a value.
    fn build(&self, settings: &toml::Table, secrets: &Secrets) -> Result<Arc<dyn Adapter>, Vec<String>>;
}

/// The factories by name, and the adapters built for services.
pub struct AdapterRegistry {
    factories: BTreeMap<&'static str, Arc<dyn AdapterFactory>>,
    secrets: Secrets,
    http: HttpClient,
    built: Mutex<HashMap<String, Built>>,
}

/// An adapter built for a service, with what it was built from.
struct Built {
    name: String,
    settings: toml::Table,
    adapter: Arc<dyn Adapter>,
}

impl AdapterRegistry {
    /// A registry without factories; adapters fetch tokens with `http` and read credentials from `secrets`.
    pub fn empty(http: HttpClient, secrets: Secrets) -> Self {
        AdapterRegistry { factories: BTreeMap::new(), secrets, http, built: Mutex::default() }
    }

    /// A registry holding the built-in adapters: `passthrough`, `basic`, `api-key`,
    /// `oauth2-client-credentials`, `splp`, `dukcapil`, `bkn-siasn`, `bsre`.
    pub fn with_builtins(http: HttpClient, secrets: Secrets) -> Self {
        let mut registry = Self::empty(http.clone(), secrets);
        registry.register(Arc::new(generic::PassthroughFactory));
        registry.register(Arc::new(generic::BasicFactory));
        registry.register(Arc::new(generic::ApiKeyFactory));
        registry.register(Arc::new(generic::OAuth2Factory::new(http.clone())));
        registry.register(Arc::new(splp::SplpFactory::new(http.clone())));
        registry.register(Arc::new(dukcapil::DukcapilFactory));
        registry.register(Arc::new(bkn::BknSiasnFactory::new(http)));
        registry.register(Arc::new(bsre::BsreFactory));
        registry
    }

    /// Adds a factory; returns the one it replaced, if any.
    pub fn register(&mut self, factory: Arc<dyn AdapterFactory>) -> Option<Arc<dyn AdapterFactory>> {
        self.factories.insert(factory.name(), factory)
    }

    /// The client adapters fetch tokens with.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The secrets store adapters read credentials from.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Registered names, sorted (for `penghubung check` messages).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.keys().copied()
    }

    /// The adapter named `name` with `settings` for `service` (its key, `{opd}/{name}/v{n}`): the one built
    /// before if name and settings are unchanged, else a new one.
    pub fn resolve(&self, service: &str, name: &str, settings: &toml::Table) -> Result<Arc<dyn Adapter>, Vec<String>> {
        let Some(factory) = self.factories.get(name) else {
            let known: Vec<&str> = self.names().collect();
            return Err(vec![format!("[adapter] name `{name}` is not a known adapter (known: {})", known.join(", "))]);
        };
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = built.get(service).filter(|b| b.name == name && &b.settings == settings) {
            return Ok(Arc::clone(&b.adapter));
        }
        let adapter = factory.build(settings, &self.secrets)?;
        built.insert(
            service.to_string(),
            Built { name: name.to_string(), settings: settings.clone(), adapter: Arc::clone(&adapter) },
        );
        Ok(adapter)
    }

    /// Forgets the adapters of services for which `keep` is false (services gone from the store).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.built.lock().unwrap_or_else(|e| e.into_inner()).retain(|service, _| keep(service));
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

    #[test]
    fn an_adapter_is_kept_while_its_settings_stay_the_same() {
        let registry = AdapterRegistry::with_builtins(crate::client::tests::client(), Secrets::default());
        assert_eq!(
            registry.names().collect::<Vec<_>>(),
            ["api-key", "basic", "bkn-siasn", "bsre", "dukcapil", "oauth2-client-credentials", "passthrough", "splp"]
        );
        let none = toml::Table::new();
        let first = registry.resolve("a/b/v1", "passthrough", &none).unwrap();
        let again = registry.resolve("a/b/v1", "passthrough", &none).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the same instance across builds");
        let other = registry.resolve("a/c/v1", "passthrough", &none).unwrap();
        assert!(!Arc::ptr_eq(&first, &other), "one instance per service");
        registry.retain(|service| service == "a/c/v1");
        let rebuilt = registry.resolve("a/b/v1", "passthrough", &none).unwrap();
        assert!(!Arc::ptr_eq(&first, &rebuilt), "forgotten once its service was gone");

        let unknown = registry.resolve("a/b/v1", "dukcapil-lama", &none).unwrap_err();
        assert!(unknown[0].contains("not a known adapter") && unknown[0].contains("splp"), "{unknown:?}");
        let settings: toml::Table = "x = 1".parse().unwrap();
        assert!(registry.resolve("a/b/v1", "passthrough", &settings).unwrap_err()[0].contains("it takes none"));
    }
}
