//! The pure steps of settling and reversing: from a claim, the member state read from the store and
//! the engine's answers to the commit to make and the answer to give, or the refusal. No store, no
//! clock, no network: `settle.rs` reads, calls the engine and commits around these; unit tests call
//! them directly.

use crate::claim::ValidClaim;
use crate::core::Planned;
use crate::record::{Settlement, SettlementLine, SupervisionFlag};
use crate::settlement::reversal::Reversal;
use crate::store::*;
use chrono::{Datelike, NaiveDate};
use clearing_edge::error::ServiceError;
use region_adapter::money::{fmt_ratio, fmt_yuan};
use region_adapter::{AccountSource, Admdvs, Filing, PsnType, YearState};
use region_adapter_server::local::{OwnedFacts, PolicyOutcome, PricedClaim};
use region_adapter_server::national::{set_settlement_amounts, settlement_amounts};

/// What the policy needs of the stored member (and of the family payer whose account pays).
pub struct PolicyMember {
    pub member: OwnedFacts,
    /// Year-to-date state of the claim's benefit.
    pub state: YearState,
    pub account: AccountSource,
}

/// The family payer (家庭共济) must have bound the patient; otherwise the claim is refused.
pub fn check_family_payer(vc: &ValidClaim, payer: &MemberRecord) -> Result<(), ServiceError> {
    if payer.mulaid_beneficiaries.iter().any(|b| b.psn_no == vc.psn_no) {
        return Ok(());
    }
    Err(ServiceError::PermissionDenied(
        "the account payer has not bound the patient for family mutual aid (家庭共济)".into(),
        "acct_payer_psn_no".into(),
    ))
}

/// The policy's view of the member: registry facts, the year's state of `benefit`, and the account
/// that pays (the payer's when a family member pays).
pub fn policy_member(
    member: &MemberRecord,
    payer: Option<&MemberRecord>,
    visit_date: NaiveDate,
    benefit: &str,
) -> Result<PolicyMember, ServiceError> {
    let year = visit_date.year();
    let filings = member
        .filings
        .iter()
        .filter_map(|f| {
            Some(Filing {
                mdtrt_admdvs: Admdvs::parse(&f.mdtrt_admdvs)?,
                begin: f.begndate,
                end: f.enddate,
                group: f.group.as_deref().and_then(region_adapter::FilingGroup::parse),
            })
        })
        .collect();
    let state = member
        .accumulator(year, benefit)
        .map(|a| YearState { deductible_used_fen: a.deductible_used_fen, fund_paid_fen: a.fund_paid_fen, visits: a.visits.max(0) as u32 })
        .unwrap_or_default();
    let account = match payer {
        Some(p) => AccountSource::Family { balance_fen: p.acct_balc_fen },
        None => AccountSource::Own { balance_fen: member.acct_balc_fen },
    };
    let psn_type = PsnType::parse(&member.psn_type).ok_or_else(|| ServiceError::Internal("stored psn_type unreadable".into()))?;
    Ok(PolicyMember {
        member: OwnedFacts {
            psn_type,
            retire_date: member.retire_date,
            pooling_only: member.pooling_only,
            filings,
            in_arrears: member.arrears.iter().any(|p| p.contains(visit_date)),
        },
        state,
        account,
    })
}

/// Supervision's flags as the settlement carries them (its stored and answered form is the protobuf
/// message).
pub(crate) fn flags_pb(flags: &[crate::supervision::Flag]) -> Vec<SupervisionFlag> {
    flags.iter().map(|f| SupervisionFlag { kind: f.kind.code().into(), detail: f.detail.clone() }).collect()
}

