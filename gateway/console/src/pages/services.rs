//! Services: the list, a service's page (operations, contracts, classification, status, approvals, and the
//! lifecycle actions the viewer's roles allow), the creation form, and the lifecycle actions themselves
//! (submit, approve for operations or security, withdraw with a reason, suspend, resume, retire). A refused
//! action shows the service page again with the management plane's reason and code; a done one redirects back
//! with a notice.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::{html, Markup};
use penghubung_manage::{needs_reason, Operation};
use serde_json::{json, Value};

use super::{context, fail, items, params, pretty, text};
use crate::error::{self, ConsoleError};
use crate::layout::{self, notice, text_field, Lang};
use crate::web::{self, field, raw_field, see_other, Ctx, Fields};
use crate::Console;

pub async fn list(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let services = match ctx.perform("listServices", vec![], HashMap::new(), None).await {
        Ok(v) => items(&v),
        Err(e) => return fail(&ctx, e),
    };
    let lang = ctx.lang;
    let title = lang.pick("Layanan", "Services");
    let body = html! {
        h1 { (title) }
        @if ctx.may(Operation::CreateService, Some(&ctx.viewer.actor.opd)) || ctx.may(Operation::CreateService, None) {
            p { a #new-service href="/services/new" { (lang.pick("Buat layanan", "Create a service")) } }
        }
        @if services.is_empty() {
            p.muted { (lang.pick("Belum ada layanan.", "No services yet.")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { (lang.pick("Judul", "Title")) }
                    th scope="col" { (lang.pick("Klasifikasi", "Classification")) } th scope="col" { "Status" }
                } }
                tbody { @for s in &services { tr {
                    td { a href=(super::dashboard::service_href(s)) { (text(&s["id"])) } }
                    td { (text(&s["title"])) } td { (text(&s["classification"])) } td.status { (text(&s["status"])) }
                } } }
            }
        }
    };
    layout::page(&ctx, StatusCode::OK, title, body)
}

fn new_form_page(ctx: &Ctx, status: StatusCode, fields: &Fields, error: Option<&ConsoleError>) -> Response {
    let lang = ctx.lang;
    let title = lang.pick("Buat layanan", "Create a service");
    let body = html! {
        h1 { (title) }
        @if let Some(e) = error { (e.alert(lang)) }
        form #service-form method="post" action="/services" {
            input type="hidden" name="csrf" value=(ctx.viewer.csrf);
            (text_field("service-opd", "opd", "OPD", field(fields, "opd").unwrap_or(&ctx.viewer.actor.opd)))
            (text_field("service-name", "name", lang.pick("Nama (slug)", "Name (slug)"), field(fields, "name").unwrap_or("")))
            (text_field("service-version", "version", lang.pick("Versi (v1, v2, …)", "Version (v1, v2, …)"), field(fields, "version").unwrap_or("v1")))
            div.field {
                label for="service-document" { (lang.pick("Dokumen layanan (TOML, seperti yang diterima API)", "Service document (TOML, as the API takes it)")) }
                textarea #service-document name="document" rows="18" { (raw_field(fields, "document")) }
            }
            button #service-create type="submit" { (lang.pick("Buat (draf)", "Create (draft)")) }
        }
    };
    layout::page(ctx, status, title, body)
}

pub async fn new_form(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    match context(&console, &parts).await {
        Ok(ctx) => new_form_page(&ctx, StatusCode::OK, &Vec::new(), None),
        Err(response) => response,
    }
}

