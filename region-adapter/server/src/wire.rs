//! The adapter protocol (`service RegionAdapter`) on both ends of the hop: the conversions between its
//! messages and the engine's types, the adapter's decoding of requests, and the caller's checks of the
//! answers (`checked_priced`, `checked_outcome`) before anything is committed, so that a broken or
//! hostile adapter can fail a claim but never corrupt a settlement. The adapter is stateless: every
//! input of a decision arrives in the request.

use crate::local::{LineItem, OwnedFacts, PolicyCall, PolicyOutcome, PricedClaim};
use crate::national;
use chrono::NaiveDate;
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as wire, Violations};
use proto::v1 as pb;
use region_adapter::limits::MAX_LINES_PER_CLAIM;
use region_adapter::model::ItemClass;
use region_adapter::policy::check_invariants;
use region_adapter::{
    AccountSource, Admdvs, Benefit, Filing, Level, LineInput, MedType, MemberClass, PsnType, Settled, StateDelta, Visit, YearState,
};
use region_adapter::{Priced, PricedLine, pricing::PriceTotals};
use rust_decimal::Decimal;
use std::str::FromStr;

/// One line of a request, owned and checked (quantity and price decoded, amount in fen).
#[derive(Debug, Clone)]
pub struct ValidLine {
    pub code: String,
    pub qty: Decimal,
    pub unit_price: Decimal,
    pub amount_fen: i64,
}

/// Longest catalogue code accepted on the adapter's wire (national codes are at most 30 characters).
const MAX_CODE_LEN: usize = 64;
/// Longest decimal string for quantities and prices.
const MAX_DECIMAL_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------------
// Engine → wire.

fn line_pb(p: &PricedLine, item: &LineItem) -> pb::PricedLine {
    pb::PricedLine {
        chrgitm_lv: p.class.map(|c| c.code().to_string()).unwrap_or_default(),
        selfpay_prop_bp: p.selfpay_prop_bp,
        amount_fen: p.amount_fen,
        fulamt_ownpay_fen: p.fulamt_ownpay_fen,
        overlmt_selfpay_fen: p.overlmt_selfpay_fen,
        preselfpay_fen: p.preselfpay_fen,
        inscp_fen: p.inscp_fen,
        hilist_name: item.name.clone(),
        med_chrgitm_type: item.chrgitm_type.clone(),
        lmt_used_flag: item.restricted,
        pric_uplmt_amt: p.price_cap.map(|c| c.to_string()).unwrap_or_default(),
        account_excluded: p.account_excluded,
        goods: p.goods,
        category: p.category.map(|c| c.code().to_string()).unwrap_or_default(),
    }
}

fn totals_pb(t: &PriceTotals) -> pb::PriceTotals {
    pb::PriceTotals {
        medfee_fen: t.medfee_fen,
        fulamt_ownpay_fen: t.fulamt_ownpay_fen,
        overlmt_selfpay_fen: t.overlmt_selfpay_fen,
        preselfpay_fen: t.preselfpay_fen,
        inscp_fen: t.inscp_fen,
    }
}

