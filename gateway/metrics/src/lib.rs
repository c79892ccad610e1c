//! The gateway's Prometheus metrics: one [`Metrics`] value holding every family, recorded on the request path
//! without a lock, and encoded on a scrape with `prometheus-client` (OpenMetrics text, or the Prometheus text
//! format 0.0.4 derived from it).
//!
//! **Bounded cardinality.** Every label value comes from a set the snapshot knows (service id, caller OPD,
//! provider OPD, operation id), a status class (`2xx` … `5xx`) or a static code (the gateway's stable error
//! codes, handshake refusal reasons): the recording API takes the snapshot's own `Arc<str>` label values and
//! `&'static str` codes, never a request's own strings. A request with no service (an unknown route) or no
//! identified caller is recorded under `-`.
//!
//! **Cost.** The request path normally touches no shared table: each thread keeps its last few series (the
//! `recent` module), found by the addresses of the observation's label values (one compare of six machine
//! words), so a request does that compare and relaxed atomic adds on counters it already holds. Only a label
//! combination the thread has not seen lately (or a reloaded snapshot's new strings) hashes its labels' text
//! and reads the lock-free series table (the `table` module). The counters are sharded: each thread adds to its own cache-line-aligned shard of a
//! series, so two cores never contend for one line, and a scrape sums the shards. Counters owned by other
//! crates (the audit writer's, the rate limiter's, the trace exporter's dropped spans) are read at scrape time:
//! the server hands them over as [`Facts`], or registers them once with [`Metrics::register_counter`].
#![forbid(unsafe_code)]

pub mod histogram;
mod recent;
mod table;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

pub use histogram::{HistogramValue, LatencyHistogram};
use recent::{Key, Recent, SHARDS};
use table::{LabelHash, Table};

/// The label value of an absent fact (no service, no identified caller, no operation, no code).
pub const NONE: &str = "-";

/// What one finished request contributes, recorded once at the end of the request. The label values are the
/// snapshot's own shared strings (`None` for what the request never reached, recorded as `-`): a thread that
/// recorded the same strings lately finds their series by address (see the `recent` module).
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    /// The compiled service's id.
    pub service: Option<&'a Arc<str>>,
    /// The OPD that provides the service.
    pub provider_opd: Option<&'a Arc<str>>,
    /// The identified client's OPD.
    pub caller_opd: Option<&'a Arc<str>>,
    /// The matched operation's id.
    pub operation: Option<&'a Arc<str>>,
    pub status: u16,
    /// The gateway's stable error code, for a refused or failed request.
    pub code: Option<&'static str>,
    /// From arrival to the response head.
    pub duration: Duration,
    /// The upstream exchange, when one took place.
    pub upstream: Option<Duration>,
    /// The request body's declared length.
    pub bytes_in: u64,
    /// The response body's length, when known when the head leaves.
    pub bytes_out: u64,
    /// The response was filtered for the caller's clearance.
    pub redacted: bool,
}

/// A label's value: its text, or `-` when absent.
fn text(label: Option<&Arc<str>>) -> &str {
    label.map_or(NONE, |l| &**l)
}

/// The status class label of a status code.
pub fn status_class(status: u16) -> &'static str {
    CLASSES[class_index(status)]
}

