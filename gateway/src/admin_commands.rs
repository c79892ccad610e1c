//! The management commands (`opd`, `service`, `client`, `grant`, `tier`, `operator`, `store`, and the `ca`
//! commands that issue or revoke), each one or a few calls of the admin API as the authenticated operator
//! ([`crate::admin_client`]). Nothing here writes the store: the admin API checks every change against the
//! whole store and records who made it, with the reason. A change to an existing document is sent with the
//! `If-Match` of the version just read, so two operators editing at once get 412 instead of overwriting each
//! other. Private keys are generated here and never leave the machine: the API receives a CSR.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use http::Method;
use serde_json::{json, Map, Value};

use crate::admin_client::{query_value, segment, AdminClient, AdminError, Answer, ConnectionArgs};

/// `opd …`
#[derive(Debug, Subcommand)]
pub enum OpdCommand {
    /// Register an OPD (admin).
    Create {
        /// Slug, e.g. `dinkes`.
        #[arg(long)]
        id: String,
        /// Full name, e.g. "Dinas Kesehatan".
        #[arg(long)]
        name: String,
        /// The OPD is IT-independent (Perangkat Daerah Mandiri TIK): its `opd_admin` operators manage its
        /// services, clients and grant requests.
        #[arg(long)]
        mandiri_tik: bool,
        #[arg(long)]
        contact: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the OPDs.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one OPD's document.
    Show {
        #[arg(long)]
        id: String,
    },
}

/// `service …`
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register a new service (as `draft`); add its operations with `import-openapi` or `update`.
    Create {
        #[arg(long)]
        opd: String,
        /// The service name (the route is /{opd}/{name}/v{version}).
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 1)]
        version: u32,
        #[arg(long)]
        title: String,
        /// terbuka, terbatas, rahasia or sangat_rahasia.
        #[arg(long)]
        classification: String,
        /// Backend base URL (repeat for several endpoints).
        #[arg(long = "upstream", required = true)]
        upstreams: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the services with their status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one service's document.
    Show {
        /// opd/name/v1
        #[arg(long)]
        service: String,
    },
    /// Replace a service's document with FILE (TOML or JSON); its status and approvals cannot change this way.
    Update {
        #[arg(long)]
        service: String,
        /// The new document (TOML or JSON).
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        reason: Option<String>,
    },
    /// draft → testing: test clients may call it.
    Submit {
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Give the operations (kelaikan operasi, role `operasi`) or security (kelaikan keamanan, role `keamanan`)
    /// approval as yourself; with both, from two different operators, the service becomes active.
    Approve {
        #[arg(long)]
        service: String,
        #[arg(long, conflicts_with = "security", required_unless_present = "security")]
        operations: bool,
        #[arg(long)]
        security: bool,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw an approval (an active service goes back to testing).
    Withdraw {
        #[arg(long)]
        service: String,
        #[arg(long, conflicts_with = "security", required_unless_present = "security")]
        operations: bool,
        #[arg(long)]
        security: bool,
        #[arg(long)]
        reason: String,
    },
    /// active/testing → suspended: refused from the next request on.
    Suspend {
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: String,
    },
    /// suspended → active.
    Resume {
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: String,
    },
    /// → retired, for good.
    Retire {
        #[arg(long)]
        service: String,
        #[arg(long)]
        reason: String,
    },
    /// Create or update a service's operations and contracts from an OpenAPI 3.0/3.1 document (JSON).
    ImportOpenapi {
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
        #[arg(long)]
        reason: Option<String>,
    },
    /// The service's versions: who changed it, when, why.
    History {
        #[arg(long)]
        service: String,
        #[arg(long)]
        json: bool,
    },
    /// Restore a previous version (from `history`) as a new, checked, recorded change.
    Rollback {
        #[arg(long)]
        service: String,
        #[arg(long)]
        version: u64,
        #[arg(long)]
        reason: String,
    },
}

/// `client …`
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register an OPD application (no certificate yet: `client issue-cert`).
    Create {
        #[arg(long)]
        opd: String,
        #[arg(long)]
        app: String,
        /// terbuka, terbatas, rahasia or sangat_rahasia.
        #[arg(long, default_value = "terbuka")]
        clearance: String,
        /// A test client may call services in `testing`.
        #[arg(long)]
        test_client: bool,
        #[command(flatten)]
        identity: IdentityArgs,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client's document.
    Show {
        /// opd/app
        #[arg(long)]
        client: String,
    },
    /// Set a client's clearance (keamanan).
    Clearance {
        #[arg(long)]
        client: String,
        #[arg(long)]
        clearance: String,
        #[arg(long)]
        reason: String,
    },
    /// Let a client call again.
    Enable {
        #[arg(long)]
        client: String,
        #[arg(long)]
        reason: String,
    },
    /// Refuse a client from its next request on.
    Disable {
        #[arg(long)]
        client: String,
        #[arg(long)]
        reason: String,
    },
    /// Generate a key here, have the API sign its certificate, write both into OUT_DIR.
    IssueCert {
        #[arg(long)]
        client: String,
        /// Writes OUT_DIR/{opd}.{app}.crt and .key (0600).
        #[arg(long, default_value = "clients")]
        out_dir: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Revoke a certificate (by serial or file); open connections are refused on their next request.
    Revoke(RevokeArgs),
}

/// What binds a certificate to a client. None given: the SPIFFE id the built-in CA writes into the client's
/// certificates (`spiffe://{trust domain}/opd/{opd}/app/{app}`, the trust domain read from `ca.toml` beside
/// the CA certificate).
#[derive(Debug, Default, clap::Args)]
pub struct IdentityArgs {
    /// A SPIFFE id the client's certificates carry (repeat).
    #[arg(long = "spiffe")]
    pub spiffe: Vec<String>,
    /// A subject DN (RFC 4514) of the client's certificates, e.g. from BSrE (repeat).
    #[arg(long = "subject")]
    pub subject: Vec<String>,
    /// A certificate's SHA-256 fingerprint, hex (repeat).
    #[arg(long = "fingerprint")]
    pub fingerprint: Vec<String>,
}

/// What to revoke.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Serial number in hex.
    #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
    pub serial: Option<String>,
    /// A PEM certificate file.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    #[arg(long)]
    pub reason: String,
}

/// `grant …`
#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Add a grant (deny by default: nothing is callable without one).
    Add {
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
    /// List the grants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one grant.
    Show {
        #[arg(long)]
        id: String,
    },
    /// Remove a grant.
    Revoke {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// `tier …`
#[derive(Debug, Subcommand)]
pub enum TierCommand {
    /// List the rate tiers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tier.
    Show {
        #[arg(long)]
        id: String,
    },
    /// Create or replace a tier: `rate` requests per `period`, at most `burst` at once (or `--unlimited`).
    Put {
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long, required_unless_present = "unlimited")]
        rate: Option<u32>,
        #[arg(long, default_value = "1s")]
        period: String,
        #[arg(long)]
        burst: Option<u32>,
        #[arg(long, conflicts_with = "rate")]
        unlimited: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Delete a tier no grant uses.
    Delete {
        #[arg(long)]
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// `operator …`
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Register an operator (admin); give it a certificate with `operator issue-cert`.
    Create {
        /// Slug, e.g. `rudi-aptika`: the identity in approvals and the audit trail.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        nip: String,
        #[arg(long)]
        opd: String,
        /// admin, operasi, keamanan, opd_admin or auditor (repeat or comma-separate).
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List the operators.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one operator.
    Show {
        #[arg(long)]
        id: String,
    },
    /// Generate a key here, have the API sign the operator's certificate, write both and a profile.
    IssueCert(IssueOperatorArgs),
    /// Who the admin API sees: your operator id, roles and the operations they allow.
    Whoami,
    /// Set an operator's web console password (your own, or as admin anyone's). The password is read from
    /// standard input (one line; at least 12 characters), never from the command line.
    SetPassword {
        /// The operator's id.
        id: String,
    },
    /// Enrol a new TOTP secret for an operator's web console sign-in (your own, or as admin anyone's),
    /// replacing any before. The secret and its otpauth:// URI are printed once and never shown again.
    EnrolTotp {
        /// The operator's id.
        id: String,
    },
}

/// Where an operator's certificate goes.
#[derive(Debug, clap::Args)]
pub struct IssueOperatorArgs {
    /// The operator's id.
    #[arg(long = "operator", alias = "id")]
    pub operator: String,
    /// Writes OUT_DIR/{operator}.crt, .key (0600) and {operator}.profile.toml.
    #[arg(long, default_value = "operators")]
    pub out_dir: PathBuf,
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// `store …`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Write the whole store, signed with the audit key, into one file (a backup).
    Export {
        /// The backup file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a backup's signature and the whole store it holds, then replace the live store with it.
    Import {
        /// The backup file.
        file: PathBuf,
        #[arg(long)]
        reason: String,
    },
    /// Local: copy the folder store (`[store] path`) into the Redis store of the config (`[redis]`,
    /// `[store] redis_prefix`) in one commit, journal included. Refused when Redis already holds documents,
    /// unless --force.
    Push {
        /// Config file (penghubung.toml) naming the folder and Redis.
        #[arg(long)]
        config: PathBuf,
        /// The operator the push is recorded as (an enabled operator of the folder store).
        #[arg(long)]
        operator: String,
        /// Replace the documents Redis holds.
        #[arg(long)]
        force: bool,
    },
    /// Local: write the Redis store of the config to a new folder store DIR, with its journal.
    Pull {
        /// Config file (penghubung.toml) naming Redis.
        #[arg(long)]
        config: PathBuf,
        /// The new folder store (missing or empty).
        #[arg(long)]
        to: PathBuf,
        /// The operator pulling (an enabled operator of the Redis store).
        #[arg(long)]
        operator: String,
    },
}

impl StoreCommand {
    /// Whether the command runs locally on the config (push, pull) rather than through the admin API.
    pub fn is_local(&self) -> bool {
        matches!(self, StoreCommand::Push { .. } | StoreCommand::Pull { .. })
    }
}

/// Runs `store push` / `store pull`; returns the exit code (0 done, 1 refused, 2 unusable config).
pub fn run_local_store(command: StoreCommand) -> i32 {
    let load = |path: &PathBuf| {
        penghubung_types::config::Config::load(path).map_err(|problems| {
            for p in problems {
                eprintln!("{p}");
            }
            2
        })
    };
    let result = match command {
        StoreCommand::Push { config, operator, force } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            penghubung_manage::migrate::push(&config, &operator, force).map(|pushed| {
                println!(
                    "pushed {} to Redis: {} document(s) written, {} removed, {} journal entries; store generation {}",
                    config.store_dir().display(),
                    pushed.written,
                    pushed.removed,
                    pushed.journal_entries,
                    pushed.generation
                );
            })
        }
        StoreCommand::Pull { config, to, operator } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            penghubung_manage::migrate::pull(&config, &to, &operator).map(|pulled| {
                println!(
                    "pulled the Redis store (generation {}) to {}: {} document(s), {} journal entries",
                    pulled.generation,
                    to.display(),
                    pulled.documents,
                    pulled.journal_entries
                );
            })
        }
        other => {
            eprintln!("penghubung store: {other:?} goes through the admin API");
            return 2;
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("penghubung store: {} ({})", e, e.code());
            1
        }
    }
}

/// One management command, ready to run against the admin API.
#[derive(Debug)]
pub enum Management {
    Opd(OpdCommand),
    Service(ServiceCommand),
    Client(ClientCommand),
    Grant(GrantCommand),
    Tier(TierCommand),
    Operator(OperatorCommand),
    Store(StoreCommand),
    /// `ca issue-client`: the client document when missing, then its certificate.
    IssueClient {
        opd: String,
        app: String,
        clearance: String,
        out_dir: PathBuf,
        days: u32,
    },
    /// `ca issue-operator`.
    IssueOperator(IssueOperatorArgs),
    /// `ca revoke`.
    Revoke(RevokeArgs),
    /// `policy explain --remote`.
    Explain {
        body: Value,
        json: bool,
    },
}

/// Runs a management command as the operator `connection` names; returns the exit code.
pub fn run(connection: &ConnectionArgs, command: Management) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("penghubung: {e}");
            return 1;
        }
    };
    let outcome = runtime.block_on(async {
        let target = connection.resolve().map_err(AdminError::Setup)?;
        let client = AdminClient::new(target)?;
        execute(&client, command).await
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("penghubung: {e}");
            1
        }
    }
}

