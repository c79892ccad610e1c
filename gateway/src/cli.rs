//! The command line: `serve`, `check`, `demo`, `ca`, and the security team's `service`, `grant`, `client` and
//! `policy explain`, and `audit`. `main.rs` only calls [`run`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::ca::{self, CertificateAuthority, Validity};
use crate::exit::start_failed;
use crate::explain::{self, OperationSpec};
use crate::manage::{now_rfc3339, Workspace};
use crate::{check, demo, telemetry};
use penghubung_policy::lifecycle::{ApprovalKind, Transition};
use penghubung_server::{Signals, StartError};
use penghubung_snapshot::store::{DirStore, DocumentStore};
use penghubung_types::config::Config;
use penghubung_types::documents::{Approval, Classification, GrantDoc};

/// Penghubung: Sistem Penghubung Layanan (service integration gateway) for regional governments.
#[derive(Debug, Parser)]
#[command(name = "penghubung", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (penghubung.toml); without it the embedded default is used.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the config and every document; print all problems; exit 1 if any.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Start the gateway with demo OPD services on loopback and print commands to try it.
    Demo {
        /// Where the demo writes its config, documents and demo.env.
        #[arg(long, default_value = "penghubung-demo")]
        workdir: PathBuf,
        /// Gateway listen address.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
    },
    /// The built-in certificate authority (for the demo and small deployments).
    #[command(subcommand)]
    Ca(CaCommand),
    /// A service's lifecycle: submit for testing, the two approvals, suspend, resume, retire.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Grants: which client may call which operations of which service, for which purposes.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Client settings.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Explain the decision for a call without sending it (exit 0 allow, 1 deny, 2 error).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The audit trail: verify, search, keys.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the checkpoint signatures of a log; report the first record modified, deleted,
    /// inserted or reordered, and truncations. Exit code 1 on any problem.
    Verify {
        /// Directory of the segment files (seg-*.jsonl).
        dir: PathBuf,
        /// The gateway's audit public key (PEM).
        #[arg(long)]
        key: PathBuf,
    },
    /// Print the records (JSON lines) that match every given filter.
    Search {
        /// Directory of the segment files.
        dir: PathBuf,
        /// Client id (`opd/app`).
        #[arg(long)]
        client: Option<String>,
        /// Service (`opd/name/v1`, or a prefix such as `opd/name` or `opd`).
        #[arg(long)]
        service: Option<String>,
        /// From this time (RFC 3339, or a date).
        #[arg(long)]
        since: Option<String>,
        /// Up to this time (RFC 3339, or a date).
        #[arg(long)]
        until: Option<String>,
        /// An error code (`policy.no_grant`), or `allow`, `deny`, `error`.
        #[arg(long)]
        code: Option<String>,
        /// Exchanges that concerned this NIK (needs --secret-file).
        #[arg(long, requires = "secret_file")]
        nik: Option<String>,
        /// The Dinas's NIK secret (`[audit] nik_secret_file`).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Also print document change records (when no exchange filter is given).
        #[arg(long)]
        changes: bool,
        /// Print only security events (refused TLS handshakes); `--code tls.unknown_ca` finds one reason.
        #[arg(long)]
        security: bool,
    },
    /// Create an audit signing key pair in DIR: audit-signing.key (0600) and audit-signing.pub.
    Keygen {
        #[arg(long, default_value = "pki")]
        out: PathBuf,
    },
}