pub fn price_request(mdtrt: Admdvs, date: NaiveDate, lines: &[LineInput<'_>]) -> pb::PriceLinesRequest {
    pb::PriceLinesRequest {
        mdtrt_admdvs: mdtrt.to_string(),
        date: date.to_string(),
        lines: lines
            .iter()
            .map(|l| pb::AdapterLine {
                hilist_code: l.code.to_string(),
                cnt: l.qty.to_string(),
                pric: l.unit_price.to_string(),
                amount_fen: l.amount_fen,
            })
            .collect(),
    }
}

pub fn priced_pb(p: &PricedClaim) -> pb::PriceLinesResponse {
    pb::PriceLinesResponse {
        lines: p.priced.lines.iter().zip(&p.items).map(|(l, n)| line_pb(l, n)).collect(),
        totals: Some(totals_pb(&p.priced.totals)),
        explanation: p.explanation.clone(),
    }
}

/// The inputs of a policy decision as one request.
pub fn policy_request(call: &PolicyCall<'_>) -> pb::ApplyPolicyRequest {
    let PolicyCall { insured, priced, member, state, account, visit } = *call;
    pb::ApplyPolicyRequest {
        insuplc_admdvs: insured.to_string(),
        lines: priced.lines.iter().map(|l| line_pb(l, &LineItem::default())).collect(),
        totals: Some(totals_pb(&priced.totals)),
        member: Some(pb::MemberFacts {
            psn_type: member.psn_type.code().into(),
            retire_date: member.retire_date.map(|d| d.to_string()).unwrap_or_default(),
            pooling_only: member.pooling_only,
            in_arrears: member.in_arrears,
            filings: member
                .filings
                .iter()
                .map(|f| pb::AdapterFiling {
                    mdtrt_admdvs: f.mdtrt_admdvs.to_string(),
                    begndate: f.begin.to_string(),
                    enddate: f.end.map(|d| d.to_string()).unwrap_or_default(),
                    group: f.group.map(|g| g.code().to_string()).unwrap_or_default(),
                })
                .collect(),
        }),
        state: Some(pb::YearState {
            deductible_used_fen: state.deductible_used_fen,
            fund_paid_fen: state.fund_paid_fen,
            visits: state.visits,
        }),
        visit: Some(pb::PolicyVisit {
            date: visit.date.to_string(),
            mdtrt_admdvs: visit.mdtrt_admdvs.to_string(),
            hosp_lv: visit.hosp_lv.get() as u32,
            med_type: visit.med_type.code().into(),
            prescribing_lv: visit.prescribing_lv.map_or(0, |l| l.get() as u32),
            dise_code: visit.dise_code.unwrap_or_default().to_string(),
            acct_used: visit.acct_used,
            pharmacy_designated: visit.pharmacy_designated,
        }),
        account: match account {
            None => String::new(),
            Some(AccountSource::Own { .. }) => "own".into(),
            Some(AccountSource::Family { .. }) => "family".into(),
        },
        account_balance_fen: match account {
            None => 0,
            Some(AccountSource::Own { balance_fen } | AccountSource::Family { balance_fen }) => balance_fen,
        },
    }
}

pub fn outcome_pb(o: &PolicyOutcome) -> pb::ApplyPolicyResponse {
    let s = &o.settled;
    let a = &s.amounts;
    pb::ApplyPolicyResponse {
        year: s.year,
        benefit: s.benefit.key(),
        member_class: class_code(s.member_class).into(),
        level: s.level.get() as u32,
        ratio_bp: s.ratio_bp,
        eligible: s.eligible,
        amounts: Some(national::to_policy_amounts(a)),
        delta: Some(pb::PolicyStateDelta {
            deductible_used_fen: s.delta.deductible_used_fen,
            fund_paid_fen: s.delta.fund_paid_fen,
            visits: s.delta.visits,
            account_debit_fen: s.delta.account_debit_fen,
        }),
        cap_fen: s.cap_fen,
        explanation: o.explanation.clone(),
    }
}

fn class_code(c: MemberClass) -> &'static str {
    match c {
        MemberClass::InService => "11",
        MemberClass::Retired => "12",
    }
}

// ---------------------------------------------------------------------------------------------------
// Wire → engine, with every field checked (the adapter's own input and the caller's view of answers).

fn item_class(code: &str) -> Option<Option<ItemClass>> {
    Some(match code {
        "" => None,
        "01" => Some(ItemClass::A),
        "02" => Some(ItemClass::B),
        "03" => Some(ItemClass::C),
        _ => return None,
    })
}

fn decimal(v: &mut Violations, field: &str, s: &str) -> Decimal {
    match (s.len() <= MAX_DECIMAL_LEN).then(|| Decimal::from_str(s).ok()).flatten() {
        Some(d) => d,
        None => {
            v.add(field, "must be a decimal number");
            Decimal::ZERO
        }
    }
}

fn optional_date(v: &mut Violations, field: &str, s: &str) -> Option<NaiveDate> {
    if s.is_empty() { None } else { wire::parse_date(v, field, s) }
}

fn level(v: &mut Violations, field: &str, n: u32) -> Option<Level> {
    let l = Level::new(n);
    if l.is_none() {
        v.add(field, "must be 1, 2 or 3");
    }
    l
}

