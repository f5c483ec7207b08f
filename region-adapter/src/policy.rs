//! Applying the insured region's policy (参保地政策) to a priced claim, ARCHITECTURE.md, Money, steps 2 and 3:
//! eligibility, member class on the visit date, deductible, ratio, cap, and the patient's part split
//! into personal account and cash. A pure function: rules + priced claim + member state in,
//! settlement + state change out.

use crate::codes::{Admdvs, FilingGroup, Level, MedType};
use crate::error::EngineError;
use crate::explain::Step;
use crate::model::{LevelScope, MemberClass, Param, PolicyVersion, Provenance, RegionPack};
use crate::money::{RatioBp, apply_ratio};
use crate::pricing::{Priced, PricedLine};
use chrono::{Datelike, NaiveDate};

/// Person type as registered (`psn_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsnType {
    /// `11` in service.
    InService,
    /// `12` retired.
    Retired,
}

impl PsnType {
    pub fn parse(s: &str) -> Option<PsnType> {
        match s {
            "11" => Some(PsnType::InService),
            "12" => Some(PsnType::Retired),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            PsnType::InService => "11",
            PsnType::Retired => "12",
        }
    }
}

/// A filing (异地就医备案) registering that the member lives, works or was referred elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filing {
    /// A city, or a province that covers all its cities.
    pub mdtrt_admdvs: Admdvs,
    pub begin: NaiveDate,
    /// Inclusive; `None` = open.
    pub end: Option<NaiveDate>,
    /// Which group of those who may file the member belongs to, when recorded (Suizhou art. 10).
    pub group: Option<FilingGroup>,
}

/// The member facts the policy needs (not the whole member record).
#[derive(Debug, Clone, Copy)]
pub struct MemberFacts<'a> {
    pub psn_type: PsnType,
    pub retire_date: Option<NaiveDate>,
    /// 单建统筹: pooling only, no personal account.
    pub pooling_only: bool,
    pub filings: &'a [Filing],
    /// Contributions were not paid on time for the visit date (a period of arrears on record).
    pub in_arrears: bool,
}

/// Year-to-date accumulators of one benefit (natural year, nothing carried over — Suizhou art. 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct YearState {
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: u32,
}

/// Which account the patient asked to pay from, and its balance before this claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSource {
    /// The patient's own personal account.
    Own { balance_fen: i64 },
    /// A family member's account whose holder bound the patient (家庭共济); the link was checked by
    /// the caller against the registry.
    Family { balance_fen: i64 },
}

/// The visit, as far as the policy is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub date: NaiveDate,
    pub mdtrt_admdvs: Admdvs,
    pub hosp_lv: Level,
    pub med_type: MedType,
    /// The prescribing institution's level for a pharmacy fill (`41`).
    pub prescribing_lv: Option<Level>,
    pub dise_code: Option<&'a str>,
    /// `acct_used_flag`: the patient asks the account to pay.
    pub acct_used: bool,
    /// A pharmacy fill (`41`) at a pharmacy the institution list designates for outpatient pooling;
    /// a fill elsewhere gets no fund pay. Ignored for other visits.
    pub pharmacy_designated: bool,
}

/// Which benefit (and so which accumulators and cap) a claim draws on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Benefit {
    /// 普通门诊统筹, including emergency and pharmacy fills.
    General,
    /// 门诊慢特病 for one disease, with its own cap (Suizhou art. 19: the two do not mix).
    Chronic(String),
}

impl Benefit {
    /// The stable key of this benefit in stores and on the wire: `general`, `chronic:<code>`.
    pub fn key(&self) -> String {
        match self {
            Benefit::General => "general".into(),
            Benefit::Chronic(c) => format!("chronic:{c}"),
        }
    }
    /// Which benefit a visit draws on.
    pub fn of(visit: &Visit<'_>) -> Result<Benefit, EngineError> {
        match visit.med_type {
            MedType::ChronicDisease => {
                Ok(Benefit::Chronic(visit.dise_code.filter(|c| !c.is_empty()).ok_or(EngineError::MissingDiseaseCode)?.to_string()))
            }
            _ => Ok(Benefit::General),
        }
    }
}

