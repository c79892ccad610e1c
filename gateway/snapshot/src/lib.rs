//! The immutable compiled view of all documents that the hot path reads. A [`Snapshot`] is built from the
//! store's documents in one go (routes, services with their operations, upstream pools, rate limits), and
//! swapped in
//! atomically through [`SnapshotCell`]; a request holds the `Arc<Snapshot>` it started with until it ends, so
//! a reload never changes the rules under an in-flight request.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::store::Documents;
use penghubung_adapters::{Adapter, AdapterRegistry};
use penghubung_contract::compile::Compiler;
use penghubung_contract::OperationContract;
use penghubung_policy::{lifecycle, ClientAccess, CompiledGrant, OperationPolicy, RedactionPlan, ServiceAccess};
use penghubung_ratelimit::{Limit, LimitBuilder, Quota, Scope};
use penghubung_routing::{CompiledOperation, OperationTable, RouteTable};
use penghubung_tls::dn::{DistinguishedName, DnKey};
use penghubung_tls::identity::{canonical_fingerprint, PeerCertificate};
use penghubung_tls::UpstreamTls;
use penghubung_types::config::Config;
use penghubung_types::diagnostics::Diagnostic;
use penghubung_types::documents::{ClientDoc, GrantDoc, OpdDoc, OperationDoc, OperatorDoc, Role, ServiceDoc, TierDoc};
use penghubung_upstream::upstream::{PoolSpec, UpstreamPool};
use penghubung_upstream::UpstreamRoute;

/// A registered client, with the header values the gateway sends upstream computed once.
#[derive(Debug)]
pub struct ClientEntry {
    pub doc: ClientDoc,
    /// What the policy decision reads: clearance, test flag and grants by service index.
    pub access: ClientAccess,
    /// `X-Penghubung-Client`.
    pub client_header: HeaderValue,
    /// `X-Penghubung-Opd`.
    pub opd_header: HeaderValue,
    /// Its OPD's id, shared (a metric label taken without allocating).
    pub opd: Arc<str>,
    /// The limits on all of this client's calls: its own, and its OPD's bandwidth.
    pub limits: ClientLimits,
}

/// The limits every call of a client meets, whatever the service.
#[derive(Debug, Default)]
pub struct ClientLimits {
    /// The client's `rate_limit`.
    pub client: Option<Arc<Limit>>,
    /// Its OPD's `bandwidth.requests_per_second` (shared by every client of the OPD).
    pub opd: Option<Arc<Limit>>,
    /// Its OPD's `bandwidth.bytes_per_second`.
    pub opd_bytes: Option<Arc<Limit>>,
}

/// Certificate facts → client, for the three kinds of binding.
#[derive(Debug, Default)]
struct IdentityIndex {
    by_fingerprint: HashMap<Box<str>, Arc<ClientEntry>>,
    by_spiffe: HashMap<Box<str>, Arc<ClientEntry>>,
    /// By the key of the parsed subject DN (never a display string).
    by_subject: HashMap<DnKey, Arc<ClientEntry>>,
    /// Bearer-token subjects: issuer name → subject → client (two lookups by `&str`, nothing allocated).
    by_token: HashMap<Box<str>, HashMap<Box<str>, Arc<ClientEntry>>>,
}

/// A service ready to serve.
#[derive(Debug)]
pub struct CompiledService {
    /// `{opd}/{name}/v{version}`.
    pub key: Arc<str>,
    /// The providing OPD's id, shared (a metric label taken without allocating).
    pub opd: Arc<str>,
    pub doc: ServiceDoc,
    pub operations: OperationTable,
    /// What the policy decision reads: position in the snapshot's `services` (grants are keyed by it),
    /// lifecycle, and classification and redaction per operation.
    pub access: ServiceAccess,
    /// What forwarding reads: the upstream pool and the caller headers passed on.
    pub upstream: UpstreamRoute,
    pub max_request_body: u64,
    /// The service's `rate_limit`: all callers together.
    pub limit: Option<Arc<Limit>>,
    /// The document it was compiled from.
    pub origin: String,
    /// Contracts per operation, indexed like `doc.operations`.
    operation_contracts: Box<[OperationContract]>,
    /// Upstream responses that violated their contract (`response_check = "report"` counts them here).
    pub contract_violations: std::sync::atomic::AtomicU64,
    /// The adapter carrying requests to a national system (`[adapter]`), resolved when compiled; `None` for a
    /// plain service (the pipeline's adapt phase is skipped).
    pub adapter: Option<Arc<dyn Adapter>>,
    /// The largest body buffered for the adapter (`[adapter] max_body`).
    pub adapter_max_body: u64,
}

