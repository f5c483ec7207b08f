//! Supervision (ARCHITECTURE.md): flags on each settlement, computed at settle time from the settlement
//! and the member's recent settlements, and the monthly indicators per institution and region pair,
//! kept incrementally at commit (like the window totals) so that a month is read from aggregates.
//!
//! What the seeds ask for: an early-warning watch on cost growing fast, high cost per visit, a high
//! self-paid share and a high share of examinations (Nanchang 002 §4(五)); preventing account cash-out
//! and out-of-scope use (Jiangsu 000); pharmacies swapping drugs or selling daily goods (Suizhou 003
//! art. 25). No seed gives a number: every threshold is in the rule packs' `[supervision]`, marked as
//! an assumption. A flag is information for review: it never refuses or changes a settlement.
//!
//! Indicators are stored as `<entity>|<measure>` → integer sums of one month (the visit's month):
//! entities `i|<mdtrt>|<fixmedins_code>` (an institution) and `p|<insured>|<mdtrt>` (a region pair);
//! measures `n` claims, `m` medical cost, `s` self-paid (全自费 + 超限价自费), `e` examinations, `a`
//! account, `f` fund, `x` flagged claims, `k:<kind>` claims per flag kind (fen for amounts).
//! A reversal adds the original's numbers negated, in the original's month.

use crate::store::{RecentVisit, SupervisionDelta};
use crate::wire::ValidClaim;
use chrono::{Datelike, NaiveDate};
use proto::v1 as pb;
use region_adapter::model::{ItemCategory, Provenance, SupervisionTerms};
use region_adapter::money::{RATIO_ONE_BP, fmt_yuan};
use region_adapter::{Amounts, Priced, RuleSet};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// Every flag kind, in the order they are checked and reported.
pub const KINDS: [&str; 7] =
    ["multi_region_day", "frequent_visits", "high_cost", "high_selfpay", "pharmacy_cashout", "price_over_cap", "implausible_quantity"];

/// A member's recent settlements are kept this many days back from the latest visit (the longest
/// `frequent_visits_days` a pack may set is 31)…
const RECENT_DAYS: i64 = 31;
/// … and at most this many (a member with more visits in a month is flagged long before).
const MAX_RECENT: usize = 64;

/// The thresholds of region `a`: its pack's, or the defaults for a region without a pack here.
pub fn terms_of(rules: &RuleSet, a: region_adapter::Admdvs) -> &SupervisionTerms {
    match rules.region(a) {
        Some(p) => &p.supervision,
        None => default_terms(),
    }
}

/// This build's thresholds (`SupervisionTerms::defaults`), made once.
fn default_terms() -> &'static SupervisionTerms {
    static DEFAULTS: OnceLock<SupervisionTerms> = OnceLock::new();
    DEFAULTS.get_or_init(SupervisionTerms::defaults)
}

/// The member's recent settlements with this visit added, bounded (see `RECENT_DAYS`, `MAX_RECENT`).
pub fn remember(recent: &[RecentVisit], date: NaiveDate, mdtrt: &str) -> Vec<RecentVisit> {
    let mut out: Vec<RecentVisit> = Vec::with_capacity(recent.len() + 1);
    out.extend_from_slice(recent);
    out.push(RecentVisit { date, mdtrt_admdvs: mdtrt.to_string() });
    out.sort_by_key(|r| r.date);
    let latest = out.last().map_or(date, |r| r.date);
    out.retain(|r| (latest - r.date).num_days() <= RECENT_DAYS);
    let drop = out.len().saturating_sub(MAX_RECENT);
    out.drain(..drop);
    out
}

fn share(part: i64, whole: i64) -> Decimal {
    if whole <= 0 { Decimal::ZERO } else { Decimal::from(part) / Decimal::from(whole) }
}

fn bp(b: u32) -> Decimal {
    Decimal::from(b) / Decimal::from(RATIO_ONE_BP)
}

