//! Grants compiled for the decision: operations as indices into the service's operations, the validity window
//! as Unix seconds, purposes as a short list. Checking a grant is a few comparisons; nothing is parsed per
//! request.

use std::sync::Arc;

use super::{Denial, PurposeProblem};
pub use penghubung_types::documents::{is_purpose, MAX_PURPOSE_DIGITS};
use penghubung_types::documents::{GrantDoc, ServiceDoc};

/// Which operations a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operations {
    All,
    /// Indices into the service's `operations`, sorted.
    Some(Box<[usize]>),
}

/// One grant, ready for the decision.
#[derive(Debug)]
pub struct CompiledGrant {
    pub id: Arc<str>,
    /// The rate tier (enforced by the rate limiter).
    pub tier: Arc<str>,
    /// The tier's limit on this grant (client × service); `None` for an unlimited tier. Set by the snapshot.
    pub limit: Option<Arc<penghubung_ratelimit::Limit>>,
    operations: Operations,
    /// Empty: any purpose (or none) is accepted.
    purposes: Box<[Box<str>]>,
    not_before: Option<(i64, Arc<str>)>,
    not_after: Option<(i64, Arc<str>)>,
    /// Operation ids as written, for messages.
    granted_label: Box<str>,
}

/// Stages of a grant check, in order: a later stage means the grant came closer to admitting the request, and
/// its denial is the more useful answer (an expired grant that covered the operation says more than another
/// grant that never covered it).
const STAGE_OPERATION: u8 = 1;
const STAGE_WINDOW: u8 = 2;
const STAGE_PURPOSE: u8 = 3;

impl CompiledGrant {
    /// Compiles `doc` against the service it names. Errors: an unknown operation, an unparsable timestamp, an
    /// empty window.
    pub fn compile(doc: &GrantDoc, service: &ServiceDoc) -> Result<Self, String> {
        let operations = if doc.operations.iter().any(|o| o == "*") {
            Operations::All
        } else {
            let mut indices = Vec::with_capacity(doc.operations.len());
            for op in &doc.operations {
                let index = service.operations.iter().position(|o| &o.id == op).ok_or_else(|| {
                    format!("grant names operation `{op}`, which service `{}` does not have", doc.service)
                })?;
                indices.push(index);
            }
            indices.sort_unstable();
            indices.dedup();
            Operations::Some(indices.into_boxed_slice())
        };
        let not_before = doc.not_before.as_deref().map(|t| parse_time(t).map(|s| (s, Arc::from(t)))).transpose()?;
        let not_after = doc.not_after.as_deref().map(|t| parse_time(t).map(|s| (s, Arc::from(t)))).transpose()?;
        if let (Some((from, _)), Some((until, _))) = (&not_before, &not_after) {
            if from >= until {
                return Err("`not_before` must be earlier than `not_after`".into());
            }
        }
        if let Some(bad) = doc.purposes.iter().find(|p| !is_purpose(p.as_bytes())) {
            return Err(format!(
                "purpose `{bad}` is not a purpose: one lower-case identifier (letters, digits and '-', at most 63) \
                 with at most {MAX_PURPOSE_DIGITS} digits"
            ));
        }
        Ok(CompiledGrant {
            id: doc.id.as_str().into(),
            tier: doc.tier.as_str().into(),
            limit: None,
            operations,
            purposes: doc.purposes.iter().map(|p| p.as_str().into()).collect(),
            not_before,
            not_after,
            granted_label: doc.operations.join(", ").into(),
        })
    }

    /// Whether the grant covers the operation at `index` (`None`: a pass-through service).
    pub fn covers(&self, index: Option<usize>) -> bool {
        match (&self.operations, index) {
            (Operations::All, _) => true,
            (Operations::Some(list), Some(index)) => list.binary_search(&index).is_ok(),
            (Operations::Some(_), None) => false,
        }
    }

    /// Whether `now` (Unix seconds) is inside the validity window.
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before.as_ref().is_none_or(|(from, _)| now >= *from)
            && self.not_after.as_ref().is_none_or(|(until, _)| now <= *until)
    }

    /// The purposes the grant allows (empty: any).
    pub fn purposes(&self) -> impl Iterator<Item = &str> {
        self.purposes.iter().map(|p| &**p)
    }

    /// Whether this grant admits the operation (by index; `None` for a pass-through service) for `purpose` at
    /// `now`: operation, then validity window, then purpose. On refusal, the stage reached and the denial.
    pub fn admits(
        &self,
        operation: Option<usize>,
        operation_label: &Arc<str>,
        purpose: Option<&[u8]>,
        now: i64,
    ) -> Result<(), (u8, Denial)> {
        if !self.covers(operation) {
            let denial = Denial::OperationNotGranted {
                operation: Arc::clone(operation_label),
                granted: self.granted_label.clone(),
            };
            return Err((STAGE_OPERATION, denial));
        }
        if let Some((from, text)) = &self.not_before {
            if now < *from {
                let denial = Denial::GrantNotYetValid { grant: Arc::clone(&self.id), not_before: Arc::clone(text) };
                return Err((STAGE_WINDOW, denial));
            }
        }
        if let Some((until, text)) = &self.not_after {
            if now > *until {
                return Err((
                    STAGE_WINDOW,
                    Denial::GrantExpired { grant: Arc::clone(&self.id), not_after: Arc::clone(text) },
                ));
            }
        }
        let problem = match purpose {
            Some(p) if !is_purpose(p) => Some(PurposeProblem::Malformed),
            _ if self.purposes.is_empty() => None,
            None => Some(PurposeProblem::Missing { allowed: self.purposes.join(", ").into() }),
            Some(p) if self.purposes.iter().any(|g| g.as_bytes() == p) => None,
            Some(p) => Some(PurposeProblem::NotGranted {
                declared: String::from_utf8_lossy(p).into(),
                allowed: self.purposes.join(", ").into(),
            }),
        };
        match problem {
            Some(problem) => Err((STAGE_PURPOSE, Denial::Purpose { problem })),
            None => Ok(()),
        }
    }
}

