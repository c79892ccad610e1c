//! `GET /history/{kind}/{id…}`: a document's versions, oldest first, each with who, when, why and what; a
//! rollback form per earlier version for the roles that may (`POST` restores it as a new change).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::html;
use penghubung_manage::{Kind, Operation};
use serde_json::json;

use super::{context, fail, pretty, text};
use crate::error::{self, ConsoleError};
use crate::layout::{self, notice};
use crate::web::{self, field, see_other, Fields};
use crate::Console;

/// The admin API's history and rollback routes of a kind, and its path parameters' names.
fn routes(kind: Kind) -> (&'static str, &'static str, &'static [&'static str]) {
    match kind {
        Kind::Opd => ("opdHistory", "rollbackOpd", &["opd"]),
        Kind::Service => ("serviceHistory", "rollbackService", &["opd", "name", "version"]),
        Kind::Client => ("clientHistory", "rollbackClient", &["opd", "app"]),
        Kind::Grant => ("grantHistory", "rollbackGrant", &["grant"]),
        Kind::Tier => ("tierHistory", "rollbackTier", &["tier"]),
        Kind::Operator => ("operatorHistory", "rollbackOperator", &["operator"]),
    }
}

/// A document the history page names: its kind, the routes' path parameters, the history and rollback routes.
struct Target {
    kind: Kind,
    params: Vec<(String, String)>,
    history: &'static str,
    rollback: &'static str,
}

fn parse(kind: &str, id: &str) -> Result<Target, ConsoleError> {
    let kind = Kind::from_segment(kind).ok_or(ConsoleError::NotFound)?;
    let (history, rollback, names) = routes(kind);
    let values: Vec<&str> = id.split('/').collect();
    if values.len() != names.len() || values.iter().any(|v| v.is_empty()) {
        return Err(ConsoleError::NotFound);
    }
    let params = names.iter().zip(values).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    Ok(Target { kind, params, history, rollback })
}

pub async fn page(
    State(console): State<Arc<Console>>,
    Path((kind, id)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let Target { kind: kind_value, params, history, .. } = match parse(&kind, &id) {
        Ok(p) => p,
        Err(e) => return fail(&ctx, e),
    };
    let entries = match ctx.perform(history, params, HashMap::new(), None).await {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(e) => return fail(&ctx, e),
    };
    let may_roll_back = ctx.may(Operation::Rollback, None);
    let last = entries.last().and_then(|e| e["version"].as_u64());
    let title = format!("{} {kind_value} {id}", lang.pick("Riwayat", "History of"));
    let done = web::query(&parts).get("done").cloned();
    let body = html! {
        h1 { (title) }
        (notice(lang, done.as_deref()))
        @if entries.is_empty() { p.muted { (lang.pick("Tidak ada versi tercatat.", "No recorded versions.")) } }
        @for entry in &entries {
            @let version = entry["version"].as_u64().unwrap_or(0);
            section.version id={ "version-" (version) } {
                h2 { (lang.pick("Versi", "Version")) " " (version) }
                p {
                    (text(&entry["at"])) " · " (text(&entry["who"])) " · " code { (text(&entry["action"])) }
                    @if !entry["reason"].is_null() { " · " (text(&entry["reason"])) }
                }
                details { summary { (lang.pick("Dokumen", "Document")) } pre { (pretty(&entry["document"])) } }
                @if may_roll_back && Some(version) != last && !entry["document"].is_null() {
                    form method="post" action={ "/history/" (kind) "/" (id) } {
                        input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                        input type="hidden" name="version" value=(version);
                        div.field {
                            label for={ "rollback-reason-" (version) } { (lang.pick("Alasan pemulihan", "Reason for the rollback")) }
                            input type="text" id={ "rollback-reason-" (version) } name="reason" required;
                        }
                        button type="submit" id={ "rollback-" (version) } { (lang.pick("Pulihkan versi ini", "Restore this version")) }
                    }
                }
            }
        }
    };
    layout::page(&ctx, StatusCode::OK, &title, body)
}

pub async fn rollback(
    State(console): State<Arc<Console>>,
    Path((kind, id)): Path<(String, String)>,
    parts: Parts,
    Form(fields): Form<Fields>,
) -> Response {
    let ctx = match console.form_context(&parts, &fields).await {
        Ok(ctx) => ctx,
        Err((ctx, e)) => return error::page(ctx.as_ref(), web::lang(&parts), e),
    };
    let Target { params, rollback, .. } = match parse(&kind, &id) {
        Ok(p) => p,
        Err(e) => return fail(&ctx, e),
    };
    let Some(version) = field(&fields, "version").and_then(|v| v.parse::<u64>().ok()) else {
        return fail(&ctx, ConsoleError::BadRequest("the version is a number".into()));
    };
    let body = json!({"version": version, "reason": field(&fields, "reason")});
    match ctx.perform(rollback, params, HashMap::new(), Some(body)).await {
        Ok(_) => see_other(&format!("/history/{kind}/{id}?done=rollback")),
        Err(e) => fail(&ctx, e),
    }
}