/// `0.1234`: a share to 4 places, half away from zero.
pub fn fmt_share(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(4);
    r.to_string()
}

/// The flags of one settlement. `recent` is the member's recent settlements before this one.
pub fn flags(t: &SupervisionTerms, vc: &ValidClaim, priced: &Priced, a: &Amounts, recent: &[RecentVisit]) -> Vec<pb::SupervisionFlag> {
    let mut out = Vec::new();
    let mut flag = |kind: &str, detail: String| out.push(pb::SupervisionFlag { kind: kind.into(), detail });
    let mdtrt = vc.mdtrt.to_string();
    // The same member in several service regions on one day (the clearinghouse alone sees this).
    let mut regions: BTreeSet<&str> = recent.iter().filter(|r| r.date == vc.visit_date).map(|r| r.mdtrt_admdvs.as_str()).collect();
    regions.insert(&mdtrt);
    if regions.len() as u32 >= t.same_day_regions.value {
        // The regions named, at most `MAX_NAMED`; the count says how many.
        const MAX_NAMED: usize = 8;
        let list: Vec<&str> = regions.iter().take(MAX_NAMED).copied().collect();
        let more = if regions.len() > MAX_NAMED { ", …" } else { "" };
        flag(
            "multi_region_day",
            format!(
                "{} service regions on {}: {}{more} (threshold {})",
                regions.len(),
                vc.visit_date,
                list.join(", "),
                t.same_day_regions.value
            ),
        );
    }
    let days = t.frequent_visits_days.value as i64;
    let in_window = 1 + recent.iter().filter(|r| r.date <= vc.visit_date && (vc.visit_date - r.date).num_days() < days).count();
    if in_window as u32 >= t.frequent_visits.value {
        flag(
            "frequent_visits",
            format!("{in_window} visits in {days} days up to {} (threshold {})", vc.visit_date, t.frequent_visits.value),
        );
    }
    if a.medfee_sumamt > t.high_cost_per_visit_fen.value {
        flag("high_cost", format!("medical cost {} above {}", fmt_yuan(a.medfee_sumamt), fmt_yuan(t.high_cost_per_visit_fen.value)));
    }
    let selfpaid = a.fulamt_ownpay_amt + a.overlmt_selfpay;
    if a.medfee_sumamt > 0 && share(selfpaid, a.medfee_sumamt) > bp(t.selfpay_share_bp.value) {
        flag(
            "high_selfpay",
            format!(
                "self-paid {} of {} ({}) above {}",
                fmt_yuan(selfpaid),
                fmt_yuan(a.medfee_sumamt),
                fmt_share(share(selfpaid, a.medfee_sumamt)),
                fmt_share(bp(t.selfpay_share_bp.value))
            ),
        );
    }
    if vc.med_type == region_adapter::MedType::Pharmacy && a.psn_cash_pay == 0 && a.acct_pay >= t.pharmacy_cashout_fen.value {
        flag(
            "pharmacy_cashout",
            format!(
                "pharmacy claim paid by the account without cash: {} (threshold {})",
                fmt_yuan(a.acct_pay),
                fmt_yuan(t.pharmacy_cashout_fen.value)
            ),
        );
    }
    let over: Vec<String> = vc
        .lines
        .iter()
        .zip(&priced.lines)
        .enumerate()
        .filter_map(|(i, (l, p))| {
            let cap = p.price_cap?;
            (l.unit_price > cap * t.price_over_cap_factor.value).then(|| format!("lines[{i}] {} at {} (cap {cap})", l.code, l.unit_price))
        })
        .collect();
    if !over.is_empty() {
        flag("price_over_cap", format!("{} (more than {}× the cap)", over.join("; "), t.price_over_cap_factor.value));
    }
    let many: Vec<String> = vc
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.qty > t.max_line_quantity.value)
        .map(|(i, l)| format!("lines[{i}] {} × {}", l.code, l.qty))
        .collect();
    if !many.is_empty() {
        flag("implausible_quantity", format!("{} (more than {})", many.join("; "), t.max_line_quantity.value));
    }
    out
}

