//! Supervision's reads, a small service over the store (`Clearinghouse::supervision`): a month of
//! indicators with its early warnings, and the flagged settlements a caller may see. Queries come in
//! validated (`grpc/supervision.rs` reads the protobuf); answers go out as domain values.

use super::*;
use crate::store::{Store, StoreError};
use clearing_edge::authz::SupervisionView;
use region_adapter::Admdvs;

/// What a supervision read can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored indicators or flagged entries that do not parse.
    #[error("stored supervision data unreadable: {0}")]
    Corrupt(String),
}

/// Supervision over one store and the rule packs in force.
pub struct Supervision<'a, S> {
    pub(crate) store: &'a S,
    pub(crate) rules: std::sync::Arc<RuleSet>,
}

/// `GetIndicators`: a month, optionally one region (city or province) and one institution.
#[derive(Debug, Clone)]
pub struct IndicatorsQuery {
    pub month: Month,
    pub region: Option<Admdvs>,
    pub fixmedins_code: Option<String>,
}

/// One entity's month: an institution (`a` its service location, `b` its code) or a region pair
/// (`a` insured, `b` service location).
#[derive(Debug, Clone)]
pub struct IndicatorRow {
    pub a: String,
    pub b: String,
    pub now: Sums,
    pub before: Option<Sums>,
    pub growth: Option<Decimal>,
}

/// A month of indicators as the caller may see them.
#[derive(Debug, Clone)]
pub struct MonthReport {
    pub month: Month,
    pub previous: Month,
    pub institutions: Vec<IndicatorRow>,
    pub pairs: Vec<IndicatorRow>,
    pub warnings: Vec<Warning>,
    /// The thresholds of each service location reported, once.
    pub thresholds: Vec<(String, SupervisionTerms)>,
}

/// `ListFlaggedSettlements`: a month and filters; a page of at most `page_size` from `cursor`.
#[derive(Debug, Clone)]
pub struct FlaggedQuery {
    pub month: Month,
    pub insured: Option<Admdvs>,
    pub mdtrt: Option<Admdvs>,
    pub fixmedins_code: Option<String>,
    pub kind: Option<FlagKind>,
    pub page_size: usize,
    /// Where the previous page stopped (`""`: the start).
    pub cursor: String,
}

/// A page of flagged settlements (`psn_no` blank where the caller may not see the person).
#[derive(Debug, Clone, Default)]
pub struct FlaggedPage {
    pub entries: Vec<FlaggedEntry>,
    /// Where the next page starts; `""` at the end.
    pub next: String,
}

impl<S: Store> Supervision<'_, S> {
    /// A month's indicators for a caller who sees `view`.
    pub async fn indicators(&self, q: &IndicatorsQuery, view: &SupervisionView) -> Result<MonthReport, SupervisionError> {
        let previous = q.month.previous();
        // Both months at once.
        let (this_month, previous_month) = (q.month.to_string(), previous.to_string());
        let (now, prev) = tokio::join!(self.store.indicators(&this_month), self.store.indicators(&previous_month));
        let now = MonthIndicators::parse(&now?).map_err(SupervisionError::Corrupt)?;
        let prev = MonthIndicators::parse(&prev?).map_err(SupervisionError::Corrupt)?;
        let in_region = |code: &str| q.region.is_none_or(|r| Admdvs::parse(code).is_some_and(|c| r.covers(c)));
        let mut out = MonthReport { month: q.month, previous, institutions: vec![], pairs: vec![], warnings: vec![], thresholds: vec![] };
        let mut seen_regions = BTreeSet::new();
        for ((mdtrt, code), sums) in &now.institutions {
            if !view.sees_institution(mdtrt) || !in_region(mdtrt) || q.fixmedins_code.as_ref().is_some_and(|c| c != code) {
                continue;
            }
            let before = prev.institutions.get(&(mdtrt.clone(), code.clone()));
            let terms = match Admdvs::parse(mdtrt) {
                Some(a) => terms_of(&self.rules, a),
                None => default_terms(),
            };
            out.warnings.extend(warnings(code, mdtrt, sums, before, terms));
            if seen_regions.insert(mdtrt.clone()) {
                out.thresholds.push((mdtrt.clone(), terms.clone()));
            }
            out.institutions.push(IndicatorRow {
                a: mdtrt.clone(),
                b: code.clone(),
                now: sums.clone(),
                before: before.cloned(),
                growth: growth(sums, before),
            });
        }
        if q.fixmedins_code.is_none() {
            for ((insured, mdtrt), sums) in &now.pairs {
                if !view.sees_claim(insured, mdtrt) || !(in_region(insured) || in_region(mdtrt)) {
                    continue;
                }
                let before = prev.pairs.get(&(insured.clone(), mdtrt.clone()));
                out.pairs.push(IndicatorRow {
                    a: insured.clone(),
                    b: mdtrt.clone(),
                    now: sums.clone(),
                    before: before.cloned(),
                    growth: growth(sums, before),
                });
            }
        }
        Ok(out)
    }

    /// A page of a month's flagged settlements for a caller who sees `view`.
    pub async fn flagged(&self, q: &FlaggedQuery, view: &SupervisionView) -> Result<FlaggedPage, SupervisionError> {
        let covers = |filter: Option<Admdvs>, code: &str| filter.is_none_or(|f| Admdvs::parse(code).is_some_and(|c| f.covers(c)));
        let month = q.month.to_string();
        let mut out = FlaggedPage::default();
        let mut cursor = q.cursor.clone();
        for _ in 0..MAX_SCAN_PAGES {
            let page = self.store.flagged(&month, &cursor, q.page_size).await?;
            let exhausted = page.len() < q.page_size;
            for (c, _, raw) in page {
                cursor = c;
                let mut e: FlaggedEntry =
                    serde_json::from_str(&raw).map_err(|e| SupervisionError::Corrupt(format!("flagged entry: {e}")))?;
                let wanted = view.sees_claim(&e.insuplc_admdvs, &e.mdtrt_admdvs)
                    && covers(q.insured, &e.insuplc_admdvs)
                    && covers(q.mdtrt, &e.mdtrt_admdvs)
                    && q.fixmedins_code.as_ref().is_none_or(|c| *c == e.fixmedins_code)
                    && q.kind.is_none_or(|k| e.flags.iter().any(|(kind, _)| kind == k.code()));
                if wanted {
                    if !view.sees_person(&e.insuplc_admdvs) {
                        e.psn_no.clear();
                    }
                    out.entries.push(e);
                    if out.entries.len() == q.page_size {
                        break;
                    }
                }
            }
            if exhausted && out.entries.len() < q.page_size {
                cursor.clear();
                break;
            }
            if out.entries.len() == q.page_size {
                break;
            }
        }
        out.next = cursor;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    pub(crate) fn recent_visits_stay_bounded_and_sorted() {
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
    pub(crate) fn months_and_shares() {
        assert_eq!(previous_month("202301").as_deref(), Some("202212"));
        assert!(Month::parse("202313").is_none() && Month::parse("2023-1").is_none() && Month::parse("202402").is_some());
        assert_eq!(fmt_share(Decimal::from(1) / Decimal::from(3)), "0.3333");
        assert_eq!(fmt_share(Decimal::from(2)), "2.0000");
        assert_eq!(fmt_share(Decimal::new(5, 5)), "0.0001", "0.00005 rounds half away from zero");
        let s = Sums { n: 3, medfee: 100, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(33));
        let s = Sums { n: 2, medfee: 101, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(51), "50.5 fen rounds half away from zero");
    }
}