/// The index of a status code's class in [`CLASSES`] (anything outside 1xx–4xx counts as `5xx`).
fn class_index(status: u16) -> usize {
    match status / 100 {
        1 => 0,
        2 => 1,
        3 => 2,
        4 => 3,
        _ => 4,
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The series of one service (and its provider OPD): latency by status class, upstream latency, redactions,
/// each thread adding to its own shard.
#[derive(Debug)]
struct ServiceSeries {
    service: Arc<str>,
    provider_opd: Arc<str>,
    shards: Box<[ServiceShard; SHARDS]>,
}

/// One thread's share of a service's series, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct ServiceShard {
    duration: [LatencyHistogram; 5],
    upstream: LatencyHistogram,
    redactions: AtomicU64,
}

/// The series of one label combination of `penghubung_requests_total`.
#[derive(Debug)]
struct RequestSeries {
    caller_opd: Arc<str>,
    operation: Arc<str>,
    class: &'static str,
    code: &'static str,
    service: Arc<ServiceSeries>,
    shards: Box<[RequestShard; SHARDS]>,
}

/// One thread's share of a request series' counters, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct RequestShard {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl RequestSeries {
    /// Whether this series counts `o` (with its status class and code).
    fn counts(&self, o: &Observation<'_>, class: &'static str, code: &'static str) -> bool {
        same_static(self.class, class)
            && same_static(self.code, code)
            && same_text(&self.service.service, text(o.service))
            && same_text(&self.caller_opd, text(o.caller_opd))
            && same_text(&self.operation, text(o.operation))
            && same_text(&self.service.provider_opd, text(o.provider_opd))
    }

    /// Adds `o` (of status class `class_index`) to shard `shard`.
    fn add(&self, o: &Observation<'_>, class_index: usize, shard: usize) {
        let counters = &self.shards[shard];
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if o.bytes_in > 0 {
            counters.bytes_in.fetch_add(o.bytes_in, Ordering::Relaxed);
        }
        if o.bytes_out > 0 {
            counters.bytes_out.fetch_add(o.bytes_out, Ordering::Relaxed);
        }
        let service = &self.service.shards[shard];
        service.duration[class_index].observe(o.duration);
        if let Some(upstream) = o.upstream {
            service.upstream.observe(upstream);
        }
        if o.redacted {
            service.redactions.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn total(&self, counter: impl Fn(&RequestShard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| counter(s).load(Ordering::Relaxed)).sum()
    }
}

/// Two label values are equal, compared a word at a time in line (they are short: a library call to compare
/// them cost more than the comparison).
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).fold(true, |same, (x, y)| same & (x == y));
    }
    let word = |s: &[u8], at: usize| s[at..at + 8].iter().fold(0u64, |w, byte| w << 8 | u64::from(*byte));
    // Whole words, then the last eight bytes (overlapping the words before when `n` is not a multiple of 8).
    (0..n / 8).all(|i| word(a, 8 * i) == word(b, 8 * i)) && word(a, n - 8) == word(b, n - 8)
}