/// Where the store is: the config's `[store] path` (embedded default: ./policies).
#[derive(Debug, clap::Args)]
struct StoreArgs {
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// draft → testing: test clients may call it.
    Submit {
        #[command(flatten)]
        store: StoreArgs,
        /// opd/name/v1
        #[arg(long)]
        service: String,
    },
    /// Record the operations (kelaikan operasi) or security (kelaikan keamanan) approval; with both, by
    /// different people, the service becomes active.
    Approve {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        service: String,
        #[arg(long, conflicts_with = "security", required_unless_present = "security")]
        operations: bool,
        #[arg(long)]
        security: bool,
        /// Who gives the approval (name and position).
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
    /// active/testing → suspended: refused from the next request on.
    Suspend {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: String,
    },
    /// suspended → active.
    Resume {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        service: String,
    },
    /// Create or update a service's operations and contracts from an OpenAPI 3.0/3.1 document (JSON).
    ImportOpenapi {
        #[command(flatten)]
        store: StoreArgs,
        /// The OpenAPI document (JSON; convert YAML first).
        file: PathBuf,
        #[arg(long)]
        opd: String,
        /// The service name (the route is /{opd}/{service}/v{version}).
        #[arg(long)]
        service: String,
        #[arg(long, default_value_t = 1)]
        version: u32,
        /// Backend base URL (required for a new service).
        #[arg(long)]
        upstream: Option<String>,
        /// terbuka, terbatas, rahasia or sangat_rahasia (required for a new service unless the document has
        /// info.x-klasifikasi).
        #[arg(long)]
        classification: Option<String>,
    },
    /// → retired, for good.
    Retire {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum GrantCommand {
    /// Add a grant (deny by default: nothing is callable without one).
    Add {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        id: String,
        /// opd/app
        #[arg(long)]
        client: String,
        /// opd/name/v1
        #[arg(long)]
        service: String,
        /// Operation id, or `*` for all (repeat or comma-separate).
        #[arg(long = "operation", required = true, value_delimiter = ',')]
        operations: Vec<String>,
        /// Allowed purpose of use (repeat; none: any purpose).
        #[arg(long = "purpose", value_delimiter = ',')]
        purposes: Vec<String>,
        #[arg(long)]
        tier: String,
        /// RFC 3339
        #[arg(long)]
        not_before: Option<String>,
        /// RFC 3339
        #[arg(long)]
        not_after: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a grant.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Set a client's clearance (terbuka, terbatas, rahasia, sangat_rahasia).
    SetClearance {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        client: String,
        #[arg(long)]
        clearance: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the decision and every reason for a call, without sending it.
    Explain {
        #[command(flatten)]
        store: StoreArgs,
        /// opd/app
        #[arg(long)]
        client: String,
        /// opd/name/v1
        #[arg(long)]
        service: String,
        /// "METHOD /path-after-v1" (concrete or template) or an operation id.
        #[arg(long)]
        operation: String,
        #[arg(long)]
        purpose: Option<String>,
        /// Decide as of this RFC 3339 time instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a CA (ca.crt, ca.key with 0600, an empty CRL) in DIR.
    Init {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// SPIFFE trust domain of client certificates.
        #[arg(long, default_value = ca::DEVELOPMENT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Organisation named in the CA certificate.
        #[arg(long, default_value = "Pemerintah Daerah")]
        organisation: String,
    },
    /// Issue the gateway's server certificate for DNS names and IP addresses.
    IssueServer {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// A DNS name or IP address (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Writes OUT.crt and OUT.key.
        #[arg(long, default_value = "pki/server")]
        out: PathBuf,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// Issue a client certificate for OPD/APP and write the matching Client document into the store.
    IssueClient {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        #[arg(long)]
        opd: String,
        #[arg(long)]
        app: String,
        /// Writes OUT_DIR/{opd}.{app}.crt and .key.
        #[arg(long, default_value = "pki/clients")]
        out_dir: PathBuf,
        /// Document store that receives clients/{opd}/{app}.toml.
        #[arg(long, default_value = "policies")]
        store: PathBuf,
        /// Clearance written into a new Client document.
        #[arg(long, default_value = "terbuka")]
        clearance: String,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
    /// Revoke a certificate by serial or file and rewrite the CRL (the gateway picks it up without restart).
    Revoke {
        #[arg(long, default_value = "pki")]
        dir: PathBuf,
        /// Serial number in hex.
        #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
        serial: Option<String>,
        /// A PEM certificate file.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
}

/// Parses the command line, runs the command, returns the exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check::report(&check::check(config.as_deref())),
        Command::Serve { config } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(c) => c,
                    Err(problems) => return check::report(&problems),
                },
                None => Config::embedded_default(&std::env::current_dir().unwrap_or_default()),
            };
            telemetry::init_logging(&config.log);
            if let Err(e) = ca::provision_development_pki(&config) {
                return start_failed(StartError::Tls(e));
            }
            runtime(config.server.worker_threads).block_on(async move {
                let signals = match Signals::install() {
                    Ok(signals) => signals,
                    Err(e) => {
                        eprintln!("penghubung: cannot install signal handlers: {e}");
                        return 1;
                    }
                };
                crate::admin::serve(config, signals).await
            })
        }
        Command::Demo { workdir, listen } => runtime(0).block_on(demo::run(workdir, listen)),
        Command::Ca(command) => match run_ca(command) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("penghubung ca: {e}");
                1
            }
        },
        Command::Policy(PolicyCommand::Explain { store, client, service, operation, purpose, at, json }) => {
            match run_explain(store, &client, &service, &operation, purpose.as_deref(), at.as_deref(), json) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("penghubung policy explain: {e}");
                    2
                }
            }
        }
        Command::Audit(command) => run_audit(command),
        Command::Service(command) => report_change(run_service(command)),
        Command::Grant(command) => report_change(run_grant(command)),
        Command::Client(ClientCommand::SetClearance { store, client, clearance }) => report_change(
            Classification::parse(&clearance)
                .ok_or_else(|| format!("`{clearance}` is not a clearance (terbuka, terbatas, rahasia, sangat_rahasia)"))
                .and_then(|c| Workspace::open(store.config.as_deref())?.set_clearance(&client, c)),
        ),
    }
}

