//! Shared helpers for the engine's tests: the bundled rules, and a compact way to state a claim.
#![allow(dead_code)]

use chrono::NaiveDate;
use region_adapter::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::OnceLock;

pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| region_adapter::bundled::rules().expect("bundled rules load"))
}

pub fn adm(s: &str) -> Admdvs {
    Admdvs::parse(s).unwrap()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A line `(code, qty, unit price)`; the amount is qty × price rounded to the fen.
pub fn line(code: &'static str, qty: &str, price: &str) -> LineInput<'static> {
    let qty = Decimal::from_str(qty).unwrap();
    let unit_price = Decimal::from_str(price).unwrap();
    let amount_fen = region_adapter::money::yuan_to_fen_rounded(qty * unit_price).unwrap();
    LineInput { code, qty, unit_price, amount_fen }
}

/// 甲类 items without a price cap in every sample catalogue, so the whole amount is in scope.
pub const CLASS_A_NO_CAP: &str = "001201000010000"; // 肌肉注射

/// A claim of `yuan` yuan, entirely in scope.
pub fn in_scope(yuan: u32) -> Vec<LineInput<'static>> {
    vec![line(CLASS_A_NO_CAP, "1", &yuan.to_string())]
}

pub struct Case<'a> {
    pub insured: &'a str,
    pub mdtrt: &'a str,
    pub date: &'a str,
    pub level: u32,
    pub med_type: MedType,
    pub prescribing: Option<u32>,
    pub dise_code: Option<&'a str>,
    pub member: MemberFacts<'a>,
    pub state: YearState,
    pub account: Option<AccountSource>,
    pub acct_used: bool,
    pub pharmacy_designated: bool,
}

impl<'a> Case<'a> {
    pub fn new(insured: &'a str, mdtrt: &'a str, date: &'a str, level: u32, psn_type: PsnType) -> Case<'a> {
        Case {
            insured,
            mdtrt,
            date,
            level,
            med_type: MedType::GeneralOutpatient,
            prescribing: None,
            dise_code: None,
            member: MemberFacts { psn_type, retire_date: None, pooling_only: false, filings: &[], in_arrears: false },
            state: YearState::default(),
            account: None,
            acct_used: false,
            pharmacy_designated: true,
        }
    }

    pub fn settle(&self, lines: &[LineInput<'_>]) -> Result<Settled, EngineError> {
        let r = rules();
        let service = r.region(adm(self.mdtrt)).expect("service location pack");
        let insured = r.region(adm(self.insured)).expect("insured pack");
        let d = date(self.date);
        let priced = service.catalogue.price(d, lines)?;
        let visit = Visit {
            date: d,
            mdtrt_admdvs: adm(self.mdtrt),
            hosp_lv: Level::new(self.level).unwrap(),
            med_type: self.med_type,
            prescribing_lv: self.prescribing.and_then(Level::new),
            dise_code: self.dise_code,
            acct_used: self.acct_used,
            pharmacy_designated: self.pharmacy_designated,
        };
        insured.apply_policy(&priced, &self.member, self.state, self.account, &visit)
    }
}

/// Yuan as fen, for readable expectations: `y("240.00")`.
pub fn y(s: &str) -> i64 {
    region_adapter::money::yuan_to_fen_exact(Decimal::from_str(s).unwrap()).unwrap()
}

/// A filing for the whole of a province or a city, open-ended from 2020.
pub fn filing(mdtrt: &str) -> Filing {
    Filing { mdtrt_admdvs: adm(mdtrt), begin: date("2020-01-01"), end: None, group: None }
}