/// RFC 3339 → Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> ServiceDoc {
        toml::from_str(
            r#"opd = "disdukcapil"
name = "kependudukan"
version = 1
title = "t"
classification = "terbatas"
[upstream]
endpoints = ["http://127.0.0.1:1"]
[[operations]]
id = "ambil-penduduk"
method = "GET"
path = "/penduduk/{nik}"
[[operations]]
id = "verifikasi-nik"
method = "POST"
path = "/verifikasi"
"#,
        )
        .unwrap()
    }

    fn grant(ops: &[&str], purposes: &[&str], window: (Option<&str>, Option<&str>)) -> GrantDoc {
        GrantDoc {
            id: "g".into(),
            client: "dinsos/sikasos".into(),
            service: "disdukcapil/kependudukan/v1".into(),
            operations: ops.iter().map(|s| s.to_string()).collect(),
            purposes: purposes.iter().map(|s| s.to_string()).collect(),
            tier: "bronze".into(),
            not_before: window.0.map(String::from),
            not_after: window.1.map(String::from),
            reason: None,
        }
    }

    fn code(result: Result<(), (u8, Denial)>) -> &'static str {
        result.map_or_else(|(_, d)| d.code(), |_| "ok")
    }

    #[test]
    fn window_operation_and_purpose() {
        let label: Arc<str> = "POST /verifikasi".into();
        let g = CompiledGrant::compile(
            &grant(
                &["verifikasi-nik"],
                &["penyaluran-bansos"],
                (Some("2026-01-01T00:00:00+07:00"), Some("2027-01-01T00:00:00Z")),
            ),
            &service(),
        )
        .unwrap();
        let now = parse_time("2026-06-01T00:00:00Z").unwrap();
        assert_eq!(code(g.admits(Some(1), &label, Some(b"penyaluran-bansos"), now)), "ok");
        assert_eq!(code(g.admits(Some(0), &label, Some(b"penyaluran-bansos"), now)), "policy.operation_not_granted");
        assert_eq!(code(g.admits(Some(1), &label, None, now)), "policy.purpose");
        assert_eq!(code(g.admits(Some(1), &label, Some(b"lain"), now)), "policy.purpose");
        assert_eq!(code(g.admits(Some(1), &label, Some(b"Bad Purpose"), now)), "policy.purpose");
        let before = parse_time("2025-12-31T16:59:59Z").unwrap();
        assert_eq!(code(g.admits(Some(1), &label, Some(b"penyaluran-bansos"), before)), "policy.grant_not_yet_valid");
        let at_start = parse_time("2025-12-31T17:00:00Z").unwrap();
        assert_eq!(code(g.admits(Some(1), &label, Some(b"penyaluran-bansos"), at_start)), "ok");
        let after = parse_time("2027-01-01T00:00:01Z").unwrap();
        assert_eq!(code(g.admits(Some(1), &label, Some(b"penyaluran-bansos"), after)), "policy.grant_expired");
    }

    #[test]
    fn wildcard_and_no_purposes() {
        let label: Arc<str> = "x".into();
        let g = CompiledGrant::compile(&grant(&["*"], &[], (None, None)), &service()).unwrap();
        assert_eq!(code(g.admits(Some(0), &label, None, 0)), "ok");
        assert_eq!(code(g.admits(None, &label, Some(b"apa-saja"), 0)), "ok");
    }

    #[test]
    fn bad_grants_are_refused() {
        assert!(CompiledGrant::compile(&grant(&["hapus"], &[], (None, None)), &service())
            .unwrap_err()
            .contains("hapus"));
        let inverted = grant(&["*"], &[], (Some("2027-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")));
        assert!(CompiledGrant::compile(&inverted, &service()).is_err());
        assert!(CompiledGrant::compile(&grant(&["*"], &[], (Some("2026-13-01T00:00:00Z"), None)), &service()).is_err());
    }

    #[test]
    fn purpose_syntax() {
        for good in ["pelayanan-kesehatan", "penyaluran-bansos-2027", "pemutakhiran-20270101", "a", "1x"] {
            assert!(is_purpose(good.as_bytes()), "{good}");
        }
        for bad in [&b""[..], b"-x", b"Besar", b"a b", b"a_b", &[b'a'; 64]] {
            assert!(!is_purpose(bad), "{bad:?}");
        }
        // Nothing that can carry a NIK, in any spelling: at most 8 digits in all.
        let nik = "3201010101010001";
        let spelled = [
            nik.to_string(),
            format!("cek-{nik}"),
            format!("{nik}-cek"),
            "cek-3201-0101-0101-0001".into(),
            "cek-32010101-01010001".into(),
            "c3-2-0-1-0-1-0-1-0".into(),
            "tahap-2-202701011".into(),
        ];
        for bad in spelled {
            assert!(!is_purpose(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_grant_may_list_only_purposes_of_the_grammar() {
        let error =
            CompiledGrant::compile(&grant(&["*"], &["cek-3201010101010001"], (None, None)), &service()).unwrap_err();
        assert!(error.contains("cek-3201010101010001") && error.contains("at most 8 digits"), "{error}");
        assert!(CompiledGrant::compile(&grant(&["*"], &["bansos-2027"], (None, None)), &service()).is_ok());
    }
}
