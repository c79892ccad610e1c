//! Path → service → operation lookup, compiled once per snapshot. `/{opd}/{service}/v{major}/{path...}` finds
//! the service through two hash lookups; when the service lists operations, the rest of the path is matched
//! against their templates (`GET /pasien/{id}`), literal segments before parameters (literals compare decoded; a
//! parameter never matches a segment with a raw `;` path parameter). Refusals are [`RouteError`]s: unknown →
//! 404, known path with another method → 405 with `Allow`, unsafe path → 400.
#![forbid(unsafe_code)]

mod error;
pub mod path;

use std::collections::HashMap;
use std::sync::Arc;

use http::header::HeaderValue;
use http::Method;

pub use error::{MethodNotAllowed, RouteError};
pub use path::{split_service_path, ServicePath};

/// A segment of an operation's path template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplateSegment {
    Literal(Box<str>),
    Param,
}

/// One compiled operation.
#[derive(Debug)]
pub struct CompiledOperation {
    pub id: Arc<str>,
    /// Position in the service document's `operations` (grants and contracts refer to it).
    pub index: usize,
    pub method: Method,
    /// The template as written, e.g. `/pasien/{id}` (used in logs instead of the raw path).
    pub template: Arc<str>,
    /// `GET /pasien/{id}`.
    pub label: Arc<str>,
    segments: Box<[TemplateSegment]>,
}

