//! `clearinghouse.v1.Registry`'s credit runs on the wire: the request read into a `CreditRun` (every
//! problem with its field), the page and errors written back as protobuf.

use super::*;
use crate::calendar::Month;
use crate::registry::credits::{CreditPage, CreditRun, CreditsError, DEFAULT_CREDIT_PAGE, MAX_CREDIT_PAGE, refusals};
use region_adapter::money::fmt_yuan;

impl From<CreditsError> for ServiceError {
    fn from(e: CreditsError) -> ServiceError {
        match e {
            CreditsError::Refused { field, why } => ServiceError::field(field, why),
            CreditsError::Store(e) => e.into(),
        }
    }
}

/// The run asked for, every problem at once (format and rule together, by field).
pub(super) fn credit_run(req: &pb::CreditAccountsRequest, rules: &region_adapter::RuleSet) -> Result<CreditRun, ServiceError> {
    let mut v = Violations::default();
    let insured = Admdvs::parse(&req.insuplc_admdvs);
    let month = Month::parse(&req.month);
    let refused = refusals(rules, insured, month);
    let why = |field: &str| refused.iter().find(|(f, _)| *f == field).map(|(_, w)| w.clone());
    if insured.is_none() {
        v.add("insuplc_admdvs", "must be a 6-digit division code");
    } else if let Some(w) = why("insuplc_admdvs") {
        v.add("insuplc_admdvs", w);
    }
    if month.is_none() {
        v.add("month", "must be YYYYMM");
    } else if let Some(w) = why("month") {
        v.add("month", w);
    }
    let page_size = match req.page_size {
        0 => DEFAULT_CREDIT_PAGE,
        n if n > MAX_CREDIT_PAGE => {
            v.add("page_size", format!("at most {MAX_CREDIT_PAGE}"));
            0
        }
        n => n,
    } as usize;
    v.into_result(())?;
    Ok(CreditRun { insured: insured.expect("checked"), month: month.expect("checked"), page_size, after: req.page_token.clone() })
}

pub(super) fn credit_page_pb(p: CreditPage) -> pb::CreditAccountsResponse {
    pb::CreditAccountsResponse {
        members: p.members,
        credited: p.credited,
        already_credited: p.already_credited,
        total: fmt_yuan(p.total_fen),
        skipped: p.skipped.into_iter().map(|(reason, count)| pb::CreditSkip { reason, count }).collect(),
        explanation: p.explanation,
        next_page_token: p.next,
    }
}
