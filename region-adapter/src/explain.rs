//! Human-readable explanation of a settlement: each step names the rule and its source, e.g.
//! `deductible 500.00 left 320.00 → applied 320.00 (随州市 art. 8 [003_….txt], in service)`.
//!
//! Steps are small values built on the hot path; they are rendered to text only when a response
//! is built, so pricing and policy stay free of string formatting.

use crate::codes::{Admdvs, Level};
use crate::model::{MemberClass, Provenance};
use crate::money::{RatioBp, fmt_percent, fmt_yuan};
use crate::pricing::PriceTotals;
use chrono::NaiveDate;
use std::sync::Arc;

/// One step of a settlement's explanation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Pricing {
        region: Arc<str>,
        totals: PriceTotals,
        sample: bool,
    },
    MemberClass {
        region: Arc<str>,
        class: MemberClass,
        retired_from: Option<NaiveDate>,
        source: Provenance,
    },
    Filed {
        region: Arc<str>,
        filing: Admdvs,
        group: Option<crate::codes::FilingGroup>,
        source: Provenance,
    },
    NotFiled {
        region: Arc<str>,
        mdtrt: Admdvs,
        source: Provenance,
    },
    UnfiledCut {
        region: Arc<str>,
        cut_bp: RatioBp,
        source: Provenance,
    },
    /// Contributions unpaid for the visit date: no fund pay.
    InArrears {
        region: Arc<str>,
        source: Provenance,
    },
    /// Lines (0-based) the account does not pay: public health, fitness, wellness.
    AccountExcluded {
        region: Arc<str>,
        lines: Vec<usize>,
        amount_fen: i64,
        /// Kept off because a pharmacy's account pays only drugs, devices and consumables (otherwise:
        /// public health, fitness or wellness spending).
        pharmacy: bool,
        source: Provenance,
    },
    /// A pharmacy fill (外配处方) and the level its ratio is taken at.
    PharmacyLevel {
        region: Arc<str>,
        level: Level,
        prescribing: bool,
        source: Provenance,
    },
    /// A pharmacy fill at a pharmacy the institution list does not designate for outpatient pooling.
    PharmacyNotDesignated {
        region: Arc<str>,
    },
    BelowMinLevel {
        region: Arc<str>,
        level: Level,
        min: Level,
        source: Provenance,
    },
    Deductible {
        region: Arc<str>,
        class: MemberClass,
        deductible_fen: i64,
        left_fen: i64,
        applied_fen: i64,
        source: Provenance,
    },
    Ratio {
        region: Arc<str>,
        class: MemberClass,
        level: Level,
        pharmacy: bool,
        ratio_bp: RatioBp,
        base_fen: i64,
        result_fen: i64,
        source: Provenance,
    },
    Cap {
        region: Arc<str>,
        class: MemberClass,
        cap_fen: i64,
        left_fen: i64,
        paid_fen: i64,
        source: Provenance,
    },
    NoAccount {
        region: Arc<str>,
        source: Provenance,
    },
    Account {
        region: Arc<str>,
        family: bool,
        part_fen: i64,
        balance_fen: i64,
        paid_fen: i64,
        source: Provenance,
    },
}