/// The version number of `v1`, `v2`, ... (or a bare number).
fn version_number(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// The service document of the form: the TOML text with the form's OPD, name and version (which must agree
/// with the text's when it has them).
fn service_document(fields: &Fields) -> Result<Value, ConsoleError> {
    let opd = field(fields, "opd").ok_or_else(|| ConsoleError::BadRequest("OPD is required".into()))?;
    let name = field(fields, "name").ok_or_else(|| ConsoleError::BadRequest("the name is required".into()))?;
    let version = field(fields, "version")
        .and_then(version_number)
        .ok_or_else(|| ConsoleError::BadRequest("the version is v1, v2, ...".into()))?;
    let mut table: toml::Table = toml::from_str(raw_field(fields, "document"))
        .map_err(|e| ConsoleError::BadRequest(format!("the service document is not valid TOML: {e}")))?;
    for (key, value) in [("opd", toml::Value::from(opd)), ("name", toml::Value::from(name))] {
        match table.get(key) {
            Some(given) if given != &value => {
                return Err(ConsoleError::BadRequest(format!(
                    "the document's `{key}` is {given}, the form's `{value}`"
                )))
            }
            _ => {
                table.insert(key.into(), value);
            }
        }
    }
    match table.get("version").and_then(toml::Value::as_integer) {
        Some(given) if u64::try_from(given).ok() != Some(version) => {
            return Err(ConsoleError::BadRequest(format!("the document's version is {given}, the form's {version}")))
        }
        _ => {
            table.insert("version".into(), toml::Value::Integer(i64::try_from(version).unwrap_or(1)));
        }
    }
    serde_json::to_value(&table).map_err(|e| ConsoleError::BadRequest(e.to_string()))
}

/// `POST /services`: creates a draft service.
pub async fn create(State(console): State<Arc<Console>>, parts: Parts, Form(fields): Form<Fields>) -> Response {
    let ctx = match console.form_context(&parts, &fields).await {
        Ok(ctx) => ctx,
        Err((ctx, e)) => return error::page(ctx.as_ref(), web::lang(&parts), e),
    };
    let result = match service_document(&fields) {
        Ok(document) => ctx.perform("createService", vec![], HashMap::new(), Some(json!({"document": document}))).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(applied) => {
            let id = applied["id"].as_str().unwrap_or_default();
            let mut parts = id.split('/');
            let (opd, name, version) =
                (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("v1"));
            see_other(&format!("/services/{opd}/{name}/{version}?done=created"))
        }
        Err(e) => new_form_page(&ctx, e.status(), &fields, Some(&e)),
    }
}

/// The lifecycle actions: path segment (and button id `action-{segment}`), operation, label. Each form has a
/// reason field, required where the management plane needs one (`needs_reason`).
struct Action {
    segment: &'static str,
    operation: Operation,
    label: (&'static str, &'static str),
}

const ACTIONS: &[Action] = &[
    Action {
        segment: "submit",
        operation: Operation::SubmitService,
        label: ("Ajukan untuk pengujian", "Submit for testing"),
    },
    Action {
        segment: "approve-operations",
        operation: Operation::ApproveOperations,
        label: ("Setujui (operasi)", "Approve (operations)"),
    },
    Action {
        segment: "approve-security",
        operation: Operation::ApproveSecurity,
        label: ("Setujui (keamanan)", "Approve (security)"),
    },
    Action {
        segment: "withdraw",
        operation: Operation::WithdrawApproval,
        label: ("Tarik persetujuan", "Withdraw approval"),
    },
    Action { segment: "suspend", operation: Operation::SuspendService, label: ("Hentikan sementara", "Suspend") },
    Action { segment: "resume", operation: Operation::ResumeService, label: ("Lanjutkan", "Resume") },
    Action { segment: "retire", operation: Operation::RetireService, label: ("Pensiunkan", "Retire") },
];

/// Whether `action` makes sense in the service's status (the management plane decides all the same).
fn fits_status(action: &Action, service: &Value) -> bool {
    let status = service["status"].as_str().unwrap_or("draft");
    let approved = |kind: &str| !service["approvals"][kind].is_null();
    match action.segment {
        "submit" => status == "draft",
        "approve-operations" => status == "testing" && !approved("operations"),
        "approve-security" => status == "testing" && !approved("security"),
        "withdraw" => matches!(status, "testing" | "active") && (approved("operations") || approved("security")),
        "suspend" => status == "active",
        "resume" => status == "suspended",
        "retire" => status != "retired",
        _ => false,
    }
}

fn action_forms(ctx: &Ctx, base: &str, service: &Value) -> Markup {
    let lang = ctx.lang;
    let opd = service["opd"].as_str();
    let shown: Vec<&Action> = ACTIONS.iter().filter(|a| ctx.may(a.operation, opd) && fits_status(a, service)).collect();
    html! {
        @if shown.is_empty() {
            p.muted { (lang.pick("Tidak ada tindakan yang diizinkan untuk peran Anda pada status ini.", "No action is allowed to your roles in this status.")) }
        }
        div.actions {
            @for action in shown {
                form method="post" action={ (base) "/" (action.segment) } {
                    input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                    @if action.segment == "withdraw" {
                        div.field {
                            label for="withdraw-kind" { (lang.pick("Persetujuan", "Approval")) }
                            select #withdraw-kind name="kind" {
                                @if !service["approvals"]["operations"].is_null() { option value="operations" { (lang.pick("operasi", "operations")) } }
                                @if !service["approvals"]["security"].is_null() { option value="security" { (lang.pick("keamanan", "security")) } }
                            }
                        }
                    }
                    div.field {
                        label for={ (action.segment) "-reason" } {
                            (lang.pick("Alasan", "Reason"))
                            @if !needs_reason(action.operation) { " " (lang.pick("(opsional)", "(optional)")) }
                        }
                        input type="text" id={ (action.segment) "-reason" } name="reason" required[needs_reason(action.operation)];
                    }
                    button type="submit" id={ "action-" (action.segment) } { (lang.pick(action.label.0, action.label.1)) }
                }
            }
        }
    }
}