/// A flagged settlement as the month's flagged list keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlaggedEntry {
    pub setl_id: String,
    pub setl_time: String,
    pub psn_no: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    pub fixmedins_code: String,
    pub med_type: String,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
    /// (kind, detail).
    pub flags: Vec<(String, String)>,
}

/// `YYYYMM` of a date.
pub fn month_of(d: NaiveDate) -> String {
    format!("{:04}{:02}", d.year(), d.month())
}

/// What a settlement adds to supervision.
pub fn delta_of(vc: &ValidClaim, priced: &Priced, a: &Amounts, flags: &[pb::SupervisionFlag], setl_id: &str) -> SupervisionDelta {
    let exam: i64 = priced.lines.iter().filter(|l| l.category == Some(ItemCategory::Examination)).map(|l| l.amount_fen).sum();
    let mdtrt = vc.mdtrt.to_string();
    let flagged = (!flags.is_empty()).then(|| {
        let e = FlaggedEntry {
            setl_id: setl_id.into(),
            setl_time: vc.setl_time.to_rfc3339(),
            psn_no: vc.psn_no.clone(),
            insuplc_admdvs: vc.insured.to_string(),
            mdtrt_admdvs: mdtrt.clone(),
            fixmedins_code: vc.fixmedins_code.clone(),
            med_type: vc.med_type.code().into(),
            medfee_fen: a.medfee_sumamt,
            fund_fen: a.fund_pay_sumamt,
            acct_fen: a.acct_pay,
            flags: flags.iter().map(|f| (f.kind.clone(), f.detail.clone())).collect(),
        };
        serde_json::to_string(&e).expect("a flagged entry serializes")
    });
    SupervisionDelta {
        month: month_of(vc.visit_date),
        institution: format!("{mdtrt}|{}", vc.fixmedins_code),
        pair: format!("{}|{mdtrt}", vc.insured),
        sums: [
            1,
            a.medfee_sumamt,
            a.fulamt_ownpay_amt + a.overlmt_selfpay,
            exam,
            a.acct_pay,
            a.fund_pay_sumamt,
            i64::from(!flags.is_empty()),
        ],
        kinds: flags.iter().map(|f| f.kind.clone()).collect(),
        flagged,
        unflag: None,
    }
}

/// What a reversal of `orig` (with its stored delta) adds: every number negated, its flagged entry removed.
pub fn reversal_delta(orig_setl_id: &str, d: &SupervisionDelta) -> SupervisionDelta {
    SupervisionDelta { sums: d.sums.map(|v| -v), flagged: None, unflag: d.flagged.as_ref().map(|_| orig_setl_id.to_string()), ..d.clone() }
}

/// The sums of one entity in one month.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub n: i64,
    pub medfee: i64,
    pub selfpay: i64,
    pub exam: i64,
    pub acct: i64,
    pub fund: i64,
    pub flagged: i64,
    pub by_kind: BTreeMap<String, i64>,
}

impl Sums {
    fn add(&mut self, measure: &str, v: i64) -> bool {
        match measure {
            "n" => self.n += v,
            "m" => self.medfee += v,
            "s" => self.selfpay += v,
            "e" => self.exam += v,
            "a" => self.acct += v,
            "f" => self.fund += v,
            "x" => self.flagged += v,
            k => match k.strip_prefix("k:") {
                Some(kind) => *self.by_kind.entry(kind.to_string()).or_default() += v,
                None => return false,
            },
        }
        true
    }

    /// Cost per visit in fen, half away from zero; `None` without claims.
    pub fn cost_per_visit_fen(&self) -> Option<i64> {
        (self.n > 0).then(|| {
            (Decimal::from(self.medfee) / Decimal::from(self.n))
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .try_into()
                .unwrap_or(i64::MAX)
        })
    }