type Outcome = Result<i32, AdminError>;

async fn execute(api: &AdminClient, command: Management) -> Outcome {
    match command {
        Management::Opd(command) => opd(api, command).await,
        Management::Service(command) => service(api, command).await,
        Management::Client(command) => client(api, command).await,
        Management::Grant(command) => grant(api, command).await,
        Management::Tier(command) => tier(api, command).await,
        Management::Operator(command) => operator(api, command).await,
        Management::Store(command) => store(api, command).await,
        Management::IssueClient { opd, app, clearance, out_dir, days } => {
            let id = format!("{opd}/{app}");
            let path = client_path(&id)?;
            match api.get(&path).await {
                Ok(_) => {}
                Err(AdminError::Refused { status: 404, .. }) => {
                    let identity = identity_of(api, &opd, &app, IdentityArgs::default())?;
                    let document = client_document(&opd, &app, &clearance, false, identity)?;
                    let answer =
                        api.send(Method::POST, "/api/v1/clients", Some(&with_reason(document, None)), None).await?;
                    print_applied(&answer, &format!("client {id} created"));
                }
                Err(e) => return Err(e),
            }
            issue_client_certificate(api, &id, &out_dir, days).await
        }
        Management::IssueOperator(args) => issue_operator_certificate(api, &args).await,
        Management::Revoke(args) => revoke(api, args).await,
        Management::Explain { body, json } => {
            let answer = api.send(Method::POST, "/api/v1/policy/explain", Some(&body), None).await?;
            let value = answer.json()?;
            if json {
                print_json(&value);
            } else {
                print!("{}", render_explanation(&value));
            }
            let allowed = value.get("code").is_none_or(Value::is_null);
            Ok(if allowed { 0 } else { 1 })
        }
    }
}

