//! The edge between the wire and the engine: validation of requests (every problem reported with its
//! field path, nothing written) and the formatting of money and dates on the way out.

use crate::limits::*;
use crate::store::{BeneficiaryRecord, CreditFacts, FilingRecord, MemberKey, MemberRecord, MemberUpsert, PeriodRecord};
use chrono::{DateTime, FixedOffset, NaiveDate};
use clearing_edge::fields::*;
use clearing_edge::limits::*;
use proto::v1 as pb;
use region_adapter::codes::{code_kind, parse_fixmedins_code};
use region_adapter::limits::MAX_LINES_PER_CLAIM;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};
use region_adapter::pricing::{LineInput, check_line};
use region_adapter::{Admdvs, Level, MedType};
pub use region_adapter_server::wire::ValidLine;

/// A claim that passed every check that does not need state.
#[derive(Debug, Clone)]
pub struct ValidClaim {
    pub msgid: String,
    pub psn_no: String,
    pub insured: Admdvs,
    pub mdtrt: Admdvs,
    pub fixmedins_code: String,
    pub hosp_lv: Level,
    pub med_type: MedType,
    pub dise_code: Option<String>,
    pub prescribing_lv: Option<Level>,
    pub setl_time: DateTime<FixedOffset>,
    /// The visit date: `setl_time`'s day in Asia/Shanghai.
    pub visit_date: NaiveDate,
    pub acct_used: bool,
    /// A family member whose account pays (never the patient themself).
    pub acct_payer: Option<String>,
    pub lines: Vec<ValidLine>,
    /// A pharmacy fill at a pharmacy designated for outpatient pooling (the institution list; set by
    /// the settlement after `institutions::resolve`, false until then).
    pub pharmacy_designated: bool,
}

impl ValidClaim {
    pub fn line_inputs(&self) -> Vec<LineInput<'_>> {
        self.lines.iter().map(|l| LineInput { code: &l.code, qty: l.qty, unit_price: l.unit_price, amount_fen: l.amount_fen }).collect()
    }
    /// The visit as the policy sees it.
    pub fn visit(&self) -> region_adapter::Visit<'_> {
        region_adapter::Visit {
            date: self.visit_date,
            mdtrt_admdvs: self.mdtrt,
            hosp_lv: self.hosp_lv,
            med_type: self.med_type,
            prescribing_lv: self.prescribing_lv,
            dise_code: self.dise_code.as_deref(),
            acct_used: self.acct_used,
            pharmacy_designated: self.pharmacy_designated,
        }
    }
    pub fn member_key(&self) -> MemberKey {
        MemberKey::new(&self.insured.to_string(), &self.psn_no)
    }
}

