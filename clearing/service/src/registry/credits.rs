//! Monthly personal-account credits (个人账户计入): every member of an insured region once per month, by
//! the region's rule in force on the month's first day (`region_adapter::account`), at most once per
//! member-month (`Store::credit_month` records the month with the money in one step), page by page so
//! a region of millions runs in bounded steps and a run cut short is run again.

use crate::calendar::Month;
use crate::routing::router::Router;
use crate::store::{CreditOutcome, MemberKey, Store, StoreError};
use chrono::Datelike;
use region_adapter::account::{CreditBasis, MemberCredit, member_credit};
use region_adapter::{Admdvs, MemberClass};
use std::collections::BTreeMap;

/// Why a closed account gets no credit.
const CLOSED: &str = "account closed (emigration or death, Suizhou 003 art. 17): no credit";

/// Members per page of a credit run.
pub const DEFAULT_CREDIT_PAGE: u32 = 500;
pub const MAX_CREDIT_PAGE: u32 = 1_000;

/// One page of a region's credit run for a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRun {
    pub insured: Admdvs,
    pub month: Month,
    pub page_size: usize,
    /// The last person number of the previous page (`""`: the start).
    pub after: String,
}

/// What a page credited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditPage {
    pub members: i64,
    pub credited: i64,
    pub already_credited: i64,
    pub total_fen: i64,
    /// Reason → members.
    pub skipped: BTreeMap<String, i64>,
    /// The rules applied.
    pub explanation: Vec<String>,
    /// Where the next page starts; `""` at the end.
    pub next: String,
}

/// What a credit run can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CreditsError {
    /// The region or month cannot be credited here; `field` names which.
    #[error("{field}: {why}")]
    Refused { field: &'static str, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What refuses a credit run of `insured` for `month` here, by field: no rule pack of the region loaded
/// in process, or a month in the future (each only when the value itself is well formed).
pub fn refusals(rules: &region_adapter::RuleSet, insured: Option<Admdvs>, month: Option<Month>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if insured.is_some_and(|a| rules.region(a).is_none()) {
        out.push((
            "insuplc_admdvs",
            "no rule pack of this region is loaded here (credits run where the region's rules are served in process)".into(),
        ));
    }
    if month.is_some_and(|m| m.first_day() > crate::calendar::today().with_day(1).expect("day 1")) {
        out.push(("month", "is in the future".into()));
    }
    out
}

/// The credit runs: a small service over the store and the rule packs in force
/// (`Clearinghouse::credits()` hands one out).
pub struct Credits<'a, S: Store> {
    pub(crate) store: &'a S,
    pub(crate) router: &'a Router,
}

impl<S: Store> Credits<'_, S> {
    pub async fn credit_accounts(&self, run: &CreditRun) -> Result<CreditPage, CreditsError> {
        let routing = self.router.current();
        let refused = |field, why: String| CreditsError::Refused { field, why };
        if let Some((field, why)) = refusals(&routing.rules, Some(run.insured), Some(run.month)).into_iter().next() {
            return Err(refused(field, why));
        }
        let pack = routing.rules.region(run.insured).expect("checked");
        let first = run.month.first_day();
        let policy =
            pack.policy_on(first).ok_or_else(|| refused("month", format!("no policy of {} is in force on {first}", run.insured)))?;
        let (insured, month) = (run.insured.to_string(), run.month.to_string());
        let psns = self.store.members_of(&insured, &run.after, run.page_size).await?;
        let mut out = CreditPage { members: psns.len() as i64, ..Default::default() };
        let mut rules = BTreeMap::<String, ()>::new();
        let previous_year = (first.year() - 1).to_string();
        let last_day = first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).expect("a month's last day");
        for psn in &psns {
            let key = MemberKey::new(&insured, psn);
            let Some(m) = self.store.load_member(&key).await? else {
                *out.skipped.entry("listed but not stored (an upsert in progress)".into()).or_default() += 1;
                continue;
            };
            if m.credits.contains_key(&month) {
                out.already_credited += 1;
                continue;
            }
            if m.closed.is_some() {
                *out.skipped.entry(CLOSED.into()).or_default() += 1;
                continue;
            }
            let retired = m.psn_type == "12" && m.retire_date.is_none_or(|d| d <= first);
            let class = if retired { MemberClass::Retired } else { MemberClass::InService };
            let basis = CreditBasis {
                contribution_base_fen: m.credit_facts.contribution_base_fen,
                own_pension_fen: m.credit_facts.own_pension_fen,
                // The insured platform's fact for 2022 (Jiangsu 000 §三 Q5) wins; otherwise the last
                // credit recorded here in the previous year.
                previous_year_credit_fen: match m.credit_facts.monthly_credit_2022_fen {
                    f if f > 0 && previous_year == "2022" => f,
                    _ => m.credits.range(previous_year.clone()..format!("{previous_year}99")).next_back().map(|(_, f)| *f).unwrap_or(0),
                },
                combined_years: m.credit_facts.combined_years,
                insured_years: m.credit_facts.insured_years,
                reached_required_years: m.credit_facts.reached_required_years,
                // Any day of the month in arrears: that month's contribution was not (fully) paid.
                in_arrears: m.arrears.iter().any(|p| p.begndate <= last_day && p.enddate.is_none_or(|e| e >= first)),
            };
            match member_credit(policy, class, m.pooling_only, first, basis) {
                MemberCredit::Nothing { reason } => *out.skipped.entry(reason).or_default() += 1,
                MemberCredit::Credit { fen, rule, .. } => match self.store.credit_month(&key, &month, fen).await? {
                    CreditOutcome::Credited { .. } => {
                        out.credited += 1;
                        out.total_fen += fen;
                        rules.insert(rule, ());
                    }
                    CreditOutcome::AlreadyCredited { .. } => out.already_credited += 1,
                    CreditOutcome::Missing => *out.skipped.entry("listed but not stored (an upsert in progress)".into()).or_default() += 1,
                    CreditOutcome::Closed => *out.skipped.entry(CLOSED.into()).or_default() += 1,
                },
            }
        }
        out.explanation = rules.into_keys().collect();
        out.next = if psns.len() == run.page_size { psns.last().cloned().unwrap_or_default() } else { String::new() };
        tracing::info!(region = %insured, month = %month, members = out.members, credited = out.credited, "account credits");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn months() {
        assert_eq!(Month::parse("202403").map(Month::first_day), NaiveDate::from_ymd_opt(2024, 3, 1));
        for bad in ["2024-03", "202413", "20243", "abcdef"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }
}
