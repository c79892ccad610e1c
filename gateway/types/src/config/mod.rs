//! The static process config (`penghubung.toml`): listeners, store location, timeouts, body limits, logging,
//! rate limits and the Redis that shares them.
//! Unknown keys are errors; every problem is reported with its line. Documents (services, clients, ...)
//! are *not* here: they live in the store and are hot-reloaded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnostics::Diagnostic;
pub mod jwt;
pub mod redis_url;
pub use jwt::{ClientCertificateMode, JwtAlgorithm, JwtIssuerConfig};
pub use redis_url::{redacted_url, RedisTarget, SentinelTarget};
// The units sit below both the config and the documents; `config::units` and `config::ByteSize` stay valid paths.
pub use crate::units::{self, ByteSize, HumanDuration};

/// The default of `server.request_body_timeout`.
pub const DEFAULT_REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// The embedded default config, used when no `--config` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The nesting limit of JSON bodies when the config sets none: arrays and objects inside each other, 128 deep.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// The largest nesting limit the config accepts (reading and validating stay well within a thread's stack).
pub const MAX_DEPTH_CEILING: usize = 512;

/// The whole process config.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the data plane listens. At least one.
    #[serde(default = "default_listeners")]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub upstream: UpstreamDefaults,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub reload: ReloadConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default)]
    pub ratelimit: RateLimitConfig,
    /// Cluster-wide rate limits: every replica pointed at the same Redis shares the limits. Absent: each
    /// process limits on its own (local mode).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    #[serde(default)]
    pub audit: AuditConfig,
    /// TLS of the data plane; required unless every listener is `plaintext = true`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Where the credentials of national systems come from (adapters name them; documents never hold them).
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Token issuers trusted for national callers on listeners with `client_certificate = "optional"`.
    #[serde(default)]
    pub jwt_issuers: Vec<JwtIssuerConfig>,
    /// The management plane's admin API listener. Absent: no admin listener.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    /// OpenTelemetry traces sent to an OTLP/HTTP collector. Without an `endpoint`: no traces.
    #[serde(default)]
    pub traces: TracesConfig,
    /// The ops listener (`/metrics`, `/health/live`, `/health/ready`): plain HTTP for the internal network.
    /// Absent: no ops listener (the embedded default, `init` and the demo write the section).
    #[serde(default)]
    pub ops: Option<OpsConfig>,
    /// The web console on the admin listener: sign-in limits, sessions, where operators' credentials live.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Directory relative paths are resolved against (the config file's directory). Not read from the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One data-plane listener.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A name used in logs.
    #[serde(default = "default_listener_name")]
    pub name: String,
    /// `ip:port`; port 0 picks a free port.
    pub address: SocketAddr,
    /// Serve plain HTTP without client certificates. For local development only: `penghubung check` warns.
    #[serde(default)]
    pub plaintext: bool,
    /// `required` (default) or `optional`: without a certificate a request must carry a bearer token from one
    /// of the `[[jwt_issuers]]`.
    #[serde(default)]
    pub client_certificate: ClientCertificateMode,
}

/// Data-plane TLS: the server certificate, the CAs trusted for client certificates, and CRLs. Every file is
/// watched and reloaded on change.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the gateway.
    pub cert_file: PathBuf,
    /// PEM private key of the gateway.
    pub key_file: PathBuf,
    /// PEM bundles of the CAs whose client certificates are accepted (e.g. BSrE, or the Dinas's own CA).
    pub client_ca_files: Vec<PathBuf>,
    /// PEM CRLs, checked on every handshake and, for open connections, on every request.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
    /// How often the files are checked for changes.
    #[serde(default = "d2s")]
    pub reload_interval: HumanDuration,
    /// A TLS handshake must complete within this.
    #[serde(default = "d10s")]
    pub handshake_timeout: HumanDuration,
    /// When the files are missing, create a development CA and server certificate there (the embedded
    /// default does this so `penghubung serve` starts on a bare machine).
    #[serde(default)]
    pub generate_if_missing: bool,
}

/// The admin API's listener (`[admin]`): its own TLS listener for operators, apart from the data plane.
/// The certificate and key default to `[tls]`'s server certificate, the operators' CA to the gateway CA (the
/// first of `[tls] client_ca_files`). A client certificate is requested, not required: a request without one
/// is answered 401 by the API itself, which leaves room for other logins.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Serve the admin API (default `true` once the section is present).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `ip:port`; port 0 picks a free port.
    #[serde(default = "default_admin_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain of the admin listener (default: `[tls] cert_file`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the admin listener (default: `[tls] key_file`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// PEM bundle of the CA that issues operator certificates (default: the first `[tls] client_ca_files`).
    #[serde(default)]
    pub operator_ca_file: Option<PathBuf>,
    /// A TLS handshake must complete within this.
    #[serde(default = "d10s")]
    pub handshake_timeout: HumanDuration,
    /// Largest request body the API reads (a store import is the largest).
    #[serde(default = "default_admin_max_body")]
    pub max_body: ByteSize,
}

/// The ops listener (`[ops]`): Prometheus metrics and the liveness and readiness probes, over plain HTTP, for
/// scrapers and load balancers on the internal network (no client certificate).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Serve the ops listener (default `true` once the section is present).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `ip:port` (default `127.0.0.1:9090`); port 0 picks a free port.
    #[serde(default = "default_ops_listen")]
    pub listen: SocketAddr,
    /// Collect and serve metrics (`/metrics`); `false` leaves the probes alone and the request path untouched.
    #[serde(default = "yes")]
    pub metrics: bool,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig { enabled: true, listen: default_ops_listen(), metrics: true }
    }
}

fn default_ops_listen() -> SocketAddr {
    ([127, 0, 0, 1], 9090).into()
}

