//! The command line: the tree of commands and what each runs. Local commands: `serve`, `check`, `init`, `demo`,
//! `ca init|issue-server`, `policy explain`, `audit`, `report`. The management commands (`opd`, `service`, `client`,
//! `grant`, `tier`, `operator`, `store`, `ca issue-client|issue-operator|revoke`, `policy explain --remote`) are
//! clients of the admin API ([`crate::admin_commands`]). `main.rs` only calls [`run`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::admin_client::ConnectionArgs;
use crate::admin_commands::{
    self, ClientCommand, GrantCommand, IssueOperatorArgs, Management, OpdCommand, OperatorCommand, RevokeArgs,
    ServiceCommand, StoreCommand, TierCommand,
};
use crate::ca::{self, CertificateAuthority, Validity};
use crate::exit::start_failed;
use crate::explain::{self, OperationSpec};
use crate::init::{self, InitArgs};
use crate::manage::Workspace;
use crate::{check, demo, telemetry};
use penghubung_server::{Signals, StartError};
use penghubung_types::config::Config;

/// Penghubung: Sistem Penghubung Layanan (service integration gateway) for regional governments.
///
/// Management commands (opd, service, client, grant, tier, operator, store, ca issue-*/revoke) act as an
/// authenticated operator through the admin API: --admin-url, --cacert, --operator-cert, --operator-key, or
/// PENGHUBUNG_ADMIN_URL, PENGHUBUNG_CACERT, PENGHUBUNG_OPERATOR_CERT, PENGHUBUNG_OPERATOR_KEY, or the operator
/// profile (~/.config/penghubung/operator.toml, or --profile) that `penghubung init` writes.
#[derive(Debug, Parser)]
#[command(name = "penghubung", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (and the admin API when the config enables it).
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
    /// Create a production setup in DIR: config, CA, server certificate, default tiers, the Dinas's OPD and the
    /// first admin operator with its certificate, key and profile. No sample data.
    Init(InitArgs),
    /// Start the gateway with demo OPD services on loopback and print commands to try it.
    Demo {
        /// Where the demo writes its config, documents and demo.env.
        #[arg(long, default_value = "penghubung-demo")]
        workdir: PathBuf,
        /// Gateway listen address.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Admin API listen address.
        #[arg(long, default_value = "127.0.0.1:9443")]
        admin_listen: SocketAddr,
        /// Cluster mode: start a redis-server (from PATH) and N replicas sharing it, on the listen and admin
        /// ports and the N-1 following ones (or free ports with port 0).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=9))]
        cluster: Option<u8>,
    },
    /// Certificates: the built-in CA (init, issue-server: local files), and issuing or revoking client and
    /// operator certificates (through the admin API: the key is generated here, only a CSR is sent).
    Ca {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: CaCommand,
    },
    /// OPDs (regional agencies): create, list, show.
    Opd {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: OpdCommand,
    },
    /// Services and their lifecycle: create, update, submit, the two approvals, withdraw, suspend, resume,
    /// retire, OpenAPI import, history and rollback.
    Service {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Client applications: create, clearance, enable/disable, certificates, revocation.
    Client {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Grants: which client may call which operations of which service, for which purposes.
    Grant {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: GrantCommand,
    },
    /// Rate tiers that grants name.
    Tier {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: TierCommand,
    },
    /// Operators of the management plane and their roles (admin, operasi, keamanan, opd_admin, auditor).
    Operator {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Backups: export the whole store signed, import one; push a folder store to Redis, pull it back.
    Store {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Explain the decision for a call without sending it (exit 0 allow, 1 deny, 2 error).
    Policy {
        #[command(flatten)]
        connection: ConnectionArgs,
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// The audit trail: verify, search, keys.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Reports from the audit trail: the monthly usage per OPD.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Usage per caller OPD and per provider OPD in a month (Perbup 16/2023 Pasal 21), computed from the audit
    /// trail after verifying it. Exit code 0, or 3 when a segment did not verify (the report flags it).
    Usage(crate::report::UsageArgs),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the checkpoint signatures of a log; report the first record modified, deleted,
    /// inserted or reordered, and truncations. Exit code 1 on any problem.
    ///
    /// With `--redis URL`: every replica's shipped stream instead of a folder; per replica its records, first and
    /// last seq and gaps. Exit code 1 when any replica's stream fails or none is found.
    Verify {
        /// Directory of the segment files (seg-*.jsonl); not with `--redis`.
        #[arg(required_unless_present = "redis", conflicts_with = "redis")]
        dir: Option<PathBuf>,
        /// The gateway's audit public key (PEM). With `--redis`, once per replica key (each checkpoint is verified
        /// with the key it names).
        #[arg(long, required = true)]
        key: Vec<PathBuf>,
        /// Verify what every replica shipped to this Redis (`redis://…` or `redis+sentinel://…`).
        #[arg(long)]
        redis: Option<String>,
        /// The streams' key pattern (`[audit] redis_stream`).
        #[arg(long, default_value = penghubung_audit::shipped::DEFAULT_PATTERN, requires = "redis")]
        stream_pattern: String,
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

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the decision and every reason for a call, without sending it.
    Explain {
        /// Ask the admin API (as the operator) instead of reading the store named by --config.
        #[arg(long)]
        remote: bool,
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
        /// Default: pki, or with --config the folder of the first tls.client_ca_files.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// SPIFFE trust domain of client certificates.
        #[arg(long, default_value = ca::DEVELOPMENT_TRUST_DOMAIN)]
        trust_domain: String,
        /// Organisation named in the CA certificate.
        #[arg(long, default_value = "Pemerintah Daerah")]
        organisation: String,
    },
    /// Issue the gateway's server certificate for DNS names and IP addresses.
    IssueServer {
        /// The CA's folder (default: pki, or with --config the folder of the first tls.client_ca_files).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A DNS name or IP address (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Writes OUT.crt and OUT.key (default: pki/server, or with --config tls.cert_file and tls.key_file).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// Issue a client certificate for OPD/APP through the admin API: the Client document is created first when
    /// missing (refused, with nothing written, when the OPD does not exist), the key stays here.
    IssueClient {
        #[arg(long)]
        opd: String,
        #[arg(long)]
        app: String,
        /// Writes OUT_DIR/{opd}.{app}.crt and .key.
        #[arg(long, default_value = "clients")]
        out_dir: PathBuf,
        /// Clearance of a new Client document.
        #[arg(long, default_value = "terbuka")]
        clearance: String,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Issue an operator's certificate through the admin API (the key stays here), with a profile file.
    IssueOperator(IssueOperatorArgs),
    /// Revoke a certificate by serial or file; the CRL is rewritten and bites on the next request.
    Revoke(RevokeArgs),
}

/// Parses the command line, runs the command, returns the exit code.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check::report(&check::check(config.as_deref())),
        Command::Serve { config } => serve(config.as_deref()),
        Command::Init(args) => init::run(&args),
        Command::Demo { workdir, listen, admin_listen, cluster } => {
            runtime(0).block_on(demo::run(workdir, listen, admin_listen, cluster.map(usize::from)))
        }
        Command::Ca { connection, command } => run_ca(&connection, command),
        Command::Opd { connection, command } => admin_commands::run(&connection, Management::Opd(command)),
        Command::Service { connection, command } => admin_commands::run(&connection, Management::Service(command)),
        Command::Client { connection, command } => admin_commands::run(&connection, Management::Client(command)),
        Command::Grant { connection, command } => admin_commands::run(&connection, Management::Grant(command)),
        Command::Tier { connection, command } => admin_commands::run(&connection, Management::Tier(command)),
        Command::Operator { connection, command } => admin_commands::run(&connection, Management::Operator(command)),
        Command::Store { command, .. } if command.is_local() => admin_commands::run_local_store(command),
        Command::Store { connection, command } => admin_commands::run(&connection, Management::Store(command)),
        Command::Policy { connection, command } => run_policy(&connection, command),
        Command::Audit(command) => run_audit(command),
        Command::Report(ReportCommand::Usage(args)) => crate::report::usage(&args),
    }
}

/// `penghubung serve`: the gateway until a signal.
fn serve(config: Option<&Path>) -> i32 {
    let config = match config {
        Some(path) => match Config::load(path) {
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

fn run_policy(connection: &ConnectionArgs, command: PolicyCommand) -> i32 {
    let PolicyCommand::Explain { remote, client, service, operation, purpose, at, json } = command;
    if remote {
        let body = serde_json::json!({
            "client": client, "service": service, "operation": operation, "purpose": purpose, "at": at,
        });
        return admin_commands::run(connection, Management::Explain { body, json });
    }
    match run_explain(
        connection.config.as_deref(),
        &client,
        &service,
        &operation,
        purpose.as_deref(),
        at.as_deref(),
        json,
    ) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("penghubung policy explain: {e}");
            2
        }
    }
}

fn run_audit(command: AuditCommand) -> i32 {
    use penghubung_audit::{keys, search};
    match command {
        AuditCommand::Verify { dir, key, redis, stream_pattern } => match (dir, redis) {
            (_, Some(url)) => crate::shipped::verify(&url, &stream_pattern, &key),
            (Some(dir), None) => match key.as_slice() {
                [key] => audit_verify(&dir, key),
                _ => {
                    eprintln!("penghubung audit verify: a folder is verified with exactly one --key");
                    1
                }
            },
            (None, None) => 1,
        },
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

fn run_explain(
    config: Option<&Path>,
    client: &str,
    service: &str,
    operation: &str,
    purpose: Option<&str>,
    at: Option<&str>,
    json: bool,
) -> Result<i32, String> {
    let snapshot = Workspace::open(config)?.snapshot()?;
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

fn run_ca(connection: &ConnectionArgs, command: CaCommand) -> i32 {
    let local = |outcome: Result<(), ca::CaError>| match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("penghubung ca: {e}");
            1
        }
    };
    match command {
        CaCommand::Init { dir, trust_domain, organisation } => local(ca_dir(connection, dir).and_then(|dir| {
            let authority = CertificateAuthority::init(&dir, &trust_domain, &organisation)?;
            println!(
                "CA created: {} (key {} with 0600)",
                authority.cert_path().display(),
                dir.join("ca.key").display()
            );
            println!("CRL: {}", authority.crl_path().display());
            Ok(())
        })),
        CaCommand::IssueServer { dir, names, out, days } => local(ca_dir(connection, dir).and_then(|dir| {
            let authority = CertificateAuthority::open(&dir)?;
            let issued = authority.issue_server(&names, Validity::days(days))?;
            let (cert, key) = match (out, server_files(connection)?) {
                (Some(out), _) => (out.with_extension("crt"), out.with_extension("key")),
                (None, Some(files)) => files,
                (None, None) => (PathBuf::from("pki/server.crt"), PathBuf::from("pki/server.key")),
            };
            issued.write(&cert, &key)?;
            println!("server certificate {} (serial {}), key {}", cert.display(), issued.serial_hex, key.display());
            Ok(())
        })),
        CaCommand::IssueClient { opd, app, out_dir, clearance, days } => {
            admin_commands::run(connection, Management::IssueClient { opd, app, clearance, out_dir, days })
        }
        CaCommand::IssueOperator(args) => admin_commands::run(connection, Management::IssueOperator(args)),
        CaCommand::Revoke(args) => admin_commands::run(connection, Management::Revoke(args)),
    }
}

/// The CA's folder: `--dir`, else the folder of the config's first `tls.client_ca_files`, else `pki`.
fn ca_dir(connection: &ConnectionArgs, dir: Option<PathBuf>) -> Result<PathBuf, ca::CaError> {
    if let Some(dir) = dir {
        return Ok(dir);
    }
    let ca_file = tls_files(connection)?.and_then(|files| files.client_ca);
    Ok(ca_file.and_then(|f| f.parent().map(Path::to_path_buf)).unwrap_or_else(|| PathBuf::from("pki")))
}

/// The server certificate and key files the config names.
fn server_files(connection: &ConnectionArgs) -> Result<Option<(PathBuf, PathBuf)>, ca::CaError> {
    Ok(tls_files(connection)?.and_then(|files| files.cert.zip(files.key)))
}

/// The `[tls]` files a config names, resolved against its folder. Read from the TOML itself, not through
/// [`Config::load`], which refuses a config whose TLS files do not exist yet: what these commands create.
struct TlsFiles {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

fn tls_files(connection: &ConnectionArgs) -> Result<Option<TlsFiles>, ca::CaError> {
    let Some(path) = &connection.config else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ca::CaError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| ca::CaError::Invalid(format!("{}: {e}", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let tls = value.get("tls").and_then(toml::Value::as_table);
    let file = |v: Option<&toml::Value>| v.and_then(toml::Value::as_str).map(|p| base.join(p));
    Ok(Some(TlsFiles {
        cert: file(tls.and_then(|t| t.get("cert_file"))),
        key: file(tls.and_then(|t| t.get("key_file"))),
        client_ca: file(
            tls.and_then(|t| t.get("client_ca_files")).and_then(toml::Value::as_array).and_then(|a| a.first()),
        ),
    }))
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
