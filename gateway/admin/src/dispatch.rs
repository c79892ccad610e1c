//! The router built from [`ROUTES`] and what every request goes through, in this order: an operator
//! certificate (401 without), the operator it belongs to (401 when unknown or disabled), a role the route's
//! operations allow (403), the `If-Match` the route requires (428), the body within `[admin] max_body` (413),
//! the handler, and after a change the gateway's reload (`on_change`) before the answer leaves.
//!
//! The API authenticates by certificate alone. The web console authenticates its own way (certificate or
//! session) and performs the same routes through [`perform`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{RequestPartsExt, Router};
use http::{header, HeaderValue};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use penghubung_manage::{roles_for, Actor, Manager};
use serde_json::Value;

use crate::error::ApiError;
use crate::handlers::{Call, Reply, ReplyBody};
use crate::routes::{Precondition, Route, ROUTES};

/// The DER certificate the connection's client presented and the operators' CA verified (none: the client
/// sent no certificate). Put on every request of the connection by the listener.
#[derive(Clone, Debug, Default)]
pub struct PeerCertificate(pub Option<Arc<[u8]>>);

/// The address of the connection's peer. Put on every request of the connection by the listener (the
/// console counts failed sign-ins per address).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddress(pub std::net::SocketAddr);

/// What every request's dispatch shares.
pub struct AdminState {
    pub manager: Arc<Manager>,
    /// Called after each successful change (the binary reloads the gateway).
    pub on_change: Arc<dyn Fn() + Send + Sync>,
    pub openapi: Value,
    pub max_body: usize,
}

/// The router: every route of [`ROUTES`], and problem+json for unknown paths and methods.
pub fn router(state: Arc<AdminState>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter> = BTreeMap::new();
    for route in ROUTES {
        let state = Arc::clone(&state);
        let filter = MethodFilter::try_from(route.method.clone()).unwrap_or(MethodFilter::GET);
        let handler = move |request: Request| dispatch(state, route, request);
        let methods = by_path.remove(route.path).unwrap_or_default().on(filter, handler);
        by_path.insert(route.path, methods);
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| router.route(path, methods))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
}

fn peer(request: &Request) -> Option<Arc<[u8]>> {
    request.extensions().get::<PeerCertificate>().and_then(|p| p.0.clone())
}

fn no_certificate() -> ApiError {
    ApiError::unauthenticated("an operator certificate is required (none was presented)")
}

async fn no_route(request: Request) -> Response {
    if peer(&request).is_none() {
        return no_certificate().into_response();
    }
    ApiError::NoRoute { path: request.uri().path().to_string() }.into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    if peer(&request).is_none() {
        return no_certificate().into_response();
    }
    let path = request.uri().path().to_string();
    ApiError::MethodNotAllowed { method: request.method().to_string(), path }.into_response()
}

async fn dispatch(state: Arc<AdminState>, route: &'static Route, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let (operator, response) = match serve(state, route, request).await {
        Ok((actor, reply)) => (Some(actor.id), render(reply)),
        Err(e) => (None, e.into_response()),
    };
    tracing::info!(
        target: "penghubung::admin",
        %method,
        path,
        operator = operator.as_deref().unwrap_or("-"),
        status = response.status().as_u16(),
        "admin request"
    );
    response
}

async fn serve(state: Arc<AdminState>, route: &'static Route, request: Request) -> Result<(Actor, Reply), ApiError> {
    let certificate = peer(&request).ok_or_else(no_certificate)?;
    let (mut parts, body) = request.into_parts();

    let manager = Arc::clone(&state.manager);
    let actor = blocking(move || Ok(manager.authenticate_certificate(&certificate)?)).await?;
    permitted(&actor, route)?;

    let params = if route.parameters().next().is_some() {
        let Path(params) =
            parts.extract::<Path<Vec<(String, String)>>>().await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        params
    } else {
        Vec::new()
    };
    let Query(query) =
        parts.extract::<Query<HashMap<String, String>>>().await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let if_match = match parts.headers.get(header::IF_MATCH) {
        Some(value) => {
            Some(value.to_str().map_err(|_| ApiError::bad_request("If-Match is not text"))?.trim().to_string())
        }
        None => None,
    };
    if route.precondition == Precondition::Required && if_match.is_none() {
        return Err(ApiError::precondition_required(
            "this replaces a document: send If-Match with the ETag it was read at",
        ));
    }
    let body = read_body(body, state.max_body).await?;

    blocking(move || {
        let call = Call {
            route,
            manager: &state.manager,
            actor: &actor,
            params: &params,
            query: &query,
            body: &body,
            if_match: if_match.as_deref(),
            openapi: &state.openapi,
        };
        let reply = (route.handler)(&call)?;
        if reply.changed {
            (state.on_change)();
        }
        Ok((actor, reply))
    })
    .await
}

/// Performs the route named `name` (its `operationId`) for an operator authenticated by other means, as a
/// request of the API would be: the route's role check, its handler, and the gateway's reload after a change.
/// The web console acts through this, so that its pages perform the API's operations under the same table.
/// Blocking (store work): call it from a blocking thread.
pub fn perform(
    state: &AdminState,
    actor: &Actor,
    name: &str,
    params: &[(String, String)],
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let route = ROUTES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::NoRoute { path: format!("(operation {name})") })?;
    permitted(actor, route)?;
    let call =
        Call { route, manager: &state.manager, actor, params, query, body, if_match: None, openapi: &state.openapi };
    let reply = (route.handler)(&call)?;
    if reply.changed {
        (state.on_change)();
    }
    tracing::info!(target: "penghubung::admin", operation = name, operator = %actor.id, "console request");
    Ok(reply)
}

/// The route admits an operator holding a role any of its operations allows (deny unless listed). The
/// management plane then checks the operation itself, with its OPD scope.
fn permitted(actor: &Actor, route: &Route) -> Result<(), ApiError> {
    if route.operation.is_none() {
        return Ok(());
    }
    let allowed = route.operations().any(|op| actor.roles.iter().any(|role| roles_for(op).contains(role)));
    if allowed {
        return Ok(());
    }
    let names: Vec<&str> = route.operations().map(|op| op.as_str()).collect();
    let mut needed: Vec<&str> = route.operations().flat_map(roles_for).map(|r| r.as_str()).collect();
    needed.sort_unstable();
    needed.dedup();
    Err(ApiError::forbidden(format!(
        "operator `{}` lacks the role for `{}` (needs one of: {})",
        actor.id,
        names.join("` or `"),
        needed.join(", ")
    )))
}

async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit: limit as u64 })
        }
        Err(e) => Err(ApiError::bad_request(format!("reading the request body: {e}"))),
    }
}

/// Runs store work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::unavailable(format!("the operation did not complete: {e}"))))
}

fn render(reply: Reply) -> Response {
    let mut response = match reply.body {
        ReplyBody::Json(value) => {
            let mut response = (reply.status, serde_json::to_vec(&value).unwrap_or_default()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        ReplyBody::Empty => reply.status.into_response(),
        ReplyBody::Download { content_type, file_name, bytes } => {
            let mut response = (reply.status, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(etag) = reply.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = reply.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}