/// Two static strings are equal: the same bytes in the same place, or (for one code spelled in two crates) the
/// same text.
fn same_static(a: &'static str, b: &'static str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

/// A counter owned by another crate, shown on `/metrics`.
#[derive(Debug)]
struct External {
    name: &'static str,
    help: &'static str,
    value: Arc<AtomicU64>,
}

/// Every metric family of the gateway.
#[derive(Debug)]
pub struct Metrics {
    /// Names this value in the threads' caches of recent series (never reused within the process).
    id: u64,
    requests: Table<RequestSeries>,
    services: Table<ServiceSeries>,
    handshakes_accepted: AtomicU64,
    /// Refused handshakes by reason code (a handful of static codes; refusals are off the request path).
    handshakes_refused: Mutex<Vec<(&'static str, u64)>>,
    external: Mutex<Vec<External>>,
    /// Client id → the end of validity of the certificate it last presented (recorded once per connection).
    client_certificates: Mutex<Vec<(Arc<str>, i64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Metrics {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            requests: Table::default(),
            services: Table::default(),
            handshakes_accepted: AtomicU64::new(0),
            handshakes_refused: Mutex::default(),
            external: Mutex::default(),
            client_certificates: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records a finished request.
    pub fn observe(&self, o: &Observation<'_>) {
        let class_index = class_index(o.status);
        let key = Key::of(self.id, o, class_index);
        let kept = Recent::with(|recent| {
            let shard = recent.shard();
            match recent.find(&key) {
                Some(series) => series.add(o, class_index, shard),
                None => {
                    let series = self.series(o, class_index);
                    series.add(o, class_index, shard);
                    recent.keep(key, o, series);
                }
            }
        });
        if kept.is_none() {
            // The thread is ending (its cache is gone): the shared table, and the first shard.
            self.series(o, class_index).add(o, class_index, 0);
        }
    }

    /// The series of `o`'s labels from the shared table, by their text (made when new): a thread's first
    /// request with them.
    fn series(&self, o: &Observation<'_>, class_index: usize) -> Arc<RequestSeries> {
        let (class, code) = (CLASSES[class_index], o.code.unwrap_or(NONE));
        let (service, provider_opd) = (text(o.service), text(o.provider_opd));
        let (caller_opd, operation) = (text(o.caller_opd), text(o.operation));
        let hash = LabelHash::new()
            .add(service)
            .add(provider_opd)
            .add(caller_opd)
            .add(operation)
            .add(class)
            .add(code)
            .finish();
        self.requests.get_or_insert(
            hash,
            |s| s.counts(o, class, code),
            || RequestSeries {
                caller_opd: caller_opd.into(),
                operation: operation.into(),
                class,
                code,
                service: self.service(service, provider_opd),
                shards: Box::default(),
            },
        )
    }

    fn service(&self, service: &str, provider_opd: &str) -> Arc<ServiceSeries> {
        let hash = LabelHash::new().add(service).add(provider_opd).finish();
        self.services.get_or_insert(
            hash,
            |s| *s.service == *service && *s.provider_opd == *provider_opd,
            || ServiceSeries { service: service.into(), provider_opd: provider_opd.into(), shards: Box::default() },
        )
    }

    /// A TLS handshake completed.
    pub fn handshake_accepted(&self) {
        self.handshakes_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A TLS handshake was refused for `reason` (a static refusal code, e.g. `tls.unknown_ca`).
    pub fn handshake_refused(&self, reason: &'static str) {
        let mut refused = self.handshakes_refused.lock().unwrap_or_else(|p| p.into_inner());
        match refused.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += 1,
            None => refused.push((reason, 1)),
        }
    }

    /// A connection presented a certificate of the registered client `client` valid until `not_after` (seconds
    /// since the Unix epoch). Called once per connection, off the request path.
    pub fn client_certificate(&self, client: &str, not_after: i64) {
        let mut known = self.client_certificates.lock().unwrap_or_else(|p| p.into_inner());
        match known.iter_mut().find(|(id, _)| **id == *client) {
            Some((_, end)) => *end = not_after,
            None => known.push((client.into(), not_after)),
        }
    }

    /// The client certificates seen, as expiry gauges relative to `now` (seconds since the Unix epoch).
    pub fn client_certificates(&self, now: i64) -> Vec<Expiry> {
        let known = self.client_certificates.lock().unwrap_or_else(|p| p.into_inner());
        known
            .iter()
            .map(|(id, end)| Expiry { kind: "client", name: id.to_string(), seconds_left: (end - now) as f64 })
            .collect()
    }

    /// Shows a counter another crate owns (e.g. the trace exporter's dropped spans) as `{name}_total`; `name`
    /// is the full metric name without the `_total` suffix. Registering a name again replaces the counter.
    pub fn register_counter(&self, name: &'static str, help: &'static str, value: Arc<AtomicU64>) {
        let mut external = self.external.lock().unwrap_or_else(|p| p.into_inner());
        external.retain(|e| e.name != name);
        external.push(External { name, help, value });
    }

    /// The metrics as OpenMetrics text (`application/openmetrics-text; version=1.0.0`).
    pub fn encode_openmetrics(&self, facts: &Facts) -> String {
        let registry = self.registry(facts);
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// The metrics in the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): the OpenMetrics text
    /// without its `# EOF` and `# UNIT` lines, with each counter's `# HELP`/`# TYPE` named like its samples.
    pub fn encode_prometheus(&self, facts: &Facts) -> String {
        let open = self.encode_openmetrics(facts);
        let mut text = String::with_capacity(open.len());
        let mut counter: Option<&str> = None;
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some(name) = rest.strip_suffix(" counter") {
                    counter = Some(name);
                    text.push_str("# TYPE ");
                    text.push_str(name);
                    text.push_str("_total counter\n");
                    continue;
                }
                counter = None;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                // HELP precedes TYPE: look ahead by name is not needed, counters are renamed on their TYPE
                // line and their HELP line is rewritten when the family's samples start with `_total`.
                text.push_str("# HELP ");
                text.push_str(rest);
                text.push('\n');
                continue;
            }
            if let Some(name) = counter {
                // `_created` samples are OpenMetrics only.
                if line.starts_with(name) && line[name.len()..].starts_with("_created") {
                    continue;
                }
            }
            text.push_str(line);
            text.push('\n');
        }
        fix_counter_help(text)
    }

    fn registry(&self, facts: &Facts) -> Registry {
        let mut registry = Registry::with_prefix("penghubung");
        self.register_requests(&mut registry);
        register_facts(&mut registry, facts);
        let mut handshakes = vec![(
            labels(&[("outcome", "accepted"), ("reason", NONE)]),
            self.handshakes_accepted.load(Ordering::Relaxed),
        )];
        for (reason, count) in self.handshakes_refused.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            handshakes.push((labels(&[("outcome", "refused"), ("reason", reason)]), *count));
        }
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the data-plane listeners, by outcome and refusal reason",
            Counters(handshakes),
        );
        for external in self.external.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let name = external.name.strip_prefix("penghubung_").unwrap_or(external.name);
            registry.register(
                name,
                external.help,
                Counters(vec![(Vec::new(), external.value.load(Ordering::Relaxed))]),
            );
        }
        registry
    }

    fn register_requests(&self, registry: &mut Registry) {
        let requests = self.requests.entries();
        let mut totals = Vec::with_capacity(requests.len());
        let (mut denials, mut refusals, mut violations) = (Vec::new(), Vec::new(), Vec::new());
        let mut bytes_in: Vec<(Labels, u64)> = Vec::new();
        let mut bytes_out: Vec<(Labels, u64)> = Vec::new();
        for r in &requests {
            let count = r.total(|s| &s.requests);
            let (service, provider) = (&*r.service.service, &*r.service.provider_opd);
            totals.push((
                labels(&[
                    ("service", service),
                    ("provider_opd", provider),
                    ("caller_opd", &r.caller_opd),
                    ("operation", &r.operation),
                    ("status_class", r.class),
                    ("code", r.code),
                ]),
                count,
            ));
            let by_caller = labels(&[("service", service), ("provider_opd", provider), ("caller_opd", &r.caller_opd)]);
            add(&mut bytes_in, &by_caller, r.total(|s| &s.bytes_in));
            add(&mut bytes_out, &by_caller, r.total(|s| &s.bytes_out));
            let by_code = || labels(&[("service", service), ("caller_opd", &r.caller_opd), ("code", r.code)]);
            if is_denial(r.code) {
                add(&mut denials, &by_code(), count);
            } else if r.code.starts_with("ratelimit.") {
                add(&mut refusals, &by_code(), count);
            } else if r.code.starts_with("contract.") {
                let l = labels(&[("service", service), ("operation", &r.operation), ("code", r.code)]);
                add(&mut violations, &l, count);
            }
        }
        registry.register(
            "requests",
            "Requests answered, by service, OPDs, operation, status class and error code",
            Counters(totals),
        );
        registry.register(
            "request_bytes",
            "Request body bytes received (declared length), by service and OPDs",
            Counters(bytes_in),
        );
        registry.register(
            "response_bytes",
            "Response body bytes sent (known length), by service and OPDs",
            Counters(bytes_out),
        );
        registry.register(
            "denials",
            "Requests refused for identity or policy, by service, caller OPD and code",
            Counters(denials),
        );
        registry.register(
            "ratelimit_refusals",
            "Requests refused by a rate limit or quota, by service, caller OPD and code",
            Counters(refusals),
        );
        registry.register(
            "contract_violations",
            "Requests or responses refused by the operation's contract, by service, operation and code",
            Counters(violations),
        );
        let services = self.services.entries();
        let mut durations = Vec::new();
        let mut upstream = Vec::new();
        let mut redactions = Vec::new();
        for s in &services {
            for (index, class) in CLASSES.iter().enumerate() {
                let histogram = HistogramValue::sum(s.shards.iter().map(|shard| &shard.duration[index]));
                if histogram.count > 0 {
                    let l =
                        labels(&[("service", &s.service), ("provider_opd", &s.provider_opd), ("status_class", class)]);
                    durations.push((l, histogram));
                }
            }
            let by_service = labels(&[("service", &s.service), ("provider_opd", &s.provider_opd)]);
            let upstream_value = HistogramValue::sum(s.shards.iter().map(|shard| &shard.upstream));
            if upstream_value.count > 0 {
                upstream.push((by_service.clone(), upstream_value));
            }
            let redacted = s.shards.iter().map(|shard| shard.redactions.load(Ordering::Relaxed)).sum();
            redactions.push((by_service, redacted));
        }
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its response head, by service and status class",
            Unit::Seconds,
            Histograms(durations),
        );
        registry.register_with_unit(
            "upstream_duration",
            "Time of the upstream exchange (connect, send, response head), by service",
            Unit::Seconds,
            Histograms(upstream),
        );
        registry.register(
            "redactions",
            "Responses filtered for a caller's clearance, by service",
            Counters(redactions),
        );
    }
}