/// Validates a claim. `known` says whether a region has a rule pack; `now` bounds `setl_time`.
pub fn validate_claim(
    c: &pb::Claim,
    known: &dyn Fn(Admdvs) -> bool,
    now: DateTime<FixedOffset>,
) -> Result<ValidClaim, clearing_edge::error::ServiceError> {
    let mut v = Violations::default();
    check_msgid(&mut v, "msgid", &c.msgid);
    check_psn_no(&mut v, "psn_no", &c.psn_no);
    let insured = check_region(&mut v, "insuplc_admdvs", &c.insuplc_admdvs, known);
    let mdtrt = check_region(&mut v, "mdtrt_admdvs", &c.mdtrt_admdvs, known);
    if let (Some(i), Some(m)) = (insured, mdtrt)
        && i == m
    {
        v.add("mdtrt_admdvs", "is the insured region itself: claims within a region settle locally, not through the clearinghouse");
    }
    match parse_fixmedins_code(&c.fixmedins_code) {
        None => v.add("fixmedins_code", "must be H or P + 6-digit division + 5 digits, e.g. H42130200746"),
        Some((_, adm)) => {
            if let Some(m) = mdtrt
                && adm.as_u32() / 100 != m.as_u32() / 100
            {
                v.add("fixmedins_code", format!("institution's division {adm} is not in the service location {m}"));
            }
        }
    }
    let med_type = MedType::parse(&c.med_type);
    // A retail pharmacy has no level: for a fill (41) hosp_lv is not required and is ignored; the
    // region's rule decides the level (the prescriber's, where the seeds say so).
    let pharmacy = med_type == Some(MedType::Pharmacy);
    let hosp_lv = if pharmacy { Level::new(c.prescribing_hosp_lv).or(Level::new(1)) } else { Level::new(c.hosp_lv) };
    if hosp_lv.is_none() {
        v.add("hosp_lv", "must be 1, 2 or 3");
    }
    if med_type.is_none() {
        v.add("med_type", "must be 11 (general outpatient), 13 (emergency), 14 (chronic/special disease) or 41 (pharmacy)");
    }
    let dise_code = (!c.dise_code.is_empty()).then(|| c.dise_code.clone());
    if med_type == Some(MedType::ChronicDisease) && !dise_code.as_deref().is_some_and(|d| id_like(d, MAX_DISE_CODE_LEN, b".-")) {
        v.add("dise_code", format!("med_type 14 needs a disease code of 1–{MAX_DISE_CODE_LEN} letters or digits"));
    }
    let prescribing_lv = Level::new(c.prescribing_hosp_lv);
    if med_type == Some(MedType::Pharmacy) && prescribing_lv.is_none() {
        v.add("prescribing_hosp_lv", "med_type 41 needs the prescribing institution's level 1, 2 or 3");
    }
    if med_type != Some(MedType::Pharmacy) && c.prescribing_hosp_lv != 0 {
        v.add("prescribing_hosp_lv", "only for med_type 41");
    }
    let setl_time = match DateTime::parse_from_rfc3339(&c.setl_time) {
        Ok(t) if t.signed_duration_since(now).num_seconds() > MAX_FUTURE_SECS => {
            v.add("setl_time", "is more than a day in the future");
            None
        }
        Ok(t) if chrono::Datelike::year(&t) < 2000 => {
            v.add("setl_time", "is before 2000");
            None
        }
        Ok(t) => Some(t),
        Err(_) => {
            v.add("setl_time", "must be an RFC 3339 time, e.g. 2023-03-10T09:30:00+08:00");
            None
        }
    };
    let acct_payer = (!c.acct_payer_psn_no.is_empty() && c.acct_payer_psn_no != c.psn_no).then(|| c.acct_payer_psn_no.clone());
    if let Some(p) = &acct_payer {
        check_psn_no(&mut v, "acct_payer_psn_no", p);
    }
    if c.lines.is_empty() {
        v.add("lines", "a claim needs at least one line");
    }
    if c.lines.len() > MAX_LINES_PER_CLAIM {
        v.add("lines", format!("{} lines; at most {MAX_LINES_PER_CLAIM} per claim", c.lines.len()));
    }
    let mut lines = Vec::with_capacity(c.lines.len().min(MAX_LINES_PER_CLAIM));
    for (i, l) in c.lines.iter().take(MAX_LINES_PER_CLAIM).enumerate() {
        let before = v.0.len();
        if code_kind(&l.hilist_code).is_none() {
            v.add(
                format!("lines[{i}].hilist_code"),
                "malformed catalogue code (drug X/Z + 11 characters, service 15 digits, consumable C + 26 digits)",
            );
        }
        let qty = parse_decimal(&mut v, &format!("lines[{i}].cnt"), &l.cnt);
        let price = parse_decimal(&mut v, &format!("lines[{i}].pric"), &l.pric);
        let amount = parse_money(&mut v, &format!("lines[{i}].det_item_fee_sumamt"), &l.det_item_fee_sumamt, MAX_AMOUNT_FEN);
        if let (Some(qty), Some(unit_price), Some(amount_fen)) = (qty, price, amount)
            && v.0.len() == before
        {
            let input = LineInput { code: &l.hilist_code, qty, unit_price, amount_fen };
            if let Err(e) = check_line(i, &input) {
                v.add(e.field(), e.to_string());
            } else {
                lines.push(ValidLine { code: l.hilist_code.clone(), qty, unit_price, amount_fen });
            }
        }
    }
    let ok = v.0.is_empty();
    let claim = ok.then(|| {
        let setl_time = setl_time.expect("checked");
        ValidClaim {
            msgid: c.msgid.clone(),
            psn_no: c.psn_no.clone(),
            insured: insured.expect("checked"),
            mdtrt: mdtrt.expect("checked"),
            fixmedins_code: c.fixmedins_code.clone(),
            hosp_lv: hosp_lv.expect("checked"),
            med_type: med_type.expect("checked"),
            dise_code,
            prescribing_lv,
            visit_date: crate::calendar::day_of(setl_time),
            setl_time,
            acct_used: c.acct_used_flag,
            acct_payer,
            lines,
            pharmacy_designated: false,
        }
    });
    v.into_result(()).map(|()| claim.expect("valid"))
}