async fn opd(api: &AdminClient, command: OpdCommand) -> Outcome {
    match command {
        OpdCommand::Create { id, name, mandiri_tik, contact, reason } => {
            let mut document = json!({"id": id, "name": name, "mandiri_tik": mandiri_tik});
            if let Some(contact) = contact {
                document["contact"] = json!(contact);
            }
            create(api, "opds", document, reason, &format!("OPD {id} created")).await
        }
        OpdCommand::List { json } => list(api, "opds", json, &["name"]).await,
        OpdCommand::Show { id } => show(api, &format!("/api/v1/opds/{}", segment(&id))).await,
    }
}

async fn service(api: &AdminClient, command: ServiceCommand) -> Outcome {
    match command {
        ServiceCommand::Create { opd, name, version, title, classification, upstreams, description, reason } => {
            let mut document = json!({
                "opd": opd, "name": name, "version": version, "title": title,
                "classification": classification_value(&classification)?,
                "status": "draft",
                "upstream": {"endpoints": upstreams},
            });
            if let Some(description) = description {
                document["description"] = json!(description);
            }
            create(api, "services", document, reason, &format!("service {opd}/{name}/v{version} created (draft)")).await
        }
        ServiceCommand::List { json } => list(api, "services", json, &["status", "title"]).await,
        ServiceCommand::Show { service } => show(api, &service_path(&service)?).await,
        ServiceCommand::Update { service, file, reason } => {
            let path = service_path(&service)?;
            let document = read_document(&file)?;
            let etag = api.get(&path).await?.etag;
            let answer = api.send(Method::PUT, &path, Some(&with_reason(document, reason)), etag.as_deref()).await?;
            print_applied(&answer, &format!("service {service} updated"));
            Ok(0)
        }
        ServiceCommand::Submit { service, reason } => {
            transition(api, &service, "submit", json!({"reason": reason}), "submitted for testing").await
        }
        ServiceCommand::Approve { service, operations, security: _, reason } => {
            let kind = if operations { "operations" } else { "security" };
            let body = json!({"kind": kind, "reason": reason});
            transition(api, &service, "approvals", body, &format!("{kind} approval given")).await
        }
        ServiceCommand::Withdraw { service, operations, security: _, reason } => {
            let kind = if operations { "operations" } else { "security" };
            let path = format!("{}/approvals?kind={kind}&reason={}", service_path(&service)?, query_value(&reason));
            let etag = api.get(&service_path(&service)?).await?.etag;
            let answer = api.send(Method::DELETE, &path, None, etag.as_deref()).await?;
            print_applied(&answer, &format!("{service}: {kind} approval withdrawn"));
            Ok(0)
        }
        ServiceCommand::Suspend { service, reason } => {
            transition(api, &service, "suspend", json!({"reason": reason}), "suspended").await
        }
        ServiceCommand::Resume { service, reason } => {
            transition(api, &service, "resume", json!({"reason": reason}), "resumed").await
        }
        ServiceCommand::Retire { service, reason } => {
            transition(api, &service, "retire", json!({"reason": reason}), "retired").await
        }
        ServiceCommand::ImportOpenapi { file, opd, service, version, upstream, classification, reason } => {
            let text =
                std::fs::read(&file).map_err(|e| AdminError::Setup(format!("cannot read {}: {e}", file.display())))?;
            let document: Value = serde_json::from_slice(&text)
                .map_err(|e| AdminError::Setup(format!("{} is not JSON (convert YAML first): {e}", file.display())))?;
            let mut body = json!({"opd": opd, "name": service, "version": version, "document": document});
            if let Some(upstream) = upstream {
                body["upstream"] = json!(upstream);
            }
            if let Some(classification) = classification {
                body["classification"] = classification_value(&classification)?;
            }
            if let Some(reason) = reason {
                body["reason"] = json!(reason);
            }
            // An import into an existing service replaces its operations: send the version just read.
            let etag = match api.get(&service_path(&format!("{opd}/{service}/v{version}"))?).await {
                Ok(answer) => answer.etag,
                Err(AdminError::Refused { status: 404, .. }) => None,
                Err(e) => return Err(e),
            };
            let answer =
                api.send(Method::POST, "/api/v1/services/import-openapi", Some(&body), etag.as_deref()).await?;
            print_applied(&answer, &format!("{opd}/{service}/v{version} imported"));
            Ok(0)
        }
        ServiceCommand::History { service, json } => history(api, &service_path(&service)?, json).await,
        ServiceCommand::Rollback { service, version, reason } => {
            let path = service_path(&service)?;
            let etag = api.get(&path).await?.etag;
            let body = json!({"version": version, "reason": reason});
            let answer = api.send(Method::POST, &format!("{path}/rollback"), Some(&body), etag.as_deref()).await?;
            print_applied(&answer, &format!("{service} rolled back to version {version}"));
            Ok(0)
        }
    }
}

