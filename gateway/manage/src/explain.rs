//! `penghubung policy explain`: the decision the gateway would take for a client, a service, an operation and a
//! purpose, with every check and its reason, without sending a request (a dry run for change management). It
//! runs the data plane's own [`penghubung_policy::authorize`] with a recording [`Trace`], after the same identity and route
//! steps as the request pipeline, so the two cannot drift apart. Tooling, not data plane: it reads the whole
//! snapshot and answers with the gateway's own errors.

use std::fmt::Write as _;

use http::{HeaderValue, Method};
use serde::Serialize;

use penghubung_pipeline::error::GatewayError;
use penghubung_policy::{Denial, Trace};
use penghubung_snapshot::Snapshot;

/// One check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    pub check: &'static str,
    pub passed: bool,
    /// Stable code of the failure (absent when passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    pub detail: String,
}

/// What the gateway would do.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// HTTP status the caller would get from the gateway itself (200 stands for "forwarded").
    pub status: u16,
    /// Stable code of the denial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub checks: Vec<Check>,
    /// Fields that would be withheld from responses, as `pointer (classification)`, by status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
    /// The grant that would be used and its tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

#[derive(Default)]
struct Recorder(Vec<Check>);

impl Trace for Recorder {
    fn pass(&mut self, name: &'static str, detail: impl FnOnce() -> String) {
        self.0.push(Check { check: name, passed: true, code: None, detail: detail() });
    }

    fn fail(&mut self, name: &'static str, denial: &Denial) {
        self.0.push(Check { check: name, passed: false, code: Some(denial.code()), detail: denial.to_string() });
    }
}

/// Parses `"POST /verifikasi"` (method and path after `/v{n}`, concrete or a template) or an operation id.
pub enum OperationSpec {
    Request { method: Method, path: String },
    Id(String),
}

impl OperationSpec {
    pub fn parse(text: &str) -> Result<OperationSpec, String> {
        match text.trim().split_once(' ') {
            Some((method, path)) => {
                let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("`{method}` is not an HTTP method"))?;
                let path = path.trim();
                if !path.starts_with('/') {
                    return Err(format!("the path `{path}` must start with `/` (the part after /v{{n}})"));
                }
                Ok(OperationSpec::Request { method, path: path.to_string() })
            }
            None if !text.trim().is_empty() => Ok(OperationSpec::Id(text.trim().to_string())),
            None => Err("give an operation as \"METHOD /path\" or an operation id".into()),
        }
    }
}

/// Explains the decision for `client_id` calling `operation` of `service_key` (`opd/name/v1`) at `now`.
pub fn explain(
    snapshot: &Snapshot,
    client_id: &str,
    service_key: &str,
    operation: &OperationSpec,
    purpose: Option<&str>,
    now: i64,
) -> Explanation {
    let mut recorder = Recorder::default();
    let outcome = run(snapshot, client_id, service_key, operation, purpose, now, &mut recorder);
    let mut explanation = Explanation {
        decision: "allow",
        status: 200,
        code: None,
        reason: None,
        checks: Vec::new(),
        withheld: Vec::new(),
        grant: None,
    };
    match outcome {
        Ok((grant, withheld)) => {
            explanation.grant = Some(grant);
            explanation.withheld = withheld;
        }
        Err(error) => {
            explanation.decision = "deny";
            explanation.status = error.status().as_u16();
            explanation.code = Some(error.code());
            explanation.reason = Some(error.to_string());
            if !matches!(error, GatewayError::Denied(_)) {
                // identity and route failures come before the policy's own checks
                recorder.0.push(Check {
                    check: check_name(&error),
                    passed: false,
                    code: Some(error.code()),
                    detail: error.to_string(),
                });
            }
        }
    }
    explanation.checks = recorder.0;
    explanation
}

fn check_name(error: &GatewayError) -> &'static str {
    match error {
        GatewayError::UnknownClient { .. } | GatewayError::ClientDisabled { .. } => "client",
        _ => "operation",
    }
}

/// `(grant and tier, withheld fields)` or the error the gateway would answer with.
fn run(
    snapshot: &Snapshot,
    client_id: &str,
    service_key: &str,
    operation: &OperationSpec,
    purpose: Option<&str>,
    now: i64,
    recorder: &mut Recorder,
) -> Result<(String, Vec<String>), GatewayError> {
    let client = snapshot
        .clients
        .get(client_id)
        .ok_or_else(|| GatewayError::UnknownClient { fingerprint: format!("(client `{client_id}`)").into() })?;
    if !client.doc.enabled {
        return Err(GatewayError::ClientDisabled { client: client.doc.id.clone() });
    }
    recorder
        .pass("client", || format!("`{client_id}` of OPD `{}`, clearance {}", client.doc.opd, client.doc.clearance));
    let service = snapshot.services.iter().find(|s| &*s.key == service_key).ok_or(GatewayError::RouteNotFound)?;
    recorder.pass("route", || format!("service `{service_key}` ({})", service.doc.title));
    let (method, path) = match operation {
        OperationSpec::Request { method, path } => (method.clone(), path.clone()),
        OperationSpec::Id(id) => {
            let op = service.doc.operations.iter().find(|o| &o.id == id).ok_or(GatewayError::RouteNotFound)?;
            (Method::from_bytes(op.method.as_bytes()).unwrap_or(Method::GET), op.path.clone())
        }
    };
    let purpose = purpose
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|_| GatewayError::Denied(Denial::Purpose { problem: penghubung_policy::PurposeProblem::Malformed }))?;
    let find_operation = || service.operations.find(&method, &path);
    let (_, decision) =
        penghubung_policy::authorize(&client.access, &service.access, find_operation, purpose.as_ref(), now, recorder);
    let permit = decision?;
    let mut withheld = Vec::new();
    if let Some(policy) = permit.redaction {
        for (status, plan) in &policy.responses {
            for (pointer, classification) in plan.marked_fields() {
                if classification > permit.client.clearance {
                    let status = if *status == 0 { "default".to_string() } else { status.to_string() };
                    withheld.push(format!("{status} {pointer} ({classification})"));
                }
            }
        }
    }
    Ok((format!("{} (tier {})", permit.grant.id, permit.grant.tier), withheld))
}

impl Explanation {
    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self.code {
            None => {
                let _ = writeln!(out, "decision: ALLOW (grant {})", self.grant.as_deref().unwrap_or("-"));
            }
            Some(code) => {
                let _ = writeln!(out, "decision: DENY {} {code}", self.status);
                let _ = writeln!(out, "reason:   {}", self.reason.as_deref().unwrap_or(""));
            }
        }
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            let code = c.code.map(|c| format!(" [{c}]")).unwrap_or_default();
            let _ = writeln!(out, "  {mark} {:<13} {}{code}", c.check, c.detail);
        }
        if !self.withheld.is_empty() {
            let _ = writeln!(out, "withheld from responses (above the client's clearance):");
            for w in &self.withheld {
                let _ = writeln!(out, "  {w}");
            }
        }
        out
    }
}
