//! `GET /explain`: policy explain as a form (client, method and path or an operation id, purpose) and the
//! decision with its reasons, from the same code as `penghubung policy explain`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::html;
use serde_json::json;

use super::{context, pretty, text};
use crate::layout::{self, text_field};
use crate::web;
use crate::Console;

pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let q = web::query(&parts);
    let value = |k: &str| q.get(k).map_or("", |v| v.trim());
    let mut result = html! {};
    let mut status = StatusCode::OK;
    if !value("client").is_empty() || !value("service").is_empty() {
        let operation = format!("{} {}", value("method"), value("path")).trim().to_string();
        let mut body = json!({"client": value("client"), "service": value("service"), "operation": operation});
        if !value("purpose").is_empty() {
            body["purpose"] = json!(value("purpose"));
        }
        result = match ctx.perform("explain", vec![], HashMap::new(), Some(body)).await {
            Ok(answer) => html! {
                section #explain-result aria-live="polite" {
                    h2 { (lang.pick("Keputusan", "Decision")) ": " strong #explain-decision { (text(&answer["decision"])) } }
                    pre { (pretty(&answer)) }
                }
            },
            Err(e) => {
                status = e.status();
                e.alert(lang)
            }
        };
    }
    let title = lang.pick("Uji kebijakan", "Policy explain");
    let body = html! {
        h1 { (title) }
        p.muted { (lang.pick(
            "Apa yang akan diputuskan gerbang untuk panggilan ini, dan mengapa. Tidak ada yang dikirim ke layanan.",
            "What the gateway would decide for this call, and why. Nothing is sent to the service."
        )) }
        form #explain-form method="get" action="/explain" {
            (text_field("explain-client", "client", lang.pick("Klien (opd/aplikasi)", "Client (opd/app)"), value("client")))
            (text_field("explain-service", "service", lang.pick("Layanan (opd/nama/v1)", "Service (opd/name/v1)"), value("service")))
            (text_field("explain-method", "method", lang.pick("Metode (atau id operasi)", "Method (or an operation id)"), value("method")))
            (text_field("explain-path", "path", "Path", value("path")))
            (text_field("explain-purpose", "purpose", lang.pick("Tujuan", "Purpose"), value("purpose")))
            button #explain-submit type="submit" { (lang.pick("Jelaskan", "Explain")) }
        }
        (result)
    };
    layout::page(&ctx, status, title, body)
}
