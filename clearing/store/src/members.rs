//! Members as stored: registry facts, balance, accumulators, credits, recent visits, closure, and the
//! changes a commit or an upsert makes to them.

use crate::*;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A member's identity: insured region and person number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberKey {
    pub insuplc_admdvs: String,
    pub psn_no: String,
}

impl MemberKey {
    pub fn new(insuplc_admdvs: &str, psn_no: &str) -> MemberKey {
        MemberKey { insuplc_admdvs: insuplc_admdvs.to_string(), psn_no: psn_no.to_string() }
    }
    /// The store key: `<admdvs>:<psn_no>` (psn_no has no `:`; validated at the edge).
    pub fn storage_key(&self) -> String {
        format!("{}:{}", self.insuplc_admdvs, self.psn_no)
    }
    /// The key back from `storage_key`.
    pub fn from_storage_key(s: &str) -> Option<MemberKey> {
        s.split_once(':').map(|(admdvs, psn)| MemberKey::new(admdvs, psn))
    }
}

/// A filing as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingRecord {
    pub mdtrt_admdvs: String,
    pub begndate: NaiveDate,
    pub enddate: Option<NaiveDate>,
    /// The group of those who may file (Suizhou art. 10), when recorded.
    #[serde(default)]
    pub group: Option<String>,
}

/// A period of dates, `end` inclusive (`None` = open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRecord {
    pub begndate: NaiveDate,
    pub enddate: Option<NaiveDate>,
}

impl PeriodRecord {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.begndate <= d && self.enddate.is_none_or(|e| d <= e)
    }
}

/// A family link as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeneficiaryRecord {
    pub psn_no: String,
    pub relation: String,
}

/// Year-to-date state of one benefit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorRecord {
    pub year: i32,
    pub benefit: String,
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: i64,
}

/// What a monthly account credit is computed from (registry facts; zero = not on record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreditFacts {
    /// Monthly contribution base (缴费基数), fen: the in-service credit is a share of it.
    pub contribution_base_fen: i64,
    /// The member's own monthly pension, fen (a retiree rule that is a share of it).
    pub own_pension_fen: i64,
    /// Years under 统账结合 and insured years in all (Suizhou art. 14(三) pro-rates the retiree credit).
    pub combined_years: u32,
    pub insured_years: u32,
    /// The member's own monthly credit in 2022 (Jiangsu 2023 keeps it, 000 §三 Q5), fen; 0 = not on record.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub monthly_credit_2022_fen: i64,
    /// Whether a retiree reached the required contribution years (Suizhou art. 14(三)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached_required_years: Option<bool>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Who a member is, as the insured platform recorded it (1101's `baseinfo`). Personal data: its `Debug`
/// shows no number, name or birth date, so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonIdentity {
    /// National certificate type (01 居民身份证, …).
    pub psn_cert_type: String,
    pub certno: String,
    pub psn_name: String,
    /// 1 male, 2 female, 9 not stated; empty = not on record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brdy: Option<NaiveDate>,
    /// Ethnicity code; empty = not on record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub naty: String,
}

impl std::fmt::Debug for PersonIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersonIdentity {{ psn_cert_type: {:?}, .. }}", self.psn_cert_type)
    }
}

/// The registry facts of a member plus the state settlements change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub key: MemberKey,
    pub psn_type: String,
    pub retire_date: Option<NaiveDate>,
    pub pooling_only: bool,
    pub acct_balc_fen: i64,
    pub filings: Vec<FilingRecord>,
    pub mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    pub accumulators: Vec<AccumulatorRecord>,
    /// Incremented by every change; a commit names the version it computed from.
    pub version: u64,
    #[serde(default)]
    pub credit_facts: CreditFacts,
    /// Periods without paid contributions (Suizhou art. 27(三)): visits in them get no fund pay.
    #[serde(default)]
    pub arrears: Vec<PeriodRecord>,
    /// Monthly account credits made, YYYYMM → fen (each month at most once).
    #[serde(default)]
    pub credits: BTreeMap<String, i64>,
    /// The member's recent settlements (date, service location), for supervision's flags; kept like
    /// the accumulators, bounded (see `supervision::remember`). Stored as one compact string.
    #[serde(default, with = "recent_compact")]
    pub recent: Vec<RecentVisit>,
    /// Set once the account is closed (emigration or death, Suizhou art. 17): the balance was paid out
    /// and the member takes no further claim, credit or change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<AccountClosure>,
    /// Who the member is, when the insured platform said (1101 by certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<PersonIdentity>,
}

/// A closed personal account: when, why, and the settlement that paid the balance out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountClosure {
    pub date: NaiveDate,
    /// `emigration` or `death`.
    pub reason: String,
    pub setl_id: String,
}

