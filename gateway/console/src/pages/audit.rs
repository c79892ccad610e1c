//! `GET /audit`: the audit trail searched with filters (from, to, client, service, code; changes and security
//! events on request), newest last; `POST /audit/verify`: the chain and signed checkpoints verified.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, State};
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::{html, Markup};
use serde_json::Value;

use super::{context, fail, pretty, text};
use crate::error::{self, ConsoleError};
use crate::layout::{self, text_field};
use crate::web::{self, Ctx, Fields};
use crate::Console;

/// Records shown at most.
const SHOWN: usize = 500;

fn form(ctx: &Ctx, query: &HashMap<String, String>) -> Markup {
    let lang = ctx.lang;
    let value = |k: &str| query.get(k).map_or("", String::as_str);
    html! {
        form #audit-form method="get" action="/audit" {
            div.grid {
                (text_field("audit-from", "from", lang.pick("Dari (RFC 3339 atau tanggal)", "From (RFC 3339 or a date)"), value("from")))
                (text_field("audit-to", "to", lang.pick("Sampai", "To"), value("to")))
                (text_field("audit-client", "client", lang.pick("Klien", "Client"), value("client")))
                (text_field("audit-service", "service", lang.pick("Layanan", "Service"), value("service")))
                (text_field("audit-code", "code", lang.pick("Kode", "Code"), value("code")))
                div.field {
                    label for="audit-kind" { (lang.pick("Jenis catatan", "Records")) }
                    select #audit-kind name="kind" {
                        option value="exchange" selected[value("kind") == "exchange"] { (lang.pick("pertukaran", "exchanges")) }
                        option value="changes" selected[value("kind") == "changes"] { (lang.pick("perubahan dokumen", "document changes")) }
                        option value="security" selected[value("kind") == "security"] { (lang.pick("keamanan (TLS, masuk konsol)", "security (TLS, console sign-ins)")) }
                    }
                }
            }
            button #audit-search type="submit" { (lang.pick("Cari", "Search")) }
        }
        form #audit-verify-form method="post" action="/audit/verify" {
            input type="hidden" name="csrf" value=(ctx.viewer.csrf);
            button #audit-verify type="submit" .secondary { (lang.pick("Verifikasi jejak audit", "Verify the audit trail")) }
        }
    }
}

pub async fn search(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let given = web::query(&parts);
    let searched = ["from", "to", "client", "service", "code", "kind"].iter().any(|k| given.contains_key(*k));
    let mut results = html! {};
    if searched {
        let mut query = HashMap::new();
        for (from, to) in
            [("from", "since"), ("to", "until"), ("client", "client"), ("service", "service"), ("code", "code")]
        {
            if let Some(v) = given.get(from).filter(|v| !v.trim().is_empty()) {
                query.insert(to.to_string(), v.trim().to_string());
            }
        }
        match given.get("kind").map(String::as_str) {
            Some("changes") => {
                query.insert("changes".into(), "true".into());
            }
            Some("security") => {
                query.insert("security".into(), "true".into());
            }
            _ => {}
        }
        query.insert("limit".into(), SHOWN.to_string());
        results = match ctx.perform("auditSearch", vec![], query, None).await {
            Ok(answer) => records(&ctx, &answer),
            Err(e) => {
                let status = e.status();
                let body = html! { h1 { "Audit" } (form(&ctx, &given)) (e.alert(lang)) };
                return layout::page(&ctx, status, "Audit", body);
            }
        };
    }
    let body = html! { h1 { "Audit" } (form(&ctx, &given)) (results) };
    layout::page(&ctx, StatusCode::OK, "Audit", body)
}

fn records(ctx: &Ctx, answer: &Value) -> Markup {
    let lang = ctx.lang;
    let records = answer["records"].as_array().cloned().unwrap_or_default();
    html! {
        section #audit-results aria-live="polite" {
            h2 { (lang.pick("Hasil", "Results")) " (" (records.len()) ")" }
            @if answer["truncated"] == Value::Bool(true) { p.muted { (lang.pick("Hanya yang terbaru ditampilkan.", "Only the newest are shown.")) } }
            table {
                thead { tr {
                    th scope="col" { "seq" } th scope="col" { (lang.pick("Waktu", "Time")) } th scope="col" { (lang.pick("Jenis", "Kind")) }
                    th scope="col" { (lang.pick("Siapa / klien", "Who / client")) } th scope="col" { (lang.pick("Layanan / dokumen", "Service / document")) }
                    th scope="col" { (lang.pick("Keputusan / kode", "Decision / code")) }
                } }
                tbody { @for r in &records { tr {
                    td { (text(&r["seq"])) } td { (text(&r["time"])) } td { (text(&r["kind"])) }
                    td { (text(if r["who"].is_null() { &r["client"] } else { &r["who"] })) }
                    td { (text(if r["document"].is_null() { &r["service"] } else { &r["document"] })) }
                    td { (text(&r["decision"])) " " code { (text(&r["code"])) } }
                } } }
            }
        }
    }
}

pub async fn verify(State(console): State<Arc<Console>>, parts: Parts, Form(fields): Form<Fields>) -> Response {
    let ctx = match console.form_context(&parts, &fields).await {
        Ok(ctx) => ctx,
        Err((ctx, e)) => return error::page(ctx.as_ref(), web::lang(&parts), e),
    };
    let lang = ctx.lang;
    let report = match ctx.perform("auditVerify", vec![], HashMap::new(), None).await {
        Ok(report) => report,
        Err(e) => return fail(&ctx, e),
    };
    let ok = report["ok"] == Value::Bool(true);
    let result = if ok {
        html! { div #notice role="status" { (lang.pick("Jejak audit utuh: rantai dan tanda tangan sah.", "The audit trail is intact: the chain and the signatures verify.")) } }
    } else {
        let e = ConsoleError::Unavailable(text(&report["problem"]));
        html! { div #error role="alert" { (lang.pick("Jejak audit TIDAK lolos verifikasi", "The audit trail does NOT verify")) ": " (e.reason(lang)) " (" code { "audit.verify_failed" } ")" } }
    };
    let body = html! { h1 { (lang.pick("Verifikasi audit", "Audit verification")) } (result) pre #audit-report { (pretty(&report)) } };
    layout::page(&ctx, if ok { StatusCode::OK } else { StatusCode::CONFLICT }, "Audit", body)
}