fn run_audit(command: AuditCommand) -> i32 {
    use penghubung_audit::{keys, search};
    match command {
        AuditCommand::Verify { dir, key } => audit_verify(&dir, &key),
        AuditCommand::Search { dir, client, service, since, until, code, nik, secret_file, changes, security } => {
            let fail = |e: String| {
                eprintln!("penghubung audit search: {e}");
                1
            };
            let since = match since.as_deref().map(search::parse_time).transpose() {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let until = match until.as_deref().map(search::parse_time).transpose() {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let mut query = search::Query { client, service, since, until, code, nik_hash: None, changes, security };
            if let (Some(nik), Some(secret_file)) = (nik, secret_file) {
                let key = match keys::read_secret(&secret_file) {
                    Ok(k) => k,
                    Err(e) => return fail(e.to_string()),
                };
                query = query.with_nik(nik.trim(), &key);
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match search::search(&dir, &query, &mut out) {
                Ok(found) => {
                    drop(out);
                    eprintln!("{found} records");
                    0
                }
                Err(e) => fail(format!("{}: {e}", dir.display())),
            }
        }
        AuditCommand::Keygen { out } => audit_keygen(&out),
    }
}

/// `penghubung audit verify`: checks the segments in `dir` against the public `key`, and prints the outcome.
fn audit_verify(dir: &Path, key: &Path) -> i32 {
    use penghubung_audit::{keys, verify};
    let key = match keys::PublicKey::read(key) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("penghubung audit verify: {e}");
            return 1;
        }
    };
    let report = match verify::verify_dir(dir, &key) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("penghubung audit verify: {}: {e}", dir.display());
            return 1;
        }
    };
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    match &report.problem {
        Some(problem) => {
            println!("FAILED: {problem}");
            1
        }
        None if report.records == 0 => {
            println!("FAILED: no records in {}", dir.display());
            1
        }
        None => {
            println!(
                "OK: {} segments, {} records (seq {}..={}), {} checkpoints signed by key {}; last checkpoint at seq {}",
                report.segments,
                report.records,
                report.first_seq.unwrap_or_default(),
                report.last_seq.unwrap_or_default(),
                report.checkpoints,
                key.key_id,
                report.last_checkpoint.map_or("-".to_string(), |s| s.to_string()),
            );
            0
        }
    }
}

/// `penghubung audit keygen`: writes a new audit signing key pair into `out` (never over an existing key).
fn audit_keygen(out: &Path) -> i32 {
    use penghubung_audit::keys;
    let (private, public) = (out.join("audit-signing.key"), out.join("audit-signing.pub"));
    if private.exists() {
        eprintln!("penghubung audit keygen: {} exists; not overwritten", private.display());
        return 1;
    }
    match keys::generate(&private, &public) {
        Ok(key) => {
            println!(
                "audit signing key {} (0600), public key {} (key id {})",
                private.display(),
                public.display(),
                key.key_id
            );
            0
        }
        Err(e) => {
            eprintln!("penghubung audit keygen: {e}");
            1
        }
    }
}

fn report_change(outcome: Result<String, String>) -> i32 {
    match outcome {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("penghubung: {e}");
            1
        }
    }
}

fn run_service(command: ServiceCommand) -> Result<String, String> {
    let (store, service, transition) = match command {
        ServiceCommand::ImportOpenapi { store, file, opd, service, version, upstream, classification } => {
            let classification = classification
                .map(|c| Classification::parse(&c).ok_or_else(|| format!("`{c}` is not a classification")))
                .transpose()?;
            let request = crate::manage::ImportRequest {
                file: &file,
                opd: &opd,
                name: &service,
                version,
                upstream: upstream.as_deref(),
                classification,
            };
            return Workspace::open(store.config.as_deref())?.import_openapi(&request);
        }
        ServiceCommand::Submit { store, service } => (store, service, Transition::Submit),
        ServiceCommand::Approve { store, service, operations, security: _, by, reason } => {
            let kind = if operations { ApprovalKind::Operations } else { ApprovalKind::Security };
            (store, service, Transition::Approve { kind, approval: Approval { by, at: now_rfc3339(), reason } })
        }
        ServiceCommand::Suspend { store, service, reason } => (store, service, Transition::Suspend { reason }),
        ServiceCommand::Resume { store, service } => (store, service, Transition::Resume),
        ServiceCommand::Retire { store, service, reason } => (store, service, Transition::Retire { reason }),
    };
    Workspace::open(store.config.as_deref())?.transition(&service, &transition)
}

