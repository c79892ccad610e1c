//! `GET /`: services by status, the approvals waiting for the viewer, certificates and grants expiring within
//! 30 days, recent denials by code (the audit trail's exchange records of the last 24 hours, for the roles that
//! may search it), and the health of the audit trail and of Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::{html, Markup};
use penghubung_manage::Operation;
use penghubung_types::documents::Role;
use serde_json::Value;

use super::{context, fail, items, text};
use crate::layout::{self, Lang};
use crate::web::Ctx;
use crate::Console;

/// Certificates and grants ending within this many days are listed.
pub const EXPIRY_DAYS: i64 = 30;

/// The approval a viewer could give to a service in testing (not one they are barred from: the other approval
/// of their own, or the security approval of their own submission).
pub fn approvals_for(ctx: &Ctx, service: &Value) -> Vec<&'static str> {
    let actor = &ctx.viewer.actor;
    if service["status"].as_str() != Some("testing") {
        return Vec::new();
    }
    let by = |kind: &str| service["approvals"][kind]["by"].as_str().map(str::to_string);
    let opd = service["opd"].as_str();
    let mut out = Vec::new();
    if by("operations").is_none()
        && actor.has(Role::Operasi)
        && ctx.may(Operation::ApproveOperations, opd)
        && by("security").as_deref() != Some(actor.id.as_str())
    {
        out.push("operations");
    }
    if by("security").is_none()
        && actor.has(Role::Keamanan)
        && ctx.may(Operation::ApproveSecurity, opd)
        && by("operations").as_deref() != Some(actor.id.as_str())
        && service["submitted_by"].as_str() != Some(actor.id.as_str())
    {
        out.push("security");
    }
    out
}

/// The service page of a service document.
pub fn service_href(service: &Value) -> String {
    format!(
        "/services/{}/{}/v{}",
        service["opd"].as_str().unwrap_or_default(),
        service["name"].as_str().unwrap_or_default(),
        service["version"].as_u64().unwrap_or(1)
    )
}

pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let services = match ctx.perform("listServices", vec![], HashMap::new(), None).await {
        Ok(v) => items(&v),
        Err(e) => return fail(&ctx, e),
    };
    let grants = match ctx.perform("listGrants", vec![], HashMap::new(), None).await {
        Ok(v) => items(&v),
        Err(e) => return fail(&ctx, e),
    };

    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for service in &services {
        *by_status.entry(service["status"].as_str().unwrap_or("draft").to_string()).or_default() += 1;
    }
    let waiting: Vec<(&Value, Vec<&str>)> =
        services.iter().map(|s| (s, approvals_for(&ctx, s))).filter(|(_, kinds)| !kinds.is_empty()).collect();

    let now = penghubung_policy::unix_now();
    let horizon = now + EXPIRY_DAYS * 24 * 3600;
    let grants_ending: Vec<(String, String)> = grants
        .iter()
        .filter_map(|g| {
            let not_after = g["not_after"].as_str()?;
            let at = penghubung_policy::grants::parse_time(not_after).ok()?;
            (now..=horizon).contains(&at).then(|| (text(&g["id"]), not_after.to_string()))
        })
        .collect();
    let certificates = expiring_certificates(&console, now, horizon);
    let denials = recent_denials(&ctx).await;
    let health = health(&console, lang).await;

    let body = html! {
        h1 { (lang.pick("Dasbor", "Dashboard")) }
        div.grid {
            section #services-by-status aria-labelledby="h-status" {
                h2 #h-status { (lang.pick("Layanan menurut status", "Services by status")) }
                @if by_status.is_empty() {
                    p.muted { (lang.pick("Belum ada layanan.", "No services yet.")) }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Status" } th scope="col" { (lang.pick("Jumlah", "Count")) } } }
                        tbody { @for (status, count) in &by_status { tr { td.status { (status) } td { (count) } } } }
                    }
                }
            }
            section #approvals-waiting aria-labelledby="h-approvals" {
                h2 #h-approvals { (lang.pick("Persetujuan menunggu Anda", "Approvals waiting for you")) }
                @if waiting.is_empty() {
                    p.muted { (lang.pick("Tidak ada.", "None.")) }
                } @else {
                    ul { @for (service, kinds) in &waiting {
                        li { a href=(service_href(service)) { (text(&service["id"])) } " — " (kinds.join(", ")) }
                    } }
                }
            }
            section #expiring aria-labelledby="h-expiring" {
                h2 #h-expiring { (lang.pick("Berakhir dalam 30 hari", "Expiring within 30 days")) }
                @if grants_ending.is_empty() && certificates.is_empty() {
                    p.muted { (lang.pick("Tidak ada sertifikat atau izin akses yang segera berakhir.", "No certificate or grant expires soon.")) }
                } @else {
                    ul {
                        @for (id, at) in &grants_ending { li { (lang.pick("Izin akses", "Grant")) " " code { (id) } ": " (at) } }
                        @for (what, at) in &certificates { li { (lang.pick("Sertifikat", "Certificate")) " " (what) ": " (at) } }
                    }
                }
            }
            section #recent-denials aria-labelledby="h-denials" {
                h2 #h-denials { (lang.pick("Penolakan 24 jam terakhir", "Denials in the last 24 hours")) }
                (denials)
            }
            section #health aria-labelledby="h-health" {
                h2 #h-health { (lang.pick("Kesehatan", "Health")) }
                (health)
            }
        }
    };
    layout::page(&ctx, StatusCode::OK, lang.pick("Dasbor", "Dashboard"), body)
}

