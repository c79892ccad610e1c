//! Access policy: deny unless granted. For each request the decision reads only its own compiled inputs, which
//! the snapshot embeds (no lock, no parsing): the caller's [`ClientAccess`] (its grants looked up by service
//! index), the service's [`ServiceAccess`] (lifecycle, classification and redaction per operation), each
//! grant's validity window, operations and purposes, and the caller's clearance against the operation's
//! effective classification. The result is a [`Permit`] (typed evidence that the forward phase requires) or a
//! [`Denial`] with a stable code.
//!
//! The order of checks is part of the contract, and `penghubung policy explain` runs the *same* function
//! with a recorder ([`Trace`]) that the data plane leaves empty:
//!
//! 1. **grant present**: a caller without any grant on a service gets 403 `policy.no_grant`, whatever the
//!    service's status and before its operations are matched, so it learns nothing about them (a service that
//!    does not exist at all is 404 `route.not_found`: the catalogue of services is public, grants are not);
//! 2. **lifecycle**: `active` serves; `testing` serves test clients only (`policy.service_testing`); `draft`,
//!    `suspended` and `retired` serve nobody (`policy.service_not_active`);
//! 3. **grant terms**, per grant, keeping the denial of the one that got furthest: operation
//!    (`policy.operation_not_granted`), validity window (`policy.grant_not_yet_valid`, `policy.grant_expired`),
//!    purpose (`policy.purpose`);
//! 4. **clearance** ≥ effective classification (`policy.clearance`).
//!
//! Details name only the caller's own grants, never another client's.
#![forbid(unsafe_code)]

pub mod grants;
pub mod lifecycle;
pub mod redact;
pub mod response;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use http::HeaderValue;

pub use grants::CompiledGrant;
use penghubung_routing::{CompiledOperation, Fnv};
use penghubung_types::documents::{Classification, ServiceStatus};
pub use redact::RedactionPlan;
pub use response::RedactionError;

/// The request header carrying the purpose of use (*tujuan*), e.g. `pelayanan-kesehatan`.
pub const PURPOSE_HEADER: &str = "x-penghubung-purpose";

/// Why a request was refused. `code()` is the stable code of the problem response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    NoGrant { client: Box<str>, service: Arc<str> },
    ServiceNotActive { service: Arc<str>, status: ServiceStatus },
    ServiceTesting { service: Arc<str> },
    GrantNotYetValid { grant: Arc<str>, not_before: Arc<str> },
    GrantExpired { grant: Arc<str>, not_after: Arc<str> },
    OperationNotGranted { operation: Arc<str>, granted: Box<str> },
    Purpose { problem: PurposeProblem },
    Clearance { clearance: Classification, required: Classification, operation: Arc<str> },
}

/// What is wrong with the declared purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurposeProblem {
    Missing { allowed: Box<str> },
    NotGranted { declared: Box<str>, allowed: Box<str> },
    Malformed,
}

impl Denial {
    /// The stable code (part of the API).
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoGrant { .. } => "policy.no_grant",
            Denial::ServiceNotActive { .. } => "policy.service_not_active",
            Denial::ServiceTesting { .. } => "policy.service_testing",
            Denial::GrantNotYetValid { .. } => "policy.grant_not_yet_valid",
            Denial::GrantExpired { .. } => "policy.grant_expired",
            Denial::OperationNotGranted { .. } => "policy.operation_not_granted",
            Denial::Purpose { .. } => "policy.purpose",
            Denial::Clearance { .. } => "policy.clearance",
        }
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::NoGrant { client, service } => write!(
                f,
                "client `{client}` has no grant on service `{service}`; the owning OPD asks the Diskominfo for one"
            ),
            Denial::ServiceNotActive { service, status } => {
                write!(f, "service `{service}` is {status} and serves no requests")
            }
            Denial::ServiceTesting { service } => {
                write!(f, "service `{service}` is in testing: only clients registered as test clients may call it")
            }
            Denial::GrantNotYetValid { grant, not_before } => {
                write!(f, "grant `{grant}` is valid from {not_before}")
            }
            Denial::GrantExpired { grant, not_after } => write!(f, "grant `{grant}` expired at {not_after}"),
            Denial::OperationNotGranted { operation, granted } => {
                write!(f, "operation `{operation}` is not granted to this client (granted: {granted})")
            }
            Denial::Purpose { problem: PurposeProblem::Missing { allowed } } => {
                write!(f, "declare the purpose of use in the X-Penghubung-Purpose header; the grant allows: {allowed}")
            }
            Denial::Purpose { problem: PurposeProblem::NotGranted { declared, allowed } } => {
                write!(f, "purpose `{declared}` is not granted; the grant allows: {allowed}")
            }
            Denial::Purpose { problem: PurposeProblem::Malformed } => f.write_str(
                "X-Penghubung-Purpose must be one lower-case identifier (letters, digits and '-', at most 63) with at \
                 most 8 digits",
            ),
            Denial::Clearance { clearance, required, operation } => {
                write!(f, "operation `{operation}` is classified {required}; this client's clearance is {clearance}")
            }
        }
    }
}