impl CompiledService {
    /// The contract of `operation`, if it has one.
    pub fn contract(&self, operation: Option<&CompiledOperation>) -> Option<&OperationContract> {
        operation.and_then(|o| self.operation_contracts.get(o.index)).filter(|c| !c.is_empty())
    }
}

/// Everything the data plane needs, compiled once.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every successful load.
    pub generation: u64,
    pub loaded_at: SystemTime,
    routes: RouteTable,
    pub services: Vec<Arc<CompiledService>>,
    pub opds: HashMap<String, OpdDoc>,
    pub clients: HashMap<String, Arc<ClientEntry>>,
    identities: IdentityIndex,
    pub grants: Vec<GrantDoc>,
    /// The store's contract schemas by path under `schemas/` (for discovery).
    pub schemas: HashMap<String, Arc<serde_json::Value>>,
    pub tiers: HashMap<String, TierDoc>,
    /// Every rate limit by identity (scope, subject, quota); the next build reuses those that stay.
    limits: HashMap<Box<str>, Arc<Limit>>,
}

/// Process-level inputs of a snapshot build.
pub struct BuildContext<'a> {
    pub config: &'a Config,
    /// Verifies HTTPS upstreams.
    pub upstream_tls: &'a UpstreamTls,
    /// The snapshot being replaced, whose pools and rate-limit counters are reused when unchanged.
    pub previous: Option<&'a Snapshot>,
    /// Resolves the adapters services name (and keeps them across builds). `None` where no adapter can run
    /// (a service naming one is then a problem).
    pub adapters: Option<&'a AdapterRegistry>,
}

impl Snapshot {
    /// An empty snapshot (no routes).
    pub fn empty() -> Self {
        Snapshot {
            generation: 0,
            loaded_at: SystemTime::now(),
            routes: RouteTable::default(),
            services: Vec::new(),
            opds: HashMap::new(),
            clients: HashMap::new(),
            identities: IdentityIndex::default(),
            grants: Vec::new(),
            schemas: HashMap::new(),
            tiers: HashMap::new(),
            limits: HashMap::new(),
        }
    }

    /// Compiles documents into a snapshot, or returns every problem found. Cross-document rules: a service's, a
    /// client's and an operator's OPD exist, routes are unique, operations are unique, grants name existing
    /// clients, services and tiers, approvals are by operators holding their role (see
    /// [`penghubung_policy::lifecycle::problems`]), operators' certificates are distinct and at least one
    /// operator is an enabled `admin` once the store has operators.
    pub fn build(docs: &Documents, ctx: &BuildContext<'_>) -> Result<Snapshot, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let opds: HashMap<String, OpdDoc> = docs.opds.iter().map(|(_, d)| (d.id.clone(), d.clone())).collect();
        let tiers: HashMap<String, TierDoc> = docs.tiers.iter().map(|(_, d)| (d.id.clone(), d.clone())).collect();
        let operators = check_operators(docs, &opds, &mut problems);
        let mut limits = LimitBuilder::new(ctx.config, ctx.previous.map(|p| &p.limits));
        let (routes, services) = compile_services(docs, &opds, &operators, ctx, &mut limits, &mut problems);
        let grants_by_client = compile_grants(docs, &services, &tiers, &mut limits, &mut problems);
        let (clients, identities) =
            compile_clients(docs, &opds, ctx.config, grants_by_client, &mut limits, &mut problems);

        if problems.iter().any(Diagnostic::is_error) {
            return Err(problems);
        }
        if let Some(registry) = ctx.adapters {
            let keys: HashSet<&str> = services.iter().map(|s| &*s.key).collect();
            registry.retain(|service| keys.contains(service));
        }
        Ok(Snapshot {
            generation: ctx.previous.map_or(1, |p| p.generation + 1),
            loaded_at: SystemTime::now(),
            routes,
            services,
            opds,
            clients,
            identities,
            grants: docs.grants.iter().map(|(_, g)| g.clone()).collect(),
            schemas: docs.schemas.iter().map(|(_, path, value)| (path.clone(), Arc::new(value.clone()))).collect(),
            tiers,
            limits: limits.finish(),
        })
    }

