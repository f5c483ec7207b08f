//! Monthly personal-account credits (个人账户计入): every member of an insured region once per month, by
//! the region's rule in force on the month's first day (`region_adapter::account`), at most once per
//! member-month (`Store::credit_month` records the month with the money in one step), page by page so
//! a region of millions runs in bounded steps and a run cut short is run again.

use crate::core::Clearinghouse;
use crate::store::{CreditOutcome, MemberKey, Store};
use chrono::{Datelike, NaiveDate};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::Violations;
use proto::v1 as pb;
use region_adapter::account::{CreditBasis, MemberCredit, member_credit};
use region_adapter::money::fmt_yuan;
use region_adapter::{Admdvs, MemberClass};
use std::collections::BTreeMap;

/// Why a closed account gets no credit.
const CLOSED: &str = "account closed (emigration or death, Suizhou 003 art. 17): no credit";

/// Members per page of a credit run.
pub const DEFAULT_CREDIT_PAGE: u32 = 500;
pub const MAX_CREDIT_PAGE: u32 = 1_000;

/// The first day of `YYYYMM`.
fn month_start(month: &str) -> Option<NaiveDate> {
    crate::calendar::Month::parse(month).map(crate::calendar::Month::first_day)
}

impl<S: Store> Clearinghouse<S> {
    pub async fn credit_accounts(&self, req: &pb::CreditAccountsRequest) -> Result<pb::CreditAccountsResponse, ServiceError> {
        let routing = self.router.current();
        let mut v = Violations::default();
        let insured = Admdvs::parse(&req.insuplc_admdvs);
        let pack = insured.and_then(|a| routing.rules.region(a));
        if insured.is_none() {
            v.add("insuplc_admdvs", "must be a 6-digit division code");
        } else if pack.is_none() {
            v.add(
                "insuplc_admdvs",
                "no rule pack of this region is loaded here (credits run where the region's rules are served in process)",
            );
        }
        let first = month_start(&req.month);
        let this_month = crate::calendar::today().with_day(1).expect("day 1");
        match first {
            None => v.add("month", "must be YYYYMM"),
            Some(d) if d > this_month => v.add("month", "is in the future"),
            Some(_) => {}
        }
        let size = match req.page_size {
            0 => DEFAULT_CREDIT_PAGE,
            n if n > MAX_CREDIT_PAGE => {
                v.add("page_size", format!("at most {MAX_CREDIT_PAGE}"));
                0
            }
            n => n,
        } as usize;
        v.into_result(())?;
        let (pack, first) = (pack.expect("checked"), first.expect("checked"));
        let policy = pack
            .policy_on(first)
            .ok_or_else(|| ServiceError::field("month", format!("no policy of {} is in force on {first}", req.insuplc_admdvs)))?;
        let psns = self.store.members_of(&req.insuplc_admdvs, &req.page_token, size).await?;
        let mut out = pb::CreditAccountsResponse { members: psns.len() as i64, ..Default::default() };
        let (mut total, mut skipped, mut rules) = (0i64, BTreeMap::<String, i64>::new(), BTreeMap::<String, ()>::new());
        let previous_year = (first.year() - 1).to_string();
        let last_day = first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).expect("a month's last day");
        for psn in &psns {
            let key = MemberKey::new(&req.insuplc_admdvs, psn);
            let Some(m) = self.store.load_member(&key).await? else {
                *skipped.entry("listed but not stored (an upsert in progress)".into()).or_default() += 1;
                continue;
            };
            if m.credits.contains_key(&req.month) {
                out.already_credited += 1;
                continue;
            }
            if m.closed.is_some() {
                *skipped.entry(CLOSED.into()).or_default() += 1;
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
                MemberCredit::Nothing { reason } => *skipped.entry(reason).or_default() += 1,
                MemberCredit::Credit { fen, rule, .. } => match self.store.credit_month(&key, &req.month, fen).await? {
                    CreditOutcome::Credited { .. } => {
                        out.credited += 1;
                        total += fen;
                        rules.insert(rule, ());
                    }
                    CreditOutcome::AlreadyCredited { .. } => out.already_credited += 1,
                    CreditOutcome::Missing => *skipped.entry("listed but not stored (an upsert in progress)".into()).or_default() += 1,
                    CreditOutcome::Closed => *skipped.entry(CLOSED.into()).or_default() += 1,
                },
            }
        }
        out.total = fmt_yuan(total);
        out.skipped = skipped.into_iter().map(|(reason, count)| pb::CreditSkip { reason, count }).collect();
        out.explanation = rules.into_keys().collect();
        out.next_page_token = if psns.len() == size { psns.last().cloned().unwrap_or_default() } else { String::new() };
        tracing::info!(region = %req.insuplc_admdvs, month = %req.month, members = out.members, credited = out.credited, "account credits");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(month_start("202403"), NaiveDate::from_ymd_opt(2024, 3, 1));
        for bad in ["2024-03", "202413", "20243", "abcdef"] {
            assert_eq!(month_start(bad), None, "{bad}");
        }
    }
}