/// Everything a settlement is planned from.
#[derive(Debug)]
pub struct SettlementInputs<'a> {
    pub claim: &'a ValidClaim,
    pub priced: &'a PricedClaim,
    pub outcome: &'a PolicyOutcome,
    /// The member as read (its version is what the commit expects).
    pub member: &'a MemberRecord,
    pub payer: Option<&'a MemberRecord>,
    /// The member's shard, the id drawn for this attempt and the open clearing day.
    pub shard: u16,
    pub setl_id: &'a str,
    pub clr_date: chrono::NaiveDate,
    /// The idempotency content hash of the request.
    pub content_hash: [u8; 32],
    /// The benefit's accumulator key and year.
    pub benefit: &'a str,
    pub year: i32,
    /// Supervision's flags (`supervision::flags`); `None` when supervision is off.
    pub flags: Option<&'a [crate::supervision::Flag]>,
}

/// A settlement: the answer, the member's accumulators, the paying account, the window's totals.
pub fn plan_settlement(i: &SettlementInputs<'_>) -> Planned {
    let mut answer = settlement_pb(i.claim, i.priced, i.outcome, i.setl_id, &i.clr_date.to_string(), true);
    let a = &i.outcome.settled.amounts;
    if let Some(flags) = i.flags {
        answer.flags = flags_pb(flags);
    }
    let d = &i.outcome.settled.delta;
    let mut members = vec![MemberChange {
        key: i.member.key.clone(),
        expected_version: Some(i.member.version),
        accumulator: Some(AccumulatorDelta {
            year: i.year,
            benefit: i.benefit.to_string(),
            deductible_used_fen: d.deductible_used_fen,
            fund_paid_fen: d.fund_paid_fen,
            visits: d.visits as i64,
        }),
        balance_delta_fen: if i.payer.is_none() { -d.account_debit_fen } else { 0 },
        recent: i.flags.map(|_| crate::supervision::remember(&i.member.recent, i.claim.visit_date, &i.claim.mdtrt.to_string())),
        close: None,
    }];
    if let Some(p) = i.payer {
        members.push(MemberChange {
            key: p.key.clone(),
            expected_version: Some(p.version),
            accumulator: None,
            balance_delta_fen: -d.account_debit_fen,
            recent: None,
            close: None,
        });
    }
    let settlement = SettlementRecord {
        setl_id: i.setl_id.to_string(),
        msgid: i.claim.msgid.clone(),
        clr_date: i.clr_date,
        insuplc_admdvs: i.claim.insured.to_string(),
        mdtrt_admdvs: i.claim.mdtrt.to_string(),
        fixmedins_code: i.claim.fixmedins_code.clone(),
        message: crate::record::encode(&answer),
        content_hash: i.content_hash,
        totals: PairDelta { count: 1, medfee_fen: a.medfee_sumamt, fund_fen: a.fund_pay_sumamt, acct_fen: a.acct_pay },
        orig_setl_id: None,
        reversed_by: None,
        supervision: i.flags.map(|f| crate::supervision::delta_of(i.claim, &i.priced.priced, a, f, i.setl_id)),
    };
    Planned { commit: Commit { shard: i.shard, settlement, members, reverses: None }, answer }
}

/// Whose account a stored settlement took its account pay from: the family payer's, or the patient's.
pub fn paying_member(o: &Settlement) -> MemberKey {
    let psn = if o.acct_payer_psn_no.is_empty() { &o.psn_no } else { &o.acct_payer_psn_no };
    MemberKey::new(&o.insuplc_admdvs, psn)
}

/// Everything a reversal is planned from.
pub struct ReversalInputs<'a> {
    pub request: &'a Reversal,
    /// The original as stored, and its decoded answer.
    pub original: &'a SettlementRecord,
    pub decoded: &'a Settlement,
    /// The member whose account paid (`paying_member`), as read.
    pub payer: &'a MemberRecord,
    pub shard: u16,
    pub setl_id: &'a str,
    pub clr_date: chrono::NaiveDate,
    pub content_hash: [u8; 32],
    /// When the reversal is made (its `setl_time`).
    pub now: chrono::DateTime<chrono::FixedOffset>,
}