/// A denial: identity or policy refused the caller.
fn is_denial(code: &str) -> bool {
    code.starts_with("identity.") || code.starts_with("policy.") || code.starts_with("access.")
}

/// What the server knows at scrape time, beyond the request path's counters.
#[derive(Debug, Default)]
pub struct Facts {
    /// The serving snapshot's generation.
    pub snapshot_generation: u64,
    /// Reloads rejected since start (the previous snapshot kept serving).
    pub reload_failures: u64,
    pub audit: Option<AuditFacts>,
    pub redis: Option<RedisFacts>,
    /// The shared document store, when this replica follows one (`[store] backend = "redis"`).
    pub store: Option<StoreFacts>,
    /// Certificates and CRLs the gateway relies on, with the seconds left until they expire (negative: expired).
    pub certificates: Vec<Expiry>,
    /// Readiness, as `/health/ready` answers it.
    pub ready: bool,
}

/// The audit trail's state.
#[derive(Debug, Default)]
pub struct AuditFacts {
    /// Records waiting for the writer.
    pub queue_depth: u64,
    pub queue_capacity: u64,
    /// Whether the trail can be written.
    pub writable: bool,
    /// Records (and checkpoints) written since start.
    pub records_written: u64,
    /// Latency of each fsync of the trail.
    pub fsync: HistogramValue,
}

