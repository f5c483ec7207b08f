//! A month of indicators read back: sums per institution and region pair, their shares, growth and the
//! early warnings.

use super::*;

impl Sums {
    pub(crate) fn add(&mut self, measure: &str, v: i64) -> bool {
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

    pub fn acct_share(&self) -> Decimal {
        share(self.acct, self.medfee)
    }
}

/// A month's stored fields grouped by entity: institutions by (mdtrt, code), pairs by (insured, mdtrt).
#[derive(Debug, Default)]
pub struct MonthIndicators {
    pub institutions: BTreeMap<(String, String), Sums>,
    pub pairs: BTreeMap<(String, String), Sums>,
}

impl MonthIndicators {
    /// Groups stored fields (which may repeat) by entity.
    pub fn parse(fields: &[(String, i64)]) -> Result<MonthIndicators, String> {
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
        let mut out = MonthIndicators::default();
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
    Month::parse(month).map(|m| m.previous().to_string())
}

pub(crate) fn provenance_text(p: &Provenance) -> String {
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

/// An early warning: an institution's measure over its service location's threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub fixmedins_code: String,
    pub mdtrt_admdvs: String,
    /// `cost_per_visit`, `cost_per_visit_growth`, `selfpay_share` or `exam_share`.
    pub indicator: &'static str,
    pub value: String,
    pub threshold: String,
    /// The threshold's source or assumption.
    pub provenance: String,
}

/// The early warnings of one institution against its service location's thresholds.
pub fn warnings(code: &str, mdtrt: &str, now: &Sums, prev: Option<&Sums>, t: &SupervisionTerms) -> Vec<Warning> {
    let mut out = Vec::new();
    if now.n < t.warn_min_claims.value as i64 {
        return out;
    }
    let mut warn = |indicator: &'static str, value: String, threshold: String, p: &Provenance| {
        out.push(Warning {
            fixmedins_code: code.into(),
            mdtrt_admdvs: mdtrt.into(),
            indicator,
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

/// Flagged entries a list request scans at most per page it answers (filters may skip many).
pub(crate) const MAX_SCAN_PAGES: usize = 20;