/// A pricing request as the adapter receives it.
pub fn parse_price_request(
    q: &pb::PriceLinesRequest,
    known: &dyn Fn(Admdvs) -> bool,
) -> Result<(Admdvs, NaiveDate, Vec<ValidLine>), ServiceError> {
    let mut v = Violations::default();
    let mdtrt = wire::check_region(&mut v, "mdtrt_admdvs", &q.mdtrt_admdvs, known);
    let date = wire::parse_date(&mut v, "date", &q.date);
    if q.lines.is_empty() || q.lines.len() > MAX_LINES_PER_CLAIM {
        v.add("lines", format!("must have 1–{MAX_LINES_PER_CLAIM} lines"));
    }
    let mut lines = Vec::with_capacity(q.lines.len().min(MAX_LINES_PER_CLAIM));
    for (i, l) in q.lines.iter().take(MAX_LINES_PER_CLAIM).enumerate() {
        if l.hilist_code.is_empty() || l.hilist_code.len() > MAX_CODE_LEN {
            v.add(format!("lines[{i}].hilist_code"), format!("must be 1–{MAX_CODE_LEN} characters"));
        }
        lines.push(ValidLine {
            code: l.hilist_code.clone(),
            qty: decimal(&mut v, &format!("lines[{i}].cnt"), &l.cnt),
            unit_price: decimal(&mut v, &format!("lines[{i}].pric"), &l.pric),
            amount_fen: l.amount_fen,
        });
    }
    v.into_result(())?;
    Ok((mdtrt.expect("checked"), date.expect("checked"), lines))
}

/// Priced lines and totals from the wire; the totals must be the sums of the lines and every line's
/// parts must add up to its amount.
fn parse_priced(lines: &[pb::PricedLine], totals: Option<&pb::PriceTotals>) -> Result<Priced, String> {
    if lines.is_empty() || lines.len() > MAX_LINES_PER_CLAIM {
        return Err(format!("lines: must have 1–{MAX_LINES_PER_CLAIM} lines"));
    }
    let mut out = Priced { lines: Vec::with_capacity(lines.len()), totals: PriceTotals::default() };
    for (i, l) in lines.iter().enumerate() {
        let class = item_class(&l.chrgitm_lv).ok_or_else(|| format!("lines[{i}].chrgitm_lv: unknown class {:?}", l.chrgitm_lv))?;
        let parts = [l.fulamt_ownpay_fen, l.overlmt_selfpay_fen, l.preselfpay_fen, l.inscp_fen];
        if l.amount_fen < 0 || parts.iter().any(|p| *p < 0) || parts.iter().try_fold(0i64, |s, p| s.checked_add(*p)) != Some(l.amount_fen) {
            return Err(format!("lines[{i}]: parts do not add up to the line amount"));
        }
        if l.selfpay_prop_bp > region_adapter::money::RATIO_ONE_BP {
            return Err(format!("lines[{i}].selfpay_prop_bp: above 100%"));
        }
        let price_cap = match l.pric_uplmt_amt.as_str() {
            "" => None,
            c => Some(
                c.parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|d| !d.is_sign_negative() && d.scale() <= region_adapter::limits::MAX_PRICE_SCALE)
                    .ok_or_else(|| format!("lines[{i}].pric_uplmt_amt: not a price"))?,
            ),
        };
        let p = PricedLine {
            class,
            selfpay_prop_bp: l.selfpay_prop_bp,
            amount_fen: l.amount_fen,
            fulamt_ownpay_fen: l.fulamt_ownpay_fen,
            overlmt_selfpay_fen: l.overlmt_selfpay_fen,
            preselfpay_fen: l.preselfpay_fen,
            inscp_fen: l.inscp_fen,
            price_cap,
            account_excluded: l.account_excluded,
            goods: l.goods,
            category: match l.category.as_str() {
                "" => None,
                c => Some(
                    region_adapter::model::ItemCategory::parse(c).ok_or_else(|| format!("lines[{i}].category: not examination or lab"))?,
                ),
            },
        };
        out.totals.add(&p);
        out.lines.push(p);
    }
    if let Some(t) = totals
        && totals_pb(&out.totals) != *t
    {
        return Err("totals: not the sums of the lines".into());
    }
    if out.totals.medfee_fen > region_adapter::limits::MAX_CLAIM_AMOUNT_FEN {
        return Err("totals: above the largest claim".into());
    }
    Ok(out)
}