/// The shared rate-limit store's state.
#[derive(Debug, Default)]
pub struct RedisFacts {
    pub up: bool,
    /// Times Redis went from reachable to unreachable (the fallback took over).
    pub fallback_switches: u64,
    /// Requests the fallback decided.
    pub fallback_requests: u64,
}

/// The shared document store as this replica follows it.
#[derive(Debug, Default)]
pub struct StoreFacts {
    /// Whether the replica is connected to the store and following its changes.
    pub up: bool,
    /// The store generation of the documents this replica serves.
    pub generation: u64,
    /// Full reloads after a reconnect or a gap in the change stream.
    pub resyncs: u64,
}

/// One certificate (or CRL) and the time left until it expires.
#[derive(Clone, Debug)]
pub struct Expiry {
    /// `server`, `client_ca`, `crl` (its next update) or `client`.
    pub kind: &'static str,
    /// What it is: the client's id, or the certificate's subject common name (configuration, not a request).
    pub name: String,
    pub seconds_left: f64,
}

fn register_facts(registry: &mut Registry, facts: &Facts) {
    registry.register(
        "snapshot_generation",
        "Generation of the snapshot serving requests",
        Gauges(vec![(Vec::new(), facts.snapshot_generation as f64)]),
    );
    registry.register(
        "reload_failures",
        "Reloads rejected (the previous snapshot kept serving)",
        Counters(vec![(Vec::new(), facts.reload_failures)]),
    );
    registry.register(
        "ready",
        "1 when /health/ready answers 200",
        Gauges(vec![(Vec::new(), f64::from(u8::from(facts.ready)))]),
    );
    if let Some(audit) = &facts.audit {
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for the writer",
            Gauges(vec![(Vec::new(), audit.queue_depth as f64)]),
        );
        registry.register(
            "audit_queue_capacity",
            "Capacity of the audit writer's queue",
            Gauges(vec![(Vec::new(), audit.queue_capacity as f64)]),
        );
        registry.register(
            "audit_writable",
            "1 while the audit trail can be written",
            Gauges(vec![(Vec::new(), f64::from(u8::from(audit.writable)))]),
        );
        registry.register(
            "audit_records_written",
            "Audit records and checkpoints written since start",
            Counters(vec![(Vec::new(), audit.records_written)]),
        );
        registry.register_with_unit(
            "audit_fsync_duration",
            "Latency of the audit trail's fsyncs",
            Unit::Seconds,
            Histograms(vec![(Vec::new(), audit.fsync.clone())]),
        );
    }
    if let Some(redis) = &facts.redis {
        registry.register(
            "redis_up",
            "1 while the shared rate-limit store is reachable",
            Gauges(vec![(Vec::new(), f64::from(u8::from(redis.up)))]),
        );
        registry.register(
            "redis_fallback_switches",
            "Times the shared rate-limit store became unreachable and the fallback took over",
            Counters(vec![(Vec::new(), redis.fallback_switches)]),
        );
        registry.register(
            "redis_fallback_requests",
            "Requests the fallback decided while the shared rate-limit store was unreachable",
            Counters(vec![(Vec::new(), redis.fallback_requests)]),
        );
    }
    if let Some(store) = &facts.store {
        registry.register(
            "store_up",
            "1 while this replica follows the shared document store",
            Gauges(vec![(Vec::new(), f64::from(u8::from(store.up)))]),
        );
        registry.register(
            "store_generation",
            "Store generation of the documents this replica serves",
            Gauges(vec![(Vec::new(), store.generation as f64)]),
        );
        registry.register(
            "store_resyncs",
            "Full reloads of the shared store after a reconnect or a gap in its change stream",
            Counters(vec![(Vec::new(), store.resyncs)]),
        );
    }
    let expiry = facts
        .certificates
        .iter()
        .map(|e| (labels(&[("kind", e.kind), ("name", &certificate_name(&e.name))]), e.seconds_left))
        .collect();
    registry.register_with_unit(
        "certificate_expiry",
        "Time left until a certificate expires or a CRL is due for its next update (negative: past it)",
        Unit::Seconds,
        Gauges(expiry),
    );
}