/// Every amount of a settlement, fen, named as the national interface names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amounts {
    pub medfee_sumamt: i64,
    pub fulamt_ownpay_amt: i64,
    pub overlmt_selfpay: i64,
    pub preselfpay_amt: i64,
    pub inscp_scp_amt: i64,
    pub act_pay_dedc: i64,
    pub hifp_pay: i64,
    /// In-scope amount above the deductible that the fund did not pay (ratio share and any part over
    /// the cap): `inscp − act_pay_dedc − hifp_pay`.
    pub pool_prop_selfpay: i64,
    pub fund_pay_sumamt: i64,
    pub psn_part_amt: i64,
    pub acct_pay: i64,
    pub acct_mulaid_pay: i64,
    pub psn_cash_pay: i64,
    /// The paying account's balance after the settlement (0 when no account).
    pub balc: i64,
}

/// The state change a settlement makes; applied by the store atomically with the settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateDelta {
    pub deductible_used_fen: i64,
    pub fund_paid_fen: i64,
    pub visits: i32,
    /// Taken from the paying account (the patient's or the family payer's).
    pub account_debit_fen: i64,
}

/// The outcome of applying a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub year: i32,
    pub benefit: Benefit,
    pub member_class: MemberClass,
    /// The level whose ratio applied (the prescribing level for a pharmacy fill).
    pub level: Level,
    pub ratio_bp: RatioBp,
    pub eligible: bool,
    pub amounts: Amounts,
    pub delta: StateDelta,
    /// The yearly cap of the benefit, for the caller's invariant check against stored state.
    pub cap_fen: i64,
    pub steps: Vec<Step>,
}

/// The first day of the month after `d`.
fn first_of_next_month(d: NaiveDate) -> NaiveDate {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).expect("valid first of month")
}

/// The member's class on the visit date. A retirement date is authoritative when given; retiree terms
/// start on it or, where the policy says so, from the month after (Suizhou art. 12: 办理退休手续后次月起).
pub fn member_class(policy: &PolicyVersion, m: &MemberFacts<'_>, date: NaiveDate) -> (MemberClass, Option<NaiveDate>) {
    match m.retire_date {
        Some(rd) => {
            let start = if policy.retired_from_next_month.value { first_of_next_month(rd) } else { rd };
            (if date >= start { MemberClass::Retired } else { MemberClass::InService }, Some(start))
        }
        None => (if m.psn_type == PsnType::Retired { MemberClass::Retired } else { MemberClass::InService }, None),
    }
}

/// The terms a benefit has for a member class at a level: deductible, cap, ratio, and their sources.
struct Terms<'p> {
    class: MemberClass,
    level: Level,
    /// A pharmacy fill (the level is the prescriber's).
    pharmacy: bool,
    deductible_fen: i64,
    cap_fen: i64,
    ratio_bp: RatioBp,
    deductible_src: &'p Provenance,
    cap_src: &'p Provenance,
    ratio_src: &'p Provenance,
}

/// Whether a visit outside the insured region is paid, and the ratio cut of an unfiled one.
struct Eligibility {
    eligible: bool,
    ratio_cut_bp: RatioBp,
}

/// What the fund pays: the deductible applied, the fund pay after ratio and cap, the ratio used.
struct FundPay {
    dedc_fen: i64,
    hifp_fen: i64,
    ratio_bp: RatioBp,
}

/// What the personal (or family) account pays of the member's part.
struct AccountPay {
    acct_pay_fen: i64,
    balc_fen: i64,
    family: bool,
}