/// The web console (`[console]`), served on the admin listener beside the API.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Failed sign-ins of one username within `lockout_window` before it is locked for the rest of the window.
    #[serde(default = "default_failures_per_user")]
    pub max_failures_per_user: u32,
    /// Failed sign-ins from one address within `lockout_window` before it is locked.
    #[serde(default = "default_failures_per_address")]
    pub max_failures_per_address: u32,
    #[serde(default = "d15m")]
    pub lockout_window: HumanDuration,
    /// A session unused this long ends.
    #[serde(default = "d15m")]
    pub session_idle_timeout: HumanDuration,
    /// A session ends this long after its sign-in, used or not.
    #[serde(default = "d8h")]
    pub session_absolute_timeout: HumanDuration,
    /// Where the operators' console credentials (argon2id password hashes, TOTP secrets) are kept, one 0600 file
    /// each (default: `console-credentials` beside the store directory). Never inside the store: the store is
    /// journaled and exported in clear.
    #[serde(default)]
    pub credentials_dir: Option<PathBuf>,
    /// Where signed-in sessions are kept: `memory` (this process only) or `redis` (shared by every replica
    /// through `[redis]`, so a session made on one replica is valid on the others). Absent: `redis` when the
    /// store is on Redis (`[store] backend = "redis"`: replicas behind one balancer), else `memory`; see
    /// [`Config::console_sessions`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionsBackend>,
}

/// Where the console keeps its sessions (`[console] sessions`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SessionsBackend {
    /// In this process: lost on restart, not seen by other replicas.
    #[default]
    Memory,
    /// In Redis (`[redis]`), shared by every replica.
    Redis,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            max_failures_per_user: default_failures_per_user(),
            max_failures_per_address: default_failures_per_address(),
            lockout_window: d15m(),
            session_idle_timeout: d15m(),
            session_absolute_timeout: d8h(),
            credentials_dir: None,
            sessions: None,
        }
    }
}

fn default_failures_per_user() -> u32 {
    5
}
fn default_failures_per_address() -> u32 {
    20
}
fn d15m() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}
fn d8h() -> HumanDuration {
    HumanDuration(Duration::from_secs(8 * 3600))
}

fn default_admin_listen() -> SocketAddr {
    ([127, 0, 0, 1], 9443).into()
}

fn default_admin_max_body() -> ByteSize {
    ByteSize(32 << 20)
}

/// The admin listener's TLS files, each resolved against the config's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub operator_ca_file: PathBuf,
}

impl Config {
    /// The admin section when the admin listener is on.
    pub fn admin_enabled(&self) -> Option<&AdminConfig> {
        self.admin.as_ref().filter(|admin| admin.enabled)
    }

    /// The ops section when the ops listener is on.
    pub fn ops_enabled(&self) -> Option<&OpsConfig> {
        self.ops.as_ref().filter(|ops| ops.enabled)
    }

    /// Whether metrics are collected (an ops listener with `metrics = true`).
    pub fn metrics_enabled(&self) -> bool {
        self.ops_enabled().is_some_and(|ops| ops.metrics)
    }

    /// The admin listener's certificate, key and operator CA, with `[tls]`'s as defaults; `Err` names what is
    /// missing.
    pub fn admin_tls_files(&self) -> Result<AdminTlsFiles, String> {
        let admin = self.admin.as_ref().ok_or("no [admin] section")?;
        let tls = self.tls.as_ref();
        let pick = |own: &Option<PathBuf>, fallback: Option<&PathBuf>, what: &str| {
            own.as_ref()
                .or(fallback)
                .map(|p| self.resolve(p))
                .ok_or_else(|| format!("[admin] {what} is not set and there is no [tls] section to take it from"))
        };
        Ok(AdminTlsFiles {
            cert_file: pick(&admin.cert_file, tls.map(|t| &t.cert_file), "cert_file")?,
            key_file: pick(&admin.key_file, tls.map(|t| &t.key_file), "key_file")?,
            operator_ca_file: pick(
                &admin.operator_ca_file,
                tls.and_then(|t| t.client_ca_files.first()),
                "operator_ca_file",
            )?,
        })
    }
}

/// Where documents are kept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the embedded store (relative to the config file).
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// Fill an empty or missing store directory with the production skeleton shipped in the binary (default
    /// tiers, the Dinas's OPD, shared schemas; the demo's sample data only in `penghubung demo`).
    #[serde(default = "yes")]
    pub seed_baseline: bool,
    /// Where the documents live: the folder `path` (`dir`), or Redis (`redis`, shared by every replica; needs
    /// `[redis]`).
    #[serde(default)]
    pub backend: StoreBackend,
    /// With `backend = "redis"`: the prefix of every key of the store (`{prefix}docs`, `{prefix}generation`, ...).
    #[serde(default = "default_store_redis_prefix")]
    pub redis_prefix: String,
}

/// The backend of the document store.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// One file per document under `[store] path` (the embedded store).
    #[default]
    Dir,
    /// A Redis hash shared by every replica, with a change stream they follow.
    Redis,
}

fn default_store_redis_prefix() -> String {
    "penghubung:store:".to_string()
}

/// Connection handling of the data plane.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[serde(default = "d30s")]
    pub shutdown_grace: HumanDuration,
    /// A client must send its request head within this time (slowloris protection).
    #[serde(default = "d10s")]
    pub header_read_timeout: HumanDuration,
    /// A caller that takes none of its response for this long is disconnected (it stopped reading).
    #[serde(default = "d60s")]
    pub send_timeout: HumanDuration,
    /// Total size of request headers; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: ByteSize,
    /// Length of the request target (path and query); longer gets 414.
    #[serde(default = "default_max_uri_bytes")]
    pub max_uri_bytes: ByteSize,
    /// HTTP/2 streams per connection.
    #[serde(default = "default_h2_streams")]
    pub http2_max_concurrent_streams: u32,
    /// A connection with no request in flight for this long is closed (HTTP/2: with GOAWAY). Pings and other
    /// control frames are not activity. Its first request must come within `header_read_timeout`.
    #[serde(default = "d60s")]
    pub idle_timeout: HumanDuration,
    /// A request body streamed to the upstream must have arrived whole within this, counted from when it starts
    /// to be forwarded; else 408 `request.body_timeout` and the upstream connection is closed.
    #[serde(default = "default_request_body_timeout")]
    pub request_body_timeout: HumanDuration,
    /// Open data-plane connections at most; a new one past it is closed at once (TLS: before the handshake).
    /// 0 = sized from the file-handle limit (raised to its hard limit at start).
    #[serde(default)]
    pub max_connections: usize,
    /// Open connections per client: per certificate fingerprint on mTLS listeners, per peer IP on plaintext
    /// ones. 0 = a quarter of `max_connections`.
    #[serde(default)]
    pub max_connections_per_client: usize,
    /// Runtime worker threads; 0 means one per CPU core.
    #[serde(default)]
    pub worker_threads: usize,
}