/// A remote adapter's pricing answer, checked against the lines that were sent: same number of
/// lines, same amounts, parts adding up.
pub fn checked_priced(r: pb::PriceLinesResponse, sent: &[LineInput<'_>]) -> Result<PricedClaim, String> {
    let priced = parse_priced(&r.lines, Some(r.totals.as_ref().ok_or("totals: missing")?))?;
    if priced.lines.len() != sent.len() || priced.lines.iter().zip(sent).any(|(p, s)| p.amount_fen != s.amount_fen) {
        return Err("lines: not the lines that were sent".into());
    }
    if r.lines.iter().any(|l| !l.med_chrgitm_type.is_empty() && !region_adapter::codes::is_charge_type(&l.med_chrgitm_type)) {
        return Err("lines[].med_chrgitm_type: not 01 to 14".into());
    }
    let items = r
        .lines
        .into_iter()
        .map(|l| LineItem { name: l.hilist_name, chrgitm_type: l.med_chrgitm_type, restricted: l.lmt_used_flag })
        .collect();
    Ok(PricedClaim { priced, items, explanation: r.explanation })
}

/// The owned inputs of a policy decision decoded from the wire.
#[derive(Debug)]
pub struct PolicyInputs {
    pub insured: Admdvs,
    pub priced: Priced,
    pub member: OwnedFacts,
    pub state: YearState,
    pub account: Option<AccountSource>,
    pub date: NaiveDate,
    pub mdtrt: Admdvs,
    pub hosp_lv: Level,
    pub med_type: MedType,
    pub prescribing_lv: Option<Level>,
    pub dise_code: String,
    pub acct_used: bool,
    pub pharmacy_designated: bool,
}

impl PolicyInputs {
    /// The decision these inputs ask for.
    pub fn call(&self) -> PolicyCall<'_> {
        PolicyCall {
            insured: self.insured,
            priced: &self.priced,
            member: self.member.facts(),
            state: self.state,
            account: self.account,
            visit: self.visit(),
        }
    }
    pub fn visit(&self) -> Visit<'_> {
        Visit {
            date: self.date,
            mdtrt_admdvs: self.mdtrt,
            hosp_lv: self.hosp_lv,
            med_type: self.med_type,
            prescribing_lv: self.prescribing_lv,
            dise_code: (!self.dise_code.is_empty()).then_some(self.dise_code.as_str()),
            acct_used: self.acct_used,
            pharmacy_designated: self.pharmacy_designated,
        }
    }
}