fn service_page(ctx: &Ctx, status: StatusCode, base: &str, service: &Value, alert: Markup) -> Response {
    let lang = ctx.lang;
    let id = service["id"].as_str().map_or_else(
        || format!("{}/{}/v{}", text(&service["opd"]), text(&service["name"]), text(&service["version"])),
        str::to_string,
    );
    let title = format!("{} {id}", lang.pick("Layanan", "Service"));
    let approval = |kind: &str| {
        let a = &service["approvals"][kind];
        if a.is_null() {
            lang.pick("belum", "not yet").to_string()
        } else {
            format!("{} ({})", text(&a["by"]), text(&a["at"]))
        }
    };
    let operations = service["operations"].as_array().cloned().unwrap_or_default();
    let body = html! {
        h1 { (title) }
        (alert)
        p { (text(&service["title"])) }
        table {
            tbody {
                tr { th scope="row" { "Status" } td.status #service-status { (text(&service["status"])) } }
                tr { th scope="row" { (lang.pick("Klasifikasi", "Classification")) } td #service-classification { (text(&service["classification"])) } }
                tr { th scope="row" { (lang.pick("Alasan status", "Status reason")) } td { (text(&service["status_reason"])) } }
                tr { th scope="row" { (lang.pick("Diajukan oleh", "Submitted by")) } td { (text(&service["submitted_by"])) } }
                tr { th scope="row" { (lang.pick("Persetujuan operasi", "Operations approval")) } td #approval-operations { (approval("operations")) } }
                tr { th scope="row" { (lang.pick("Persetujuan keamanan", "Security approval")) } td #approval-security { (approval("security")) } }
                tr { th scope="row" { "Upstream" } td { pre { (pretty(&service["upstream"])) } } }
            }
        }
        h2 { (lang.pick("Tindakan", "Actions")) }
        (action_forms(ctx, base, service))
        h2 { (lang.pick("Operasi dan kontrak", "Operations and contracts")) }
        @if operations.is_empty() {
            p.muted { (lang.pick("Tidak ada operasi yang dinyatakan: seluruh ruang layanan diteruskan.", "No operations declared: the service's whole space is forwarded.")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { (lang.pick("Metode", "Method")) } th scope="col" { "Path" }
                    th scope="col" { (lang.pick("Klasifikasi", "Classification")) } th scope="col" { (lang.pick("Kontrak", "Contracts")) }
                } }
                tbody { @for op in &operations { tr {
                    td { (text(&op["id"])) } td { (text(&op["method"])) } td { code { (text(&op["path"])) } }
                    td { (text(&op["classification"])) }
                    td {
                        @for (key, label) in [("request", lang.pick("permintaan", "request")), ("query", "query"), ("response", lang.pick("respons", "response"))] {
                            @if !op[key].is_null() { details { summary { (label) } pre { (pretty(&op[key])) } } }
                        }
                    }
                } } }
            }
        }
        p { a href={ "/history/services/" (id) } { (lang.pick("Riwayat versi", "Version history")) } }
    };
    layout::page(ctx, status, &title, body)
}

fn service_params(opd: &str, name: &str, version: &str) -> Vec<(String, String)> {
    params(&[("opd", opd), ("name", name), ("version", version)])
}

/// `GET /services/{opd}/{name}/{version}`.
pub async fn page(
    State(console): State<Arc<Console>>,
    Path((opd, name, version)): Path<(String, String, String)>,
    parts: Parts,
) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let service = match ctx.perform("getService", service_params(&opd, &name, &version), HashMap::new(), None).await {
        Ok(s) => s,
        Err(e) => return fail(&ctx, e),
    };
    let done = web::query(&parts).get("done").cloned();
    let base = format!("/services/{opd}/{name}/{version}");
    service_page(&ctx, StatusCode::OK, &base, &service, notice(ctx.lang, done.as_deref()))
}

/// `POST /services/{opd}/{name}/{version}/{action}`.
pub async fn action(
    State(console): State<Arc<Console>>,
    Path((opd, name, version, segment)): Path<(String, String, String, String)>,
    parts: Parts,
    Form(fields): Form<Fields>,
) -> Response {
    let lang: Lang = web::lang(&parts);
    let ctx = match console.form_context(&parts, &fields).await {
        Ok(ctx) => ctx,
        Err((ctx, e)) => return error::page(ctx.as_ref(), lang, e),
    };
    let Some(action) = ACTIONS.iter().find(|a| a.segment == segment) else {
        return fail(&ctx, ConsoleError::NotFound);
    };
    let reason = field(&fields, "reason").map(str::to_string);
    let path = service_params(&opd, &name, &version);
    let (route, query, body) = match action.segment {
        "submit" => ("submitService", HashMap::new(), json!({"reason": reason})),
        "approve-operations" => ("approveService", HashMap::new(), json!({"kind": "operations", "reason": reason})),
        "approve-security" => ("approveService", HashMap::new(), json!({"kind": "security", "reason": reason})),
        "withdraw" => {
            let kind = field(&fields, "kind").unwrap_or("operations").to_string();
            let mut query = HashMap::from([("kind".to_string(), kind)]);
            if let Some(reason) = &reason {
                query.insert("reason".into(), reason.clone());
            }
            ("withdrawApproval", query, Value::Null)
        }
        "suspend" => ("suspendService", HashMap::new(), json!({"reason": reason})),
        "resume" => ("resumeService", HashMap::new(), json!({"reason": reason})),
        _ => ("retireService", HashMap::new(), json!({"reason": reason})),
    };
    let body = (!body.is_null()).then_some(body);
    match ctx.perform(route, path.clone(), query, body).await {
        Ok(_) => see_other(&format!("/services/{opd}/{name}/{version}?done={}", action.segment)),
        Err(refused) => {
            // The page again, with the reason and its code.
            let service = match ctx.perform("getService", path, HashMap::new(), None).await {
                Ok(s) => s,
                Err(_) => return fail(&ctx, refused),
            };
            let base = format!("/services/{opd}/{name}/{version}");
            service_page(&ctx, refused.status(), &base, &service, refused.alert(ctx.lang))
        }
    }
}