/// Defaults for upstream calls; a service may override timeouts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDefaults {
    #[serde(default = "d2s")]
    pub connect_timeout: HumanDuration,
    /// Time until the upstream's response head arrives, and the longest its body may then pause.
    #[serde(default = "d30s")]
    pub request_timeout: HumanDuration,
    #[serde(default = "d90s")]
    pub pool_idle_timeout: HumanDuration,
    #[serde(default = "default_pool_idle")]
    pub pool_max_idle_per_host: usize,
    /// Extra PEM bundles trusted for HTTPS upstreams.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// Also trust the system bundle (`/etc/ssl/certs/ca-certificates.crt`) for HTTPS upstreams.
    #[serde(default = "yes")]
    pub trust_system_roots: bool,
}

/// Request limits.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Default maximum request body; a service may set its own. Over the limit gets 413.
    #[serde(default = "default_max_body")]
    pub max_request_body: ByteSize,
    /// Largest upstream response read whole to check it against its contract; a larger one is a 502.
    #[serde(default = "default_max_checked_response")]
    pub max_checked_response: ByteSize,
    /// How deep arrays and objects may nest in a body under a contract (requests and checked responses), the
    /// same whichever validator decides; deeper is 400 `contract.too_deep`. At most
    /// [`MAX_DEPTH_CEILING`].
    #[serde(default = "default_max_json_depth")]
    pub max_json_depth: usize,
}

fn default_max_json_depth() -> usize {
    DEFAULT_MAX_DEPTH
}

fn default_max_checked_response() -> ByteSize {
    ByteSize(8 * 1024 * 1024)
}

/// Logging.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `penghubung=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_level")]
    pub level: String,
    /// One line per request (target `penghubung::access`).
    #[serde(default = "yes")]
    pub access_log: bool,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Access policy.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Decide every request: deny unless granted. `false` forwards every routed request without any decision
    /// (no identity required, no grants, no redaction): only for measuring the bare proxy, never in production.
    #[serde(default = "yes")]
    pub enforce: bool,
    /// Largest response body buffered to withhold classified fields; a larger one fails closed with 502.
    #[serde(default = "default_max_redacted_body")]
    pub max_redacted_body: ByteSize,
}

fn default_max_redacted_body() -> ByteSize {
    ByteSize(8 * 1024 * 1024)
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { enforce: true, max_redacted_body: default_max_redacted_body() }
    }
}

/// Rate limits and quotas (tiers, client, service and OPD limits in the documents).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `false` switches every limit off (benchmarking only).
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Where cluster-wide limits are kept, and what happens when that place cannot be reached.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `redis://:password@host:port`), or a Sentinel deployment:
    /// `redis+sentinel://[:password@]host:port[,host:port...]/master_name[/db]` ([`RedisTarget`]).
    pub url: String,
    /// Every Redis call must answer within this; otherwise the fallback applies to that request.
    #[serde(default = "default_redis_timeout")]
    pub timeout: HumanDuration,
    /// What a request meets while Redis is unreachable.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// How many gateway replicas share the limits: with `local_fallback` each replica then enforces
    /// 1/`replicas` of every quota on its own.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Prefix of every key the gateway writes.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Longest wait between two reconnection attempts (the wait doubles from 50 ms up to this).
    #[serde(default = "d2s")]
    pub max_reconnect_backoff: HumanDuration,
}

/// Traces (`[traces]`): one span per request and one per pipeline phase, sampled by ratio (a caller's sampled
/// `traceparent` is always followed), exported over OTLP/HTTP with protobuf bodies.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TracesConfig {
    /// The collector's OTLP/HTTP traces URL, `http://host:port/v1/traces`. Absent: tracing is off.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The share of requests without a caller's trace context that are traced, 0.0 to 1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// The `service.name` resource attribute of every span.
    #[serde(default = "default_trace_service_name")]
    pub service_name: String,
    /// Finished spans waiting for export; past this, new spans are dropped and counted.
    #[serde(default = "default_trace_queue")]
    pub queue_size: usize,
    /// One export request must finish within this; otherwise its spans are dropped and counted.
    #[serde(default = "d5s")]
    pub export_timeout: HumanDuration,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig {
            endpoint: None,
            sample_ratio: default_sample_ratio(),
            service_name: default_trace_service_name(),
            queue_size: default_trace_queue(),
            export_timeout: d5s(),
        }
    }
}

fn default_sample_ratio() -> f64 {
    0.01
}
fn default_trace_service_name() -> String {
    "penghubung".to_string()
}
fn default_trace_queue() -> usize {
    2048
}

/// What a rate-limited request meets while Redis is unreachable.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Each replica enforces its share (quota / `replicas`) in process.
    #[default]
    LocalFallback,
    /// Admit without limits.
    FailOpen,
    /// Refuse with 503 `ratelimit.unavailable`.
    FailClosed,
}

fn default_redis_timeout() -> HumanDuration {
    HumanDuration(Duration::from_millis(50))
}
fn default_replicas() -> u32 {
    1
}
fn default_key_prefix() -> String {
    "penghubung:rl:".to_string()
}

/// The secrets store of the adapters: a secret named `n` is the environment variable `env[n]` when the map names
/// it, else the file `<dir>/n` (mode 0600 or 0400). Values are never written to documents, logs or answers.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Directory of secret files, relative to the config file. Absent: secrets only from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Secret name → environment variable holding its value.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
}

