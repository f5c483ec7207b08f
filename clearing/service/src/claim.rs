//! The requests of the money path as sent: a claim (`ClaimDraft`, what SettleClaim, PreviewClaim and a
//! visit's settlement carry), a visit's `Registration` (2201, checked as the claim it would settle), a
//! `Reversal` (2208) and a `Closure`; and every check of a claim that needs no state (`validate_claim` →
//! `ValidClaim`), each problem with its field path and nothing written. The wire's messages become these in `grpc/`; `record.rs` hashes them as their protobuf
//! encoding, the idempotency key's content.

use crate::limits::*;
use crate::store::MemberKey;
use chrono::{DateTime, FixedOffset, NaiveDate};
use clearing_edge::fields::*;
use clearing_edge::limits::*;
use region_adapter::codes::{code_kind, parse_fixmedins_code};
use region_adapter::limits::MAX_LINES_PER_CLAIM;
use region_adapter::money::MAX_AMOUNT_FEN;
use region_adapter::pricing::{LineInput, check_line};
use region_adapter::{Admdvs, Level, MedType};
pub use region_adapter_server::wire::ValidLine;

/// One line of a claim as sent: the catalogue code, quantity, unit price and amount (yuan, text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftLine {
    pub hilist_code: String,
    pub cnt: String,
    pub pric: String,
    pub det_item_fee_sumamt: String,
}

/// A claim as sent, field for field (the names of the national interface and of `clearinghouse.v1`'s
/// `Claim`): nothing is checked yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimDraft {
    pub msgid: String,
    pub psn_no: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    pub fixmedins_code: String,
    pub hosp_lv: u32,
    pub med_type: String,
    pub dise_code: String,
    pub prescribing_hosp_lv: u32,
    pub setl_time: String,
    pub acct_used_flag: bool,
    pub acct_payer_psn_no: String,
    pub lines: Vec<DraftLine>,
    pub prescribing_fixmedins_code: String,
}

/// A reversal as sent (2208, `ReverseClaim`): the settlement to reverse, the reversal's own msgid and
/// a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reversal {
    pub setl_id: String,
    pub msgid: String,
    pub reason: String,
}

/// An account closure as sent (`Registry.CloseAccount`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    pub insuplc_admdvs: String,
    pub psn_no: String,
    pub reason: String,
    pub msgid: String,
}

/// A visit's registration as sent (2201): the claim it would settle, less its lines and account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub msgid: String,
    pub psn_no: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    pub fixmedins_code: String,
    pub hosp_lv: u32,
    pub med_type: String,
    pub dise_code: String,
    pub prescribing_hosp_lv: u32,
    pub begntime: String,
    pub ipt_otp_no: String,
    pub prescribing_fixmedins_code: String,
}

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
    c: &ClaimDraft,
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