/// Denials by code from the exchange records of the last 24 hours (for the roles that may search the trail).
async fn recent_denials(ctx: &Ctx) -> Markup {
    let lang = ctx.lang;
    if !ctx.may(Operation::AuditSearch, None) {
        return html! { p.muted { (lang.pick("Pencarian audit tidak tersedia untuk peran Anda.", "Audit search is not available to your roles.")) } };
    }
    let since = penghubung_audit::record::format_time(SystemTime::now() - Duration::from_secs(24 * 3600));
    let query: HashMap<String, String> =
        [("since".to_string(), since), ("limit".to_string(), "100000".to_string())].into();
    let records = match ctx.perform("auditSearch", vec![], query, None).await {
        Ok(answer) => answer["records"].as_array().cloned().unwrap_or_default(),
        Err(e) => return html! { p.error { (e.reason(lang)) " (" code { (e.code()) } ")" } },
    };
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    for record in records.iter().filter(|r| r["kind"] == "exchange" && r["decision"] == "deny") {
        *by_code.entry(text(&record["code"])).or_default() += 1;
    }
    if by_code.is_empty() {
        return html! { p.muted { (lang.pick("Tidak ada penolakan.", "No denials.")) } };
    }
    html! {
        table {
            thead { tr { th scope="col" { (lang.pick("Kode", "Code")) } th scope="col" { (lang.pick("Jumlah", "Count")) } } }
            tbody { @for (code, count) in &by_code { tr { td { code { (code) } } td { (count) } } } }
        }
    }
}

/// The audit trail's state and whether Redis answers a connection.
async fn health(console: &Arc<Console>, lang: Lang) -> Markup {
    let audit = console.auditor.as_ref().map(|a| a.status());
    let redis = match &console.redis {
        Some(address) => {
            let reachable =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(address.as_str()))
                    .await
                    .is_ok_and(|c| c.is_ok());
            Some((address.clone(), reachable))
        }
        None => None,
    };
    html! {
        dl {
            dt { (lang.pick("Jejak audit", "Audit trail")) }
            dd {
                @match &audit {
                    Some(status) => {
                        @if status["writable"] == Value::Bool(true) { (lang.pick("dapat ditulis", "writable")) } @else { strong { (lang.pick("GAGAL menulis", "NOT writable")) } }
                        ", seq " (text(&status["written_seq"]))
                        @if let Some(redis) = status["shipping"]["redis"].as_str() { ", " (lang.pick("pengiriman ke Redis", "shipping to Redis")) ": " (redis) }
                    }
                    None => (lang.pick("mati", "off")),
                }
            }
            dt { "Redis" }
            dd {
                @match &redis {
                    Some((address, true)) => { (lang.pick("terhubung", "reachable")) " (" (address) ")" }
                    Some((address, false)) => { strong { (lang.pick("tidak terjangkau", "unreachable")) } " (" (address) ")" }
                    None => (lang.pick("tidak dikonfigurasi (batas per proses)", "not configured (limits per process)")),
                }
            }
        }
    }
}

/// The gateway's own certificates (server, admin listener, client and operator CAs) ending before `horizon`.
fn expiring_certificates(console: &Console, now: i64, horizon: i64) -> Vec<(String, String)> {
    let config = console.admin.manager.config();
    let mut files = Vec::new();
    if let Some(tls) = &config.tls {
        files.push(config.resolve(&tls.cert_file));
        files.extend(tls.client_ca_files.iter().map(|f| config.resolve(f)));
    }
    if let Ok(admin) = config.admin_tls_files() {
        files.push(admin.cert_file);
        files.push(admin.operator_ca_file);
    }
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for file in files {
        let Ok(pem) = std::fs::read(&file) else { continue };
        for (index, der) in pem_blocks(&pem).into_iter().enumerate() {
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else { continue };
            let not_after = cert.validity().not_after.timestamp();
            if not_after <= horizon {
                let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                let what = if index == 0 { name } else { format!("{name} #{}", index + 1) };
                let state = if not_after < now { " (expired)" } else { "" };
                out.push((what, format!("{}{state}", cert.validity().not_after)));
            }
        }
    }
    out
}

/// The DER of each `CERTIFICATE` block of a PEM file.
fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}