/// A reversal (2208): refused for a reversal or an original reversed already; otherwise a new,
/// negative settlement that restores the accumulators and the paying account.
pub fn plan_reversal(i: &ReversalInputs<'_>) -> Result<Planned, ServiceError> {
    let (orig, o) = (i.original, i.decoded);
    if orig.orig_setl_id.is_some() {
        return Err(ServiceError::FailedPrecondition(format!("{} is itself a reversal", orig.setl_id)));
    }
    if let Some(by) = &orig.reversed_by {
        return Err(ServiceError::FailedPrecondition(format!("{} was already reversed by {by}", orig.setl_id)));
    }
    let amounts =
        settlement_amounts(o).map_err(|field| ServiceError::Internal(format!("stored {field} of {} unreadable", orig.setl_id)))?;
    let answer = reversal_pb(o, &amounts, i.request, i.setl_id, &i.clr_date.to_string(), i.payer.acct_balc_fen + amounts.acct_pay, i.now)?;
    let patient = MemberKey::new(&o.insuplc_admdvs, &o.psn_no);
    let own_account = i.payer.key == patient;
    let mut members = vec![MemberChange {
        key: patient,
        expected_version: own_account.then_some(i.payer.version),
        accumulator: Some(AccumulatorDelta {
            year: o.year as i32,
            benefit: o.benefit.clone(),
            deductible_used_fen: -amounts.act_pay_dedc,
            fund_paid_fen: -amounts.hifp_pay,
            visits: -1,
        }),
        balance_delta_fen: if own_account { amounts.acct_pay } else { 0 },
        recent: None,
        close: None,
    }];
    if !own_account {
        members.push(MemberChange {
            key: i.payer.key.clone(),
            expected_version: Some(i.payer.version),
            accumulator: None,
            balance_delta_fen: amounts.acct_pay,
            recent: None,
            close: None,
        });
    }
    let settlement = SettlementRecord {
        setl_id: i.setl_id.to_string(),
        msgid: i.request.msgid.clone(),
        clr_date: i.clr_date,
        insuplc_admdvs: o.insuplc_admdvs.clone(),
        mdtrt_admdvs: o.mdtrt_admdvs.clone(),
        fixmedins_code: o.fixmedins_code.clone(),
        message: crate::record::encode(&answer),
        content_hash: i.content_hash,
        totals: PairDelta {
            count: -1,
            medfee_fen: -orig.totals.medfee_fen,
            fund_fen: -orig.totals.fund_fen,
            acct_fen: -orig.totals.acct_fen,
        },
        orig_setl_id: Some(orig.setl_id.clone()),
        reversed_by: None,
        // A reversal takes back what its original added to the indicators, in the original's month.
        supervision: orig.supervision.as_ref().map(|d| crate::supervision::reversal_delta(&orig.setl_id, d)),
    };
    Ok(Planned { commit: Commit { shard: i.shard, settlement, members, reverses: Some(orig.setl_id.clone()) }, answer })
}