fn run_grant(command: GrantCommand) -> Result<String, String> {
    match command {
        GrantCommand::Add { store, id, client, service, operations, purposes, tier, not_before, not_after, reason } => {
            let grant = GrantDoc { id, client, service, operations, purposes, tier, not_before, not_after, reason };
            Workspace::open(store.config.as_deref())?.add_grant(&grant)
        }
        GrantCommand::Revoke { store, id } => Workspace::open(store.config.as_deref())?.revoke_grant(&id),
    }
}

fn run_explain(
    store: StoreArgs,
    client: &str,
    service: &str,
    operation: &str,
    purpose: Option<&str>,
    at: Option<&str>,
    json: bool,
) -> Result<i32, String> {
    let snapshot = Workspace::open(store.config.as_deref())?.snapshot()?;
    let operation = OperationSpec::parse(operation)?;
    let now = match at {
        Some(at) => penghubung_policy::grants::parse_time(at)?,
        None => penghubung_policy::unix_now(),
    };
    let explanation = explain::explain(&snapshot, client, service, &operation, purpose, now);
    if json {
        println!("{}", serde_json::to_string_pretty(&explanation).map_err(|e| e.to_string())?);
    } else {
        print!("{}", explanation.render());
    }
    Ok(if explanation.code.is_none() { 0 } else { 1 })
}

fn run_ca(command: CaCommand) -> Result<(), ca::CaError> {
    match command {
        CaCommand::Init { dir, trust_domain, organisation } => {
            let authority = CertificateAuthority::init(&dir, &trust_domain, &organisation)?;
            println!(
                "CA created: {} (key {} with 0600)",
                authority.cert_path().display(),
                dir.join("ca.key").display()
            );
            println!("CRL: {}", authority.crl_path().display());
        }
        CaCommand::IssueServer { dir, names, out, days } => {
            let authority = CertificateAuthority::open(&dir)?;
            let issued = authority.issue_server(&names, Validity::days(days))?;
            let (cert, key) = (out.with_extension("crt"), out.with_extension("key"));
            issued.write(&cert, &key)?;
            println!("server certificate {} (serial {}), key {}", cert.display(), issued.serial_hex, key.display());
        }
        CaCommand::IssueClient { dir, opd, app, out_dir, store, clearance, days } => {
            let authority = CertificateAuthority::open(&dir)?;
            let issued = authority.issue_client(&opd, &app, Validity::days(days))?;
            let (cert, key) = (out_dir.join(format!("{opd}.{app}.crt")), out_dir.join(format!("{opd}.{app}.key")));
            issued.write(&cert, &key)?;
            println!("client certificate {} (serial {}), key {}", cert.display(), issued.serial_hex, key.display());
            let spiffe = issued.spiffe.unwrap_or_default();
            let store = DirStore::new(store);
            let doc_key = format!("clients/{opd}/{app}.toml");
            if store.root().join(&doc_key).exists() {
                println!("{} exists; make sure its [identity] lists {spiffe}", store.root().join(&doc_key).display());
            } else {
                store
                    .put(&doc_key, &ca::client_document(&opd, &app, &spiffe, &clearance))
                    .map_err(|e| ca::CaError::Invalid(e.to_string()))?;
                println!("client document {}", store.root().join(&doc_key).display());
            }
        }
        CaCommand::Revoke { dir, serial, cert } => {
            let authority = CertificateAuthority::open(&dir)?;
            let serial = match (serial, cert) {
                (Some(serial), _) => {
                    authority.revoke(&serial)?;
                    serial
                }
                (None, Some(cert)) => authority.revoke_certificate_file(&cert)?,
                (None, None) => return Err(ca::CaError::Invalid("give --serial or --cert".into())),
            };
            println!("revoked {serial}; CRL rewritten: {}", authority.crl_path().display());
        }
    }
    Ok(())
}

/// The runtime: one thread per core by default. With exactly one worker the single-threaded scheduler is used:
/// the same behaviour without cross-thread wake-ups (measurably faster per request).
fn runtime(worker_threads: usize) -> tokio::runtime::Runtime {
    let mut builder = if worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if worker_threads > 0 {
            builder.worker_threads(worker_threads);
        }
        builder
    };
    builder.enable_all().build().expect("the tokio runtime starts")
}