/// Validates a member upsert.
pub fn validate_member(m: &pb::Member, known: &dyn Fn(Admdvs) -> bool) -> Result<MemberUpsert, clearing_edge::error::ServiceError> {
    let mut v = Violations::default();
    check_psn_no(&mut v, "psn_no", &m.psn_no);
    check_region(&mut v, "insuplc_admdvs", &m.insuplc_admdvs, known);
    if !matches!(m.psn_type.as_str(), "11" | "12") {
        v.add("psn_type", "must be 11 (in service) or 12 (retired)");
    }
    let retire_date = if m.retire_date.is_empty() { None } else { parse_date(&mut v, "retire_date", &m.retire_date) };
    let set_balance_fen = if m.acct_balc.is_empty() { None } else { parse_money(&mut v, "acct_balc", &m.acct_balc, MAX_BALANCE_FEN) };
    let credit_fen =
        if m.acct_credit.is_empty() { 0 } else { parse_money(&mut v, "acct_credit", &m.acct_credit, MAX_BALANCE_FEN).unwrap_or(0) };
    if m.filings.len() > MAX_FILINGS {
        v.add("filings", format!("at most {MAX_FILINGS}"));
    }
    let mut filings = Vec::new();
    for (i, f) in m.filings.iter().take(MAX_FILINGS).enumerate() {
        let adm = Admdvs::parse(&f.mdtrt_admdvs).filter(|a| *a != Admdvs::CENTRAL);
        if adm.is_none() {
            v.add(format!("filings[{i}].mdtrt_admdvs"), "must be a 6-digit city or province code");
        }
        let begin = parse_date(&mut v, &format!("filings[{i}].begndate"), &f.begndate);
        let end = if f.enddate.is_empty() { None } else { parse_date(&mut v, &format!("filings[{i}].enddate"), &f.enddate) };
        if let (Some(b), Some(e)) = (begin, end)
            && e < b
        {
            v.add(format!("filings[{i}].enddate"), "is before begndate");
        }
        let group = match f.group.as_str() {
            "" => None,
            g => {
                let parsed = region_adapter::FilingGroup::parse(g);
                if parsed.is_none() {
                    v.add(format!("filings[{i}].group"), "must be relocated_retiree (异地安置退休人员), long_term_resident (异地长期居住人员) or posted_worker (常驻异地工作人员)");
                }
                parsed
            }
        };
        if let (Some(a), Some(b)) = (adm, begin) {
            filings.push(FilingRecord {
                mdtrt_admdvs: a.to_string(),
                begndate: b,
                enddate: end,
                group: group.map(|g| g.code().to_string()),
            });
        }
    }
    if m.mulaid_beneficiaries.len() > MAX_BENEFICIARIES {
        v.add("mulaid_beneficiaries", format!("at most {MAX_BENEFICIARIES}"));
    }
    let mut beneficiaries = Vec::new();
    for (i, b) in m.mulaid_beneficiaries.iter().take(MAX_BENEFICIARIES).enumerate() {
        check_psn_no(&mut v, &format!("mulaid_beneficiaries[{i}].psn_no"), &b.psn_no);
        if b.psn_no == m.psn_no {
            v.add(format!("mulaid_beneficiaries[{i}].psn_no"), "a member's own account needs no link");
        }
        if !matches!(b.relation.as_str(), "spouse" | "parent" | "child") {
            v.add(format!("mulaid_beneficiaries[{i}].relation"), "must be spouse, parent or child (家庭共济: 配偶、父母、子女)");
        }
        beneficiaries.push(BeneficiaryRecord { psn_no: b.psn_no.clone(), relation: b.relation.clone() });
    }
    let mut yuan = |field: &str, s: &str| -> i64 {
        if s.is_empty() {
            return 0;
        }
        parse_money(&mut v, field, s, MAX_BALANCE_FEN).unwrap_or(0)
    };
    let credit_facts = CreditFacts {
        contribution_base_fen: yuan("contribution_base", &m.contribution_base),
        own_pension_fen: yuan("own_pension", &m.own_pension),
        combined_years: m.combined_years,
        insured_years: m.insured_years,
        monthly_credit_2022_fen: yuan("monthly_credit_2022", &m.monthly_credit_2022),
        reached_required_years: m.reached_required_years,
    };
    if m.combined_years > m.insured_years {
        v.add("combined_years", "more than insured_years");
    }
    if m.insured_years > 100 {
        v.add("insured_years", "at most 100");
    }
    if m.arrears.len() > MAX_FILINGS {
        v.add("arrears", format!("at most {MAX_FILINGS} periods"));
    }
    let mut arrears = Vec::new();
    for (i, p) in m.arrears.iter().take(MAX_FILINGS).enumerate() {
        let begin = parse_date(&mut v, &format!("arrears[{i}].begndate"), &p.begndate);
        let end = if p.enddate.is_empty() { None } else { parse_date(&mut v, &format!("arrears[{i}].enddate"), &p.enddate) };
        if let (Some(b), Some(e)) = (begin, end)
            && e < b
        {
            v.add(format!("arrears[{i}].enddate"), "is before begndate");
        }
        if let Some(b) = begin {
            arrears.push(PeriodRecord { begndate: b, enddate: end });
        }
    }
    let identity = crate::identity::validate(&mut v, m);
    v.into_result(MemberUpsert {
        identity,
        arrears,
        credit_facts,
        key: MemberKey::new(&m.insuplc_admdvs, &m.psn_no),
        psn_type: m.psn_type.clone(),
        retire_date,
        pooling_only: m.pooling_only,
        filings,
        mulaid_beneficiaries: beneficiaries,
        set_balance_fen,
        credit_fen,
    })
}