async fn client(api: &AdminClient, command: ClientCommand) -> Outcome {
    match command {
        ClientCommand::Create { opd, app, clearance, test_client, identity, reason } => {
            let identity = identity_of(api, &opd, &app, identity)?;
            let document = client_document(&opd, &app, &clearance, test_client, identity)?;
            create(api, "clients", document, reason, &format!("client {opd}/{app} created")).await
        }
        ClientCommand::List { json } => list(api, "clients", json, &["clearance", "enabled"]).await,
        ClientCommand::Show { client } => show(api, &client_path(&client)?).await,
        ClientCommand::Clearance { client, clearance, reason } => {
            let body = json!({"clearance": classification_value(&clearance)?, "reason": reason});
            client_write(api, &client, "clearance", body, &format!("clearance {clearance}")).await
        }
        ClientCommand::Enable { client, reason } => {
            client_write(api, &client, "enabled", json!({"enabled": true, "reason": reason}), "enabled").await
        }
        ClientCommand::Disable { client, reason } => {
            client_write(api, &client, "enabled", json!({"enabled": false, "reason": reason}), "disabled").await
        }
        ClientCommand::IssueCert { client, out_dir, days } => {
            issue_client_certificate(api, &client, &out_dir, days).await
        }
        ClientCommand::Revoke(args) => revoke(api, args).await,
    }
}