/// A certificate's name as a label value: its common name comes from a file, not a request, but may hold any
/// character; what would need escaping becomes `_`, and it is cut at 64 characters.
fn certificate_name(name: &str) -> String {
    name.chars().take(64).map(|c| if c.is_ascii_alphanumeric() || " -_./:@".contains(c) { c } else { '_' }).collect()
}

type Labels = Vec<(&'static str, String)>;

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

fn add(rows: &mut Vec<(Labels, u64)>, key: &Labels, value: u64) {
    match rows.iter_mut().find(|(l, _)| l == key) {
        Some((_, total)) => *total += value,
        None => rows.push((key.clone(), value)),
    }
}

/// A counter family's rows, read at scrape time.
#[derive(Debug)]
struct Counters(Vec<(Labels, u64)>);

impl EncodeMetric for Counters {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, value) in &self.0 {
            if labels.is_empty() {
                encoder.encode_counter::<NoLabelSet, _, u64>(value, None)?;
            } else {
                encoder.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(value, None)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// A gauge family's rows.
#[derive(Debug)]
struct Gauges(Vec<(Labels, f64)>);

impl EncodeMetric for Gauges {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, value) in &self.0 {
            if labels.is_empty() {
                encoder.encode_gauge(value)?;
            } else {
                encoder.encode_family(labels)?.encode_gauge(value)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

/// A histogram family's rows.
#[derive(Debug)]
struct Histograms(Vec<(Labels, HistogramValue)>);

impl EncodeMetric for Histograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            if labels.is_empty() {
                encoder.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
            } else {
                encoder.encode_family(labels)?.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// In the 0.0.4 format a counter's `# HELP` names the samples (`…_total`), like its `# TYPE` line.
fn fix_counter_help(text: String) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len() + 256);
    for (i, line) in lines.iter().enumerate() {
        if let (Some(rest), Some(next)) = (line.strip_prefix("# HELP "), lines.get(i + 1)) {
            if let Some(name) = next.strip_prefix("# TYPE ").and_then(|t| t.strip_suffix("_total counter")) {
                if let Some(help) = rest.strip_prefix(name).filter(|h| h.starts_with(' ')) {
                    out.push_str("# HELP ");
                    out.push_str(name);
                    out.push_str("_total");
                    out.push_str(help);
                    out.push('\n');
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One shared string per text, as a snapshot holds it (the same address each time).
    fn label(text: &'static str) -> &'static Arc<str> {
        static LABELS: Mutex<Vec<&'static Arc<str>>> = Mutex::new(Vec::new());
        let mut labels = LABELS.lock().unwrap();
        if let Some(label) = labels.iter().find(|l| ****l == *text) {
            return label;
        }
        let label: &'static Arc<str> = Box::leak(Box::new(Arc::from(text)));
        labels.push(label);
        label
    }

    fn request(
        service: &'static str,
        caller: &'static str,
        status: u16,
        code: Option<&'static str>,
    ) -> Observation<'static> {
        Observation {
            service: Some(label(service)),
            provider_opd: Some(label("dinkes")),
            caller_opd: Some(label(caller)),
            operation: Some(label("get-pasien")),
            status,
            code,
            duration: Duration::from_millis(3),
            upstream: Some(Duration::from_millis(2)),
            bytes_in: 10,
            bytes_out: 100,
            redacted: false,
        }
    }

    #[test]
    fn requests_are_counted_per_label_set() {
        let metrics = Metrics::new();
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 403, Some("policy.no_grant")));
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 429, Some("ratelimit.exceeded")));
        let text = metrics.encode_prometheus(&Facts::default());
        assert!(
            text.contains(r#"penghubung_requests_total{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud",operation="get-pasien",status_class="2xx",code="-"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"penghubung_denials_total{service="dinkes/pasien/v1",caller_opd="rsud",code="policy.no_grant"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"penghubung_ratelimit_refusals_total{service="dinkes/pasien/v1",caller_opd="rsud",code="ratelimit.exceeded"} 1"#), "{text}");
        assert!(text.contains(r#"penghubung_request_bytes_total{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud"} 40"#), "{text}");
        assert!(text.contains("# TYPE penghubung_requests_total counter"), "{text}");
        assert!(text.contains("# HELP penghubung_requests_total "), "{text}");
        assert!(text.contains(r#"penghubung_request_duration_seconds_bucket{le="0.005",service="dinkes/pasien/v1",provider_opd="dinkes",status_class="2xx"} 2"#), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
        let open = metrics.encode_openmetrics(&Facts::default());
        assert!(open.ends_with("# EOF\n") && open.contains("# TYPE penghubung_requests counter"), "{open}");
    }

    #[test]
    fn every_thread_and_every_metrics_value_counts_apart() {
        let (first, second) = (Arc::new(Metrics::new()), Metrics::new());
        let threads: Vec<_> = (0..SHARDS + 2)
            .map(|_| {
                let metrics = Arc::clone(&first);
                std::thread::spawn(move || {
                    for i in 0..100 {
                        // More label combinations than a thread keeps, so kept series are replaced too.
                        let code = [None, Some("policy.no_grant"), Some("upstream.timeout"), Some("x.y"), Some("y.z")];
                        metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, code[i % 5]));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // The same labels on this thread for two `Metrics` values: each counts its own.
        first.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        second.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        let text = first.encode_prometheus(&Facts::default());
        let ok = r#"penghubung_requests_total{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud",operation="get-pasien",status_class="2xx",code="-"}"#;
        assert!(text.contains(&format!("{ok} {}\n", (SHARDS + 2) * 20 + 1)), "{text}");
        assert!(text.contains(&format!(r#"penghubung_request_bytes_total{{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud"}} {}"#, ((SHARDS + 2) * 100 + 1) * 10)), "{text}");
        assert!(text.contains(&format!(r#"penghubung_request_duration_seconds_count{{service="dinkes/pasien/v1",provider_opd="dinkes",status_class="2xx"}} {}"#, (SHARDS + 2) * 100 + 1)), "{text}");
        let text = second.encode_prometheus(&Facts::default());
        assert!(text.contains(&format!("{ok} 1\n")), "{text}");
        assert!(!text.contains("policy.no_grant"), "{text}");
    }

    #[test]
    fn a_reloaded_snapshot_counts_into_the_same_series() {
        let metrics = Metrics::new();
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        // The same texts at other addresses (a new snapshot's strings), while the old ones are still kept.
        let (service, provider, caller) = (Arc::from("dinkes/pasien/v1"), Arc::from("dinkes"), Arc::from("rsud"));
        let reloaded = Observation {
            service: Some(&service),
            provider_opd: Some(&provider),
            caller_opd: Some(&caller),
            ..request("dinkes/pasien/v1", "rsud", 200, None)
        };
        metrics.observe(&reloaded);
        metrics.observe(&reloaded);
        // Absent labels are `-`, and a code spelled at another address is the same code.
        let code = String::from("policy.no_grant").leak();
        let unrouted = Observation { service: None, provider_opd: None, operation: None, ..reloaded };
        metrics.observe(&Observation { status: 403, code: Some("policy.no_grant"), ..unrouted });
        metrics.observe(&Observation { status: 403, code: Some(code), ..unrouted });
        let text = metrics.encode_prometheus(&Facts::default());
        assert!(text.contains(r#"penghubung_requests_total{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud",operation="get-pasien",status_class="2xx",code="-"} 3"#), "{text}");
        assert!(text.contains(r#"penghubung_requests_total{service="-",provider_opd="-",caller_opd="rsud",operation="-",status_class="4xx",code="policy.no_grant"} 2"#), "{text}");
        assert_eq!(text.matches("penghubung_requests_total{").count(), 2, "{text}");
    }

    #[test]
    fn a_request_is_counted_when_its_thread_cannot_reach_its_cache() {
        let metrics = Metrics::new();
        // Inside the cache's borrow (as while the thread's cache is being dropped): the shared table serves.
        Recent::with(|_| metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, None))).unwrap();
        metrics.observe(&request("dinkes/pasien/v1", "rsud", 200, None));
        let text = metrics.encode_prometheus(&Facts::default());
        assert!(text.contains(r#"penghubung_requests_total{service="dinkes/pasien/v1",provider_opd="dinkes",caller_opd="rsud",operation="get-pasien",status_class="2xx",code="-"} 2"#), "{text}");
    }

    #[test]
    fn label_values_compare_by_every_byte() {
        for (a, b) in [
            ("", ""),
            ("-", "-"),
            ("rsud", "rsud"),
            ("dinkes/pasien/v1", "dinkes/pasien/v1"),
            ("abcdefghi", "abcdefghi"),
        ] {
            assert!(same_text(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("-", "x"),
            ("rsud", "rsuD"),
            ("dinkes/pasien/v1", "dinkes/pasien/v2"),
            ("abcdefghi", "abcdefgh"),
            ("xbcdefghi", "abcdefghi"),
            ("abcdefghijklmnopq", "abcdefghXjklmnopq"),
        ] {
            assert!(!same_text(a, b), "{a} {b}");
        }
    }

    #[test]
    fn an_external_counter_is_read_at_scrape_time() {
        let metrics = Metrics::new();
        let dropped = Arc::new(AtomicU64::new(0));
        metrics.register_counter("penghubung_trace_spans_dropped", "Spans dropped", Arc::clone(&dropped));
        dropped.store(7, Ordering::Relaxed);
        let text = metrics.encode_prometheus(&Facts::default());
        assert!(text.contains("penghubung_trace_spans_dropped_total 7"), "{text}");
    }

    #[test]
    fn certificate_names_need_no_escaping() {
        let facts = Facts {
            certificates: vec![Expiry { kind: "client_ca", name: "CA \"Dinas\"\\\n".into(), seconds_left: 5.0 }],
            ..Facts::default()
        };
        let text = Metrics::new().encode_prometheus(&facts);
        assert!(
            text.contains(r#"penghubung_certificate_expiry_seconds{kind="client_ca",name="CA _Dinas___"} 5.0"#),
            "{text}"
        );
    }

    #[test]
    fn handshakes_by_outcome_and_reason() {
        let metrics = Metrics::new();
        metrics.handshake_accepted();
        metrics.handshake_refused("tls.unknown_ca");
        metrics.handshake_refused("tls.unknown_ca");
        let text = metrics.encode_prometheus(&Facts::default());
        assert!(
            text.contains(r#"penghubung_tls_handshakes_total{outcome="refused",reason="tls.unknown_ca"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"penghubung_tls_handshakes_total{outcome="accepted",reason="-"} 1"#), "{text}");
    }
}
