//! Every bound the engine enforces, in one place, each with the reason for its number.

use rust_decimal::Decimal;

/// Lines in one claim. An outpatient visit or a pharmacy fill rarely has more than a few dozen
/// lines; 100 bounds the work and the message size of one claim while leaving ample room.
pub const MAX_LINES_PER_CLAIM: usize = 100;

/// Quantity of one line. Outpatient quantities are units of a drug or service; above 10,000 it is a
/// data error, not a visit.
pub fn max_quantity() -> Decimal {
    Decimal::from(10_000)
}

/// Decimal places of a quantity (national `cnt` is decimal(16,4)).
pub const MAX_QUANTITY_SCALE: u32 = 4;

/// Unit price bound: 1,000,000 yuan. No outpatient item costs more per unit.
pub fn max_unit_price() -> Decimal {
    Decimal::from(1_000_000)
}

/// Decimal places of a unit price (national `pric` is decimal(16,6)).
pub const MAX_PRICE_SCALE: u32 = 6;

/// Total of one line and of one claim, in fen: 1,000,000 yuan. An outpatient claim above it is an
/// error, and the bound keeps every sum of lines far below overflow.
pub const MAX_CLAIM_AMOUNT_FEN: i64 = 100_000_000;