/// Why [`authorize`] refused a request: no operation of the service matched (told only to a caller holding a
/// grant; `R` is the routing lookup's own error), or the policy denied it.
#[derive(Debug)]
pub enum Refusal<R> {
    Route(R),
    Denied(Denial),
}

impl<R> From<Denial> for Refusal<R> {
    fn from(denial: Denial) -> Self {
        Refusal::Denied(denial)
    }
}

/// What the decision knows of a registered client, compiled once per snapshot.
#[derive(Debug)]
pub struct ClientAccess {
    /// The client's id (`opd/app`).
    pub id: Box<str>,
    /// The highest classification it may read.
    pub clearance: Classification,
    /// A test client may call services in `testing`.
    pub test_client: bool,
    /// Its grants by service index; a service missing here is not granted at all.
    grants: HashMap<usize, Box<[CompiledGrant]>, BuildHasherDefault<Fnv>>,
}

impl ClientAccess {
    /// A client with `grants` given per service index.
    pub fn new(
        id: &str,
        clearance: Classification,
        test_client: bool,
        grants: impl IntoIterator<Item = (usize, Box<[CompiledGrant]>)>,
    ) -> Self {
        ClientAccess { id: id.into(), clearance, test_client, grants: grants.into_iter().collect() }
    }

    /// The grants on the service at `service_index`, if any.
    pub fn grants_on(&self, service_index: usize) -> Option<&[CompiledGrant]> {
        self.grants.get(&service_index).map(|g| &**g)
    }

    /// Indices of the services this client holds grants on.
    pub fn granted_services(&self) -> impl Iterator<Item = usize> + '_ {
        self.grants.keys().copied()
    }
}

/// What the decision knows of a service, compiled once per snapshot.
#[derive(Debug)]
pub struct ServiceAccess {
    /// The service's position in the snapshot (clients' grants are keyed by it).
    pub index: usize,
    /// `{opd}/{name}/v{version}`.
    pub key: Arc<str>,
    /// Its lifecycle state.
    pub status: ServiceStatus,
    /// Policy facts per operation, indexed like the service's operations.
    operation_policies: Box<[OperationPolicy]>,
    /// Policy facts of a pass-through service (no operations declared).
    service_policy: OperationPolicy,
}

impl ServiceAccess {
    /// A service classified `classification`, with the policy facts of each of its operations (in the order of
    /// its document).
    pub fn new(
        index: usize,
        key: Arc<str>,
        status: ServiceStatus,
        classification: Classification,
        operation_policies: Vec<OperationPolicy>,
    ) -> Self {
        ServiceAccess {
            index,
            key,
            status,
            operation_policies: operation_policies.into_boxed_slice(),
            service_policy: OperationPolicy { classification, ..OperationPolicy::default() },
        }
    }

    /// The classification and redaction plans that apply to `operation` (`None`: pass-through).
    pub fn operation_policy(&self, operation: Option<&CompiledOperation>) -> &OperationPolicy {
        operation.and_then(|o| self.operation_policies.get(o.index)).unwrap_or(&self.service_policy)
    }
}