/// A policy request as the adapter receives it.
pub fn parse_policy_request(q: &pb::ApplyPolicyRequest, known: &dyn Fn(Admdvs) -> bool) -> Result<PolicyInputs, ServiceError> {
    let mut v = Violations::default();
    let insured = wire::check_region(&mut v, "insuplc_admdvs", &q.insuplc_admdvs, known);
    let priced = match parse_priced(&q.lines, q.totals.as_ref()) {
        Ok(p) => Some(p),
        Err(e) => {
            let (field, what) = e.split_once(": ").unwrap_or(("lines", e.as_str()));
            v.add(field, what);
            None
        }
    };
    let default_member = pb::MemberFacts::default();
    let m = q.member.as_ref().unwrap_or(&default_member);
    let psn_type = PsnType::parse(&m.psn_type);
    if psn_type.is_none() {
        v.add("member.psn_type", "must be 11 or 12");
    }
    let retire_date = optional_date(&mut v, "member.retire_date", &m.retire_date);
    if m.filings.len() > clearing_edge::limits::MAX_FILINGS {
        v.add("member.filings", format!("at most {}", clearing_edge::limits::MAX_FILINGS));
    }
    let mut filings = Vec::new();
    for (i, f) in m.filings.iter().take(clearing_edge::limits::MAX_FILINGS).enumerate() {
        let a = Admdvs::parse(&f.mdtrt_admdvs);
        if a.is_none() {
            v.add(format!("member.filings[{i}].mdtrt_admdvs"), "must be a 6-digit division code");
        }
        let begin = wire::parse_date(&mut v, &format!("member.filings[{i}].begndate"), &f.begndate);
        let end = optional_date(&mut v, &format!("member.filings[{i}].enddate"), &f.enddate);
        let group = match f.group.as_str() {
            "" => None,
            g => {
                let parsed = region_adapter::FilingGroup::parse(g);
                if parsed.is_none() {
                    v.add(format!("member.filings[{i}].group"), "must be relocated_retiree, long_term_resident or posted_worker");
                }
                parsed
            }
        };
        if let (Some(a), Some(begin)) = (a, begin) {
            filings.push(Filing { mdtrt_admdvs: a, begin, end, group });
        }
    }
    let s = q.state.unwrap_or_default();
    let max = region_adapter::money::MAX_AMOUNT_FEN;
    if !(0..=max).contains(&s.deductible_used_fen) || !(0..=max).contains(&s.fund_paid_fen) {
        v.add("state", "accumulators must be between 0 and the largest amount");
    }
    let b = q.account_balance_fen;
    let account = match q.account.as_str() {
        "" => None,
        "own" => Some(AccountSource::Own { balance_fen: b }),
        "family" => Some(AccountSource::Family { balance_fen: b }),
        _ => {
            v.add("account", "must be empty, \"own\" or \"family\"");
            None
        }
    };
    if let Some(AccountSource::Own { balance_fen: b } | AccountSource::Family { balance_fen: b }) = account
        && !(0..=clearing_edge::limits::MAX_BALANCE_FEN).contains(&b)
    {
        v.add("account", "balance must be between 0 and the largest balance");
    }
    let default_visit = pb::PolicyVisit::default();
    let vi = q.visit.as_ref().unwrap_or(&default_visit);
    let date = wire::parse_date(&mut v, "visit.date", &vi.date);
    let mdtrt = Admdvs::parse(&vi.mdtrt_admdvs);
    if mdtrt.is_none() {
        v.add("visit.mdtrt_admdvs", "must be a 6-digit division code");
    }
    let hosp_lv = level(&mut v, "visit.hosp_lv", vi.hosp_lv);
    let med_type = MedType::parse(&vi.med_type);
    if med_type.is_none() {
        v.add("visit.med_type", "must be 11, 13, 14 or 41");
    }
    let prescribing_lv = if vi.prescribing_lv == 0 { None } else { level(&mut v, "visit.prescribing_lv", vi.prescribing_lv) };
    if vi.dise_code.len() > clearing_edge::limits::MAX_DISE_CODE_LEN {
        v.add("visit.dise_code", format!("at most {} characters", clearing_edge::limits::MAX_DISE_CODE_LEN));
    }
    v.into_result(())?;
    Ok(PolicyInputs {
        insured: insured.expect("checked"),
        priced: priced.expect("checked"),
        member: OwnedFacts {
            psn_type: psn_type.expect("checked"),
            retire_date,
            pooling_only: m.pooling_only,
            filings,
            in_arrears: m.in_arrears,
        },
        state: YearState { deductible_used_fen: s.deductible_used_fen, fund_paid_fen: s.fund_paid_fen, visits: s.visits },
        account,
        date: date.expect("checked"),
        mdtrt: mdtrt.expect("checked"),
        hosp_lv: hosp_lv.expect("checked"),
        med_type: med_type.expect("checked"),
        prescribing_lv,
        dise_code: vi.dise_code.clone(),
        acct_used: vi.acct_used,
        pharmacy_designated: vi.pharmacy_designated,
    })
}