async fn grant(api: &AdminClient, command: GrantCommand) -> Outcome {
    match command {
        GrantCommand::Add { id, client, service, operations, purposes, tier, not_before, not_after, reason } => {
            let mut document = json!({
                "id": id, "client": client, "service": service, "operations": operations, "tier": tier,
            });
            if !purposes.is_empty() {
                document["purposes"] = json!(purposes);
            }
            for (key, value) in [("not_before", not_before), ("not_after", not_after), ("reason", reason.clone())] {
                if let Some(value) = value {
                    document[key] = json!(value);
                }
            }
            create(api, "grants", document, reason, &format!("grant {id} added")).await
        }
        GrantCommand::List { json } => list(api, "grants", json, &["client", "service"]).await,
        GrantCommand::Show { id } => show(api, &format!("/api/v1/grants/{}", segment(&id))).await,
        GrantCommand::Revoke { id, reason } => delete(api, &format!("/api/v1/grants/{}", segment(&id)), &reason).await,
    }
}

async fn tier(api: &AdminClient, command: TierCommand) -> Outcome {
    match command {
        TierCommand::List { json } => list(api, "tiers", json, &["title"]).await,
        TierCommand::Show { id } => show(api, &format!("/api/v1/tiers/{}", segment(&id))).await,
        TierCommand::Put { id, title, rate, period, burst, unlimited, reason } => {
            let mut document = json!({"id": id});
            if let Some(title) = title {
                document["title"] = json!(title);
            }
            if unlimited {
                document["unlimited"] = json!(true);
            } else {
                document["rate"] = json!(rate);
                document["period"] = json!(period);
                if let Some(burst) = burst {
                    document["burst"] = json!(burst);
                }
            }
            let path = format!("/api/v1/tiers/{}", segment(&id));
            let etag = match api.get(&path).await {
                Ok(answer) => answer.etag,
                Err(AdminError::Refused { status: 404, .. }) => None,
                Err(e) => return Err(e),
            };
            let answer = api.send(Method::PUT, &path, Some(&with_reason(document, reason)), etag.as_deref()).await?;
            print_applied(&answer, &format!("tier {id} written"));
            Ok(0)
        }
        TierCommand::Delete { id, reason } => delete(api, &format!("/api/v1/tiers/{}", segment(&id)), &reason).await,
    }
}

async fn operator(api: &AdminClient, command: OperatorCommand) -> Outcome {
    match command {
        OperatorCommand::Create { id, name, nip, opd, roles, reason } => {
            let document = json!({
                "id": id, "name": name, "nip": nip, "opd": opd, "roles": roles, "enabled": true,
                "identity": {"fingerprint_sha256": []},
            });
            create(api, "operators", document, reason, &format!("operator {id} created")).await
        }
        OperatorCommand::List { json } => list(api, "operators", json, &["name", "roles"]).await,
        OperatorCommand::Show { id } => show(api, &format!("/api/v1/operators/{}", segment(&id))).await,
        OperatorCommand::IssueCert(args) => issue_operator_certificate(api, &args).await,
        OperatorCommand::Whoami => {
            print_json(&api.get("/api/v1/whoami").await?.json()?);
            Ok(0)
        }
        OperatorCommand::SetPassword { id } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| AdminError::Setup(format!("cannot read the password from standard input: {e}")))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(AdminError::Setup("give the new password on standard input (one line)".into()));
            }
            let path = format!("/api/v1/operators/{}/password", segment(&id));
            api.send(Method::PUT, &path, Some(&json!({"password": password})), None).await?;
            println!("console password of operator {id} set (stored as an argon2id hash)");
            Ok(0)
        }
        OperatorCommand::EnrolTotp { id } => {
            let path = format!("/api/v1/operators/{}/totp", segment(&id));
            let answer = api.send(Method::POST, &path, None, None).await?.json()?;
            println!("TOTP secret of operator {id} enrolled; it is shown this once only.");
            println!("secret: {}", answer["secret"].as_str().unwrap_or_default());
            println!("uri:    {}", answer["uri"].as_str().unwrap_or_default());
            Ok(0)
        }
    }
}