/// Typed evidence that a request may go through: the pipeline's forward phase takes a `Permit`, so nothing
/// reaches an upstream without one. It carries what inner layers need (the grant's tier, the purpose, the
/// redaction to apply).
#[derive(Debug)]
pub struct Permit<'s> {
    pub client: &'s ClientAccess,
    pub grant: &'s CompiledGrant,
    pub classification: Classification,
    /// The declared purpose, validated; forwarded upstream.
    pub purpose: Option<HeaderValue>,
    /// Set when the response of some status has fields above the caller's clearance.
    pub redaction: Option<&'s OperationPolicy>,
}

/// The policy facts of one operation (or of a whole pass-through service), compiled per snapshot.
#[derive(Debug, Default)]
pub struct OperationPolicy {
    /// max(service classification, operation classification).
    pub classification: Classification,
    /// Redaction plans by response status (0 stands for `default`: any status not listed).
    pub responses: Vec<(u16, Arc<RedactionPlan>)>,
    /// Every status whose response schema the contract declares (0 for `default`), marked fields or not.
    pub declared: Vec<u16>,
}

/// How a response of one status is released to a caller whose clearance is below some marked field of the
/// operation (see [`response::release`]).
#[derive(Clone, Copy, Debug)]
pub enum ResponseFilter<'a> {
    /// The status's schema marks fields: filter by this plan.
    Plan(&'a RedactionPlan),
    /// The status's schema is declared and marks nothing.
    Unmarked,
    /// The contract declares no schema for this status (nor `default`): nothing to filter by.
    Undeclared,
}

impl OperationPolicy {
    /// What filters a response of `status`: its own declared schema, else the `default` one.
    pub fn filter_for(&self, status: u16) -> ResponseFilter<'_> {
        let declared = if self.declared.contains(&status) {
            status
        } else if self.declared.contains(&0) {
            0
        } else {
            return ResponseFilter::Undeclared;
        };
        match self.responses.iter().find(|(s, _)| *s == declared) {
            Some((_, plan)) => ResponseFilter::Plan(plan),
            None => ResponseFilter::Unmarked,
        }
    }

    fn redacts_for(&self, clearance: Classification) -> bool {
        self.responses.iter().any(|(_, p)| p.applies_to(clearance))
    }
}