    /// The service at `opd/name/v{major}`.
    pub fn find_service(&self, opd: &str, name: &str, major: u32) -> Option<&Arc<CompiledService>> {
        self.routes.find(opd, name, major).map(|i| &self.services[i])
    }

    /// The client a verified certificate belongs to: by fingerprint, then SPIFFE id, then subject DN.
    pub fn client_for(&self, certificate: &PeerCertificate) -> Option<&Arc<ClientEntry>> {
        let index = &self.identities;
        index
            .by_fingerprint
            .get(&*certificate.fingerprint)
            .or_else(|| certificate.spiffe.iter().find_map(|id| index.by_spiffe.get(&**id)))
            .or_else(|| certificate.subject_key.as_ref().and_then(|key| index.by_subject.get(key)))
    }

    /// The client a verified bearer token belongs to: its issuer's name and its subject.
    pub fn client_for_token(&self, issuer: &str, subject: &str) -> Option<&Arc<ClientEntry>> {
        self.identities.by_token.get(issuer).and_then(|subjects| subjects.get(subject))
    }

    /// Number of routes.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }
}

/// The operators by id, after checking them: each one's OPD is registered, no certificate fingerprint belongs
/// to two operators, and a store with operators has at least one enabled `admin` (else nobody could manage it).
/// Operators are not part of the data plane's snapshot; the lifecycle rules need them.
fn check_operators(
    docs: &Documents,
    opds: &HashMap<String, OpdDoc>,
    problems: &mut Vec<Diagnostic>,
) -> HashMap<String, OperatorDoc> {
    let mut operators = HashMap::new();
    let mut fingerprints: HashMap<String, &str> = HashMap::new();
    for (origin, doc) in &docs.operators {
        if !opds.contains_key(&doc.opd) {
            problems.push(Diagnostic::error(
                origin,
                format!("operator `{}`: OPD `{}` is not registered (add opds/{}.toml)", doc.id, doc.opd, doc.opd),
            ));
        }
        for fingerprint in &doc.identity.fingerprint_sha256 {
            if let Some(other) = fingerprints.insert(canonical_fingerprint(fingerprint), &doc.id) {
                problems.push(Diagnostic::error(
                    origin,
                    format!("operator `{}`: certificate {fingerprint} is already operator `{other}`'s", doc.id),
                ));
            }
        }
        operators.insert(doc.id.clone(), doc.clone());
    }
    // Placed on the first operator document (by key), so that the problem names a file of the store.
    let first = docs.operators.iter().map(|(origin, _)| origin).min();
    if let Some(first) = first {
        if !docs.operators.iter().any(|(_, o)| o.enabled && o.roles.contains(&Role::Admin)) {
            problems.push(Diagnostic::error(
                first,
                "no enabled operator holds the role `admin`: at least one must, or nobody could manage the gateway",
            ));
        }
    }
    operators
}