/// The wire settlement of a claim (`recorded` false for a preview, which has no id or day).
pub fn settlement_pb(
    vc: &ValidClaim,
    priced: &PricedClaim,
    outcome: &PolicyOutcome,
    setl_id: &str,
    clr_date: &str,
    recorded: bool,
) -> Settlement {
    let s = &outcome.settled;
    let mut explanation = Vec::with_capacity(1 + outcome.explanation.len());
    explanation.push(priced.explanation.clone());
    explanation.extend(outcome.explanation.iter().cloned());
    let mut answer = Settlement {
        setl_id: setl_id.into(),
        msgid: vc.msgid.clone(),
        psn_no: vc.psn_no.clone(),
        insuplc_admdvs: vc.insured.to_string(),
        mdtrt_admdvs: vc.mdtrt.to_string(),
        setl_time: vc.setl_time.to_rfc3339(),
        clr_date: clr_date.into(),
        refd_setl_flag: false,
        orig_setl_id: String::new(),
        lines: vc
            .lines
            .iter()
            .zip(&priced.priced.lines)
            .zip(&priced.items)
            .map(|((l, p), item)| SettlementLine {
                hilist_code: l.code.clone(),
                chrgitm_lv: p.class.map(|c| c.code().to_string()).unwrap_or_default(),
                selfpay_prop: fmt_ratio(p.selfpay_prop_bp),
                det_item_fee_sumamt: fmt_yuan(p.amount_fen),
                fulamt_ownpay_amt: fmt_yuan(p.fulamt_ownpay_fen),
                overlmt_selfpay: fmt_yuan(p.overlmt_selfpay_fen),
                preselfpay_amt: fmt_yuan(p.preselfpay_fen),
                inscp_scp_amt: fmt_yuan(p.inscp_fen),
                hilist_name: item.name.clone(),
                acct_excluded: p.account_excluded,
            })
            .collect(),
        explanation,
        fixmedins_code: vc.fixmedins_code.clone(),
        med_type: vc.med_type.code().into(),
        // A pharmacy has no level of its own.
        hosp_lv: if vc.med_type == region_adapter::MedType::Pharmacy { 0 } else { vc.hosp_lv.get() as u32 },
        ratio_hosp_lv: s.level.get() as u32,
        hifp_ratio: fmt_ratio(s.ratio_bp),
        benefit: s.benefit.key(),
        year: s.year as u32,
        psn_type: match s.member_class {
            region_adapter::MemberClass::InService => "11".into(),
            region_adapter::MemberClass::Retired => "12".into(),
        },
        recorded,
        acct_payer_psn_no: vc.acct_payer.clone().unwrap_or_default(),
        reversed_by_setl_id: String::new(),
        refd_reason: String::new(),
        dise_code: vc.dise_code.clone().unwrap_or_default(),
        ..Default::default()
    };
    set_settlement_amounts(&mut answer, &s.amounts);
    answer
}