/// Receives each check and its outcome. The data plane uses `()`, which records nothing and compiles away (the
/// detail of a passed check is a closure, so its text is never even formatted there).
pub trait Trace {
    fn pass(&mut self, name: &'static str, detail: impl FnOnce() -> String);
    fn fail(&mut self, name: &'static str, denial: &Denial);
}

impl Trace for () {
    #[inline(always)]
    fn pass(&mut self, _: &'static str, _: impl FnOnce() -> String) {}
    #[inline(always)]
    fn fail(&mut self, _: &'static str, _: &Denial) {}
}

/// The whole decision for an identified, enabled `client` calling `service`: grant present → operation matched
/// → lifecycle, grant terms, clearance. `find_operation` matches the request against the service's operations
/// (routing; `None` for a pass-through service); it runs only once the caller is known to hold a grant, so that
/// only such callers learn of a 404 or 405. The data plane and `policy explain` both call this, so they cannot
/// disagree. Returns the matched operation alongside the decision, as soon as it is matched (the access log and
/// the audit record name it even when the call is then refused); it is `None` before the match (no grant, no
/// such operation) and for a pass-through service.
pub fn authorize<'s, R>(
    client: &'s ClientAccess,
    service: &'s ServiceAccess,
    find_operation: impl FnOnce() -> Result<Option<&'s CompiledOperation>, R>,
    purpose: Option<&HeaderValue>,
    now: i64,
    trace: &mut impl Trace,
) -> (Option<&'s CompiledOperation>, Result<Permit<'s>, Refusal<R>>) {
    let grants = match grants_for(client, service, trace) {
        Ok(grants) => grants,
        Err(denial) => return (None, Err(Refusal::Denied(denial))),
    };
    let operation = match find_operation() {
        Ok(operation) => operation,
        Err(error) => return (None, Err(Refusal::Route(error))),
    };
    trace.pass("operation", || match operation {
        Some(op) => format!("`{}` ({})", op.id, op.label),
        None => "any path (the service declares no operations)".to_string(),
    });
    (operation, decide(client, service, grants, operation, purpose, now, trace).map_err(Refusal::Denied))
}

/// Step 1: the caller's grants on the service, or `policy.no_grant`.
pub fn grants_for<'s>(
    client: &'s ClientAccess,
    service: &'s ServiceAccess,
    trace: &mut impl Trace,
) -> Result<&'s [CompiledGrant], Denial> {
    match client.grants_on(service.index) {
        Some(grants) => {
            trace.pass("grant present", || format!("{} grant(s) on `{}`", grants.len(), service.key));
            Ok(grants)
        }
        None => {
            let denial = Denial::NoGrant { client: client.id.clone(), service: Arc::clone(&service.key) };
            trace.fail("grant present", &denial);
            Err(denial)
        }
    }
}

/// Steps 2–4 for a caller that has `grants` on `service`. `operation` is `None` for a pass-through service
/// (no operations declared). `now` is Unix seconds.
pub fn decide<'s>(
    client: &'s ClientAccess,
    service: &'s ServiceAccess,
    grants: &'s [CompiledGrant],
    operation: Option<&CompiledOperation>,
    purpose: Option<&HeaderValue>,
    now: i64,
    trace: &mut impl Trace,
) -> Result<Permit<'s>, Denial> {
    let mut first_denial: Option<Denial> = None;

    // 2. lifecycle
    let status = service.status;
    let lifecycle = match status {
        ServiceStatus::Active => None,
        ServiceStatus::Testing if client.test_client => None,
        ServiceStatus::Testing => Some(Denial::ServiceTesting { service: Arc::clone(&service.key) }),
        _ => Some(Denial::ServiceNotActive { service: Arc::clone(&service.key), status }),
    };
    match lifecycle {
        Some(denial) => refuse(&mut first_denial, trace, "lifecycle", denial),
        None => trace.pass("lifecycle", || format!("service is {status}")),
    }

    // 3. grant terms: the first grant that passes, else the denial of the one that got furthest
    let operation_index = operation.map(|o| o.index);
    // borrowed: cloned into a denial only (no reference count touched on the allowed path)
    let operation_label: &Arc<str> = operation.map_or(&service.key, |o| &o.label);
    let purpose_value = purpose.map(|p| p.as_bytes());
    let mut chosen = None;
    let mut best: Option<(u8, Denial)> = None;
    for grant in grants {
        match grant.admits(operation_index, operation_label, purpose_value, now) {
            Ok(()) => {
                chosen = Some(grant);
                break;
            }
            Err((stage, denial)) => {
                if best.as_ref().is_none_or(|(s, _)| stage > *s) {
                    best = Some((stage, denial));
                }
            }
        }
    }
    match (chosen, best) {
        (Some(grant), _) => trace.pass("grant terms", || {
            format!(
                "grant `{}` covers the operation{} (tier {})",
                grant.id,
                purpose.and_then(|p| p.to_str().ok()).map(|p| format!(" for purpose `{p}`")).unwrap_or_default(),
                grant.tier
            )
        }),
        (None, Some((_, denial))) => refuse(&mut first_denial, trace, "grant terms", denial),
        (None, None) => unreachable!("grants_for never returns an empty list"),
    }

    // 4. clearance
    let policy = service.operation_policy(operation);
    let clearance = client.clearance;
    if clearance < policy.classification {
        let denial =
            Denial::Clearance { clearance, required: policy.classification, operation: Arc::clone(operation_label) };
        refuse(&mut first_denial, trace, "clearance", denial);
    } else {
        trace.pass("clearance", || format!("{clearance} covers {}", policy.classification));
    }

    if let Some(denial) = first_denial {
        return Err(denial);
    }
    let grant = chosen.expect("no denial means a grant was chosen");
    let redaction = policy.redacts_for(clearance).then_some(policy);
    Ok(Permit {
        client,
        grant,
        classification: policy.classification,
        purpose: purpose.filter(|p| grants::is_purpose(p.as_bytes())).cloned(),
        redaction,
    })
}

/// Records a failed check; the first one decides the response.
fn refuse(first: &mut Option<Denial>, trace: &mut impl Trace, name: &'static str, denial: Denial) {
    trace.fail(name, &denial);
    if first.is_none() {
        *first = Some(denial);
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