/// The audit trail (see the audit crate).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Keep an audit trail. Off when the section is absent; the embedded default turns it on.
    #[serde(default)]
    pub enabled: bool,
    /// Directory of the segment files.
    #[serde(default = "default_audit_dir")]
    pub dir: PathBuf,
    /// Ed25519 private key (PKCS#8 PEM, 0600) that signs checkpoints.
    #[serde(default = "default_audit_key")]
    pub key_file: PathBuf,
    /// Its public key (PEM), for auditors: `penghubung audit verify DIR --key FILE`.
    #[serde(default = "default_audit_public_key")]
    pub public_key_file: PathBuf,
    /// The Dinas's secret for keyed hashes of NIKs (hex, 0600).
    #[serde(default = "default_audit_nik_secret")]
    pub nik_secret_file: PathBuf,
    /// Create the key and the secret when missing.
    #[serde(default = "yes")]
    pub generate_if_missing: bool,
    /// For services whose document does not say: `sync` or `async`.
    #[serde(default)]
    pub durability: crate::documents::AuditDurability,
    /// A signed checkpoint after this many records...
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// ...or after this long, whichever comes first.
    #[serde(default = "d10s")]
    pub checkpoint_interval: HumanDuration,
    /// A new segment file after this size...
    #[serde(default = "default_segment_size")]
    pub segment_max_size: ByteSize,
    /// ...or this age.
    #[serde(default = "default_segment_age")]
    pub segment_max_age: HumanDuration,
    /// Records queued for the writer; when full, requests wait for a slot (never dropped).
    #[serde(default = "default_audit_queue")]
    pub queue_capacity: usize,
    /// Security events (refused TLS handshakes) written per reason per `security_event_interval`; beyond
    /// that they are counted into one summary event per interval.
    #[serde(default = "default_security_events")]
    pub security_events_per_interval: u32,
    #[serde(default = "d60s")]
    pub security_event_interval: HumanDuration,
    /// With `[redis]` configured: also ship every durable record to a Redis Stream (the audit trail's shipper).
    #[serde(default = "yes")]
    pub ship_to_redis: bool,
    /// The stream's key; `{gateway_id}` is replaced by [`AuditConfig::gateway_id`].
    #[serde(default = "default_audit_stream")]
    pub redis_stream: String,
    /// Names this replica in the stream key (replicas must not share a stream). Default: the host name.
    #[serde(default)]
    pub gateway_id: Option<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: default_audit_dir(),
            key_file: default_audit_key(),
            public_key_file: default_audit_public_key(),
            nik_secret_file: default_audit_nik_secret(),
            generate_if_missing: true,
            durability: Default::default(),
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval: d10s(),
            segment_max_size: default_segment_size(),
            segment_max_age: default_segment_age(),
            queue_capacity: default_audit_queue(),
            security_events_per_interval: default_security_events(),
            security_event_interval: d60s(),
            ship_to_redis: true,
            redis_stream: default_audit_stream(),
            gateway_id: None,
        }
    }
}

impl AuditConfig {
    /// This replica's id: `gateway_id`, else the host name, else `gateway`.
    pub fn gateway_id(&self) -> String {
        self.gateway_id.clone().filter(|id| !id.is_empty()).unwrap_or_else(host_name)
    }

    /// The key of the stream records are shipped to.
    pub fn stream_key(&self) -> String {
        self.redis_stream.replace("{gateway_id}", &self.gateway_id())
    }
}

/// The host name (`/proc/sys/kernel/hostname`, `HOSTNAME`), or `gateway`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_string())
}

fn default_audit_stream() -> String {
    "penghubung:audit:{gateway_id}".to_string()
}

fn default_audit_dir() -> PathBuf {
    PathBuf::from("audit")
}
fn default_audit_key() -> PathBuf {
    PathBuf::from("pki/audit-signing.key")
}
fn default_audit_public_key() -> PathBuf {
    PathBuf::from("pki/audit-signing.pub")
}
fn default_audit_nik_secret() -> PathBuf {
    PathBuf::from("pki/audit-nik.secret")
}
fn default_security_events() -> u32 {
    20
}
fn default_checkpoint_every() -> u64 {
    1000
}
fn default_segment_size() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_segment_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}
fn default_audit_queue() -> usize {
    8192
}

/// Picking up document changes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the store directory for changes (SIGHUP always reloads).
    #[serde(default = "yes")]
    pub watch: bool,
    /// Changes closer together than this are applied as one reload.
    #[serde(default = "default_debounce")]
    pub debounce: HumanDuration,
}