impl RegionPack {
    /// Applies this (insured) region's policy. `state` is the year-to-date state of the benefit the
    /// visit draws on (`Benefit::of`) for the visit's year. Each step below is one rule of the pack,
    /// recorded with its source in `steps`.
    pub fn apply_policy(
        &self,
        priced: &Priced,
        member: &MemberFacts<'_>,
        state: YearState,
        account: Option<AccountSource>,
        visit: &Visit<'_>,
    ) -> Result<Settled, EngineError> {
        let policy = self.policy_on(visit.date).ok_or(EngineError::NoPolicyOnDate { admdvs: self.admdvs, date: visit.date })?;
        let benefit = Benefit::of(visit)?;
        let mut steps = Vec::with_capacity(8);
        let level = match visit.med_type {
            // A retail pharmacy has no level: the region's rule says which level a fill is paid at
            // (the prescriber's in Suizhou art. 11 and Jiangsu 000 §二(一)三是).
            MedType::Pharmacy => {
                let ph = &policy.pharmacy;
                let (level, source) = match (&ph.level, ph.use_prescribing_level.value) {
                    (_, true) => (visit.prescribing_lv.ok_or(EngineError::MissingPrescribingLevel)?, &ph.use_prescribing_level.provenance),
                    (Some(l), false) => (l.value, &l.provenance),
                    (None, false) => return Err(EngineError::Invariant("a pharmacy rule without a level (checked at load)")),
                };
                steps.push(Step::PharmacyLevel {
                    region: self.name.clone(),
                    level,
                    prescribing: ph.use_prescribing_level.value,
                    source: source.clone(),
                });
                level
            }
            _ => visit.hosp_lv,
        };
        let (class, retired_from) = member_class(policy, member, visit.date);
        steps.push(Step::MemberClass {
            region: self.name.clone(),
            class,
            retired_from,
            source: policy.retired_from_next_month.provenance.clone(),
        });
        let terms = self.terms(policy, &benefit, class, level, visit.med_type == MedType::Pharmacy)?;
        let elig = self.eligibility(policy, member, visit, level, &mut steps);
        let inscp = priced.totals.inscp_fen;
        let fund = if elig.eligible {
            self.fund_pay(&terms, &elig, state, inscp, &mut steps)
        } else {
            FundPay { dedc_fen: 0, hifp_fen: 0, ratio_bp: 0 }
        };
        let t = &priced.totals;
        let psn_part = t.medfee_fen - fund.hifp_fen;
        let payable = psn_part - self.account_excluded(policy, priced, visit, &mut steps);
        let acct = self.account_pay(policy, member, account, visit, payable.max(0), &mut steps)?;
        let amounts = Amounts {
            medfee_sumamt: t.medfee_fen,
            fulamt_ownpay_amt: t.fulamt_ownpay_fen,
            overlmt_selfpay: t.overlmt_selfpay_fen,
            preselfpay_amt: t.preselfpay_fen,
            inscp_scp_amt: inscp,
            act_pay_dedc: fund.dedc_fen,
            hifp_pay: fund.hifp_fen,
            pool_prop_selfpay: inscp - fund.dedc_fen - fund.hifp_fen,
            fund_pay_sumamt: fund.hifp_fen,
            psn_part_amt: psn_part,
            acct_pay: acct.acct_pay_fen,
            acct_mulaid_pay: if acct.family { acct.acct_pay_fen } else { 0 },
            psn_cash_pay: psn_part - acct.acct_pay_fen,
            balc: acct.balc_fen,
        };
        let delta = StateDelta {
            deductible_used_fen: fund.dedc_fen,
            fund_paid_fen: fund.hifp_fen,
            visits: 1,
            account_debit_fen: acct.acct_pay_fen,
        };
        check_invariants(&amounts)?;
        if state.fund_paid_fen + fund.hifp_fen > terms.cap_fen.max(state.fund_paid_fen) {
            return Err(EngineError::Invariant("year-to-date fund pay above the cap"));
        }
        Ok(Settled {
            year: visit.date.year(),
            benefit,
            member_class: class,
            level,
            ratio_bp: fund.ratio_bp,
            eligible: elig.eligible,
            amounts,
            delta,
            cap_fen: terms.cap_fen,
            steps,
        })
    }