/// A compiled service per service document, in the route table under `/{opd}/{name}/v{n}`. A service that does
/// not compile is a placeholder, so that the indices of the route table stay aligned; its problems are added to
/// `problems`. Upstream pools of the previous snapshot are reused when their spec is unchanged.
fn compile_services(
    docs: &Documents,
    opds: &HashMap<String, OpdDoc>,
    operators: &HashMap<String, OperatorDoc>,
    ctx: &BuildContext<'_>,
    limits: &mut LimitBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) -> (RouteTable, Vec<Arc<CompiledService>>) {
    let mut reusable: HashMap<&PoolSpec, &Arc<UpstreamPool>> = HashMap::new();
    if let Some(prev) = ctx.previous {
        for s in &prev.services {
            reusable.insert(&s.upstream.pool.spec, &s.upstream.pool);
        }
    }

    let mut schemas: HashMap<&str, &serde_json::Value> = HashMap::new();
    for (_, path, schema) in &docs.schemas {
        schemas.insert(path.as_str(), schema);
    }
    let mut compiler = Compiler::new(&schemas, penghubung_contract::FORMATS)
        .with_max_depth(ctx.config.limits.max_json_depth)
        .with_origins(docs.schemas.iter().map(|(origin, path, _)| (path.clone(), origin.clone())).collect());

    let mut routes = RouteTable::default();
    let mut services = Vec::with_capacity(docs.services.len());
    for (origin, doc) in &docs.services {
        if !opds.contains_key(&doc.opd) {
            problems.push(Diagnostic::error(
                origin,
                format!("OPD `{}` is not registered (add opds/{}.toml)", doc.opd, doc.opd),
            ));
            continue;
        }
        if !routes.insert(&doc.opd, &doc.name, doc.version, services.len()) {
            problems.push(Diagnostic::error(
                origin,
                format!("route /{}/{}/v{} is defined twice", doc.opd, doc.name, doc.version),
            ));
            continue;
        }
        for problem in lifecycle::problems(doc, operators) {
            problems.push(Diagnostic::error(origin, problem));
        }
        match compile_service(services.len(), origin, doc, &schemas, &mut compiler, ctx, &reusable) {
            Ok(mut service) => {
                service.limit =
                    doc.rate_limit.and_then(|q| limits.limit(Scope::Service, &service.key, Quota::from_doc(&q)));
                services.push(Arc::new(service))
            }
            Err(mut found) => {
                problems.append(&mut found);
                // keep indices aligned for the route table
                services.push(Arc::new(placeholder(services.len(), origin, doc, ctx)));
            }
        }
    }
    (routes, services)
}

/// The compiled grants by client id and service index; a grant naming an unknown client, service or tier (or
/// defined twice) is a problem added to `problems`.
fn compile_grants<'d>(
    docs: &'d Documents,
    services: &[Arc<CompiledService>],
    tiers: &HashMap<String, TierDoc>,
    limits: &mut LimitBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) -> HashMap<&'d str, HashMap<usize, Vec<CompiledGrant>>> {
    let client_ids: HashSet<&str> = docs.clients.iter().map(|(_, c)| c.id.as_str()).collect();
    let service_index: HashMap<&str, usize> = services.iter().map(|s| (&*s.key, s.access.index)).collect();
    let mut grants_by_client: HashMap<&str, HashMap<usize, Vec<CompiledGrant>>> = HashMap::new();
    let mut grant_ids = HashSet::new();
    for (origin, doc) in &docs.grants {
        if !grant_ids.insert(doc.id.clone()) {
            problems.push(Diagnostic::error(origin, format!("grant `{}` is defined twice", doc.id)));
        }
        // Every unknown name is reported, not only the first.
        if !client_ids.contains(doc.client.as_str()) {
            problems.push(Diagnostic::error(
                origin,
                format!("grant names client `{}`, which is not registered", doc.client),
            ));
        }
        let index = service_index.get(doc.service.as_str()).copied();
        if index.is_none() {
            problems.push(Diagnostic::error(
                origin,
                format!("grant names service `{}`, which is not registered", doc.service),
            ));
        }
        let tier = tiers.get(&doc.tier);
        if tier.is_none() {
            problems.push(Diagnostic::error(
                origin,
                format!("grant names tier `{}`, which is not defined (add tiers/{}.toml)", doc.tier, doc.tier),
            ));
        }
        let (Some(index), Some(tier), true) = (index, tier, client_ids.contains(doc.client.as_str())) else {
            continue;
        };
        match CompiledGrant::compile(doc, &services[index].doc) {
            Ok(mut grant) => {
                grant.limit = tier.quota().and_then(|q| limits.limit(Scope::Grant, &grant.id, Quota::from_doc(&q)));
                grants_by_client.entry(doc.client.as_str()).or_default().entry(index).or_default().push(grant)
            }
            Err(e) => problems.push(Diagnostic::error(origin, e)),
        }
    }
    grants_by_client
}