async fn store(api: &AdminClient, command: StoreCommand) -> Outcome {
    match command {
        StoreCommand::Export { out } => {
            let answer = api.get("/api/v1/store/export").await?;
            crate::ca::write_file(&out, &answer.body, 0o600).map_err(|e| AdminError::Setup(e.to_string()))?;
            println!("store exported to {} ({} bytes, signed)", out.display(), answer.body.len());
            Ok(0)
        }
        StoreCommand::Import { file, reason } => {
            // The body is the export as it was saved: its signature covers those bytes.
            let bundle =
                std::fs::read(&file).map_err(|e| AdminError::Setup(format!("cannot read {}: {e}", file.display())))?;
            let path = format!("/api/v1/store/import?reason={}", query_value(&reason));
            let answer = api.send_bytes(Method::POST, &path, Some(bundle.into()), None).await?;
            print_applied(&answer, &format!("store replaced by {}", file.display()));
            Ok(0)
        }
        local @ (StoreCommand::Push { .. } | StoreCommand::Pull { .. }) => Ok(run_local_store(local)),
    }
}

/// `POST /api/v1/{kind}` with the document.
async fn create(api: &AdminClient, kind: &str, document: Value, reason: Option<String>, done: &str) -> Outcome {
    let answer = api.send(Method::POST, &format!("/api/v1/{kind}"), Some(&with_reason(document, reason)), None).await?;
    print_applied(&answer, done);
    Ok(0)
}

