//! Turning an imported OpenAPI document into store writes: the service document (new, or the existing one with
//! its operations replaced) and one JSON Schema file per contract under `schemas/{opd}/{name}/v{n}/`. Shared by
//! the management plane's `ImportOpenApi` change and the command line's local import.

use std::collections::BTreeMap;

use penghubung_types::documents::{
    Classification, OperationDoc, RequestContractDoc, ResponseDoc, SchemaRefDoc, ServiceDoc,
};

use crate::openapi::{self, Imported};

/// What to import, and where.
pub struct ImportSpec<'a> {
    pub opd: &'a str,
    pub name: &'a str,
    pub version: u32,
    /// The backend of a new service.
    pub upstream: Option<&'a str>,
    pub classification: Option<Classification>,
    /// Where the document came from, for the service document's header comment.
    pub source: &'a str,
}

/// The writes of an import, in order (schemas first, then the service document), and a summary.
pub struct ImportPlan {
    pub service: ServiceDoc,
    /// The service document's store key.
    pub service_key: String,
    pub writes: Vec<(String, Option<String>)>,
    pub summary: String,
}

/// The store key of a new service `opd/name/v{version}`.
pub fn service_key(opd: &str, name: &str, version: u32) -> String {
    if version == 1 {
        format!("services/{opd}/{name}.toml")
    } else {
        format!("services/{opd}/{name}-v{version}.toml")
    }
}

/// Plans the import of `document` (OpenAPI 3.0/3.1, JSON) as `opd/name/v{version}`. A new service is a `draft`
/// (it needs `upstream` and a classification); an existing one (`existing`: its key and document) keeps its
/// status, approvals, upstream and limits.
pub fn plan(
    spec: &ImportSpec<'_>,
    document: &serde_json::Value,
    existing: Option<(&str, &ServiceDoc)>,
    now: &str,
) -> Result<ImportPlan, String> {
    let imported = openapi::import(document)
        .map_err(|errors| format!("{} cannot be imported:\n  {}", spec.source, errors.join("\n  ")))?;
    let id = format!("{}/{}/v{}", spec.opd, spec.name, spec.version);
    let mut doc = match existing {
        Some((_, doc)) => doc.clone(),
        None => new_service(spec, &imported, &id)?,
    };
    doc.title = imported.title.clone();
    doc.description = imported.description.clone().or(doc.description);
    if let Some(c) = spec.classification {
        doc.classification = c;
    }
    let folder = format!("{}/{}/v{}", spec.opd, spec.name, spec.version);
    let mut writes: Vec<(String, Option<String>)> = Vec::new();
    doc.operations = operation_docs(&imported, &folder, doc.classification, &mut writes)?;
    let key = match existing {
        Some((key, _)) => key.to_string(),
        None => service_key(spec.opd, spec.name, spec.version),
    };
    let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
    let header = format!("# Imported from {} (document version {}) on {now}.\n", spec.source, imported.version);
    writes.push((key.clone(), Some(header + &body)));
    let mut summary = format!(
        "{id}: {} operation(s) imported ({}), {} schema file(s) under schemas/{folder}/; status {}",
        doc.operations.len(),
        doc.operations.iter().map(|o| o.id.as_str()).collect::<Vec<_>>().join(", "),
        writes.len() - 1,
        doc.status
    );
    for warning in &imported.warnings {
        summary.push_str(&format!("\nwarning: {warning}"));
    }
    Ok(ImportPlan { service: doc, service_key: key, writes, summary })
}

/// The document of a service the store does not have yet: its backend and classification must be given
/// (the classification may come from the imported document).
fn new_service(spec: &ImportSpec<'_>, imported: &Imported, id: &str) -> Result<ServiceDoc, String> {
    let upstream = spec
        .upstream
        .ok_or_else(|| format!("`{id}` is a new service: give its backend (upstream http://host:port)"))?;
    let classification = spec
        .classification
        .or(imported.classification)
        .ok_or_else(|| format!("`{id}` is a new service: give its classification"))?;
    let text = format!(
        "opd = {:?}\nname = {:?}\nversion = {}\ntitle = \"t\"\nclassification = {:?}\n[upstream]\nendpoints = [{:?}]\n",
        spec.opd,
        spec.name,
        spec.version,
        classification.as_str(),
        upstream
    );
    toml::from_str::<ServiceDoc>(&text).map_err(|e| e.to_string())
}

/// The service's operations from the imported ones; each contract schema becomes a file under
/// `schemas/{folder}/`, added to `writes`. An operation's classification is kept only when it raises the
/// service's `classification`.
fn operation_docs(
    imported: &Imported,
    folder: &str,
    classification: Classification,
    writes: &mut Vec<(String, Option<String>)>,
) -> Result<Vec<OperationDoc>, String> {
    let mut schema = |file: String, value: &serde_json::Value| -> Result<String, String> {
        let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
        writes.push((format!("schemas/{file}"), Some(text)));
        Ok(file)
    };
    let mut operations = Vec::new();
    for op in &imported.operations {
        let request_contract = match &op.request {
            Some((content_type, value)) => Some(RequestContractDoc {
                schema: schema(format!("{folder}/{}.request.json", op.id), value)?,
                content_type: content_type.clone(),
            }),
            None => None,
        };
        let query = match &op.query {
            Some(value) => Some(SchemaRefDoc { schema: schema(format!("{folder}/{}.query.json", op.id), value)? }),
            None => None,
        };
        let mut responses = BTreeMap::new();
        for (status, value) in &op.responses {
            let file = schema(format!("{folder}/{}.response-{status}.json", op.id), value)?;
            responses.insert(status.clone(), ResponseDoc { schema: file, description: None });
        }
        operations.push(OperationDoc {
            id: op.id.clone(),
            method: op.method.clone(),
            path: op.path.clone(),
            summary: op.summary.clone(),
            classification: op.classification.filter(|c| *c > classification),
            request: request_contract,
            query,
            responses,
        });
    }
    Ok(operations)
}