/// The registered clients by id, with their limits and grants, and the index of their certificate identities;
/// problems (an unknown OPD, a client or identity defined twice) are added to `problems`.
fn compile_clients(
    docs: &Documents,
    opds: &HashMap<String, OpdDoc>,
    config: &Config,
    mut grants_by_client: HashMap<&str, HashMap<usize, Vec<CompiledGrant>>>,
    limits: &mut LimitBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) -> (HashMap<String, Arc<ClientEntry>>, IdentityIndex) {
    let mut clients = HashMap::new();
    let mut identities = IdentityIndex::default();
    for (origin, doc) in &docs.clients {
        if !opds.contains_key(&doc.opd) {
            problems.push(Diagnostic::error(origin, format!("OPD `{}` is not registered", doc.opd)));
        }
        let bandwidth = opds.get(&doc.opd).and_then(|o| o.bandwidth.as_ref()).map(Quota::from_bandwidth);
        let (opd_requests, opd_bytes) = bandwidth.unwrap_or((None, None));
        let client_limits = ClientLimits {
            client: doc.rate_limit.and_then(|q| limits.limit(Scope::Client, &doc.id, Quota::from_doc(&q))),
            opd: opd_requests.and_then(|q| limits.limit(Scope::Opd, &doc.opd, q)),
            opd_bytes: opd_bytes.and_then(|q| limits.limit(Scope::OpdBytes, &doc.opd, q)),
        };
        let grants = grants_by_client.remove(doc.id.as_str()).unwrap_or_default();
        let entry = Arc::new(ClientEntry {
            limits: client_limits,
            access: ClientAccess::new(
                &doc.id,
                doc.clearance,
                doc.test_client,
                grants.into_iter().map(|(index, grants)| (index, grants.into_boxed_slice())),
            ),
            doc: doc.clone(),
            client_header: HeaderValue::from_str(&doc.id).expect("client ids are checked by the schema"),
            opd_header: HeaderValue::from_str(&doc.opd).expect("OPD ids are checked by the schema"),
            opd: doc.opd.as_str().into(),
        });
        if clients.insert(doc.id.clone(), Arc::clone(&entry)).is_some() {
            problems.push(Diagnostic::error(origin, format!("client `{}` is defined twice", doc.id)));
        }
        bind_identities(&mut identities, origin, doc, &entry, problems);
        bind_token_subjects(&mut identities, origin, doc, &entry, config, problems);
    }
    (clients, identities)
}

/// Binds the client's certificate identities (fingerprints, SPIFFE ids, subject DNs) to `entry`; an identity
/// already bound to another client, or a subject that is not a distinguished name, is a problem.
fn bind_identities(
    identities: &mut IdentityIndex,
    origin: &str,
    doc: &ClientDoc,
    entry: &Arc<ClientEntry>,
    problems: &mut Vec<Diagnostic>,
) {
    let fingerprints: Vec<String> = doc.identity.fingerprint_sha256.iter().map(|f| canonical_fingerprint(f)).collect();
    let bindings = [
        (&mut identities.by_fingerprint, fingerprints, "fingerprint"),
        (&mut identities.by_spiffe, doc.identity.spiffe.clone(), "SPIFFE id"),
    ];
    for (index, keys, what) in bindings {
        for key in keys {
            if let Some(other) = index.insert(key.clone().into(), Arc::clone(entry)) {
                problems.push(Diagnostic::error(
                    origin,
                    format!("{what} `{key}` is already bound to client `{}`", other.doc.id),
                ));
            }
        }
    }
    for subject in &doc.identity.subject {
        match DistinguishedName::parse_rfc4514(subject) {
            Ok(name) => {
                if let Some(other) = identities.by_subject.insert(name.key(), Arc::clone(entry)) {
                    problems.push(Diagnostic::error(
                        origin,
                        format!("subject `{subject}` is already bound to client `{}` (as `{name}`)", other.doc.id),
                    ));
                }
            }
            Err(e) => problems.push(Diagnostic::error(
                origin,
                format!("[identity] subject `{subject}` is not an RFC 4514 distinguished name: {e}"),
            )),
        }
    }
}