/// `GET /api/v1/{kind}`: one line per document (its id and `columns`), or the JSON array.
async fn list(api: &AdminClient, kind: &str, json: bool, columns: &[&str]) -> Outcome {
    let value = api.get(&format!("/api/v1/{kind}")).await?.json()?;
    if json {
        print_json(&value);
        return Ok(0);
    }
    let items = value.as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    for item in &items {
        let document = item.get("document").unwrap_or(item);
        let id = item.get("id").or_else(|| document.get("id")).map(render).unwrap_or_default();
        let mut line = id;
        for column in columns {
            if let Some(value) = item.get(*column).or_else(|| document.get(*column)) {
                line.push_str("  ");
                line.push_str(&render(value));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    print!("{out}");
    eprintln!("{} {kind}", items.len());
    Ok(0)
}

/// `GET path`: the document as JSON, and its ETag on stderr.
async fn show(api: &AdminClient, path: &str) -> Outcome {
    let answer = api.get(path).await?;
    print_json(&answer.json()?);
    if let Some(etag) = &answer.etag {
        eprintln!("etag {etag}");
    }
    Ok(0)
}

async fn history(api: &AdminClient, path: &str, json: bool) -> Outcome {
    let value = api.get(&format!("{path}/history")).await?.json()?;
    if json {
        print_json(&value);
        return Ok(0);
    }
    for entry in value.as_array().cloned().unwrap_or_default() {
        let field = |key: &str| entry.get(key).map(render).unwrap_or_default();
        println!(
            "v{}  {}  {}  {}  {}",
            field("version"),
            field("at"),
            field("who"),
            field("action"),
            entry.get("reason").and_then(Value::as_str).unwrap_or("-")
        );
    }
    Ok(0)
}

/// `DELETE path?reason=…` with the version just read.
async fn delete(api: &AdminClient, path: &str, reason: &str) -> Outcome {
    let etag = api.get(path).await?.etag;
    let answer =
        api.send(Method::DELETE, &format!("{path}?reason={}", query_value(reason)), None, etag.as_deref()).await?;
    print_applied(&answer, &format!("{} deleted", path.trim_start_matches("/api/v1/")));
    Ok(0)
}

/// `POST {service}/{action}` with the version just read.
async fn transition(api: &AdminClient, service: &str, action: &str, body: Value, done: &str) -> Outcome {
    let path = service_path(service)?;
    let etag = api.get(&path).await?.etag;
    let body = drop_nulls(body);
    let answer = api.send(Method::POST, &format!("{path}/{action}"), Some(&body), etag.as_deref()).await?;
    print_applied(&answer, &format!("{service}: {done}"));
    if let Some(status) = answer.json().ok().and_then(|v| v.get("status").and_then(Value::as_str).map(String::from)) {
        println!("{service} is now {status}");
    }
    Ok(0)
}

/// `POST {client}/{action}` with the version just read.
async fn client_write(api: &AdminClient, client: &str, action: &str, body: Value, done: &str) -> Outcome {
    let path = client_path(client)?;
    let etag = api.get(&path).await?.etag;
    let answer = api.send(Method::POST, &format!("{path}/{action}"), Some(&body), etag.as_deref()).await?;
    print_applied(&answer, &format!("client {client}: {done}"));
    Ok(0)
}

async fn revoke(api: &AdminClient, args: RevokeArgs) -> Outcome {
    let serial = match (args.serial, args.cert) {
        (Some(serial), _) => serial,
        (None, Some(cert)) => {
            let certs = penghubung_tls::read_certificates(&cert).map_err(AdminError::Setup)?;
            penghubung_tls::identity::PeerCertificate::parse(certs[0].as_ref())
                .map_err(|e| AdminError::Setup(format!("{}: {e}", cert.display())))?
                .serial_hex()
        }
        (None, None) => return Err(AdminError::Setup("give --serial or --cert".into())),
    };
    let body = json!({"serial_hex": serial, "reason": args.reason});
    let answer = api.send(Method::POST, "/api/v1/revocations", Some(&body), None).await?;
    print_applied(&answer, &format!("revoked {serial}; the CRL is rewritten and bites on the next request"));
    Ok(0)
}

/// A key generated here, its CSR signed through the API; the certificate and key written into `out_dir`.
async fn issue_client_certificate(api: &AdminClient, id: &str, out_dir: &Path, days: u32) -> Outcome {
    let path = client_path(id)?;
    let (opd, app) = id.split_once('/').unwrap_or((id, ""));
    let (key_pem, csr_pem) = key_and_csr(app)?;
    let body = json!({"csr_pem": csr_pem, "days": days});
    let answer = api.send(Method::POST, &format!("{path}/certificates"), Some(&body), None).await?;
    let cert_pem = certificate_of(&answer)?;
    let (cert, key) = (out_dir.join(format!("{opd}.{app}.crt")), out_dir.join(format!("{opd}.{app}.key")));
    write_identity(&cert, &cert_pem, &key, &key_pem)?;
    println!("client certificate {} (key {} with 0600) for {id}", cert.display(), key.display());
    Ok(0)
}

/// Like [`issue_client_certificate`] for an operator, plus a profile file beside them.
async fn issue_operator_certificate(api: &AdminClient, args: &IssueOperatorArgs) -> Outcome {
    let id = &args.operator;
    let (key_pem, csr_pem) = key_and_csr(id)?;
    let body = json!({"csr_pem": csr_pem, "days": args.days});
    let path = format!("/api/v1/operators/{}/certificates", segment(id));
    let answer = api.send(Method::POST, &path, Some(&body), None).await?;
    let cert_pem = certificate_of(&answer)?;
    let (cert, key) = (args.out_dir.join(format!("{id}.crt")), args.out_dir.join(format!("{id}.key")));
    write_identity(&cert, &cert_pem, &key, &key_pem)?;
    let profile_path = args.out_dir.join(format!("{id}.profile.toml"));
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let profile = crate::admin_client::Profile {
        admin_url: Some(api.url().to_string()),
        cacert: Some(absolute(api.cacert())),
        operator_cert: Some(absolute(&cert)),
        operator_key: Some(absolute(&key)),
    };
    crate::ca::write_file(&profile_path, profile.to_toml().as_bytes(), 0o600)
        .map_err(|e| AdminError::Setup(e.to_string()))?;
    println!("operator certificate {} (key {} with 0600) for {id}", cert.display(), key.display());
    println!("profile {} (give it to the operator with the key and certificate)", profile_path.display());
    Ok(0)
}

fn certificate_of(answer: &Answer) -> Result<String, AdminError> {
    let value = answer.json()?;
    value
        .get("certificate_pem")
        .or_else(|| value.pointer("/applied/certificate_pem"))
        .and_then(Value::as_str)
        .map(String::from)
        .ok_or_else(|| AdminError::Connect("the admin API answered without a certificate".into()))
}

fn write_identity(cert: &Path, cert_pem: &str, key: &Path, key_pem: &str) -> Result<(), AdminError> {
    crate::ca::write_file(key, key_pem.as_bytes(), 0o600)
        .and_then(|()| crate::ca::write_file(cert, cert_pem.as_bytes(), 0o644))
        .map_err(|e| AdminError::Setup(e.to_string()))
}

/// A new key pair and a CSR for it (PEM): the key stays here.
pub fn key_and_csr(common_name: &str) -> Result<(String, String), AdminError> {
    let fail = |e: rcgen::Error| AdminError::Setup(format!("key generation: {e}"));
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
    let csr = params.serialize_request(&key).map_err(fail)?;
    Ok((key.serialize_pem(), csr.pem().map_err(fail)?))
}

fn client_document(
    opd: &str,
    app: &str,
    clearance: &str,
    test_client: bool,
    identity: Value,
) -> Result<Value, AdminError> {
    Ok(json!({
        "id": format!("{opd}/{app}"), "opd": opd, "name": app,
        "clearance": classification_value(clearance)?, "enabled": true, "test_client": test_client,
        "identity": identity,
    }))
}

/// The client's `identity`: as given, or the built-in CA's SPIFFE id for it (see [`IdentityArgs`]).
fn identity_of(api: &AdminClient, opd: &str, app: &str, given: IdentityArgs) -> Result<Value, AdminError> {
    let mut identity = Map::new();
    for (key, values) in
        [("spiffe", given.spiffe), ("subject", given.subject), ("fingerprint_sha256", given.fingerprint)]
    {
        if !values.is_empty() {
            identity.insert(key.into(), json!(values));
        }
    }
    if identity.is_empty() {
        let settings = api.cacert().with_file_name("ca.toml");
        let trust_domain = std::fs::read_to_string(&settings)
            .ok()
            .and_then(|text| toml::from_str::<Value>(&text).ok())
            .and_then(|v| v.get("trust_domain").and_then(Value::as_str).map(String::from))
            .ok_or_else(|| {
                AdminError::Setup(format!(
                    "say what binds the client's certificates: --spiffe, --subject or --fingerprint (no {} \
                     names the built-in CA's trust domain)",
                    settings.display()
                ))
            })?;
        identity.insert("spiffe".into(), json!([format!("spiffe://{trust_domain}/opd/{opd}/app/{app}")]));
    }
    Ok(Value::Object(identity))
}

/// A change's body: the document, with the reason beside it.
fn with_reason(document: Value, reason: Option<String>) -> Value {
    let mut body = Map::new();
    body.insert("document".into(), document);
    if let Some(reason) = reason {
        body.insert("reason".into(), Value::String(reason));
    }
    Value::Object(body)
}

fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn classification_value(text: &str) -> Result<Value, AdminError> {
    match text {
        "terbuka" | "terbatas" | "rahasia" | "sangat_rahasia" => Ok(json!(text)),
        _ => Err(AdminError::Setup(format!(
            "`{text}` is not a classification (terbuka, terbatas, rahasia, sangat_rahasia)"
        ))),
    }
}

/// `/api/v1/services/{opd}/{name}/v{n}` for `opd/name/vN`.
fn service_path(id: &str) -> Result<String, AdminError> {
    let parts: Vec<&str> = id.split('/').collect();
    let valid = parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts[2].strip_prefix('v').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid {
        return Err(AdminError::Setup(format!("`{id}` is not a service id (opd/name/v1)")));
    }
    Ok(format!("/api/v1/services/{}/{}/{}", segment(parts[0]), segment(parts[1]), segment(parts[2])))
}

/// `/api/v1/clients/{opd}/{app}` for `opd/app`.
fn client_path(id: &str) -> Result<String, AdminError> {
    match id.split_once('/') {
        Some((opd, app)) if !opd.is_empty() && !app.is_empty() && !app.contains('/') => {
            Ok(format!("/api/v1/clients/{}/{}", segment(opd), segment(app)))
        }
        _ => Err(AdminError::Setup(format!("`{id}` is not a client id (opd/app)"))),
    }
}

/// A document from a TOML or JSON file.
fn read_document(path: &Path) -> Result<Value, AdminError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| AdminError::Setup(format!("cannot read {}: {e}", path.display())))?;
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str(&text).map_err(|e| AdminError::Setup(format!("{}: {e}", path.display())));
    }
    toml::from_str::<Value>(&text).map_err(|e| AdminError::Setup(format!("{}: {e}", path.display())))
}