impl Config {
    /// Parses a config text. `file` names it in diagnostics; `base_dir` anchors relative paths.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, Vec<Diagnostic>> {
        let mut config: Config = toml::from_str(text)
            .map_err(|e| vec![Diagnostic::error_at(file, text, e.span(), e.message().to_string())])?;
        config.base_dir = base_dir.to_path_buf();
        let problems = config.validate(file, text);
        if problems.iter().any(Diagnostic::is_error) {
            return Err(problems);
        }
        Ok(config)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![Diagnostic::error(&file, format!("cannot read config: {e}"))])?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::parse(&text, &file, &base)
    }

    /// The embedded default config, anchored at `base_dir`.
    pub fn embedded_default(base_dir: &Path) -> Config {
        Config::parse(DEFAULT_CONFIG, "<embedded default>", base_dir)
            .unwrap_or_else(|problems| panic!("the embedded default config is invalid: {problems:?}"))
    }

    /// Semantic checks serde cannot do. Returns every problem found.
    fn validate(&self, file: &str, text: &str) -> Vec<Diagnostic> {
        let mut problems = Problems { file, text, found: Vec::new() };
        self.validate_listeners(&mut problems);
        self.validate_tls(&mut problems);
        self.validate_limits_and_timeouts(&mut problems);
        self.validate_upstream_and_redis(&mut problems);
        self.validate_audit(&mut problems);
        self.validate_jwt(&mut problems);
        self.validate_admin(&mut problems);
        self.validate_traces(&mut problems);
        self.validate_console(&mut problems);
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.at("level", format!("log level `{}`: {e}", self.log.level));
        }
        problems.found
    }

    /// At least one listener, no address used twice.
    fn validate_listeners(&self, problems: &mut Problems<'_>) {
        if self.listeners.is_empty() {
            problems.at("listeners", "at least one listener is needed");
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.listeners {
            if l.address.port() != 0 && !seen.insert(l.address) {
                problems.at("address", format!("listener address {} is used twice", l.address));
            }
        }
    }

    /// A `[tls]` section when a listener needs one, with the files it names present.
    fn validate_tls(&self, problems: &mut Problems<'_>) {
        let needs_tls = self.listeners.iter().any(|l| !l.plaintext);
        match &self.tls {
            None if needs_tls => problems.at(
                "listeners",
                "a listener without `plaintext = true` needs a [tls] section (cert_file, key_file, client_ca_files)",
            ),
            Some(tls) if !tls.generate_if_missing => {
                let files =
                    [&tls.cert_file, &tls.key_file].into_iter().chain(&tls.client_ca_files).chain(&tls.crl_files);
                for f in files {
                    let path = self.resolve(f);
                    if !path.is_file() {
                        problems.at_first(
                            &[&f.display().to_string(), "tls"],
                            format!("TLS file {} does not exist", path.display()),
                        );
                    }
                }
                if tls.client_ca_files.is_empty() {
                    problems.at("client_ca_files", "client_ca_files needs at least one CA bundle");
                }
            }
            _ => {}
        }
    }

    /// Head and depth limits within their bounds, every timeout above zero.
    fn validate_limits_and_timeouts(&self, problems: &mut Problems<'_>) {
        if self.server.max_header_bytes.0 < 1024 {
            problems.at("max_header_bytes", "max_header_bytes must be at least 1024");
        }
        if self.server.max_uri_bytes.0 < 64 {
            problems.at("max_uri_bytes", "max_uri_bytes must be at least 64");
        }
        let ceiling = MAX_DEPTH_CEILING;
        if !(1..=ceiling).contains(&self.limits.max_json_depth) {
            problems.at("max_json_depth", format!("max_json_depth must be between 1 and {ceiling}"));
        }
        if self.server.send_timeout.0.is_zero() {
            problems.at("send_timeout", "send_timeout must be above zero");
        }
        if self.server.header_read_timeout.0.is_zero() {
            problems.at("header_read_timeout", "header_read_timeout must be above zero");
        }
        if self.server.idle_timeout.0.is_zero() {
            problems.at("idle_timeout", "idle_timeout must be above zero");
        }
        if self.server.request_body_timeout.0.is_zero() {
            problems.at("request_body_timeout", "request_body_timeout must be above zero");
        }
        if self.upstream.connect_timeout.0.is_zero() {
            problems.at("connect_timeout", "connect_timeout must be above zero");
        }
        if self.upstream.request_timeout.0.is_zero() {
            problems.at("request_timeout", "request_timeout must be above zero");
        }
    }

    /// The upstream CA files present, and a usable `[redis]` section.
    fn validate_upstream_and_redis(&self, problems: &mut Problems<'_>) {
        for ca in &self.upstream.ca_files {
            let path = self.resolve(ca);
            if !path.is_file() {
                problems.at("ca_files", format!("upstream CA file {} does not exist", path.display()));
            }
        }
        if let Some(redis) = &self.redis {
            if let Err(e) = RedisTarget::parse(&redis.url) {
                problems.at("url", format!("[redis] url {e}"));
            }
            if redis.timeout.0.is_zero() {
                problems.at("timeout", "[redis] timeout must be above zero");
            }
            if redis.replicas == 0 {
                problems.at("replicas", "[redis] replicas must be at least 1");
            }
        }
        if self.store.backend == StoreBackend::Redis {
            if self.redis.is_none() {
                problems.at("backend", "[store] backend = \"redis\" needs a [redis] section with the server's url");
            }
            if self.store.redis_prefix.trim().is_empty() {
                problems.at("redis_prefix", "[store] redis_prefix must not be empty");
            }
        }
    }

    /// A usable `[audit]` section when the audit trail is on.
    fn validate_audit(&self, problems: &mut Problems<'_>) {
        if self.audit.enabled {
            if self.audit.queue_capacity == 0 {
                problems.at("queue_capacity", "queue_capacity must be above zero");
            }
            if self.audit.security_event_interval.0.is_zero() {
                problems.at("security_event_interval", "security_event_interval must be above zero");
            }
            if self.audit.checkpoint_interval.0.is_zero() {
                problems.at("checkpoint_interval", "checkpoint_interval must be above zero");
            }
            if self.audit.redis_stream.trim().is_empty() {
                problems.at("redis_stream", "redis_stream must not be empty");
            }
            if !self.audit.generate_if_missing && !self.resolve(&self.audit.key_file).is_file() {
                problems.at(
                    "key_file",
                    format!(
                        "audit key {} does not exist (create it with `penghubung audit keygen`)",
                        self.resolve(&self.audit.key_file).display()
                    ),
                );
            }
        }
    }

    /// Usable `[[jwt_issuers]]` with unique names, and optional client certificates only where tokens can be
    /// checked: on a TLS listener, with at least one issuer.
    fn validate_jwt(&self, problems: &mut Problems<'_>) {
        let mut names = std::collections::HashSet::new();
        for issuer in &self.jwt_issuers {
            for problem in issuer.problems() {
                problems.at_first(&["jwt_issuers"], problem);
            }
            if let Some(file) = &issuer.jwks_file {
                if !self.resolve(file).is_file() {
                    problems.at(
                        "jwks_file",
                        format!(
                            "jwt issuer `{}`: jwks_file {} does not exist",
                            issuer.name,
                            self.resolve(file).display()
                        ),
                    );
                }
            }
            if !names.insert(issuer.name.as_str()) {
                problems.at("jwt_issuers", format!("jwt issuer `{}` is defined twice", issuer.name));
            }
        }
        for l in self.listeners.iter().filter(|l| l.client_certificate == ClientCertificateMode::Optional) {
            if l.plaintext {
                problems.at(
                    "client_certificate",
                    format!("listener `{}`: client_certificate = \"optional\" needs TLS (bearer tokens never travel in clear)", l.name),
                );
            }
            if self.jwt_issuers.is_empty() {
                problems.at(
                    "client_certificate",
                    format!(
                        "listener `{}`: client_certificate = \"optional\" needs at least one [[jwt_issuers]]",
                        l.name
                    ),
                );
            }
        }
    }

    /// The `[[jwt_issuers]]` entry named `name`.
    pub fn jwt_issuer(&self, name: &str) -> Option<&JwtIssuerConfig> {
        self.jwt_issuers.iter().find(|i| i.name == name)
    }

    /// `[console]`: limits above zero, timeouts above zero, the absolute lifetime not below the idle one.
    fn validate_console(&self, problems: &mut Problems<'_>) {
        let console = &self.console;
        if console.max_failures_per_user == 0 {
            problems.at("max_failures_per_user", "[console] max_failures_per_user must be above zero");
        }
        if console.max_failures_per_address == 0 {
            problems.at("max_failures_per_address", "[console] max_failures_per_address must be above zero");
        }
        for (key, value) in [
            ("lockout_window", console.lockout_window),
            ("session_idle_timeout", console.session_idle_timeout),
            ("session_absolute_timeout", console.session_absolute_timeout),
        ] {
            if value.0.is_zero() {
                problems.at(key, format!("[console] {key} must be above zero"));
            }
        }
        if console.session_absolute_timeout.0 < console.session_idle_timeout.0 {
            problems.at(
                "session_absolute_timeout",
                "[console] session_absolute_timeout must not be below session_idle_timeout",
            );
        }
        if console.sessions == Some(SessionsBackend::Redis) && self.redis.is_none() {
            problems.at("sessions", "[console] sessions = \"redis\" needs a [redis] section (its url)");
        }
    }

    /// A usable `[admin]` section when the admin listener is on: TLS files it can take, an address of its own.
    fn validate_admin(&self, problems: &mut Problems<'_>) {
        let Some(admin) = self.admin_enabled() else { return };
        if let Err(e) = self.admin_tls_files() {
            problems.at("admin", e);
        }
        if admin.listen.port() != 0 && self.listeners.iter().any(|l| l.address == admin.listen) {
            problems.at("listen", format!("[admin] listen {} is also a data-plane listener", admin.listen));
        }
        if admin.handshake_timeout.0.is_zero() {
            problems.at("handshake_timeout", "[admin] handshake_timeout must be above zero");
        }
        if admin.max_body.0 == 0 {
            problems.at("max_body", "[admin] max_body must be above zero");
        }
    }

    /// Findings that do not stop the gateway but that an operator should see.
    pub fn warnings(&self, file: &str) -> Vec<Diagnostic> {
        let policy_off = (!self.policy.enforce).then(|| {
            Diagnostic::warning(
                file,
                "[policy] enforce = false: every routed request is forwarded without identity, grant or clearance \
                 checks (benchmarking only, never production)",
            )
        });
        self.listeners
            .iter()
            .filter(|l| l.plaintext)
            .map(|l| {
                Diagnostic::warning(
                    file,
                    format!(
                        "listener `{}` on {} is plaintext: no TLS, no client certificates, no caller identity (local development only)",
                        l.name, l.address
                    ),
                )
            })
            .chain(policy_off)
            .collect()
    }

    /// Resolves a path from the config against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Where the console keeps its sessions: `[console] sessions`, or when absent `redis` for a store on Redis
    /// (every replica must know a session made on another) and `memory` otherwise.
    pub fn console_sessions(&self) -> SessionsBackend {
        self.console.sessions.unwrap_or(match self.store.backend {
            StoreBackend::Redis => SessionsBackend::Redis,
            StoreBackend::Dir => SessionsBackend::Memory,
        })
    }

    /// The store directory, resolved.
    pub fn store_dir(&self) -> PathBuf {
        self.resolve(&self.store.path)
    }

    /// A usable `[traces]` section when it names an endpoint: a plain `http://` URL with a host (the exporter
    /// speaks to a collector on the internal network, without TLS), a ratio within 0–1, a queue and a timeout.
    fn validate_traces(&self, problems: &mut Problems<'_>) {
        let traces = &self.traces;
        if !(0.0..=1.0).contains(&traces.sample_ratio) {
            problems.at("sample_ratio", "[traces] sample_ratio must be between 0.0 and 1.0");
        }
        if let Some(endpoint) = &traces.endpoint {
            match endpoint.parse::<http::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() => {}
                Ok(_) => problems.at(
                    "endpoint",
                    format!(
                        "[traces] endpoint `{endpoint}` must be an http:// URL, e.g. http://127.0.0.1:4318/v1/traces"
                    ),
                ),
                Err(e) => problems.at("endpoint", format!("[traces] endpoint `{endpoint}` is not a URL: {e}")),
            }
        }
        if traces.queue_size == 0 {
            problems.at("queue_size", "[traces] queue_size must be above zero");
        }
        if traces.export_timeout.0.is_zero() {
            problems.at("export_timeout", "[traces] export_timeout must be above zero");
        }
        if traces.service_name.is_empty() {
            problems.at("service_name", "[traces] service_name must not be empty");
        }
    }

    /// The console credentials folder, resolved (`[console] credentials_dir`, or `console-credentials` beside
    /// the store directory).
    pub fn console_credentials_dir(&self) -> PathBuf {
        match &self.console.credentials_dir {
            Some(dir) => self.resolve(dir),
            None => {
                let store = self.store_dir();
                store.parent().map_or_else(|| PathBuf::from("console-credentials"), |p| p.join("console-credentials"))
            }
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        self.server.shutdown_grace.0
    }
}