/// Binds the client's bearer-token subjects to `entry`; an issuer the config does not trust, or a subject
/// already bound to another client, is a problem.
fn bind_token_subjects(
    identities: &mut IdentityIndex,
    origin: &str,
    doc: &ClientDoc,
    entry: &Arc<ClientEntry>,
    config: &Config,
    problems: &mut Vec<Diagnostic>,
) {
    for binding in &doc.identity.jwt {
        if config.jwt_issuer(&binding.issuer).is_none() {
            problems.push(Diagnostic::error(
                origin,
                format!("[[identity.jwt]] issuer `{}` is not one of the config's [[jwt_issuers]]", binding.issuer),
            ));
            continue;
        }
        let subjects = identities.by_token.entry(binding.issuer.as_str().into()).or_default();
        if let Some(other) = subjects.insert(binding.subject.as_str().into(), Arc::clone(entry)) {
            problems.push(Diagnostic::error(
                origin,
                format!(
                    "token subject `{}` of issuer `{}` is already bound to client `{}`",
                    binding.subject, binding.issuer, other.doc.id
                ),
            ));
        }
    }
}

fn pool_spec(doc: &ServiceDoc, config: &Config) -> PoolSpec {
    PoolSpec {
        upstream: doc.upstream.clone(),
        connect_timeout: doc.upstream.connect_timeout.unwrap_or(config.upstream.connect_timeout).0,
        request_timeout: doc.upstream.request_timeout.unwrap_or(config.upstream.request_timeout).0,
        pool_idle_timeout: config.upstream.pool_idle_timeout.0,
        pool_max_idle_per_host: config.upstream.pool_max_idle_per_host,
    }
}

