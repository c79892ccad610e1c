//! `GET /reports`: the monthly usage report. The report crate is not part of this build yet: the page says so
//! (the report's route will be performed here, as every page performs the API's routes, once it is).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::request::Parts;
use http::StatusCode;
use maud::html;

use super::context;
use crate::layout;
use crate::Console;

pub async fn page(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let ctx = match context(&console, &parts).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let lang = ctx.lang;
    let title = lang.pick("Laporan penggunaan bulanan", "Monthly usage report");
    let body = html! {
        h1 { (title) }
        p #report-unavailable { (lang.pick(
            "Laporan penggunaan bulanan belum tersedia di versi ini.",
            "The monthly usage report is not available in this version."
        )) }
    };
    layout::page(&ctx, StatusCode::OK, title, body)
}
