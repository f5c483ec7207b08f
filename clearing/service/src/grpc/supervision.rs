//! `clearinghouse.v1.Supervision` on the wire: requests read into supervision's queries (every problem
//! with its field), its answers and errors written back as protobuf.

use super::*;
use crate::calendar::Month;
use crate::supervision::{
    FlagKind, FlaggedPage, FlaggedQuery, IndicatorRow, IndicatorsQuery, MonthReport, Sums, SupervisionError, Warning, fmt_share,
};
use region_adapter::model::SupervisionTerms;
use region_adapter::money::{RATIO_ONE_BP, fmt_yuan};
use rust_decimal::Decimal;

/// Flagged settlements per page at most (and by default).
const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: usize = 100;

impl From<SupervisionError> for ServiceError {
    fn from(e: SupervisionError) -> ServiceError {
        match e {
            SupervisionError::Store(e) => e.into(),
            SupervisionError::Corrupt(m) => ServiceError::Internal(m),
        }
    }
}

fn month(v: &mut Violations, s: &str) -> Option<Month> {
    let m = Month::parse(s);
    if m.is_none() {
        v.add("month", "must be YYYYMM");
    }
    m
}

fn region(v: &mut Violations, field: &str, s: &str) -> Option<Admdvs> {
    if s.is_empty() {
        return None;
    }
    let r = Admdvs::parse(s);
    if r.is_none() {
        v.add(field, "must be a 6-digit division code");
    }
    r
}

pub(super) fn indicators_query(q: &pb::GetIndicatorsRequest) -> Result<IndicatorsQuery, ServiceError> {
    let mut v = Violations::default();
    let month = month(&mut v, &q.month);
    let region = region(&mut v, "admdvs", &q.admdvs);
    if !q.fixmedins_code.is_empty() && region_adapter::codes::parse_fixmedins_code(&q.fixmedins_code).is_none() {
        v.add("fixmedins_code", "must be H or P, 6 digits of the service location, 5 digits");
    }
    v.into_result(())?;
    let fixmedins_code = (!q.fixmedins_code.is_empty()).then(|| q.fixmedins_code.clone());
    Ok(IndicatorsQuery { month: month.expect("valid"), region, fixmedins_code })
}

pub(super) fn flagged_query(q: &pb::ListFlaggedSettlementsRequest) -> Result<FlaggedQuery, ServiceError> {
    let mut v = Violations::default();
    let month = month(&mut v, &q.month);
    let insured = region(&mut v, "insuplc_admdvs", &q.insuplc_admdvs);
    let mdtrt = region(&mut v, "mdtrt_admdvs", &q.mdtrt_admdvs);
    let kind = match q.kind.as_str() {
        "" => None,
        k => {
            let parsed = FlagKind::parse(k);
            if parsed.is_none() {
                v.add("kind", format!("must be one of {}", FlagKind::ALL.map(FlagKind::code).join(", ")));
            }
            parsed
        }
    };
    if q.page_size > MAX_PAGE {
        v.add("page_size", format!("at most {MAX_PAGE}"));
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
    Ok(FlaggedQuery {
        month: month.expect("valid"),
        insured,
        mdtrt,
        fixmedins_code: (!q.fixmedins_code.is_empty()).then(|| q.fixmedins_code.clone()),
        kind,
        page_size: if q.page_size == 0 { DEFAULT_PAGE } else { q.page_size as usize },
        cursor: q.page_token.clone(),
    })
}

fn bp(b: u32) -> Decimal {
    Decimal::from(b) / Decimal::from(RATIO_ONE_BP)
}

fn measures(s: &Sums) -> pb::Measures {
    pb::Measures {
        claims: s.n,
        medfee_sumamt: fmt_yuan(s.medfee),
        cost_per_visit: s.cost_per_visit_fen().map(fmt_yuan).unwrap_or_default(),
        selfpay_amt: fmt_yuan(s.selfpay),
        selfpay_share: fmt_share(s.selfpay_share()),
        exam_amt: fmt_yuan(s.exam),
        exam_share: fmt_share(s.exam_share()),
        acct_pay: fmt_yuan(s.acct),
        acct_share: fmt_share(s.acct_share()),
        fund_pay_sumamt: fmt_yuan(s.fund),
        flagged_claims: s.flagged,
        flags_by_kind: s.by_kind.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

fn thresholds(mdtrt: &str, t: &SupervisionTerms) -> pb::WarningThresholds {
    pb::WarningThresholds {
        mdtrt_admdvs: mdtrt.into(),
        cost_per_visit: fmt_yuan(t.warn_cost_per_visit_fen.value),
        cost_per_visit_growth: fmt_share(bp(t.warn_growth_bp.value)),
        selfpay_share: fmt_share(bp(t.warn_selfpay_share_bp.value)),
        exam_share: fmt_share(bp(t.warn_exam_share_bp.value)),
        min_claims: t.warn_min_claims.value as i64,
    }
}

fn warning(w: Warning) -> pb::EarlyWarning {
    pb::EarlyWarning {
        fixmedins_code: w.fixmedins_code,
        mdtrt_admdvs: w.mdtrt_admdvs,
        indicator: w.indicator.into(),
        value: w.value,
        threshold: w.threshold,
        provenance: w.provenance,
    }
}

fn growth(r: &IndicatorRow) -> String {
    r.growth.map(fmt_share).unwrap_or_default()
}

pub(super) fn indicators_pb(r: MonthReport) -> pb::Indicators {
    pb::Indicators {
        month: r.month.to_string(),
        previous_month: r.previous.to_string(),
        institutions: r
            .institutions
            .iter()
            .map(|i| pb::InstitutionIndicators {
                mdtrt_admdvs: i.a.clone(),
                fixmedins_code: i.b.clone(),
                month: Some(measures(&i.now)),
                previous_month: i.before.as_ref().map(measures),
                cost_per_visit_growth: growth(i),
            })
            .collect(),
        pairs: r
            .pairs
            .iter()
            .map(|p| pb::PairIndicators {
                insuplc_admdvs: p.a.clone(),
                mdtrt_admdvs: p.b.clone(),
                month: Some(measures(&p.now)),
                previous_month: p.before.as_ref().map(measures),
                cost_per_visit_growth: growth(p),
            })
            .collect(),
        early_warnings: r.warnings.into_iter().map(warning).collect(),
        thresholds: r.thresholds.iter().map(|(m, t)| thresholds(m, t)).collect(),
    }
}

pub(super) fn flagged_pb(page: FlaggedPage) -> pb::ListFlaggedSettlementsResponse {
    pb::ListFlaggedSettlementsResponse {
        settlements: page
            .entries
            .into_iter()
            .map(|e| pb::FlaggedSettlement {
                psn_no: e.psn_no,
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
            })
            .collect(),
        next_page_token: page.next,
    }
}