fn compile_service(
    index: usize,
    origin: &str,
    doc: &ServiceDoc,
    schemas: &HashMap<&str, &serde_json::Value>,
    compiler: &mut Compiler<'_>,
    ctx: &BuildContext<'_>,
    reusable: &HashMap<&PoolSpec, &Arc<UpstreamPool>>,
) -> Result<CompiledService, Vec<Diagnostic>> {
    let mut problems = Vec::new();
    let mut operations = Vec::with_capacity(doc.operations.len());
    let mut ids = HashSet::new();
    let mut signatures = HashSet::new();
    let mut operation_policies = Vec::with_capacity(doc.operations.len());
    let mut operation_contracts = Vec::with_capacity(doc.operations.len());
    for (position, op) in doc.operations.iter().enumerate() {
        operation_policies.push(operation_policy(origin, doc, op, schemas, &mut problems));
        operation_contracts.push(compile_contract(origin, op, compiler, &mut problems));
        if !ids.insert(op.id.as_str()) {
            problems.push(Diagnostic::error(origin, format!("operation id `{}` is used twice", op.id)));
        }
        let shape: Vec<&str> = op.path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect();
        if !signatures.insert((op.method.clone(), shape)) {
            problems.push(Diagnostic::error(
                origin,
                format!("operation `{} {}` overlaps another operation", op.method, op.path),
            ));
        }
        match CompiledOperation::new(position, &op.id, &op.method, &op.path) {
            Ok(c) => operations.push(c),
            Err(e) => problems.push(Diagnostic::error(origin, format!("operation `{}`: {e}", op.id))),
        }
    }
    let caller_headers = caller_headers(origin, doc, &mut problems);
    let key: Arc<str> = doc.key().into();
    let adapter = resolve_adapter(origin, &key, doc, ctx, &mut problems);
    let spec = pool_spec(doc, ctx.config);
    let pool = match reusable.get(&spec) {
        Some(pool) => Arc::clone(pool),
        None => match upstream_client_tls(doc, ctx).and_then(|tls| UpstreamPool::new(spec, &tls)) {
            Ok(pool) => Arc::new(pool),
            Err(e) => {
                problems.push(Diagnostic::error(origin, e));
                return Err(problems);
            }
        },
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(CompiledService {
        opd: doc.opd.as_str().into(),
        access: ServiceAccess::new(index, Arc::clone(&key), doc.status, doc.classification, operation_policies),
        upstream: UpstreamRoute { service: Arc::clone(&key), pool, caller_headers: caller_headers.into_boxed_slice() },
        key,
        doc: doc.clone(),
        operations: OperationTable::new(operations),
        max_request_body: doc.max_request_body.map_or(ctx.config.limits.max_request_body.0, |b| b.0),
        limit: None,
        origin: origin.to_string(),
        operation_contracts: operation_contracts.into_boxed_slice(),
        contract_violations: std::sync::atomic::AtomicU64::new(0),
        adapter,
        adapter_max_body: doc.adapter.as_ref().map_or(0, |a| a.max_body()),
    })
}

/// The adapter `doc` names, from the registry; its problems (an unknown adapter or setting, an undefined
/// secret: named, never a value) are added to `problems`.
fn resolve_adapter(
    origin: &str,
    key: &str,
    doc: &ServiceDoc,
    ctx: &BuildContext<'_>,
    problems: &mut Vec<Diagnostic>,
) -> Option<Arc<dyn Adapter>> {
    let wanted = doc.adapter.as_ref()?;
    let Some(registry) = ctx.adapters else {
        problems.push(Diagnostic::error(origin, format!("adapter `{}`: no adapters are available here", wanted.name)));
        return None;
    };
    match registry.resolve(key, &wanted.name, &wanted.settings) {
        Ok(adapter) => Some(adapter),
        Err(found) => {
            problems.extend(
                found.into_iter().map(|p| Diagnostic::error(origin, format!("adapter `{}`: {p}", wanted.name))),
            );
            None
        }
    }
}

/// The policy of one operation: its effective classification (an operation can only raise its service's), its
/// declared statuses, and the redaction plan of each response schema; problems are added to `problems`.
fn operation_policy(
    origin: &str,
    doc: &ServiceDoc,
    op: &OperationDoc,
    schemas: &HashMap<&str, &serde_json::Value>,
    problems: &mut Vec<Diagnostic>,
) -> OperationPolicy {
    if op.classification.is_some_and(|c| c < doc.classification) {
        problems.push(Diagnostic::error(
            origin,
            format!(
                "operation `{}` is classified below its service ({}); an operation can only raise it",
                op.id, doc.classification
            ),
        ));
    }
    let mut policy = OperationPolicy {
        classification: op.classification.unwrap_or(doc.classification).max(doc.classification),
        responses: Vec::new(),
        declared: Vec::new(),
    };
    for (status, response) in &op.responses {
        let code = if status == "default" { 0 } else { status.parse().unwrap_or(0) };
        policy.declared.push(code);
        let Some(schema) = schemas.get(response.schema.as_str()) else {
            problems.push(Diagnostic::error(
                origin,
                format!(
                    "operation `{}` response {status}: schema `{}` is not in the store (schemas/{})",
                    op.id, response.schema, response.schema
                ),
            ));
            continue;
        };
        match RedactionPlan::compile(schema) {
            Ok(Some(plan)) => {
                policy.responses.push((code, Arc::new(plan)));
            }
            Ok(None) => {}
            Err(e) => problems.push(Diagnostic::error(
                origin,
                format!("operation `{}` response {status} (schemas/{}): {e}", op.id, response.schema),
            )),
        }
    }
    policy
}

/// The headers a caller may send the service (`caller_headers`); a name that is not a header, or a header the
/// gateway controls, is a problem added to `problems`.
fn caller_headers(origin: &str, doc: &ServiceDoc, problems: &mut Vec<Diagnostic>) -> Vec<http::HeaderName> {
    let mut caller_headers = Vec::with_capacity(doc.caller_headers.len());
    for name in &doc.caller_headers {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) if penghubung_upstream::headers::is_gateway_controlled(name) => problems.push(Diagnostic::error(
                origin,
                format!("caller_headers: `{name}` is a header the gateway controls; a caller never sets it"),
            )),
            Ok(header) => caller_headers.push(header),
            Err(_) => {
                problems.push(Diagnostic::error(origin, format!("caller_headers: `{name}` is not a header name")))
            }
        }
    }
    caller_headers
}

