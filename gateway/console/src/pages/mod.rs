//! The console's pages. Each reads and acts through the admin API's routes as the viewer
//! ([`crate::web::Ctx::perform`]), and shows an action only when the viewer's roles allow it
//! ([`crate::web::Ctx::may`], the management plane's table with its OPD scope).

pub mod audit;
pub mod dashboard;
pub mod documents;
pub mod explain;
pub mod history;
pub mod reports;
pub mod services;

use std::sync::Arc;

use axum::response::Response;
use http::request::Parts;
use serde_json::Value;

use crate::error::{self, ConsoleError};
use crate::web::{self, Ctx};
use crate::Console;

/// The page context, or the answer to give instead (the sign-in page).
pub(crate) async fn context(console: &Arc<Console>, parts: &Parts) -> Result<Ctx, Response> {
    console.context(parts).await.map_err(|e| error::page(None, web::lang(parts), e))
}

/// The error page of `e` for `ctx`'s viewer.
pub(crate) fn fail(ctx: &Ctx, e: ConsoleError) -> Response {
    error::page(Some(ctx), ctx.lang, e)
}

/// A JSON value as text for a cell (strings unquoted, absent as `–`).
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::Null => "–".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Pretty JSON for a `<pre>`.
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The items of a list answer.
pub(crate) fn items(value: &Value) -> Vec<Value> {
    value.as_array().cloned().or_else(|| value["items"].as_array().cloned()).unwrap_or_default()
}

/// Path parameters for a route.
pub(crate) fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