impl CompiledOperation {
    /// Compiles `method` + `template`. The template was checked by the document schema.
    pub fn new(index: usize, id: &str, method: &str, template: &str) -> Result<Self, String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| format!("`{method}` is not an HTTP method"))?;
        let segments = template
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    TemplateSegment::Param
                } else {
                    TemplateSegment::Literal(s.into())
                }
            })
            .collect();
        Ok(Self {
            id: id.into(),
            index,
            label: format!("{method} {template}").into(),
            method,
            template: template.into(),
            segments,
        })
    }

    fn matches_path(&self, rest: &str) -> bool {
        let trimmed = rest.strip_prefix('/').unwrap_or(rest);
        if trimmed.is_empty() {
            return self.segments.is_empty();
        }
        let mut parts = trimmed.split('/');
        for template in self.segments.iter() {
            match (template, parts.next()) {
                (TemplateSegment::Literal(lit), Some(raw)) if path::segment_equals(raw, lit) => {}
                // A raw `;` starts a path parameter that Java-style backends cut off before routing: such a
                // segment may name a literal route there (`rahasia;x` is `rahasia`), so no parameter matches it.
                (TemplateSegment::Param, Some(raw)) if !raw.is_empty() && !raw.contains(';') => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }

    fn specificity(&self) -> Vec<u8> {
        self.segments.iter().map(|s| matches!(s, TemplateSegment::Param) as u8).collect()
    }
}

/// The operations of one service, most specific first.
#[derive(Debug, Default)]
pub struct OperationTable {
    operations: Vec<CompiledOperation>,
}

impl OperationTable {
    pub fn new(mut operations: Vec<CompiledOperation>) -> Self {
        operations.sort_by_key(|o| (o.segments.len(), o.specificity()));
        Self { operations }
    }

    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &CompiledOperation> {
        self.operations.iter()
    }

    /// The operation for `method` on `rest`; `Ok(None)` when the service declares no operations (pass-through).
    pub fn find(&self, method: &Method, rest: &str) -> Result<Option<&CompiledOperation>, RouteError> {
        if self.operations.is_empty() {
            return Ok(None);
        }
        let mut path_matched = false;
        for op in &self.operations {
            if op.matches_path(rest) {
                if op.method == *method || (*method == Method::HEAD && op.method == Method::GET) {
                    return Ok(Some(op));
                }
                path_matched = true;
            }
        }
        if !path_matched {
            return Err(RouteError::NotFound);
        }
        Err(RouteError::MethodNotAllowed(Box::new(MethodNotAllowed {
            method: method.clone(),
            allow: self.allow_header(rest),
        })))
    }

    /// `Allow` for a path (error path only).
    fn allow_header(&self, rest: &str) -> HeaderValue {
        let mut methods: Vec<&str> = Vec::new();
        for op in self.operations.iter().filter(|o| o.matches_path(rest)) {
            methods.push(op.method.as_str());
            if op.method == Method::GET {
                methods.push("HEAD");
            }
        }
        methods.sort_unstable();
        methods.dedup();
        HeaderValue::from_str(&methods.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The majors of one service name: `[(major, index into the snapshot's services)]`.
type Versions = Vec<(u32, usize)>;

/// FNV-1a: a fast hash for the short, operator-chosen keys of the route table. Lookups with hostile keys cannot
/// lengthen chains: only the documents' keys are inserted.
#[derive(Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

type FastMap<V> = HashMap<Box<str>, V, std::hash::BuildHasherDefault<Fnv>>;

/// `opd → service name → versions`.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_opd: FastMap<FastMap<Versions>>,
}

impl RouteTable {
    /// Adds a service; returns false if `opd/name/v{major}` is taken.
    pub fn insert(&mut self, opd: &str, name: &str, major: u32, index: usize) -> bool {
        let versions = self.by_opd.entry(opd.into()).or_default().entry(name.into()).or_default();
        if versions.iter().any(|(m, _)| *m == major) {
            return false;
        }
        versions.push((major, index));
        true
    }

    /// The index of the service at `opd/name/v{major}`.
    pub fn find(&self, opd: &str, name: &str, major: u32) -> Option<usize> {
        self.by_opd.get(opd)?.get(name)?.iter().find(|(m, _)| *m == major).map(|(_, i)| *i)
    }

    pub fn len(&self) -> usize {
        self.by_opd.values().map(|s| s.values().map(Vec::len).sum::<usize>()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> OperationTable {
        OperationTable::new(vec![
            CompiledOperation::new(0, "ambil", "GET", "/pasien/{id}").unwrap(),
            CompiledOperation::new(1, "baru", "POST", "/pasien/baru").unwrap(),
            CompiledOperation::new(2, "kunjungan", "GET", "/pasien/{id}/kunjungan").unwrap(),
            CompiledOperation::new(3, "hapus", "DELETE", "/pasien/{id}").unwrap(),
        ])
    }

    #[test]
    fn templates_match_with_literals_first() {
        let t = table();
        assert_eq!(&*t.find(&Method::GET, "/pasien/12").unwrap().unwrap().id, "ambil");
        assert_eq!(&*t.find(&Method::POST, "/pasien/baru").unwrap().unwrap().id, "baru");
        assert_eq!(&*t.find(&Method::GET, "/pasien/12/kunjungan").unwrap().unwrap().id, "kunjungan");
        assert_eq!(&*t.find(&Method::HEAD, "/pasien/12").unwrap().unwrap().id, "ambil");
    }

    #[test]
    fn unknown_paths_and_wrong_methods() {
        let t = table();
        assert!(matches!(t.find(&Method::GET, "/dokter/1"), Err(RouteError::NotFound)));
        assert!(matches!(t.find(&Method::GET, "/pasien"), Err(RouteError::NotFound)));
        assert!(matches!(t.find(&Method::GET, "/pasien/12/"), Err(RouteError::NotFound)));
        match t.find(&Method::PUT, "/pasien/12").unwrap_err() {
            RouteError::MethodNotAllowed(refused) => assert_eq!(refused.allow, "DELETE, GET, HEAD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_parameter_never_matches_a_segment_with_a_path_parameter() {
        let t = OperationTable::new(vec![
            CompiledOperation::new(0, "ambil", "GET", "/pasien/{id}").unwrap(),
            CompiledOperation::new(1, "rahasia", "GET", "/pasien/rahasia").unwrap(),
        ]);
        for rest in ["/pasien/rahasia;x", "/pasien/rahasia;", "/pasien/12;jsessionid=1", "/pasien/;"] {
            assert!(matches!(t.find(&Method::GET, rest), Err(RouteError::NotFound)), "{rest}");
        }
        assert_eq!(&*t.find(&Method::GET, "/pasien/rahasi%61").unwrap().unwrap().id, "rahasia", "decoded literal");
        assert_eq!(&*t.find(&Method::GET, "/pasien/a%3Bb").unwrap().unwrap().id, "ambil", "an encoded `;` is data");
    }

    #[test]
    fn route_table_keys_by_opd_name_and_major() {
        let mut r = RouteTable::default();
        assert!(r.insert("dinkes", "rekam-medis", 1, 0));
        assert!(r.insert("dinkes", "rekam-medis", 2, 1));
        assert!(!r.insert("dinkes", "rekam-medis", 1, 2));
        assert_eq!(r.find("dinkes", "rekam-medis", 2), Some(1));
        assert_eq!(r.find("dinkes", "rekam-medis", 3), None);
        assert_eq!(r.find("dinsos", "rekam-medis", 1), None);
        assert_eq!(r.len(), 2);
    }
}
