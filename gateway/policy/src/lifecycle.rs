//! The service lifecycle: `draft` → `testing` → `active` ⇄ `suspended` → `retired`. Going `active` needs both
//! approvals of the Dinas, *kelaikan operasi* (operations) and *kelaikan keamanan* (security), each recorded
//! with who gave it, when and why, by two different people. The rules are checked when a snapshot is built
//! (a hand-edited document cannot skip them) and the transitions are what `penghubung service ...` applies.

use penghubung_types::documents::{Approval, Approvals, ServiceDoc, ServiceStatus};

/// Which of the two approvals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalKind {
    Operations,
    Security,
}

impl ApprovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Operations => "operations",
            ApprovalKind::Security => "security",
        }
    }
}

/// A change of lifecycle state asked for by the security team.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// `draft` → `testing`: the service may be called by test clients.
    Submit,
    /// Records one approval; with both present (different people) the service becomes `active`.
    Approve { kind: ApprovalKind, approval: Approval },
    /// `active`/`testing` → `suspended`: refused from the next request on.
    Suspend { reason: String },
    /// `suspended` → `active` (its approvals still stand).
    Resume,
    /// Any → `retired`, for good.
    Retire { reason: String },
}

/// The new status, approvals and status reason after `transition`, or why it is not allowed.
pub fn apply(doc: &ServiceDoc, transition: &Transition) -> Result<(ServiceStatus, Approvals, Option<String>), String> {
    use ServiceStatus::*;
    let mut approvals = doc.approvals.clone();
    let key = doc.key();
    let from = doc.status;
    match transition {
        Transition::Submit => match from {
            Draft => Ok((Testing, approvals, None)),
            _ => Err(format!("`{key}` is {from}; only a draft can be submitted for testing")),
        },
        Transition::Approve { kind, approval } => {
            if !matches!(from, Draft | Testing) {
                return Err(format!("`{key}` is {from}; approvals are given to a service in draft or testing"));
            }
            let other = match kind {
                ApprovalKind::Operations => approvals.security.as_ref(),
                ApprovalKind::Security => approvals.operations.as_ref(),
            };
            if other.is_some_and(|o| same_person(&o.by, &approval.by)) {
                return Err(format!(
                    "`{}` already gave the other approval; the operations and security approvals must come from \
                     different people",
                    approval.by
                ));
            }
            match kind {
                ApprovalKind::Operations => approvals.operations = Some(approval.clone()),
                ApprovalKind::Security => approvals.security = Some(approval.clone()),
            }
            let status = if approvals.operations.is_some() && approvals.security.is_some() { Active } else { from };
            Ok((status, approvals, None))
        }
        Transition::Suspend { reason } => match from {
            Active | Testing => Ok((Suspended, approvals, Some(reason.clone()))),
            _ => Err(format!("`{key}` is {from}; only an active or testing service can be suspended")),
        },
        Transition::Resume => match from {
            Suspended if missing_approval(&approvals).is_none() => Ok((Active, approvals, None)),
            Suspended => Err(format!("`{key}` cannot resume: {}", missing_approval(&approvals).unwrap_or_default())),
            _ => Err(format!("`{key}` is {from}; only a suspended service can resume")),
        },
        Transition::Retire { reason } => match from {
            Retired => Err(format!("`{key}` is already retired")),
            _ => {
                approvals = doc.approvals.clone();
                Ok((Retired, approvals, Some(reason.clone())))
            }
        },
    }
}

/// The rules a stored service must satisfy, as messages (empty when it is consistent).
pub fn problems(doc: &ServiceDoc) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(doc.status, ServiceStatus::Active | ServiceStatus::Suspended) {
        if let Some(missing) = missing_approval(&doc.approvals) {
            out.push(format!("service is {} but {missing}", doc.status));
        }
    }
    if let (Some(ops), Some(sec)) = (&doc.approvals.operations, &doc.approvals.security) {
        if same_person(&ops.by, &sec.by) {
            out.push(format!(
                "the operations and security approvals are both by `{}`; they must come from different people",
                ops.by
            ));
        }
    }
    for (kind, approval) in [("operations", &doc.approvals.operations), ("security", &doc.approvals.security)] {
        if let Some(a) = approval {
            if let Err(e) = super::grants::parse_time(&a.at) {
                out.push(format!("approvals.{kind}.at: {e}"));
            }
        }
    }
    out
}

fn missing_approval(approvals: &Approvals) -> Option<String> {
    match (&approvals.operations, &approvals.security) {
        (Some(_), Some(_)) => None,
        (None, Some(_)) => Some("the operations approval (kelaikan operasi) is missing".into()),
        (Some(_), None) => Some("the security approval (kelaikan keamanan) is missing".into()),
        (None, None) => Some("both approvals (kelaikan operasi and kelaikan keamanan) are missing".into()),
    }
}

fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ServiceDoc {
        toml::from_str(
            "opd = \"dinsos\"\nname = \"bansos\"\nversion = 1\ntitle = \"t\"\nclassification = \"terbatas\"\n\
             [upstream]\nendpoints = [\"http://127.0.0.1:1\"]\n",
        )
        .unwrap()
    }

    fn approval(by: &str) -> Approval {
        Approval { by: by.into(), at: "2026-11-25T10:00:00+07:00".into(), reason: "uji fungsi lulus".into() }
    }

    fn step(doc: &mut ServiceDoc, t: Transition) -> Result<(), String> {
        let (status, approvals, reason) = apply(doc, &t)?;
        doc.status = status;
        doc.approvals = approvals;
        doc.status_reason = reason;
        Ok(())
    }

    #[test]
    fn both_approvals_by_different_people_make_it_active() {
        let mut doc = draft();
        step(&mut doc, Transition::Submit).unwrap();
        assert_eq!(doc.status, ServiceStatus::Testing);
        step(&mut doc, Transition::Approve { kind: ApprovalKind::Operations, approval: approval("Andi") }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Testing, "one approval is not enough");
        let same = step(&mut doc, Transition::Approve { kind: ApprovalKind::Security, approval: approval(" andi ") });
        assert!(same.unwrap_err().contains("different people"));
        step(&mut doc, Transition::Approve { kind: ApprovalKind::Security, approval: approval("Budi") }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Active);
        assert!(problems(&doc).is_empty());
        step(&mut doc, Transition::Suspend { reason: "insiden".into() }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Suspended);
        step(&mut doc, Transition::Resume).unwrap();
        assert_eq!(doc.status, ServiceStatus::Active);
        step(&mut doc, Transition::Retire { reason: "diganti v2".into() }).unwrap();
        assert!(step(&mut doc, Transition::Resume).is_err());
        assert!(step(&mut doc, Transition::Submit).is_err());
    }

    #[test]
    fn hand_edited_active_without_approvals_is_a_problem() {
        let mut doc = draft();
        doc.status = ServiceStatus::Active;
        assert!(problems(&doc)[0].contains("both approvals"));
        doc.approvals.operations = Some(approval("Andi"));
        doc.approvals.security = Some(approval("ANDI"));
        assert!(problems(&doc).iter().any(|p| p.contains("different people")));
    }
}
