//! Pricing a claim's lines against the service location's catalogue (就医地目录), ARCHITECTURE.md, Money, step 1.
//! Per line, the amount splits into full self-pay, over-cap self-pay, self-pay-first and in-scope;
//! each split is rounded half away from zero to the fen, per line.

use crate::codes::code_kind;
use crate::error::EngineError;
use crate::limits::*;
use crate::model::{Catalogue, ItemClass};
use crate::money::{apply_ratio, yuan_to_fen_rounded};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// One line as the service location sent it.
#[derive(Debug, Clone, Copy)]
pub struct LineInput<'a> {
    /// `hilist_code`.
    pub code: &'a str,
    /// `cnt`.
    pub qty: Decimal,
    /// `pric`, yuan per unit.
    pub unit_price: Decimal,
    /// `det_item_fee_sumamt`, fen; must equal `qty × unit_price` rounded to the fen.
    pub amount_fen: i64,
}

/// The split of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PricedLine {
    /// Catalogue class, `None` when the code is not in the catalogue on the visit date.
    pub class: Option<ItemClass>,
    /// Self-pay-first share applied (乙类), basis points.
    pub selfpay_prop_bp: u32,
    /// `det_item_fee_sumamt`.
    pub amount_fen: i64,
    /// 全自费 `fulamt_ownpay_amt`: not in the catalogue, or 丙类.
    pub fulamt_ownpay_fen: i64,
    /// 超限价自费 `overlmt_selfpay`: (price − cap) × qty.
    pub overlmt_selfpay_fen: i64,
    /// 先行自付 `preselfpay_amt`: allowed × selfpay_prop for 乙类.
    pub preselfpay_fen: i64,
    /// 符合政策范围金额 `inscp_scp_amt`.
    pub inscp_fen: i64,
    /// The item's unit price cap (`pric_uplmt_amt`) on the date, when it has one.
    pub price_cap: Option<rust_decimal::Decimal>,
    /// The catalogue marks the item as spending no personal account may pay.
    pub account_excluded: bool,
    /// A drug, medical device or consumable (list types 101, 102, 301): what the account may pay for
    /// at a pharmacy. `false` for service items and for lines the catalogue does not know.
    pub goods: bool,
    /// Examination or laboratory test (supervision's indicators).
    pub category: Option<crate::model::ItemCategory>,
}

/// Claim-level totals of the pricing split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriceTotals {
    /// `medfee_sumamt`.
    pub medfee_fen: i64,
    pub fulamt_ownpay_fen: i64,
    pub overlmt_selfpay_fen: i64,
    pub preselfpay_fen: i64,
    pub inscp_fen: i64,
}

impl PriceTotals {
    /// Adds one priced line to the totals.
    pub fn add(&mut self, p: &PricedLine) {
        self.medfee_fen += p.amount_fen;
        self.fulamt_ownpay_fen += p.fulamt_ownpay_fen;
        self.overlmt_selfpay_fen += p.overlmt_selfpay_fen;
        self.preselfpay_fen += p.preselfpay_fen;
        self.inscp_fen += p.inscp_fen;
    }
}

/// A priced claim: the per-line splits and their totals. Plain data, so that a remote adapter can
/// send it over the wire and get the same result as the in-process one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Priced {
    pub lines: Vec<PricedLine>,
    pub totals: PriceTotals,
}

/// Checks one line's own numbers; the same checks the service runs before anything else.
pub fn check_line(i: usize, l: &LineInput<'_>) -> Result<(), EngineError> {
    if code_kind(l.code).is_none() {
        return Err(EngineError::MalformedCode { line: i });
    }
    if l.qty <= Decimal::ZERO || l.qty > max_quantity() || l.qty.scale() > MAX_QUANTITY_SCALE {
        return Err(EngineError::BadQuantity { line: i });
    }
    if l.unit_price.is_sign_negative() || l.unit_price > max_unit_price() || l.unit_price.scale() > MAX_PRICE_SCALE {
        return Err(EngineError::BadPrice { line: i });
    }
    if l.amount_fen < 0 || l.amount_fen > MAX_CLAIM_AMOUNT_FEN {
        return Err(EngineError::BadAmount { line: i });
    }
    if yuan_to_fen_rounded(l.qty * l.unit_price) != Some(l.amount_fen) {
        return Err(EngineError::LineAmountMismatch { line: i });
    }
    Ok(())
}

impl Catalogue {
    /// Prices `lines` for a visit on `date`.
    pub fn price(&self, date: NaiveDate, lines: &[LineInput<'_>]) -> Result<Priced, EngineError> {
        if lines.is_empty() {
            return Err(EngineError::NoLines);
        }
        if lines.len() > MAX_LINES_PER_CLAIM {
            return Err(EngineError::TooManyLines { got: lines.len(), max: MAX_LINES_PER_CLAIM });
        }
        let mut out = Priced { lines: Vec::with_capacity(lines.len()), totals: PriceTotals::default() };
        for (i, l) in lines.iter().enumerate() {
            check_line(i, l)?;
            let p = self.price_line(date, l);
            out.totals.add(&p);
            out.lines.push(p);
        }
        if out.totals.medfee_fen > MAX_CLAIM_AMOUNT_FEN {
            return Err(EngineError::ClaimTooLarge);
        }
        Ok(out)
    }

    fn price_line(&self, date: NaiveDate, l: &LineInput<'_>) -> PricedLine {
        let amount = l.amount_fen;
        let Some(item) = self.lookup(l.code, date) else {
            return PricedLine { amount_fen: amount, fulamt_ownpay_fen: amount, ..Default::default() };
        };
        let account_excluded = item.account_excluded.is_some();
        let category = item.category;
        let goods = matches!(&*item.list_type, "101" | "102" | "301");
        if item.class == ItemClass::C {
            return PricedLine {
                class: Some(ItemClass::C),
                amount_fen: amount,
                fulamt_ownpay_fen: amount,
                account_excluded,
                category,
                goods,
                ..Default::default()
            };
        }
        // Over the unit-price cap: (price − cap) × qty is the patient's (超限价自费), never more than the line.
        let overlmt = match item.price_cap {
            Some(cap) if l.unit_price > cap => yuan_to_fen_rounded((l.unit_price - cap) * l.qty).unwrap_or(amount).min(amount),
            _ => 0,
        };
        let allowed = amount - overlmt;
        let prop = item.selfpay_prop_bp.unwrap_or(0);
        let preselfpay = if item.class == ItemClass::B { apply_ratio(allowed, prop) } else { 0 };
        PricedLine {
            class: Some(item.class),
            selfpay_prop_bp: if item.class == ItemClass::B { prop } else { 0 },
            amount_fen: amount,
            fulamt_ownpay_fen: 0,
            overlmt_selfpay_fen: overlmt,
            preselfpay_fen: preselfpay,
            inscp_fen: allowed - preselfpay,
            price_cap: item.price_cap,
            account_excluded,
            category,
            goods,
        }
    }
}