/// Byte span of the first `key =` in a TOML text, for pointing at a line.
/// The problems [`Config::validate`] finds, each placed at the line of the key it is about.
struct Problems<'t> {
    file: &'t str,
    text: &'t str,
    found: Vec<Diagnostic>,
}

impl Problems<'_> {
    /// A problem with the value of `key` (placed at its first occurrence; line 0 when the key is absent).
    fn at(&mut self, key: &str, message: impl Into<String>) {
        self.at_first(&[key], message);
    }

    /// A problem placed at the first of `keys` that occurs in the file.
    fn at_first(&mut self, keys: &[&str], message: impl Into<String>) {
        let span = keys.iter().find_map(|key| locate_key(self.text, key));
        self.found.push(Diagnostic::error_at(self.file, self.text, span, message));
    }
}

fn locate_key(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(position) = line.find(&format!("\"{key}\"")) {
            return Some(offset + position..offset + position + key.len() + 2);
        }
        if let Some(rest) = trimmed.strip_prefix(key) {
            if rest.trim_start().starts_with('=') || trimmed.starts_with(&format!("[[{key}]]")) {
                let start = offset + (line.len() - trimmed.len());
                return Some(start..start + key.len());
            }
        }
        if trimmed.starts_with(&format!("[[{key}]]")) || trimmed.starts_with(&format!("[{key}]")) {
            let start = offset + (line.len() - trimmed.len());
            return Some(start..start + key.len());
        }
        offset += line.len();
    }
    None
}

