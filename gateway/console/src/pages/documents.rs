//! OPDs, clients and grants: lists and a document's page (its fields, a link to its history).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::{html, Markup};
use serde_json::Value;

use super::{context, fail, items, params, pretty, text};
use crate::layout::{self, Lang};
use crate::web::Ctx;
use crate::Console;

/// A table of `columns` (field, Indonesian, English) over `rows`, the first column linked by `href`.
fn table(
    lang: Lang,
    columns: &[(&str, &str, &str)],
    rows: &[Value],
    href: impl Fn(&Value) -> Option<String>,
) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { (lang.pick("Tidak ada.", "None.")) }
        } @else {
            table {
                thead { tr { @for (_, id, en) in columns { th scope="col" { (lang.pick(id, en)) } } } }
                tbody {
                    @for row in rows {
                        tr {
                            @for (i, (field, _, _)) in columns.iter().enumerate() {
                                td {
                                    @if i == 0 {
                                        @if let Some(link) = href(row) { a href=(link) { (text(&row[*field])) } } @else { (text(&row[*field])) }
                                    } @else { (text(&row[*field])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn list_page(
    console: Arc<Console>,
    parts: Parts,
    route: &'static str,
    title: (&'static str, &'static str),
    columns: &'static [(&'static str, &'static str, &'static str)],
    href: fn(&Value) -> Option<String>,
) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let rows = match ctx.perform(route, vec![], HashMap::new(), None).await {
        Ok(v) => items(&v),
        Err(e) => return fail(&ctx, e),
    };
    let lang = ctx.lang;
    let title = lang.pick(title.0, title.1);
    let body = html! { h1 { (title) } (table(lang, columns, &rows, href)) };
    layout::page(&ctx, StatusCode::OK, title, body)
}

fn document_page(ctx: &Ctx, title: &str, history: &str, document: &Value) -> Response {
    let lang = ctx.lang;
    let body = html! {
        h1 { (title) }
        p { a href=(history) { (lang.pick("Riwayat versi", "Version history")) } }
        (fields(lang, document))
    };
    layout::page(ctx, StatusCode::OK, title, body)
}

/// A document's fields as a table (nested values as JSON).
pub fn fields(lang: Lang, document: &Value) -> Markup {
    html! {
        table {
            thead { tr { th scope="col" { (lang.pick("Kolom", "Field")) } th scope="col" { (lang.pick("Nilai", "Value")) } } }
            tbody {
                @if let Some(map) = document.as_object() {
                    @for (key, value) in map {
                        tr {
                            th scope="row" { (key) }
                            td { @if value.is_object() || (value.is_array() && value.as_array().is_some_and(|a| a.iter().any(Value::is_object))) { pre { (pretty(value)) } } @else { (text(value)) } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn opds(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let columns = &[("id", "Id", "Id"), ("name", "Nama", "Name")];
    list_page(console, parts, "listOpds", ("OPD", "OPDs"), columns, |r| Some(format!("/opds/{}", text(&r["id"])))).await
}

pub async fn opd(State(console): State<Arc<Console>>, Path(opd): Path<String>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match ctx.perform("getOpd", params(&[("opd", &opd)]), HashMap::new(), None).await {
        Ok(document) => document_page(&ctx, &format!("OPD {opd}"), &format!("/history/opds/{opd}"), &document),
        Err(e) => fail(&ctx, e),
    }
}

pub async fn clients(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let columns = &[
        ("id", "Id", "Id"),
        ("name", "Nama", "Name"),
        ("opd", "OPD", "OPD"),
        ("clearance", "Izin klasifikasi", "Clearance"),
        ("enabled", "Aktif", "Enabled"),
    ];
    list_page(console, parts, "listClients", ("Klien", "Clients"), columns, |r| {
        Some(format!("/clients/{}", text(&r["id"])))
    })
    .await
}

pub async fn client(
    State(console): State<Arc<Console>>,
    Path((opd, app)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    match ctx.perform("getClient", params(&[("opd", &opd), ("app", &app)]), HashMap::new(), None).await {
        Ok(document) => {
            let title = format!("{} {opd}/{app}", ctx.lang.pick("Klien", "Client"));
            document_page(&ctx, &title, &format!("/history/clients/{opd}/{app}"), &document)
        }
        Err(e) => fail(&ctx, e),
    }
}

pub async fn grants(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let columns = &[
        ("id", "Id", "Id"),
        ("client", "Klien", "Client"),
        ("service", "Layanan", "Service"),
        ("operations", "Operasi", "Operations"),
        ("purposes", "Tujuan", "Purposes"),
        ("tier", "Tingkat", "Tier"),
        ("not_after", "Berakhir", "Ends"),
    ];
    list_page(console, parts, "listGrants", ("Izin akses", "Grants"), columns, |r| {
        Some(format!("/history/grants/{}", text(&r["id"])))
    })
    .await
}