/// The compiled contract of one operation; problems are added to `problems`.
fn compile_contract(
    origin: &str,
    op: &penghubung_types::documents::OperationDoc,
    compiler: &mut Compiler<'_>,
    problems: &mut Vec<Diagnostic>,
) -> OperationContract {
    let mut contract = OperationContract::default();
    let mut compile = |what: &str, path: &str| {
        let compiled = compiler.schema(path);
        compiled.map_err(|e| match e.schema.as_deref().and_then(|at| compiler.origin(at)) {
            // a broken schema is reported once, at its own file, not at every operation that uses it
            Some(file) => {
                let problem = Diagnostic::error(file, e.message);
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
            None => problems.push(Diagnostic::error(origin, format!("operation `{}` {what}: {e}", op.id))),
        })
    };
    if let Some(request) = &op.request {
        if let Ok(v) = compile("request", &request.schema) {
            contract.request = Some((v, request.content_type.to_ascii_lowercase().into()));
        }
    }
    if let Some(query) = &op.query {
        contract.query = compile("query", &query.schema).ok();
    }
    for (status, response) in &op.responses {
        if let Ok(v) = compile(&format!("response {status}"), &response.schema) {
            let code = if status == "default" { 0 } else { status.parse().unwrap_or(0) };
            contract.responses.push((code, v));
        }
    }
    contract
}

/// The TLS client config of a service's upstream: the shared roots, plus its client certificate if it has one.
fn upstream_client_tls(doc: &ServiceDoc, ctx: &BuildContext<'_>) -> Result<rustls::ClientConfig, String> {
    match (&doc.upstream.client_cert_file, &doc.upstream.client_key_file) {
        (Some(cert), Some(key)) => {
            ctx.upstream_tls.with_client_certificate(&ctx.config.resolve(cert), &ctx.config.resolve(key))
        }
        _ => Ok(ctx.upstream_tls.default_config().clone()),
    }
}

/// A stand-in for a service that failed to compile; only used to keep indices aligned while collecting
/// problems (a snapshot with problems is never published).
fn placeholder(index: usize, origin: &str, doc: &ServiceDoc, ctx: &BuildContext<'_>) -> CompiledService {
    let mut spec = pool_spec(doc, ctx.config);
    spec.upstream.endpoints.clear();
    let key: Arc<str> = doc.key().into();
    let pool =
        UpstreamPool::new(spec, ctx.upstream_tls.default_config()).expect("a pool without endpoints always builds");
    CompiledService {
        opd: doc.opd.as_str().into(),
        access: ServiceAccess::new(index, Arc::clone(&key), doc.status, doc.classification, Vec::new()),
        upstream: UpstreamRoute { service: Arc::clone(&key), pool: Arc::new(pool), caller_headers: Box::default() },
        key,
        doc: doc.clone(),
        operations: OperationTable::default(),
        max_request_body: 0,
        limit: None,
        origin: origin.to_string(),
        operation_contracts: Box::default(),
        contract_violations: std::sync::atomic::AtomicU64::new(0),
        adapter: None,
        adapter_max_body: 0,
    }
}

/// The current snapshot, swapped atomically. Readers never block.
#[derive(Debug)]
pub struct SnapshotCell {
    current: ArcSwap<Snapshot>,
}

impl SnapshotCell {
    pub fn new(snapshot: Snapshot) -> Self {
        Self { current: ArcSwap::from_pointee(snapshot) }
    }

    /// The current snapshot; hold it for the whole request.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes a new snapshot.
    pub fn store(&self, snapshot: Arc<Snapshot>) {
        self.current.store(snapshot);
    }
}