    pub fn selfpay_share(&self) -> Decimal {
        share(self.selfpay, self.medfee)
    }
    pub fn exam_share(&self) -> Decimal {
        share(self.exam, self.medfee)
    }

    pub fn to_pb(&self) -> pb::Measures {
        pb::Measures {
            claims: self.n,
            medfee_sumamt: fmt_yuan(self.medfee),
            cost_per_visit: self.cost_per_visit_fen().map(fmt_yuan).unwrap_or_default(),
            selfpay_amt: fmt_yuan(self.selfpay),
            selfpay_share: fmt_share(self.selfpay_share()),
            exam_amt: fmt_yuan(self.exam),
            exam_share: fmt_share(self.exam_share()),
            acct_pay: fmt_yuan(self.acct),
            acct_share: fmt_share(share(self.acct, self.medfee)),
            fund_pay_sumamt: fmt_yuan(self.fund),
            flagged_claims: self.flagged,
            flags_by_kind: self.by_kind.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }
}

/// A month's stored fields grouped by entity: institutions by (mdtrt, code), pairs by (insured, mdtrt).
#[derive(Debug, Default)]
pub struct Month {
    pub institutions: BTreeMap<(String, String), Sums>,
    pub pairs: BTreeMap<(String, String), Sums>,
}

impl Month {
    /// Groups stored fields (which may repeat) by entity.
    pub fn parse(fields: &[(String, i64)]) -> Result<Month, String> {
        // Added up by entity first (one hash lookup per field, no allocation for a known entity),
        // then split into institutions and pairs once per entity.
        let mut by_entity: std::collections::HashMap<&str, Sums> = std::collections::HashMap::with_capacity(fields.len() / 6 + 1);
        for (f, v) in fields {
            let bad = || format!("indicator field {f:?}");
            let (entity, measure) = f.rsplit_once('|').ok_or_else(bad)?;
            let sums = match by_entity.get_mut(entity) {
                Some(s) => s,
                None => by_entity.entry(entity).or_default(),
            };
            if !sums.add(measure, *v) {
                return Err(bad());
            }
        }
        let mut out = Month::default();
        for (entity, sums) in by_entity {
            // An entity whose settlements were all reversed sums to nothing: leave it out.
            if sums.n == 0 && sums.medfee == 0 {
                continue;
            }
            let bad = || format!("indicator entity {entity:?}");
            let mut p = entity.splitn(3, '|');
            let (Some(kind), Some(a), Some(b)) = (p.next(), p.next(), p.next()) else { return Err(bad()) };
            let map = match kind {
                "i" => &mut out.institutions,
                "p" => &mut out.pairs,
                _ => return Err(bad()),
            };
            map.insert((a.to_string(), b.to_string()), sums);
        }
        Ok(out)
    }
}

/// The previous month of `YYYYMM`.
pub fn previous_month(month: &str) -> Option<String> {
    let d = NaiveDate::parse_from_str(&format!("{month}01"), "%Y%m%d").ok()?;
    let p = d.pred_opt()?;
    Some(month_of(p))
}

pub fn valid_month(month: &str) -> bool {
    month.len() == 6 && month.bytes().all(|b| b.is_ascii_digit()) && previous_month(month).is_some()
}

fn provenance_text(p: &Provenance) -> String {
    match p {
        Provenance::Source { file, place } => format!("source: {file} {place}"),
        Provenance::Assumption(a) => format!("assumption: {a}"),
        Provenance::Placeholder(_) => p.to_string(),
    }
}

/// Growth of cost per visit on the previous month; `None` unless both months have claims.
pub fn growth(now: &Sums, prev: Option<&Sums>) -> Option<Decimal> {
    let (c, p) = (now.cost_per_visit_fen()?, prev?.cost_per_visit_fen()?);
    (p > 0).then(|| Decimal::from(c - p) / Decimal::from(p))
}

/// The early warnings of one institution against its service location's thresholds.
pub fn warnings(code: &str, mdtrt: &str, now: &Sums, prev: Option<&Sums>, t: &SupervisionTerms) -> Vec<pb::EarlyWarning> {
    let mut out = Vec::new();
    if now.n < t.warn_min_claims.value as i64 {
        return out;
    }
    let mut warn = |indicator: &str, value: String, threshold: String, p: &Provenance| {
        out.push(pb::EarlyWarning {
            fixmedins_code: code.into(),
            mdtrt_admdvs: mdtrt.into(),
            indicator: indicator.into(),
            value,
            threshold,
            provenance: provenance_text(p),
        })
    };
    if let Some(cpv) = now.cost_per_visit_fen()
        && cpv > t.warn_cost_per_visit_fen.value
    {
        warn("cost_per_visit", fmt_yuan(cpv), fmt_yuan(t.warn_cost_per_visit_fen.value), &t.warn_cost_per_visit_fen.provenance);
    }
    if let Some(g) = growth(now, prev)
        && g > bp(t.warn_growth_bp.value)
    {
        warn("cost_per_visit_growth", fmt_share(g), fmt_share(bp(t.warn_growth_bp.value)), &t.warn_growth_bp.provenance);
    }
    if now.selfpay_share() > bp(t.warn_selfpay_share_bp.value) {
        warn(
            "selfpay_share",
            fmt_share(now.selfpay_share()),
            fmt_share(bp(t.warn_selfpay_share_bp.value)),
            &t.warn_selfpay_share_bp.provenance,
        );
    }
    if now.exam_share() > bp(t.warn_exam_share_bp.value) {
        warn("exam_share", fmt_share(now.exam_share()), fmt_share(bp(t.warn_exam_share_bp.value)), &t.warn_exam_share_bp.provenance);
    }
    out
}

pub fn thresholds_pb(mdtrt: &str, t: &SupervisionTerms) -> pb::WarningThresholds {
    pb::WarningThresholds {
        mdtrt_admdvs: mdtrt.into(),
        cost_per_visit: fmt_yuan(t.warn_cost_per_visit_fen.value),
        cost_per_visit_growth: fmt_share(bp(t.warn_growth_bp.value)),
        selfpay_share: fmt_share(bp(t.warn_selfpay_share_bp.value)),
        exam_share: fmt_share(bp(t.warn_exam_share_bp.value)),
        min_claims: t.warn_min_claims.value as i64,
    }
}

/// Flagged entries a list request scans at most per page it answers (filters may skip many).
const MAX_SCAN_PAGES: usize = 20;

impl<S: crate::store::Store> crate::settle::Clearinghouse<S> {
    /// `Supervision.GetIndicators` for a caller who sees `view`.
    pub async fn get_indicators(
        &self,
        q: &pb::GetIndicatorsRequest,
        view: &clearing_edge::authz::SupervisionView,
    ) -> Result<pb::Indicators, clearing_edge::error::ServiceError> {
        let mut v = clearing_edge::fields::Violations::default();
        if !valid_month(&q.month) {
            v.add("month", "must be YYYYMM");
        }
        let region = match q.admdvs.as_str() {
            "" => None,
            a => {
                let r = region_adapter::Admdvs::parse(a);
                if r.is_none() {
                    v.add("admdvs", "must be a 6-digit division code");
                }
                r
            }
        };
        if !q.fixmedins_code.is_empty() && region_adapter::codes::parse_fixmedins_code(&q.fixmedins_code).is_none() {
            v.add("fixmedins_code", "must be H or P, 6 digits of the service location, 5 digits");
        }
        v.into_result(())?;
        let prev_month = previous_month(&q.month).unwrap_or_default();
        // Both months at once.
        let (now, prev) = tokio::join!(self.store.indicators(&q.month), self.store.indicators(&prev_month));
        let now = Month::parse(&now?).map_err(clearing_edge::error::ServiceError::Internal)?;
        let prev = Month::parse(&prev?).map_err(clearing_edge::error::ServiceError::Internal)?;
        let in_region = |code: &str| region.is_none_or(|r| region_adapter::Admdvs::parse(code).is_some_and(|c| r.covers(c)));
        let rules = self.router.snapshot();
        let mut out = pb::Indicators { month: q.month.clone(), previous_month: prev_month, ..Default::default() };
        let mut seen_regions = BTreeSet::new();
        for ((mdtrt, code), sums) in &now.institutions {
            if !view.sees_institution(mdtrt) || !in_region(mdtrt) || (!q.fixmedins_code.is_empty() && *code != q.fixmedins_code) {
                continue;
            }
            let before = prev.institutions.get(&(mdtrt.clone(), code.clone()));
            let terms = match region_adapter::Admdvs::parse(mdtrt) {
                Some(a) => terms_of(&rules, a),
                None => default_terms(),
            };
            out.early_warnings.extend(warnings(code, mdtrt, sums, before, terms));
            if seen_regions.insert(mdtrt.clone()) {
                out.thresholds.push(thresholds_pb(mdtrt, terms));
            }
            out.institutions.push(pb::InstitutionIndicators {
                fixmedins_code: code.clone(),
                mdtrt_admdvs: mdtrt.clone(),
                month: Some(sums.to_pb()),
                previous_month: before.map(Sums::to_pb),
                cost_per_visit_growth: growth(sums, before).map(fmt_share).unwrap_or_default(),
            });
        }
        if q.fixmedins_code.is_empty() {
            for ((insured, mdtrt), sums) in &now.pairs {
                if !view.sees_claim(insured, mdtrt) || !(in_region(insured) || in_region(mdtrt)) {
                    continue;
                }
                let before = prev.pairs.get(&(insured.clone(), mdtrt.clone()));
                out.pairs.push(pb::PairIndicators {
                    insuplc_admdvs: insured.clone(),
                    mdtrt_admdvs: mdtrt.clone(),
                    month: Some(sums.to_pb()),
                    previous_month: before.map(Sums::to_pb),
                    cost_per_visit_growth: growth(sums, before).map(fmt_share).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// `Supervision.ListFlaggedSettlements` for a caller who sees `view`.
    pub async fn list_flagged(
        &self,
        q: &pb::ListFlaggedSettlementsRequest,
        view: &clearing_edge::authz::SupervisionView,
    ) -> Result<pb::ListFlaggedSettlementsResponse, clearing_edge::error::ServiceError> {
        let mut v = clearing_edge::fields::Violations::default();
        if !valid_month(&q.month) {
            v.add("month", "must be YYYYMM");
        }
        for (field, code) in [("insuplc_admdvs", &q.insuplc_admdvs), ("mdtrt_admdvs", &q.mdtrt_admdvs)] {
            if !code.is_empty() && region_adapter::Admdvs::parse(code).is_none() {
                v.add(field, "must be a 6-digit division code");
            }
        }
        if !q.kind.is_empty() && !KINDS.contains(&q.kind.as_str()) {
            v.add("kind", format!("must be one of {}", KINDS.join(", ")));
        }
        if q.page_size > 500 {
            v.add("page_size", "at most 500");
        }
        // The cursor: the shard of the last settlement (2 hex digits), '/', its id.
        let token_ok = q.page_token.is_empty()
            || (q.page_token.len() <= 80
                && q.page_token.as_bytes().get(2) == Some(&b'/')
                && q.page_token[..2].bytes().all(|b| b.is_ascii_hexdigit())
                && crate::ids::shard_of_setl_id(&q.page_token[3..]).is_some());
        if !token_ok {
            v.add("page_token", "not a token this service gave");
        }
        v.into_result(())?;
        let size = if q.page_size == 0 { 100 } else { q.page_size as usize };
        let covers = |filter: &str, code: &str| {
            filter.is_empty()
                || region_adapter::Admdvs::parse(filter).zip(region_adapter::Admdvs::parse(code)).is_some_and(|(f, c)| f.covers(c))
        };
        let mut out = pb::ListFlaggedSettlementsResponse::default();
        let mut cursor = q.page_token.clone();
        for _ in 0..MAX_SCAN_PAGES {
            let page = self.store.flagged(&q.month, &cursor, size).await?;
            let exhausted = page.len() < size;
            for (c, _, raw) in page {
                cursor = c;
                let e: FlaggedEntry =
                    serde_json::from_str(&raw).map_err(|e| clearing_edge::error::ServiceError::Internal(format!("flagged entry: {e}")))?;
                let wanted = view.sees_claim(&e.insuplc_admdvs, &e.mdtrt_admdvs)
                    && covers(&q.insuplc_admdvs, &e.insuplc_admdvs)
                    && covers(&q.mdtrt_admdvs, &e.mdtrt_admdvs)
                    && (q.fixmedins_code.is_empty() || q.fixmedins_code == e.fixmedins_code)
                    && (q.kind.is_empty() || e.flags.iter().any(|(k, _)| *k == q.kind));
                if wanted {
                    out.settlements.push(pb::FlaggedSettlement {
                        psn_no: if view.sees_person(&e.insuplc_admdvs) { e.psn_no } else { String::new() },
                        setl_id: e.setl_id,
                        setl_time: e.setl_time,
                        insuplc_admdvs: e.insuplc_admdvs,
                        mdtrt_admdvs: e.mdtrt_admdvs,
                        fixmedins_code: e.fixmedins_code,
                        med_type: e.med_type,
                        medfee_sumamt: fmt_yuan(e.medfee_fen),
                        fund_pay_sumamt: fmt_yuan(e.fund_fen),
                        acct_pay: fmt_yuan(e.acct_fen),
                        flags: e.flags.into_iter().map(|(kind, detail)| pb::SupervisionFlag { kind, detail }).collect(),
                    });
                    if out.settlements.len() == size {
                        break;
                    }
                }
            }
            if exhausted && out.settlements.len() < size {
                cursor.clear();
                break;
            }
            if out.settlements.len() == size {
                break;
            }
        }
        out.next_page_token = cursor;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn recent_visits_stay_bounded_and_sorted() {
        let mut r = Vec::new();
        for day in 1..=28 {
            r = remember(&r, d(&format!("2023-03-{day:02}")), "360100");
        }
        r = remember(&r, d("2023-05-01"), "421300");
        // Everything more than 31 days before the latest visit is gone.
        assert_eq!(r, vec![RecentVisit { date: d("2023-05-01"), mdtrt_admdvs: "421300".into() }]);
        assert_eq!(remember(&r, d("2023-04-10"), "360100").len(), 2, "an earlier visit within 31 days is kept");
        let mut many = Vec::new();
        for i in 0..100 {
            many = remember(&many, d("2023-06-01"), &format!("{}", 360100 + i));
        }
        assert_eq!(many.len(), MAX_RECENT);
        let text = RecentVisit::encode_all(&many);
        assert_eq!(RecentVisit::decode_all(&text).unwrap(), many);
    }

    #[test]
    fn months_and_shares() {
        assert_eq!(previous_month("202301").as_deref(), Some("202212"));
        assert!(!valid_month("202313") && !valid_month("2023-1") && valid_month("202402"));
        assert_eq!(fmt_share(Decimal::from(1) / Decimal::from(3)), "0.3333");
        assert_eq!(fmt_share(Decimal::from(2)), "2.0000");
        assert_eq!(fmt_share(Decimal::new(5, 5)), "0.0001", "0.00005 rounds half away from zero");
        let s = Sums { n: 3, medfee: 100, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(33));
        let s = Sums { n: 2, medfee: 101, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(51), "50.5 fen rounds half away from zero");
    }
}