/// The wire reversal of a stored settlement: every amount negated; `balc` is the paying account's
/// balance after the account pay is restored.
fn reversal_pb(
    o: &Settlement,
    amounts: &region_adapter::Amounts,
    req: &Reversal,
    setl_id: &str,
    clr_date: &str,
    balc_after_fen: i64,
    now: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Settlement, ServiceError> {
    let negate = |field: &'static str, s: &str| {
        clearing_edge::fields::signed_fen(s)
            .map(|f| fmt_yuan(-f))
            .ok_or_else(|| ServiceError::Internal(format!("stored {field} of {} unreadable", o.setl_id)))
    };
    let mut lines = Vec::with_capacity(o.lines.len());
    for l in &o.lines {
        lines.push(SettlementLine {
            det_item_fee_sumamt: negate("det_item_fee_sumamt", &l.det_item_fee_sumamt)?,
            fulamt_ownpay_amt: negate("fulamt_ownpay_amt", &l.fulamt_ownpay_amt)?,
            overlmt_selfpay: negate("overlmt_selfpay", &l.overlmt_selfpay)?,
            preselfpay_amt: negate("preselfpay_amt", &l.preselfpay_amt)?,
            inscp_scp_amt: negate("inscp_scp_amt", &l.inscp_scp_amt)?,
            ..l.clone()
        });
    }
    let negated = region_adapter::Amounts {
        medfee_sumamt: -amounts.medfee_sumamt,
        fulamt_ownpay_amt: -amounts.fulamt_ownpay_amt,
        overlmt_selfpay: -amounts.overlmt_selfpay,
        preselfpay_amt: -amounts.preselfpay_amt,
        inscp_scp_amt: -amounts.inscp_scp_amt,
        act_pay_dedc: -amounts.act_pay_dedc,
        hifp_pay: -amounts.hifp_pay,
        pool_prop_selfpay: -amounts.pool_prop_selfpay,
        fund_pay_sumamt: -amounts.fund_pay_sumamt,
        psn_part_amt: -amounts.psn_part_amt,
        acct_pay: -amounts.acct_pay,
        acct_mulaid_pay: -amounts.acct_mulaid_pay,
        psn_cash_pay: -amounts.psn_cash_pay,
        balc: balc_after_fen,
    };
    let mut answer = Settlement {
        setl_id: setl_id.into(),
        msgid: req.msgid.clone(),
        setl_time: now.to_rfc3339(),
        clr_date: clr_date.into(),
        refd_setl_flag: true,
        orig_setl_id: o.setl_id.clone(),
        lines,
        explanation: vec![format!(
            "reversal (撤销) of {}: every amount negated; accumulators and account restored; lands in window {clr_date}",
            o.setl_id
        )],
        recorded: true,
        reversed_by_setl_id: String::new(),
        refd_reason: req.reason.clone(),
        flags: Vec::new(),
        ..o.clone()
    };
    set_settlement_amounts(&mut answer, &negated);
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use region_adapter_server::local::{PolicyCall, local_apply_policy, local_price};

    fn member(psn: &str, balance_fen: i64, beneficiaries: &[&str]) -> MemberRecord {
        MemberRecord {
            key: MemberKey::new("421300", psn),
            psn_type: "11".into(),
            retire_date: None,
            pooling_only: false,
            acct_balc_fen: balance_fen,
            filings: vec![FilingRecord {
                mdtrt_admdvs: "360000".into(),
                begndate: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                enddate: None,
                group: None,
            }],
            mulaid_beneficiaries: beneficiaries
                .iter()
                .map(|b| BeneficiaryRecord { psn_no: b.to_string(), relation: "child".into() })
                .collect(),
            accumulators: vec![],
            arrears: vec![],
            credit_facts: Default::default(),
            credits: Default::default(),
            recent: vec![],
            closed: None,
            identity: None,
            version: 7,
        }
    }

    /// A claim of one all-in-scope line of `yuan` yuan at a level-1 institution in Nanchang.
    fn claim(yuan: u32, payer: Option<&str>) -> ValidClaim {
        let draft = crate::claim::ClaimDraft {
            msgid: "PLAN1".into(),
            psn_no: "P1".into(),
            insuplc_admdvs: "421300".into(),
            mdtrt_admdvs: "360100".into(),
            fixmedins_code: "H36010000001".into(),
            hosp_lv: 1,
            med_type: "11".into(),
            setl_time: "2024-06-01T10:00:00+08:00".into(),
            acct_used_flag: true,
            acct_payer_psn_no: payer.unwrap_or_default().into(),
            lines: vec![crate::claim::DraftLine {
                hilist_code: "001201000010000".into(),
                cnt: "1".into(),
                pric: format!("{yuan}.00"),
                det_item_fee_sumamt: format!("{yuan}.00"),
            }],
            ..Default::default()
        };
        let now = chrono::FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(2024, 6, 2, 0, 0, 0).unwrap();
        crate::claim::validate_claim(&draft, &|_| true, now).unwrap()
    }

    fn plan(vc: &ValidClaim, m: &MemberRecord, payer: Option<&MemberRecord>) -> Planned {
        let rules = region_adapter::bundled::rules().unwrap();
        let priced = local_price(&rules, vc.mdtrt, vc.visit_date, &vc.line_inputs()).unwrap();
        let benefit = region_adapter::Benefit::of(&vc.visit()).unwrap().key();
        let pm = policy_member(m, payer, vc.visit_date, &benefit).unwrap();
        let call = PolicyCall {
            insured: vc.insured,
            priced: &priced.priced,
            member: pm.member.facts(),
            state: pm.state,
            account: Some(pm.account),
            visit: vc.visit(),
        };
        let outcome = local_apply_policy(&rules, &call).unwrap();
        plan_settlement(&SettlementInputs {
            claim: vc,
            priced: &priced,
            outcome: &outcome,
            member: m,
            payer,
            shard: 3,
            setl_id: "03000000000001000000000a",
            clr_date: NaiveDate::from_ymd_opt(2024, 6, 1).unwrap(),
            content_hash: [1; 32],
            benefit: &benefit,
            year: 2024,
            flags: Some(&[]),
        })
    }

    #[test]
    fn a_suizhou_member_in_nanchang_pays_the_deductible_then_80_percent_and_the_account_the_rest() {
        // Suizhou 003 art. 8, in service, level 1: deductible 500, then 80%. 1000 yuan in scope:
        // 500 deductible, 500 × 80% = 400 fund; 600 left to the member, of which the account (300) pays.
        let m = member("P1", 30_000, &[]);
        let p = plan(&claim(1_000, None), &m, None);
        assert_eq!(
            (p.answer.act_pay_dedc.as_str(), p.answer.hifp_pay.as_str(), p.answer.acct_pay.as_str()),
            ("500.00", "400.00", "300.00")
        );
        assert_eq!(p.commit.members.len(), 1);
        let c = &p.commit.members[0];
        assert_eq!((c.expected_version, c.balance_delta_fen), (Some(7), -30_000));
        let acc = c.accumulator.as_ref().unwrap();
        assert_eq!((acc.deductible_used_fen, acc.fund_paid_fen, acc.visits), (50_000, 40_000, 1));
        assert_eq!(p.commit.settlement.totals, PairDelta { count: 1, medfee_fen: 100_000, fund_fen: 40_000, acct_fen: 30_000 });
        assert_eq!(crate::record::encode(&p.answer), p.commit.settlement.message, "the stored message is the answer");
    }

    #[test]
    fn a_family_payer_pays_from_its_own_account_and_must_have_bound_the_patient() {
        let vc = claim(1_000, Some("P2"));
        assert!(matches!(check_family_payer(&vc, &member("P2", 10_000, &["P9"])), Err(ServiceError::PermissionDenied(..))));
        let payer = member("P2", 10_000, &["P1"]);
        check_family_payer(&vc, &payer).unwrap();
        let p = plan(&vc, &member("P1", 99_999, &[]), Some(&payer));
        let [patient, pays] = &p.commit.members[..] else { panic!("two member changes") };
        assert_eq!((patient.balance_delta_fen, pays.balance_delta_fen, pays.expected_version), (0, -10_000, Some(7)));
        assert_eq!((p.answer.acct_pay.as_str(), p.answer.balc.as_str()), ("100.00", "0.00"));
    }

    #[test]
    fn a_reversal_negates_every_amount_restores_the_payer_and_is_refused_twice() {
        let m = member("P1", 30_000, &[]);
        let p = plan(&claim(1_000, None), &m, None);
        let mut original = p.commit.settlement.clone();
        let after = MemberRecord { acct_balc_fen: 0, version: 8, ..m };
        let req = Reversal { setl_id: original.setl_id.clone(), msgid: "REV1".into(), reason: "refund".into() };
        let now = chrono::FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(2024, 6, 3, 9, 0, 0).unwrap();
        let reverse = |original: &SettlementRecord| {
            plan_reversal(&ReversalInputs {
                request: &req,
                original,
                decoded: &p.answer,
                payer: &after,
                shard: 3,
                setl_id: "03000000000002000000000b",
                clr_date: NaiveDate::from_ymd_opt(2024, 6, 3).unwrap(),
                content_hash: [2; 32],
                now,
            })
        };
        let r = reverse(&original).unwrap();
        assert_eq!(
            (r.answer.medfee_sumamt.as_str(), r.answer.hifp_pay.as_str(), r.answer.acct_pay.as_str()),
            ("-1000.00", "-400.00", "-300.00")
        );
        assert_eq!(r.answer.balc, "300.00", "the account's balance once the 300.00 is back");
        let c = &r.commit.members[0];
        assert_eq!((c.expected_version, c.balance_delta_fen), (Some(8), 30_000));
        let acc = c.accumulator.as_ref().unwrap();
        assert_eq!((acc.deductible_used_fen, acc.fund_paid_fen, acc.visits), (-50_000, -40_000, -1));
        assert_eq!(r.commit.settlement.totals, PairDelta { count: -1, medfee_fen: -100_000, fund_fen: -40_000, acct_fen: -30_000 });
        assert_eq!(r.commit.reverses.as_deref(), Some(original.setl_id.as_str()));
        original.reversed_by = Some("03000000000002000000000b".into());
        assert!(matches!(reverse(&original), Err(ServiceError::FailedPrecondition(_))));
        assert!(matches!(reverse(&r.commit.settlement), Err(ServiceError::FailedPrecondition(_))), "a reversal is not reversed");
    }
}