impl AccountClosure {
    /// `<date> <reason> <setl_id>`, the stored form on Redis (one hash field, `x`).
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.date, self.reason, self.setl_id)
    }
    pub fn decode(s: &str) -> Result<AccountClosure, StoreError> {
        let bad = || StoreError::Corrupt(format!("account closure {s:?}"));
        let mut p = s.split(' ');
        let (Some(date), Some(reason), Some(setl_id), None) = (p.next(), p.next(), p.next(), p.next()) else {
            return Err(bad());
        };
        Ok(AccountClosure { date: date.parse().map_err(|_| bad())?, reason: reason.into(), setl_id: setl_id.into() })
    }
}

/// One recent settlement of a member: its visit date and service location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentVisit {
    pub date: NaiveDate,
    pub mdtrt_admdvs: String,
}

impl RecentVisit {
    /// `YYYY-MM-DD:admdvs,…`, the stored form on Redis (one hash field).
    pub fn encode_all(v: &[RecentVisit]) -> String {
        v.iter().map(|r| format!("{}:{}", r.date, r.mdtrt_admdvs)).collect::<Vec<_>>().join(",")
    }
    pub fn decode_all(s: &str) -> Result<Vec<RecentVisit>, StoreError> {
        s.split(',')
            .filter(|e| !e.is_empty())
            .map(|e| {
                let bad = || StoreError::Corrupt(format!("recent visit {e:?}"));
                let (d, a) = e.split_once(':').ok_or_else(bad)?;
                Ok(RecentVisit { date: d.parse().map_err(|_| bad())?, mdtrt_admdvs: a.to_string() })
            })
            .collect()
    }
}

/// `recent` as `YYYY-MM-DD:admdvs,…` in stored JSON (a few bytes per visit instead of an object).
mod recent_compact {
    use super::RecentVisit;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[RecentVisit], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&RecentVisit::encode_all(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RecentVisit>, D::Error> {
        RecentVisit::decode_all(<&str>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Applies one member change; shared by every store so the arithmetic is written once.
pub fn apply_member_change(rec: &mut MemberRecord, m: &MemberChange) {
    rec.version += 1;
    rec.acct_balc_fen += m.balance_delta_fen;
    if let Some(r) = &m.recent {
        rec.recent = r.clone();
    }
    if let Some(c) = &m.close {
        rec.closed = Some(c.clone());
    }
    if let Some(d) = &m.accumulator {
        match rec.accumulators.iter_mut().find(|a| a.year == d.year && a.benefit == d.benefit) {
            Some(a) => {
                a.deductible_used_fen += d.deductible_used_fen;
                a.fund_paid_fen += d.fund_paid_fen;
                a.visits += d.visits;
            }
            None => rec.accumulators.push(AccumulatorRecord {
                year: d.year,
                benefit: d.benefit.clone(),
                deductible_used_fen: d.deductible_used_fen,
                fund_paid_fen: d.fund_paid_fen,
                visits: d.visits,
            }),
        }
    }
}

impl MemberRecord {
    pub fn accumulator(&self, year: i32, benefit: &str) -> Option<&AccumulatorRecord> {
        self.accumulators.iter().find(|a| a.year == year && a.benefit == benefit)
    }
}

/// The registry facts an upsert replaces; the balance is set or credited as asked.
#[derive(Debug, Clone)]
pub struct MemberUpsert {
    pub key: MemberKey,
    pub psn_type: String,
    pub retire_date: Option<NaiveDate>,
    pub pooling_only: bool,
    pub filings: Vec<FilingRecord>,
    pub mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    /// Replace the balance (new members start at 0 when absent).
    pub set_balance_fen: Option<i64>,
    /// Add to the balance after any replacement.
    pub credit_fen: i64,
    pub credit_facts: CreditFacts,
    pub arrears: Vec<PeriodRecord>,
    /// Replaces who the member is (`None` clears it, like every other registry fact).
    pub identity: Option<PersonIdentity>,
}

/// What `credit_month` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditOutcome {
    /// Credited now; the balance after.
    Credited { balance_fen: i64 },
    /// This month was credited before (that amount); nothing changed.
    AlreadyCredited { fen: i64 },
    /// No such member.
    Missing,
    /// The member's account is closed: nothing credited.
    Closed,
}

/// Change of one accumulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccumulatorDelta {
    pub year: i32,
    pub benefit: String,
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: i64,
}

/// Change of one member made by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub key: MemberKey,
    /// The version the change was computed from; `None` when the change does not depend on state
    /// (a reversal only subtracts what its original added).
    pub expected_version: Option<u64>,
    pub accumulator: Option<AccumulatorDelta>,
    /// Added to the account balance (negative = a debit). A debit never takes it below zero.
    pub balance_delta_fen: i64,
    /// Replaces the member's recent settlements (only with `expected_version`, so never stale).
    pub recent: Option<Vec<RecentVisit>>,
    /// Closes the account (the closure's own commit). Any other commit touching a closed member is
    /// refused (`CommitOutcome::Closed`).
    pub close: Option<AccountClosure>,
}
