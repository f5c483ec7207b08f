//! Field checks every server of ours shares: each problem of a request is collected with its field
//! path (so a caller learns all of them at once) and reported as `INVALID_ARGUMENT` with
//! `google.rpc.BadRequest` details.

use crate::limits::{MAX_MSGID_LEN, MAX_PSN_NO_LEN};
use chrono::NaiveDate;
use region_adapter::Admdvs;
use region_adapter::money::{fmt_yuan, yuan_to_fen_exact};
use rust_decimal::Decimal;
use std::str::FromStr;
use tonic_types::FieldViolation;

/// Collects violations so a caller learns every problem of a request at once.
#[derive(Default)]
pub struct Violations(pub Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }
    pub fn into_result<T>(self, ok: T) -> Result<T, crate::error::ServiceError> {
        if self.0.is_empty() { Ok(ok) } else { Err(crate::error::ServiceError::Invalid(self.0)) }
    }
}

/// 1–`max` ASCII letters and digits, plus the bytes of `extra`.
pub fn id_like(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

pub fn check_msgid(v: &mut Violations, field: &str, s: &str) {
    if !id_like(s, MAX_MSGID_LEN, b"_.-") {
        v.add(field, format!("must be 1–{MAX_MSGID_LEN} characters of A–Z a–z 0–9 _ . -"));
    }
}

pub fn check_psn_no(v: &mut Violations, field: &str, s: &str) {
    if !id_like(s, MAX_PSN_NO_LEN, b"") {
        v.add(field, format!("must be 1–{MAX_PSN_NO_LEN} letters or digits"));
    }
}

/// A known pooling region (one with a rule pack).
pub fn check_region(v: &mut Violations, field: &str, s: &str, known: &dyn Fn(Admdvs) -> bool) -> Option<Admdvs> {
    match Admdvs::parse(s) {
        None => {
            v.add(field, "must be a 6-digit division code");
            None
        }
        Some(a) if !known(a) => {
            v.add(field, format!("unknown region {a}: no rule pack is loaded for it"));
            None
        }
        Some(a) => Some(a),
    }
}

pub fn parse_date(v: &mut Violations, field: &str, s: &str) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if (2000..=2100).contains(&chrono::Datelike::year(&d)) => Some(d),
        _ => {
            v.add(field, "must be a date YYYY-MM-DD between 2000 and 2100");
            None
        }
    }
}

/// A wire amount in yuan that must be exact to the fen, ≥ 0 and at most `max_fen`.
pub fn parse_money(v: &mut Violations, field: &str, s: &str, max_fen: i64) -> Option<i64> {
    let fen = Decimal::from_str(s).ok().filter(|d| d.scale() <= 2).and_then(yuan_to_fen_exact);
    match fen {
        Some(f) if (0..=max_fen).contains(&f) => Some(f),
        Some(_) => {
            v.add(field, format!("must be between 0.00 and {}", fmt_yuan(max_fen)));
            None
        }
        None => {
            v.add(field, "must be a decimal amount in yuan with at most two decimals");
            None
        }
    }
}

/// A signed wire amount ("-180.00") as fen; `None` unless exact to the fen and within bounds.
pub fn signed_fen(s: &str) -> Option<i64> {
    let d = Decimal::from_str(s).ok().filter(|d| d.scale() <= 2)?;
    yuan_to_fen_exact(d)
}

pub fn parse_decimal(v: &mut Violations, field: &str, s: &str) -> Option<Decimal> {
    // Decimal::from_str accepts at most 28 digits; longer input is refused, never truncated.
    if s.is_empty() || s.len() > 32 {
        v.add(field, "must be a decimal number");
        return None;
    }
    match Decimal::from_str(s) {
        Ok(d) => Some(d),
        Err(_) => {
            v.add(field, "must be a decimal number");
            None
        }
    }
}
