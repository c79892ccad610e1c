//! The service lifecycle: `draft` → `testing` → `active` ⇄ `suspended` → `retired`. Going `active` needs both
//! approvals of the Dinas, *kelaikan operasi* (operations) and *kelaikan keamanan* (security), each recorded
//! with the id of the operator who gave it, when and why: two different operators, each holding the approval's
//! role (`operasi`, `keamanan`), and the security approval never by the operator who submitted the service. An
//! approval can be withdrawn; an `active` service then goes back to `testing`. The rules are checked when a
//! snapshot is built (a hand-edited document cannot skip them, [`problems`]) and the transitions are what the
//! management plane applies ([`apply`]).

use std::collections::HashMap;

use penghubung_types::documents::{Approval, Approvals, OperatorDoc, Role, ServiceDoc, ServiceStatus};

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

    /// Parses `"operations"` or `"security"`.
    pub fn parse(name: &str) -> Option<Self> {
        [ApprovalKind::Operations, ApprovalKind::Security].into_iter().find(|k| k.as_str() == name)
    }

    /// The role an operator needs to give this approval.
    pub fn role(self) -> Role {
        match self {
            ApprovalKind::Operations => Role::Operasi,
            ApprovalKind::Security => Role::Keamanan,
        }
    }
}

/// A change of lifecycle state asked for by the security team.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// `draft` → `testing`: the service may be called by test clients.
    Submit,
    /// Records one approval; with both present (different operators) the service becomes `active`.
    Approve { kind: ApprovalKind, approval: Approval },
    /// Removes one approval: `active` → `testing` (a draft or testing service keeps its status).
    Withdraw { kind: ApprovalKind },
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
            if other.is_some_and(|o| o.by == approval.by) {
                return Err(format!(
                    "`{}` already gave the other approval; the operations and security approvals must come from \
                     different operators",
                    approval.by
                ));
            }
            if *kind == ApprovalKind::Security && doc.submitted_by.as_deref() == Some(approval.by.as_str()) {
                return Err(format!(
                    "`{}` submitted `{key}`; the security approval must come from another operator",
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
        Transition::Withdraw { kind } => {
            let slot = match kind {
                ApprovalKind::Operations => &mut approvals.operations,
                ApprovalKind::Security => &mut approvals.security,
            };
            if slot.take().is_none() {
                return Err(format!("`{key}` has no {} approval to withdraw", kind.as_str()));
            }
            match from {
                Draft | Testing => Ok((from, approvals, None)),
                Active => Ok((Testing, approvals, None)),
                _ => Err(format!(
                    "`{key}` is {from}; approvals are withdrawn from a service in draft, testing or active"
                )),
            }
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

/// The rules a stored service must satisfy given the store's operators (by id), as messages (empty when it is
/// consistent): an `active` or `suspended` service has both approvals; each approval is by a known operator
/// holding its role; the two are by different operators; the security approval is not by the submitter.
pub fn problems(doc: &ServiceDoc, operators: &HashMap<String, OperatorDoc>) -> Vec<String> {
    let mut out = Vec::new();
    if matches!(doc.status, ServiceStatus::Active | ServiceStatus::Suspended) {
        if let Some(missing) = missing_approval(&doc.approvals) {
            out.push(format!("service is {} but {missing}", doc.status));
        }
    }
    if let (Some(ops), Some(sec)) = (&doc.approvals.operations, &doc.approvals.security) {
        if ops.by == sec.by {
            out.push(format!(
                "the operations and security approvals are both by `{}`; they must come from different operators",
                ops.by
            ));
        }
    }
    for (kind, approval) in
        [(ApprovalKind::Operations, &doc.approvals.operations), (ApprovalKind::Security, &doc.approvals.security)]
    {
        let Some(a) = approval else { continue };
        let name = kind.as_str();
        if let Err(e) = super::grants::parse_time(&a.at) {
            out.push(format!("approvals.{name}.at: {e}"));
        }
        match operators.get(&a.by) {
            None => out.push(format!(
                "approvals.{name}.by: `{}` is not an operator (add operators/{}.toml, or record the approval again)",
                a.by, a.by
            )),
            Some(operator) if !operator.roles.contains(&kind.role()) => out.push(format!(
                "approvals.{name}.by: operator `{}` does not hold the role `{}` the {name} approval needs",
                a.by,
                kind.role()
            )),
            Some(_) => {}
        }
        if kind == ApprovalKind::Security && doc.submitted_by.as_deref() == Some(a.by.as_str()) {
            out.push(format!(
                "approvals.security.by: `{}` submitted the service; the security approval must come from another \
                 operator",
                a.by
            ));
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

    fn operators() -> HashMap<String, OperatorDoc> {
        let operator = |id: &str, roles: Vec<Role>| OperatorDoc {
            id: id.into(),
            name: id.into(),
            nip: "198001012006041001".into(),
            opd: "diskominfo".into(),
            roles,
            enabled: true,
            identity: Default::default(),
            password_hash: None,
        };
        [
            operator("andi", vec![Role::Operasi, Role::Keamanan]),
            operator("budi", vec![Role::Keamanan]),
            operator("citra", vec![Role::Auditor]),
        ]
        .into_iter()
        .map(|o| (o.id.clone(), o))
        .collect()
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
    fn both_approvals_by_different_operators_make_it_active() {
        let mut doc = draft();
        step(&mut doc, Transition::Submit).unwrap();
        assert_eq!(doc.status, ServiceStatus::Testing);
        step(&mut doc, Transition::Approve { kind: ApprovalKind::Operations, approval: approval("andi") }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Testing, "one approval is not enough");
        let same = step(&mut doc, Transition::Approve { kind: ApprovalKind::Security, approval: approval("andi") });
        assert!(same.unwrap_err().contains("different operators"));
        step(&mut doc, Transition::Approve { kind: ApprovalKind::Security, approval: approval("budi") }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Active);
        assert!(problems(&doc, &operators()).is_empty());
        step(&mut doc, Transition::Suspend { reason: "insiden".into() }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Suspended);
        step(&mut doc, Transition::Resume).unwrap();
        assert_eq!(doc.status, ServiceStatus::Active);
        step(&mut doc, Transition::Retire { reason: "diganti v2".into() }).unwrap();
        assert!(step(&mut doc, Transition::Resume).is_err());
        assert!(step(&mut doc, Transition::Submit).is_err());
    }

    #[test]
    fn withdrawal_reverts_active_to_testing() {
        let mut doc = draft();
        doc.status = ServiceStatus::Active;
        doc.approvals.operations = Some(approval("andi"));
        doc.approvals.security = Some(approval("budi"));
        step(&mut doc, Transition::Withdraw { kind: ApprovalKind::Security }).unwrap();
        assert_eq!(doc.status, ServiceStatus::Testing);
        assert!(doc.approvals.security.is_none() && doc.approvals.operations.is_some());
        let again = step(&mut doc, Transition::Withdraw { kind: ApprovalKind::Security }).unwrap_err();
        assert!(again.contains("no security approval"), "{again}");
    }

    #[test]
    fn the_submitter_cannot_give_the_security_approval() {
        let mut doc = draft();
        doc.submitted_by = Some("budi".into());
        step(&mut doc, Transition::Submit).unwrap();
        let refused = step(&mut doc, Transition::Approve { kind: ApprovalKind::Security, approval: approval("budi") });
        assert!(refused.unwrap_err().contains("submitted"));
        doc.approvals.security = Some(approval("budi"));
        assert!(problems(&doc, &operators()).iter().any(|p| p.contains("submitted the service")));
    }

    #[test]
    fn hand_edited_approvals_are_checked_against_the_operators() {
        let mut doc = draft();
        doc.status = ServiceStatus::Active;
        assert!(problems(&doc, &operators())[0].contains("both approvals"));
        doc.approvals.operations = Some(approval("andi"));
        doc.approvals.security = Some(approval("andi"));
        assert!(problems(&doc, &operators()).iter().any(|p| p.contains("different operators")));
        doc.approvals.operations = Some(approval("Rudi (Kabid Aptika)"));
        doc.approvals.security = Some(approval("citra"));
        let found = problems(&doc, &operators());
        assert!(found.iter().any(|p| p.contains("`Rudi (Kabid Aptika)` is not an operator")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("does not hold the role `keamanan`")), "{found:?}");
    }
}