/// A stored member on the wire; `year` = 0 returns every year's accumulators.
pub fn member_to_pb(r: &MemberRecord, year: u32) -> pb::Member {
    let id = r.identity.as_ref();
    pb::Member {
        psn_no: r.key.psn_no.clone(),
        insuplc_admdvs: r.key.insuplc_admdvs.clone(),
        psn_type: r.psn_type.clone(),
        retire_date: r.retire_date.map(|d| d.to_string()).unwrap_or_default(),
        pooling_only: r.pooling_only,
        acct_balc: fmt_yuan(r.acct_balc_fen),
        filings: r
            .filings
            .iter()
            .map(|f| pb::Filing {
                mdtrt_admdvs: f.mdtrt_admdvs.clone(),
                begndate: f.begndate.to_string(),
                enddate: f.enddate.map(|d| d.to_string()).unwrap_or_default(),
                group: f.group.clone().unwrap_or_default(),
            })
            .collect(),
        mulaid_beneficiaries: r
            .mulaid_beneficiaries
            .iter()
            .map(|b| pb::MulaidBeneficiary { psn_no: b.psn_no.clone(), relation: b.relation.clone() })
            .collect(),
        accumulators: r
            .accumulators
            .iter()
            .filter(|a| year == 0 || a.year as u32 == year)
            .map(|a| pb::Accumulator {
                year: a.year as u32,
                benefit: a.benefit.clone(),
                deductible_used: fmt_yuan(a.deductible_used_fen),
                fund_paid: fmt_yuan(a.fund_paid_fen),
                visits: a.visits.max(0) as u32,
            })
            .collect(),
        version: r.version,
        acct_credit: String::new(),
        contribution_base: if r.credit_facts.contribution_base_fen == 0 {
            String::new()
        } else {
            fmt_yuan(r.credit_facts.contribution_base_fen)
        },
        own_pension: if r.credit_facts.own_pension_fen == 0 { String::new() } else { fmt_yuan(r.credit_facts.own_pension_fen) },
        combined_years: r.credit_facts.combined_years,
        insured_years: r.credit_facts.insured_years,
        monthly_credit_2022: if r.credit_facts.monthly_credit_2022_fen == 0 {
            String::new()
        } else {
            fmt_yuan(r.credit_facts.monthly_credit_2022_fen)
        },
        reached_required_years: r.credit_facts.reached_required_years,
        credits: r.credits.iter().map(|(m, f)| pb::AccountCredit { month: m.clone(), amount: fmt_yuan(*f) }).collect(),
        arrears: r
            .arrears
            .iter()
            .map(|p| pb::Period { begndate: p.begndate.to_string(), enddate: p.enddate.map(|d| d.to_string()).unwrap_or_default() })
            .collect(),
        psn_cert_type: id.map(|i| i.psn_cert_type.clone()).unwrap_or_default(),
        certno: id.map(|i| i.certno.clone()).unwrap_or_default(),
        psn_name: id.map(|i| i.psn_name.clone()).unwrap_or_default(),
        gend: id.map(|i| i.gend.clone()).unwrap_or_default(),
        brdy: id.and_then(|i| i.brdy).map(|d| d.to_string()).unwrap_or_default(),
        naty: id.map(|i| i.naty.clone()).unwrap_or_default(),
    }
}
