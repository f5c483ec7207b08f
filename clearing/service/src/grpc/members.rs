//! The wire of members: a `Member` upsert read into a `MemberUpsert` (every problem with its field
//! path, nothing written) and a stored member written back as `Member`.

use crate::limits::*;
use crate::store::{BeneficiaryRecord, CreditFacts, FilingRecord, MemberKey, MemberRecord, MemberUpsert, PeriodRecord};
use clearing_edge::fields::*;
use clearing_edge::limits::*;
use proto::v1 as pb;
use region_adapter::Admdvs;
use region_adapter::money::fmt_yuan;

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
    let draft = crate::registry::identity::IdentityDraft {
        psn_cert_type: &m.psn_cert_type,
        certno: &m.certno,
        psn_name: &m.psn_name,
        gend: &m.gend,
        brdy: &m.brdy,
        naty: &m.naty,
    };
    let identity = crate::registry::identity::validate(&mut v, &draft);
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
