//! The flags of one settlement (pure: the settlement, the priced claim, the member's recent visits and
//! the insured region's thresholds in, flags out) and what a settlement adds to the indicators.

use super::*;

/// What a flag says of a settlement (each a pattern the seeds ask supervisors to watch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlagKind {
    /// Settled in several service regions on one day.
    MultiRegionDay,
    FrequentVisits,
    HighCost,
    HighSelfpay,
    /// A pharmacy bill paid whole by the account (Jiangsu 000: 套现).
    PharmacyCashout,
    PriceOverCap,
    ImplausibleQuantity,
}

impl FlagKind {
    /// Every kind, in the order they are checked and reported.
    pub const ALL: [FlagKind; 7] = [
        FlagKind::MultiRegionDay,
        FlagKind::FrequentVisits,
        FlagKind::HighCost,
        FlagKind::HighSelfpay,
        FlagKind::PharmacyCashout,
        FlagKind::PriceOverCap,
        FlagKind::ImplausibleQuantity,
    ];
    /// The name on the wire and in stored indicators (`k:<kind>`).
    pub fn code(self) -> &'static str {
        match self {
            FlagKind::MultiRegionDay => "multi_region_day",
            FlagKind::FrequentVisits => "frequent_visits",
            FlagKind::HighCost => "high_cost",
            FlagKind::HighSelfpay => "high_selfpay",
            FlagKind::PharmacyCashout => "pharmacy_cashout",
            FlagKind::PriceOverCap => "price_over_cap",
            FlagKind::ImplausibleQuantity => "implausible_quantity",
        }
    }
    pub fn parse(s: &str) -> Option<FlagKind> {
        FlagKind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// One flag of a settlement: its kind and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub kind: FlagKind,
    pub detail: String,
}

/// A member's recent settlements are kept this many days back from the latest visit (the longest
/// `frequent_visits_days` a pack may set is 31)…
pub(crate) const RECENT_DAYS: i64 = 31;

/// … and at most this many (a member with more visits in a month is flagged long before).
pub(crate) const MAX_RECENT: usize = 64;

/// The thresholds of region `a`: its pack's, or the defaults for a region without a pack here.
pub fn terms_of(rules: &RuleSet, a: region_adapter::Admdvs) -> &SupervisionTerms {
    match rules.region(a) {
        Some(p) => &p.supervision,
        None => default_terms(),
    }
}

/// This build's thresholds (`SupervisionTerms::defaults`), made once.
pub(crate) fn default_terms() -> &'static SupervisionTerms {
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

pub(crate) fn share(part: i64, whole: i64) -> Decimal {
    if whole <= 0 { Decimal::ZERO } else { Decimal::from(part) / Decimal::from(whole) }
}

pub(crate) fn bp(b: u32) -> Decimal {
    Decimal::from(b) / Decimal::from(RATIO_ONE_BP)
}

/// `0.1234`: a share to 4 places, half away from zero.
pub fn fmt_share(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(4);
    r.to_string()
}

/// The flags of one settlement. `recent` is the member's recent settlements before this one.
pub fn flags(t: &SupervisionTerms, vc: &ValidClaim, priced: &Priced, a: &Amounts, recent: &[RecentVisit]) -> Vec<Flag> {
    let mut out = Vec::new();
    let mut flag = |kind: FlagKind, detail: String| out.push(Flag { kind, detail });
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
            FlagKind::MultiRegionDay,
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
            FlagKind::FrequentVisits,
            format!("{in_window} visits in {days} days up to {} (threshold {})", vc.visit_date, t.frequent_visits.value),
        );
    }
    if a.medfee_sumamt > t.high_cost_per_visit_fen.value {
        flag(FlagKind::HighCost, format!("medical cost {} above {}", fmt_yuan(a.medfee_sumamt), fmt_yuan(t.high_cost_per_visit_fen.value)));
    }
    let selfpaid = a.fulamt_ownpay_amt + a.overlmt_selfpay;
    if a.medfee_sumamt > 0 && share(selfpaid, a.medfee_sumamt) > bp(t.selfpay_share_bp.value) {
        flag(
            FlagKind::HighSelfpay,
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
            FlagKind::PharmacyCashout,
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
        flag(FlagKind::PriceOverCap, format!("{} (more than {}× the cap)", over.join("; "), t.price_over_cap_factor.value));
    }
    let many: Vec<String> = vc
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.qty > t.max_line_quantity.value)
        .map(|(i, l)| format!("lines[{i}] {} × {}", l.code, l.qty))
        .collect();
    if !many.is_empty() {
        flag(FlagKind::ImplausibleQuantity, format!("{} (more than {})", many.join("; "), t.max_line_quantity.value));
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

/// What a settlement adds to supervision.
pub fn delta_of(vc: &ValidClaim, priced: &Priced, a: &Amounts, flags: &[Flag], setl_id: &str) -> SupervisionDelta {
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
            flags: flags.iter().map(|f| (f.kind.code().to_string(), f.detail.clone())).collect(),
        };
        serde_json::to_string(&e).expect("a flagged entry serializes")
    });
    SupervisionDelta {
        month: Month::of(vc.visit_date).to_string(),
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
        kinds: flags.iter().map(|f| f.kind.code().to_string()).collect(),
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