fn yes() -> bool {
    true
}
fn d2s() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn d5s() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn d10s() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn d30s() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn d60s() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn d90s() -> HumanDuration {
    HumanDuration(Duration::from_secs(90))
}
fn default_request_body_timeout() -> HumanDuration {
    HumanDuration(DEFAULT_REQUEST_BODY_TIMEOUT)
}
fn default_debounce() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}
fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig {
        name: default_listener_name(),
        address: ([127, 0, 0, 1], 8443).into(),
        plaintext: false,
        client_certificate: ClientCertificateMode::Required,
    }]
}
fn default_listener_name() -> String {
    "data".to_string()
}
fn default_store_path() -> PathBuf {
    PathBuf::from("policies")
}
fn default_max_header_bytes() -> ByteSize {
    ByteSize(16 * 1024)
}
fn default_max_uri_bytes() -> ByteSize {
    ByteSize(4096)
}
fn default_h2_streams() -> u32 {
    256
}
fn default_pool_idle() -> usize {
    64
}
fn default_max_body() -> ByteSize {
    ByteSize(16 << 20)
}
fn default_level() -> String {
    "info".to_string()
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            seed_baseline: true,
            backend: StoreBackend::Dir,
            redis_prefix: default_store_redis_prefix(),
        }
    }
}
impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            shutdown_grace: d30s(),
            header_read_timeout: d10s(),
            send_timeout: d60s(),
            max_header_bytes: default_max_header_bytes(),
            max_uri_bytes: default_max_uri_bytes(),
            http2_max_concurrent_streams: default_h2_streams(),
            idle_timeout: d60s(),
            request_body_timeout: default_request_body_timeout(),
            max_connections: 0,
            max_connections_per_client: 0,
            worker_threads: 0,
        }
    }
}
impl Default for UpstreamDefaults {
    fn default() -> Self {
        Self {
            connect_timeout: d2s(),
            request_timeout: d30s(),
            pool_idle_timeout: d90s(),
            pool_max_idle_per_host: default_pool_idle(),
            ca_files: Vec::new(),
            trust_system_roots: true,
        }
    }
}
impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_request_body: default_max_body(),
            max_checked_response: default_max_checked_response(),
            max_json_depth: default_max_json_depth(),
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: default_level(), access_log: true }
    }
}
impl Default for ReloadConfig {
    fn default() -> Self {
        Self { watch: true, debounce: default_debounce() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::embedded_default(Path::new("/tmp"));
        assert_eq!(c.listeners.len(), 1);
        assert!(!c.listeners[0].plaintext, "the default data plane is mTLS");
        assert!(c.tls.as_ref().is_some_and(|t| t.generate_if_missing));
        assert!(c.warnings("default").is_empty());
        assert_eq!(c.store_dir(), PathBuf::from("/tmp/policies"));
        assert!(c.audit.enabled, "the default keeps an audit trail");
        assert_eq!(c.resolve(&c.audit.dir), PathBuf::from("/tmp/audit"));
        let admin = c.admin_enabled().expect("the default serves the admin API");
        assert_eq!(admin.listen, default_admin_listen());
        let files = c.admin_tls_files().unwrap();
        assert_eq!(files.cert_file, PathBuf::from("/tmp/pki/server.crt"));
        assert_eq!(files.operator_ca_file, PathBuf::from("/tmp/pki/ca.crt"));
    }

    #[test]
    fn a_redis_store_needs_a_redis_section() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:7000\"\nplaintext = true\n";
        let config = Config::parse(base, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Dir);
        assert_eq!(config.store.redis_prefix, "penghubung:store:");
        let text = format!("{base}[store]\nbackend = \"redis\"\n");
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].message.contains("needs a [redis] section"), "{errs:?}");
        assert!(errs[0].line > 0, "located at the key: {errs:?}");
        let text = format!(
            "{base}[store]\nbackend = \"redis\"\nredis_prefix = \"dinas:\"\n[redis]\nurl = \"redis://127.0.0.1:6379\"\n"
        );
        let config = Config::parse(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Redis);
        assert_eq!(config.store.redis_prefix, "dinas:");
        let text = format!("{base}[store]\nbackend = \"etcd\"\n");
        assert!(Config::parse(&text, "p.toml", Path::new(".")).is_err(), "unknown backends are errors");
    }

    #[test]
    fn the_traces_section_is_off_by_default_and_checked_when_on() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:7000\"\nplaintext = true\n";
        let config = Config::parse(base, "p.toml", Path::new(".")).unwrap();
        assert!(config.traces.endpoint.is_none(), "no endpoint, no traces");
        assert_eq!(config.traces.sample_ratio, 0.01);
        assert_eq!(config.traces.service_name, "penghubung");
        assert_eq!(config.traces.queue_size, 2048);
        assert_eq!(config.traces.export_timeout.0, Duration::from_secs(5));
        let text = format!("{base}[traces]\nendpoint = \"http://127.0.0.1:4318/v1/traces\"\nsample_ratio = 1.0\n");
        let config = Config::parse(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.traces.endpoint.as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(config.traces.sample_ratio, 1.0);
        let text = format!(
            "{base}[traces]\nendpoint = \"https://collector/v1/traces\"\nsample_ratio = 1.5\nqueue_size = 0\n\
             export_timeout = \"0s\"\n"
        );
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        for key in ["http:// URL", "sample_ratio", "queue_size", "export_timeout"] {
            assert!(errs.iter().any(|e| e.message.contains(key)), "{key}: {errs:?}");
        }
        let text = format!("{base}[traces]\nendpoint = \"http://collector:4318/v1/traces\"\nheaders = 1\n");
        assert!(Config::parse(&text, "p.toml", Path::new(".")).is_err(), "unknown keys are errors");
    }

    #[test]
    fn the_console_section_has_safe_defaults_and_refuses_zero_and_inverted_timeouts() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:7000\"\nplaintext = true\n";
        let config = Config::parse(base, "p.toml", Path::new("/etc/penghubung")).unwrap();
        assert_eq!((config.console.max_failures_per_user, config.console.max_failures_per_address), (5, 20));
        assert_eq!(config.console.lockout_window.0, Duration::from_secs(900));
        assert_eq!(config.console.session_idle_timeout.0, Duration::from_secs(900));
        assert_eq!(config.console.session_absolute_timeout.0, Duration::from_secs(8 * 3600));
        assert_eq!(config.console_credentials_dir(), Path::new("/etc/penghubung/console-credentials"));
        let text = format!(
            "{base}[console]\nmax_failures_per_user = 0\nsession_idle_timeout = \"1h\"\nsession_absolute_timeout = \"30m\"\n"
        );
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("max_failures_per_user")), "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("session_absolute_timeout")), "{errs:?}");
        assert_eq!(config.console_sessions(), SessionsBackend::Memory);
        let text = format!("{base}[console]\nsessions = \"redis\"\n");
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert!(
            errs.len() == 1 && errs[0].message.contains("needs a [redis] section") && errs[0].line == 5,
            "{errs:?}"
        );
        let text = format!("{base}[console]\nsessions = \"redis\"\n[redis]\nurl = \"redis://127.0.0.1:6379\"\n");
        let config = Config::parse(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.console_sessions(), SessionsBackend::Redis);
        let text = format!("{base}[console]\ncredentials_dir = \"/var/lib/penghubung/console\"\n");
        let config = Config::parse(&text, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.console_credentials_dir(), Path::new("/var/lib/penghubung/console"));
    }

    #[test]
    fn the_redis_url_may_name_sentinels_and_a_malformed_one_is_a_located_problem() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:7000\"\nplaintext = true\n";
        let text =
            format!("{base}[redis]\nurl = \"redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/1\"\n");
        let config = Config::parse(&text, "p.toml", Path::new(".")).unwrap();
        let target = RedisTarget::parse(&config.redis.unwrap().url).unwrap();
        assert!(
            matches!(target, RedisTarget::Sentinel(ref s) if s.master_name == "mymaster" && s.db == 1),
            "{target:?}"
        );
        let text = format!("{base}[redis]\nurl = \"redis+sentinel://:hunter2@127.0.0.1:26379\"\n");
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].line, 5, "{errs:?}");
        assert!(errs[0].message.contains("names no primary"), "{errs:?}");
        assert!(!errs[0].message.contains("hunter2"), "{errs:?}");
        let text = format!("{base}[redis]\nurl = \"mysql://:hunter2@db\"\n");
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert!(errs.len() == 1 && !errs[0].message.contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn the_admin_section_needs_tls_files_and_its_own_address() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:7000\"\nplaintext = true\n";
        let config = Config::parse(base, "p.toml", Path::new(".")).unwrap();
        assert!(config.admin_enabled().is_none(), "no [admin] section, no admin listener");
        let text = format!("{base}[admin]\nlisten = \"127.0.0.1:7000\"\n");
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("cert_file")), "{errs:?}");
        assert!(errs.iter().any(|e| e.message.contains("data-plane listener")), "{errs:?}");
        let text = format!("{base}[admin]\nenabled = false\n");
        assert!(Config::parse(&text, "p.toml", Path::new(".")).unwrap().admin_enabled().is_none());
    }

    #[test]
    fn tls_listeners_need_tls_files_and_plaintext_ones_warn() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[[listeners]]\naddress = \"127.0.0.1:0\"\n[tls]\ncert_file = \"pki/server.crt\"\nkey_file = \"pki/server.key\"\nclient_ca_files = [\"pki/ca.crt\"]\n";
        let errs = Config::parse(text, "p.toml", dir.path()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].line, 4, "{errs:?}");
        let text = "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n";
        let config = Config::parse(text, "p.toml", dir.path()).unwrap();
        assert_eq!(config.warnings("p.toml").len(), 1);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let text = "[server]\nshutdown_grace = \"5s\"\nbogus = 1\n";
        let errs = Config::parse(text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 3, "{}", errs[0]);
        assert!(errs[0].message.contains("bogus"), "{}", errs[0]);
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let text = "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n[server]\nmax_header_bytes = 10\nmax_uri_bytes = 1\n[log]\nlevel = \"=[\"\n";
        let errs = Config::parse(text, "p.toml", Path::new(".")).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].line, 5);
        assert_eq!(errs[1].line, 6);
        assert_eq!(errs[2].line, 8);
    }

    #[test]
    fn the_json_nesting_limit_has_a_default_and_a_ceiling() {
        let base = "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n";
        let config = Config::parse(base, "p.toml", Path::new(".")).unwrap();
        assert_eq!(config.limits.max_json_depth, DEFAULT_MAX_DEPTH);
        let set = Config::parse(&format!("{base}[limits]\nmax_json_depth = 32\n"), "p.toml", Path::new("."));
        assert_eq!(set.unwrap().limits.max_json_depth, 32);
        for bad in ["0", "513", "100000"] {
            let text = format!("{base}[limits]\nmax_json_depth = {bad}\n");
            let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
            assert_eq!((errs.len(), errs[0].line), (1, 5), "{bad}: {errs:?}");
            assert!(errs[0].message.contains("512"), "{errs:?}");
        }
    }
}