    /// The benefit's terms: general outpatient by member class and level, or the chronic disease's.
    fn terms<'p>(
        &self,
        policy: &'p PolicyVersion,
        benefit: &Benefit,
        class: MemberClass,
        level: Level,
        pharmacy: bool,
    ) -> Result<Terms<'p>, EngineError> {
        let terms = |deductible: &'p Param<i64>, cap: &'p Param<i64>, ratio_bp: RatioBp, ratio_src: &'p Provenance| Terms {
            class,
            level,
            pharmacy,
            deductible_fen: deductible.value,
            cap_fen: cap.value,
            ratio_bp,
            deductible_src: &deductible.provenance,
            cap_src: &cap.provenance,
            ratio_src,
        };
        Ok(match benefit {
            Benefit::General => {
                let t = policy.general(class);
                terms(&t.deductible_fen, &t.cap_fen, t.ratio_bp.value[level.index()], &t.ratio_bp.provenance)
            }
            Benefit::Chronic(code) => {
                let d =
                    policy.chronic_disease(code).ok_or_else(|| EngineError::UnknownDisease { admdvs: self.admdvs, code: code.clone() })?;
                terms(&d.deductible_fen, &d.cap_fen, d.ratio_bp.value, &d.ratio_bp.provenance)
            }
        })
    }

    /// Eligibility of a visit outside the insured region: filing, the cut for an unfiled visit, the
    /// minimum institution level.
    fn eligibility(
        &self,
        policy: &PolicyVersion,
        member: &MemberFacts<'_>,
        visit: &Visit<'_>,
        level: Level,
        steps: &mut Vec<Step>,
    ) -> Eligibility {
        let mut out = Eligibility { eligible: true, ratio_cut_bp: 0 };
        if visit.med_type == MedType::Pharmacy && !visit.pharmacy_designated {
            steps.push(Step::PharmacyNotDesignated { region: self.name.clone() });
            out.eligible = false;
            return out;
        }
        let arrears = &policy.contributions.arrears_no_fund_pay;
        if member.in_arrears && arrears.value {
            steps.push(Step::InArrears { region: self.name.clone(), source: arrears.provenance.clone() });
            out.eligible = false;
            return out;
        }
        if visit.mdtrt_admdvs == self.admdvs {
            return out;
        }
        let region = &self.name;
        let cr = &policy.cross_region;
        let filing = member
            .filings
            .iter()
            .find(|f| f.mdtrt_admdvs.covers(visit.mdtrt_admdvs) && visit.date >= f.begin && f.end.is_none_or(|e| visit.date <= e));
        let filed = filing.is_some();
        if let Some(f) = filing
            && cr.filing_required.value
        {
            steps.push(Step::Filed {
                region: region.clone(),
                filing: f.mdtrt_admdvs,
                group: f.group,
                source: cr.filing_required.provenance.clone(),
            });
        }
        if !filed && cr.filing_required.value {
            out.eligible = false;
            steps.push(Step::NotFiled { region: region.clone(), mdtrt: visit.mdtrt_admdvs, source: cr.filing_required.provenance.clone() });
        } else if !filed && cr.unfiled_ratio_cut_bp.value > 0 {
            out.ratio_cut_bp = cr.unfiled_ratio_cut_bp.value;
            steps.push(Step::UnfiledCut {
                region: region.clone(),
                cut_bp: out.ratio_cut_bp,
                source: cr.unfiled_ratio_cut_bp.provenance.clone(),
            });
        }
        let scoped = match cr.min_level_scope.value {
            LevelScope::CrossProvince => visit.mdtrt_admdvs.province_prefix() != self.admdvs.province_prefix(),
            LevelScope::CrossRegion => true,
        };
        if out.eligible && scoped && level < cr.min_level.value {
            out.eligible = false;
            steps.push(Step::BelowMinLevel {
                region: region.clone(),
                level,
                min: cr.min_level.value,
                source: cr.min_level.provenance.clone(),
            });
        }
        out
    }

    /// Deductible, then ratio (less any cut), then the cap, on the in-scope amount.
    fn fund_pay(&self, terms: &Terms<'_>, elig: &Eligibility, state: YearState, inscp: i64, steps: &mut Vec<Step>) -> FundPay {
        let (region, class, level) = (&self.name, terms.class, terms.level);
        let left = (terms.deductible_fen - state.deductible_used_fen).max(0);
        let dedc = inscp.min(left);
        steps.push(Step::Deductible {
            region: region.clone(),
            class,
            deductible_fen: terms.deductible_fen,
            left_fen: left,
            applied_fen: dedc,
            source: terms.deductible_src.clone(),
        });
        let ratio_bp = terms.ratio_bp.saturating_sub(elig.ratio_cut_bp);
        let by_ratio = apply_ratio(inscp - dedc, ratio_bp);
        steps.push(Step::Ratio {
            region: region.clone(),
            class,
            level,
            pharmacy: terms.pharmacy,
            ratio_bp,
            base_fen: inscp - dedc,
            result_fen: by_ratio,
            source: terms.ratio_src.clone(),
        });
        let cap_left = (terms.cap_fen - state.fund_paid_fen).max(0);
        let hifp = by_ratio.min(cap_left);
        steps.push(Step::Cap {
            region: region.clone(),
            class,
            cap_fen: terms.cap_fen,
            left_fen: cap_left,
            paid_fen: hifp,
            source: terms.cap_src.clone(),
        });
        FundPay { dedc_fen: dedc, hifp_fen: hifp, ratio_bp }
    }

    /// The account pays the member's part up to its balance when the visit uses it: the member's own
    /// account, or a family member's (家庭共济) where the region allows it; none for pooling-only members.
    /// The account never pays public health, fitness or wellness spending (lines the catalogue marks so),
    /// and at a pharmacy, where the region says so, only drugs, devices and consumables: those lines
    /// leave the part it may pay, whole (whatever the fund paid is counted as the patient's other costs,
    /// so the account cannot reach these lines through it). Returns the amount kept off it.
    fn account_excluded(&self, policy: &PolicyVersion, priced: &Priced, visit: &Visit<'_>, steps: &mut Vec<Step>) -> i64 {
        let acct = &policy.account;
        if !visit.acct_used {
            return 0;
        }
        let non_medical = |l: &PricedLine| acct.excludes_non_medical.value && l.account_excluded;
        let not_goods = |l: &PricedLine| visit.med_type == MedType::Pharmacy && acct.pharmacy_goods_only.value && !l.goods;
        let mut kept = 0;
        let mut step = |keep: &dyn Fn(&PricedLine) -> bool, source: &Provenance, pharmacy: bool| {
            let lines: Vec<usize> = priced.lines.iter().enumerate().filter(|(_, l)| keep(l)).map(|(i, _)| i).collect();
            let amount_fen: i64 = lines.iter().map(|i| priced.lines[*i].amount_fen).sum();
            if amount_fen > 0 {
                kept += amount_fen;
                steps.push(Step::AccountExcluded { region: self.name.clone(), lines, amount_fen, pharmacy, source: source.clone() });
            }
        };
        step(&non_medical, &acct.excludes_non_medical.provenance, false);
        // A line already kept off as non-medical spending is not counted twice.
        step(&|l| not_goods(l) && !non_medical(l), &acct.pharmacy_goods_only.provenance, true);
        kept
    }

    fn account_pay(
        &self,
        policy: &PolicyVersion,
        member: &MemberFacts<'_>,
        account: Option<AccountSource>,
        visit: &Visit<'_>,
        psn_part: i64,
        steps: &mut Vec<Step>,
    ) -> Result<AccountPay, EngineError> {
        let region = &self.name;
        let acct = &policy.account;
        let payable = psn_part;
        let (payer_balance, family) = match account {
            Some(AccountSource::Family { balance_fen }) => {
                if !acct.family_mutual_aid.value {
                    return Err(EngineError::FamilyAidNotAllowed { admdvs: self.admdvs });
                }
                (Some(balance_fen), true)
            }
            Some(AccountSource::Own { .. }) if member.pooling_only && !acct.pooling_only_has_account.value => {
                steps.push(Step::NoAccount { region: region.clone(), source: acct.pooling_only_has_account.provenance.clone() });
                (None, false)
            }
            Some(AccountSource::Own { balance_fen }) => (Some(balance_fen), false),
            None => (None, false),
        };
        let acct_pay = match payer_balance {
            Some(b) if visit.acct_used => payable.min(b.max(0)),
            _ => 0,
        };
        if visit.acct_used
            && let Some(balance_fen) = payer_balance
        {
            steps.push(Step::Account {
                region: region.clone(),
                family,
                part_fen: payable,
                balance_fen,
                paid_fen: acct_pay,
                source: acct.family_mutual_aid.provenance.clone(),
            });
        }
        Ok(AccountPay { acct_pay_fen: acct_pay, balc_fen: payer_balance.map_or(0, |b| b - acct_pay), family })
    }
}