/// The API's explanation as the local `policy explain` prints it.
fn render_explanation(value: &Value) -> String {
    let text = |v: &Value, key: &str| v.get(key).map(render).unwrap_or_default();
    let mut out = match value.get("code").and_then(Value::as_str) {
        None => format!("decision: ALLOW (grant {})\n", value.get("grant").map_or("-".into(), render)),
        Some(code) => format!("decision: DENY {} {code}\nreason:   {}\n", text(value, "status"), text(value, "reason")),
    };
    for check in value.get("checks").and_then(Value::as_array).into_iter().flatten() {
        let mark = if check.get("passed").and_then(Value::as_bool) == Some(true) { "ok  " } else { "FAIL" };
        let code = check.get("code").and_then(Value::as_str).map(|c| format!(" [{c}]")).unwrap_or_default();
        out.push_str(&format!("  {mark} {:<13} {}{code}\n", text(check, "check"), text(check, "detail")));
    }
    let withheld: Vec<String> =
        value.get("withheld").and_then(Value::as_array).into_iter().flatten().map(render).collect();
    if !withheld.is_empty() {
        out.push_str("withheld from responses (above the client's clearance):\n");
        for w in withheld {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out
}

fn print_applied(answer: &Answer, fallback: &str) {
    let summary = answer.json().ok().and_then(|v| v.get("summary").and_then(Value::as_str).map(String::from));
    println!("{}", summary.unwrap_or_else(|| fallback.to_string()));
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_api_paths_and_bad_ids_are_named() {
        assert_eq!(service_path("dinkes/rekam-medis/v1").unwrap(), "/api/v1/services/dinkes/rekam-medis/v1");
        for bad in ["dinkes/rm", "dinkes/rm/1", "dinkes//v1", "a/b/v1/x", "a/b/vx"] {
            assert!(service_path(bad).unwrap_err().to_string().contains("opd/name/v1"), "{bad}");
        }
        assert_eq!(client_path("dinsos/sipadu").unwrap(), "/api/v1/clients/dinsos/sipadu");
        assert!(client_path("dinsos").is_err() && client_path("a/b/c").is_err());
    }

    #[test]
    fn a_csr_carries_no_private_key() {
        let (key, csr) = key_and_csr("sipadu").unwrap();
        assert!(csr.contains("BEGIN CERTIFICATE REQUEST") && !csr.contains("PRIVATE KEY"), "{csr}");
        assert!(key.contains("PRIVATE KEY"));
    }
}