#[cfg(test)]
mod jwt_tests {
    use super::*;

    const LISTENER: &str = "[[listeners]]\naddress = \"127.0.0.1:0\"\nclient_certificate = \"optional\"\n";

    fn issuer(extra: &str) -> String {
        format!("[[jwt_issuers]]\nname = \"splp\"\nissuer = \"https://splp.example.go.id\"\naudiences = [\"penghubung\"]\n{extra}\n")
    }

    #[test]
    fn issuers_parse_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), "{\"keys\": []}").unwrap();
        let text = format!(
            "{}{}",
            "[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n",
            issuer("jwks_file = \"jwks.json\"")
        );
        let config = Config::parse(&text, "p.toml", dir.path()).unwrap();
        let splp = config.jwt_issuer("splp").unwrap();
        assert_eq!(splp.algorithms, vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256]);
        assert_eq!(splp.max_clock_skew.0, Duration::from_secs(60));
        assert_eq!(splp.subject_claim, "sub");
        assert_eq!(config.listeners[0].client_certificate, ClientCertificateMode::Required);
    }

    #[test]
    fn symmetric_algorithms_and_none_cannot_be_configured() {
        for alg in ["HS256", "none", "RS512"] {
            let text = issuer(&format!("jwks_file = \"j.json\"\nalgorithms = [\"{alg}\"]"));
            let errs = Config::parse(
                &format!("[[listeners]]\naddress = \"127.0.0.1:0\"\nplaintext = true\n{text}"),
                "p.toml",
                Path::new("."),
            )
            .unwrap_err();
            assert!(errs[0].message.contains(alg), "{alg}: {errs:?}");
        }
    }

    #[test]
    fn bad_issuers_and_optional_listeners_are_reported() {
        let text = format!(
            "{LISTENER}plaintext = true\n{}{}",
            issuer("jwks_url = \"http://splp.example.go.id/jwks\"\nmax_clock_skew = \"10m\""),
            issuer("jwks_file = \"a.json\"\njwks_url = \"https://x/jwks\"")
        );
        let errs = Config::parse(&text, "p.toml", Path::new(".")).unwrap_err();
        let all = errs.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("\n");
        assert!(all.contains("must be https"), "{all}");
        assert!(all.contains("at most 5m"), "{all}");
        assert!(all.contains("exactly one of"), "{all}");
        assert!(all.contains("defined twice"), "{all}");
        assert!(all.contains("a.json does not exist"), "{all}");
        assert!(all.contains("needs TLS"), "{all}");
        let errs = Config::parse(&format!("{LISTENER}plaintext = true\n"), "p.toml", Path::new(".")).unwrap_err();
        assert!(errs.iter().any(|e| e.message.contains("at least one [[jwt_issuers]]")), "{errs:?}");
    }
}
