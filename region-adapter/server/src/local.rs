//! The engine run in process: pricing with a loaded catalogue and a loaded policy, with the
//! explanation rendered. `clearing` uses it for regions routed `local`; `region-adapter serve` runs the
//! same functions for the regions it serves.

use chrono::NaiveDate;
use clearing_edge::error::ServiceError;
use region_adapter::{AccountSource, Admdvs, Filing, LineInput, MemberFacts, Priced, PsnType, RuleSet, Settled, Visit, YearState};

/// A priced claim with what the response needs from the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedClaim {
    pub priced: Priced,
    /// What the catalogue says of each line (empty when the code is not in the catalogue).
    pub items: Vec<LineItem>,
    /// The explanation step of pricing.
    pub explanation: String,
}

/// What the catalogue says of one priced line, for the answers (2204's `result`, the settlement lines).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineItem {
    pub name: String,
    /// 医疗收费项目类别 (`med_chrgitm_type`), "" when the catalogue does not give it.
    pub chrgitm_type: String,
    /// 限制使用标志 (`lmt_used_flag` 1).
    pub restricted: bool,
}

/// A policy outcome with its explanation rendered.
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    pub settled: Settled,
    pub explanation: Vec<String>,
}

/// Prices lines with a locally loaded catalogue (the in-process adapter; `region-adapter serve` runs
/// the same function).
pub fn local_price(rules: &RuleSet, mdtrt: Admdvs, date: NaiveDate, lines: &[LineInput<'_>]) -> Result<PricedClaim, ServiceError> {
    let pack = rules.region(mdtrt).ok_or_else(|| ServiceError::field("mdtrt_admdvs", format!("unknown region {mdtrt}")))?;
    let priced = pack.catalogue.price(date, lines)?;
    let items = lines
        .iter()
        .map(|l| {
            pack.catalogue.lookup(l.code, date).map_or_else(LineItem::default, |i| LineItem {
                name: i.name.to_string(),
                chrgitm_type: i.chrgitm_type.as_deref().unwrap_or_default().to_string(),
                restricted: i.restricted,
            })
        })
        .collect();
    let explanation = pack.pricing_step(priced.totals).render();
    Ok(PricedClaim { priced, items, explanation })
}

/// A member's facts, owned: decoded from the adapter protocol or from a stored member record.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedFacts {
    pub psn_type: PsnType,
    pub retire_date: Option<NaiveDate>,
    pub pooling_only: bool,
    pub filings: Vec<Filing>,
    /// Contributions unpaid for the visit date.
    pub in_arrears: bool,
}

impl OwnedFacts {
    /// The borrowed view the engine takes.
    pub fn facts(&self) -> MemberFacts<'_> {
        MemberFacts {
            psn_type: self.psn_type,
            retire_date: self.retire_date,
            pooling_only: self.pooling_only,
            filings: &self.filings,
            in_arrears: self.in_arrears,
        }
    }
}

/// The inputs of one policy decision: the insured region, the priced claim, the member's facts and
/// year-to-date state, the account that may pay, and the visit.
#[derive(Debug, Clone, Copy)]
pub struct PolicyCall<'a> {
    pub insured: Admdvs,
    pub priced: &'a Priced,
    pub member: MemberFacts<'a>,
    pub state: YearState,
    pub account: Option<AccountSource>,
    pub visit: Visit<'a>,
}

/// Applies a locally loaded policy.
pub fn local_apply_policy(rules: &RuleSet, call: &PolicyCall<'_>) -> Result<PolicyOutcome, ServiceError> {
    let insured = call.insured;
    let pack = rules.region(insured).ok_or_else(|| ServiceError::field("insuplc_admdvs", format!("unknown region {insured}")))?;
    let settled = pack.apply_policy(call.priced, &call.member, call.state, call.account, &call.visit)?;
    let explanation = settled.steps.iter().map(|s| s.render()).collect();
    Ok(PolicyOutcome { settled, explanation })
}