/// The money identities (ARCHITECTURE.md, Money), exactly, in fen. Called on every settlement built; the property
/// tests check the same identities from outside.
pub fn check_invariants(a: &Amounts) -> Result<(), EngineError> {
    let parts = [
        a.fulamt_ownpay_amt,
        a.overlmt_selfpay,
        a.preselfpay_amt,
        a.inscp_scp_amt,
        a.act_pay_dedc,
        a.hifp_pay,
        a.pool_prop_selfpay,
        a.fund_pay_sumamt,
        a.psn_part_amt,
        a.acct_pay,
        a.acct_mulaid_pay,
        a.psn_cash_pay,
    ];
    if parts.iter().any(|p| *p < 0) || a.medfee_sumamt < 0 {
        return Err(EngineError::Invariant("a part is negative"));
    }
    if a.medfee_sumamt != a.fulamt_ownpay_amt + a.overlmt_selfpay + a.preselfpay_amt + a.inscp_scp_amt {
        return Err(EngineError::Invariant("medfee ≠ full self-pay + over cap + self-pay first + in scope"));
    }
    if a.medfee_sumamt != a.fund_pay_sumamt + a.acct_pay + a.psn_cash_pay {
        return Err(EngineError::Invariant("medfee ≠ fund + account + cash"));
    }
    if a.hifp_pay > a.inscp_scp_amt - a.act_pay_dedc {
        return Err(EngineError::Invariant("fund pay above in-scope minus deductible"));
    }
    if a.acct_mulaid_pay > a.acct_pay {
        return Err(EngineError::Invariant("family pay above account pay"));
    }
    Ok(())
}