impl Step {
    /// The step as one line of text.
    pub fn render(&self) -> String {
        match self {
            Step::Pricing { region, totals: t, sample } => format!(
                "priced with {region}'s catalogue{}: total {} = full self-pay {} + over price cap {} + self-pay first {} + in scope {}",
                if *sample { " (sample)" } else { "" },
                fmt_yuan(t.medfee_fen),
                fmt_yuan(t.fulamt_ownpay_fen),
                fmt_yuan(t.overlmt_selfpay_fen),
                fmt_yuan(t.preselfpay_fen),
                fmt_yuan(t.inscp_fen)
            ),
            Step::MemberClass { region, class, retired_from, source } => match retired_from {
                Some(d) => format!("member class {} on the visit date (retiree terms from {d}) ({region} {source})", class.label()),
                None => format!("member class {} ({region}, registered person type)", class.label()),
            },
            Step::Filed { region, filing, group: None, source } => {
                format!("filing for {filing} covers the service location ({region} {source})")
            }
            Step::Filed { region, filing, group: Some(g), source } => {
                format!("filing for {filing} ({}) covers the service location ({region} {source})", g.label())
            }
            Step::NotFiled { region, mdtrt, source } => {
                format!("no filing covers {mdtrt}: a visit outside the region is not paid by the fund ({region} {source})")
            }
            Step::UnfiledCut { region, cut_bp, source } => format!("no filing: ratio cut by {} ({region} {source})", fmt_percent(*cut_bp)),
            Step::PharmacyNotDesignated { region } => format!(
                "the pharmacy is not designated for outpatient pooling (the institution list): the fund pays nothing; the account and cash pay as the rules allow ({region}; Suizhou 003 art. 20–21, Shanxi 001 §二(二), Tongliao 004 Q4 name designated pharmacies)"
            ),
            Step::InArrears { region, source } => format!(
                "contributions were not paid on time for the visit date: the fund pays nothing; the account and cash still pay ({region} {source})"
            ),
            Step::AccountExcluded { region, lines, amount_fen, pharmacy, source } => format!(
                "the account pays nothing for {} ({}, {}): cash pays ({region} {source})",
                lines.iter().map(|i| format!("lines[{i}]")).collect::<Vec<_>>().join(", "),
                if *pharmacy {
                    "at a pharmacy the account pays only drugs, medical devices and consumables the catalogue lists"
                } else {
                    "public health, fitness or wellness spending"
                },
                fmt_yuan(*amount_fen)
            ),
            Step::PharmacyLevel { region, level, prescribing: true, source } => {
                format!("pharmacy fill: paid at the prescribing institution's {level} ({region} {source})")
            }
            Step::PharmacyLevel { region, level, prescribing: false, source } => {
                format!("pharmacy fill: paid at {level}, the region's rule for pharmacies ({region} {source})")
            }
            Step::BelowMinLevel { region, level, min, source } => {
                format!("{level} is below the minimum {min} for this visit: not paid by the fund ({region} {source})")
            }
            Step::Deductible { region, class, deductible_fen, left_fen, applied_fen, source } => format!(
                "deductible {} left {} → applied {} ({region} {source}, {})",
                fmt_yuan(*deductible_fen),
                fmt_yuan(*left_fen),
                fmt_yuan(*applied_fen),
                class.label()
            ),
            Step::Ratio { region, class, level, pharmacy, ratio_bp, base_fen, result_fen, source } => format!(
                "{} × {} at {level}{} = {} ({region} {source}, {})",
                fmt_yuan(*base_fen),
                fmt_percent(*ratio_bp),
                if *pharmacy { " (prescribing institution)" } else { "" },
                fmt_yuan(*result_fen),
                class.label()
            ),
            Step::Cap { region, class, cap_fen, left_fen, paid_fen, source } => format!(
                "yearly cap {} left {} → fund pays {} ({region} {source}, {})",
                fmt_yuan(*cap_fen),
                fmt_yuan(*left_fen),
                fmt_yuan(*paid_fen),
                class.label()
            ),
            Step::NoAccount { region, source } => {
                format!("pooling-only member: no personal account ({region} {source})")
            }
            Step::Account { region, family, part_fen, balance_fen, paid_fen, source } => format!(
                "{} account balance {} pays {} of the patient's part {}{}",
                if *family { "family member's" } else { "own" },
                fmt_yuan(*balance_fen),
                fmt_yuan(*paid_fen),
                fmt_yuan(*part_fen),
                if *family { format!(" ({region} {source})") } else { String::new() }
            ),
        }
    }
}

impl crate::model::RegionPack {
    /// The explanation step for pricing with this (service location's) catalogue.
    pub fn pricing_step(&self, totals: PriceTotals) -> Step {
        Step::Pricing { region: self.name.clone(), totals, sample: self.catalogue.sample }
    }
}