/// A remote adapter's policy answer, checked: the money identities (ARCHITECTURE.md, Money) hold, it settles the claim
/// that was priced, it names the benefit the visit draws on, and the state change matches the amounts.
pub fn checked_outcome(r: pb::ApplyPolicyResponse, priced: &Priced, visit: &Visit<'_>) -> Result<PolicyOutcome, String> {
    let a = r.amounts.ok_or("amounts: missing")?;
    let d = r.delta.ok_or("delta: missing")?;
    let amounts = national::from_policy_amounts(&a);
    check_invariants(&amounts).map_err(|e| format!("amounts: {e}"))?;
    let t = &priced.totals;
    if (amounts.medfee_sumamt, amounts.fulamt_ownpay_amt, amounts.overlmt_selfpay, amounts.preselfpay_amt, amounts.inscp_scp_amt)
        != (t.medfee_fen, t.fulamt_ownpay_fen, t.overlmt_selfpay_fen, t.preselfpay_fen, t.inscp_fen)
    {
        return Err("amounts: not the priced claim".into());
    }
    let delta = StateDelta {
        deductible_used_fen: d.deductible_used_fen,
        fund_paid_fen: d.fund_paid_fen,
        visits: d.visits,
        account_debit_fen: d.account_debit_fen,
    };
    if delta.deductible_used_fen != amounts.act_pay_dedc
        || delta.fund_paid_fen != amounts.hifp_pay
        || delta.account_debit_fen != amounts.acct_pay
        || !(0..=1).contains(&delta.visits)
    {
        return Err("delta: does not match the amounts".into());
    }
    let benefit = Benefit::of(visit).map_err(|e| e.to_string())?;
    if r.benefit != benefit.key() {
        return Err(format!("benefit: {:?} is not the visit's {:?}", r.benefit, benefit.key()));
    }
    let member_class = match r.member_class.as_str() {
        "11" => MemberClass::InService,
        "12" => MemberClass::Retired,
        other => return Err(format!("member_class: {other:?}")),
    };
    let level = Level::new(r.level).ok_or("level: must be 1, 2 or 3")?;
    if r.ratio_bp > region_adapter::money::RATIO_ONE_BP || r.cap_fen < 0 {
        return Err("ratio_bp or cap_fen out of range".into());
    }
    Ok(PolicyOutcome {
        settled: Settled {
            year: r.year,
            benefit,
            member_class,
            level,
            ratio_bp: r.ratio_bp,
            eligible: r.eligible,
            amounts,
            delta,
            cap_fen: r.cap_fen,
            steps: Vec::new(),
        },
        explanation: r.explanation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::{local_apply_policy, local_price};
    use chrono::NaiveDate;
    use region_adapter::MemberFacts;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A priced claim and its policy outcome from the bundled Suizhou/Nanchang packs.
    fn settled() -> (Vec<LineInput<'static>>, PricedClaim, PolicyOutcome, Visit<'static>) {
        let rules = region_adapter::bundled::rules().unwrap();
        let lines = vec![
            LineInput { code: "001201000010000", qty: Decimal::ONE, unit_price: Decimal::new(80000, 2), amount_fen: 80000 },
            LineInput { code: "XZ99ZZZ999A0", qty: Decimal::ONE, unit_price: Decimal::new(1234, 2), amount_fen: 1234 },
        ];
        let nanchang = Admdvs::parse("360100").unwrap();
        let priced = local_price(&rules, nanchang, date("2023-03-10"), &lines).unwrap();
        let visit = Visit {
            date: date("2023-03-10"),
            mdtrt_admdvs: nanchang,
            hosp_lv: Level::new(2).unwrap(),
            med_type: MedType::GeneralOutpatient,
            prescribing_lv: None,
            dise_code: None,
            acct_used: true,
            pharmacy_designated: true,
        };
        let filings = [Filing { mdtrt_admdvs: Admdvs::parse("360000").unwrap(), begin: date("2020-01-01"), end: None, group: None }];
        let facts =
            MemberFacts { psn_type: PsnType::InService, retire_date: None, pooling_only: false, filings: &filings, in_arrears: false };
        let account = Some(AccountSource::Own { balance_fen: 10000 });
        let call = PolicyCall {
            insured: Admdvs::parse("421300").unwrap(),
            priced: &priced.priced,
            member: facts,
            state: YearState::default(),
            account,
            visit,
        };
        let outcome = local_apply_policy(&rules, &call).unwrap();
        (lines, priced, outcome, visit)
    }

    #[test]
    fn answers_survive_the_wire_unchanged() {
        let (lines, priced, outcome, visit) = settled();
        let back = checked_priced(priced_pb(&priced), &lines).unwrap();
        assert_eq!(back, priced);
        let o = checked_outcome(outcome_pb(&outcome), &priced.priced, &visit).unwrap();
        assert_eq!(
            (o.settled.amounts, o.settled.delta, &o.explanation),
            (outcome.settled.amounts, outcome.settled.delta, &outcome.explanation)
        );
        assert_eq!(
            (o.settled.level, o.settled.ratio_bp, o.settled.benefit.clone()),
            (outcome.settled.level, outcome.settled.ratio_bp, outcome.settled.benefit)
        );
        // The policy request decodes to the same inputs.
        let filings = [Filing { mdtrt_admdvs: Admdvs::parse("360000").unwrap(), begin: date("2020-01-01"), end: None, group: None }];
        let facts =
            MemberFacts { psn_type: PsnType::InService, retire_date: None, pooling_only: false, filings: &filings, in_arrears: false };
        let q = policy_request(&PolicyCall {
            insured: Admdvs::parse("421300").unwrap(),
            priced: &priced.priced,
            member: facts,
            state: YearState::default(),
            account: Some(AccountSource::Own { balance_fen: 10000 }),
            visit,
        });
        let p = parse_policy_request(&q, &|_| true).unwrap();
        assert_eq!(
            (p.priced, p.member.filings, p.account),
            (priced.priced.clone(), filings.to_vec(), Some(AccountSource::Own { balance_fen: 10000 }))
        );
    }

    #[test]
    fn inconsistent_answers_are_refused() {
        let (lines, priced, outcome, visit) = settled();
        type Tamper<T> = (&'static str, fn(&mut T));
        let tamper_price: [Tamper<pb::PriceLinesResponse>; 4] = [
            ("parts", |r| r.lines[0].inscp_fen += 1),
            ("totals", |r| r.totals.as_mut().unwrap().medfee_fen += 1),
            ("lines", |r| {
                r.lines.pop();
            }),
            ("class", |r| r.lines[0].chrgitm_lv = "09".into()),
        ];
        for (what, f) in tamper_price {
            let mut r = priced_pb(&priced);
            f(&mut r);
            assert!(checked_priced(r, &lines).is_err(), "{what}");
        }
        let tamper_policy: [Tamper<pb::ApplyPolicyResponse>; 5] = [
            ("fund pay", |r| r.amounts.as_mut().unwrap().hifp_pay += 100),
            ("cash", |r| r.amounts.as_mut().unwrap().psn_cash_pay -= 1),
            ("delta", |r| r.delta.as_mut().unwrap().fund_paid_fen = 0),
            ("benefit", |r| r.benefit = "chronic:M03900".into()),
            ("medfee", |r| {
                let a = r.amounts.as_mut().unwrap();
                a.medfee_sumamt += 1;
                a.fulamt_ownpay_amt += 1;
                a.psn_cash_pay += 1;
            }),
        ];
        for (what, f) in tamper_policy {
            let mut r = outcome_pb(&outcome);
            f(&mut r);
            assert!(checked_outcome(r, &priced.priced, &visit).is_err(), "{what}");
        }
    }

    #[test]
    fn malformed_adapter_requests_name_their_fields() {
        let q = pb::PriceLinesRequest {
            mdtrt_admdvs: "36010".into(),
            date: "2023-02-30".into(),
            lines: vec![pb::AdapterLine { hilist_code: String::new(), cnt: "1e999".into(), pric: "x".into(), amount_fen: 1 }],
        };
        let ServiceError::Invalid(v) = parse_price_request(&q, &|_| true).unwrap_err() else { panic!() };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["mdtrt_admdvs", "date", "lines[0].hilist_code", "lines[0].cnt", "lines[0].pric"]);
        let q = pb::ApplyPolicyRequest { account: "other".into(), ..Default::default() };
        let ServiceError::Invalid(v) = parse_policy_request(&q, &|_| true).unwrap_err() else { panic!() };
        let fields: Vec<_> = v.iter().map(|f| f.field.as_str()).collect();
        for f in ["insuplc_admdvs", "lines", "member.psn_type", "account", "visit.date", "visit.hosp_lv", "visit.med_type"] {
            assert!(fields.contains(&f), "{f} not in {fields:?}");
        }
    }
}
