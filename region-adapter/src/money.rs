//! Exact money: integer fen (分, 1/100 yuan) everywhere inside the engine, ratios in basis points
//! (1/10,000), and the one rounding rule of the project, half away from zero to the fen.
//!
//! Decimals (`rust_decimal`) appear only where amounts enter or leave: rule packs, wire strings,
//! and the unit-price arithmetic of catalogue pricing. Floats never appear.

use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt::Write as _;

/// A ratio in basis points: 10,000 = 100%. Policy ratios (80%, 97.5%) and the self-pay-first share
/// of 乙类 items are all multiples of 0.01%, so basis points are exact for every seed value.
pub type RatioBp = u32;

/// 100% in basis points.
pub const RATIO_ONE_BP: RatioBp = 10_000;

/// The largest amount the engine accepts anywhere, in fen: 100 million yuan. An outpatient claim or a
/// yearly cap above this is a data error, and the bound keeps every product below i64/i128 overflow.
pub const MAX_AMOUNT_FEN: i64 = 10_000_000_000;

/// `amount × ratio`, rounded half away from zero to the fen. The single rounding point for ratios.
pub fn apply_ratio(amount_fen: i64, ratio_bp: RatioBp) -> i64 {
    let product = amount_fen as i128 * ratio_bp as i128;
    let denom = RATIO_ONE_BP as i128;
    let half = denom / 2;
    let rounded = if product >= 0 { (product + half) / denom } else { -((-product + half) / denom) };
    rounded as i64
}

/// A decimal number of yuan rounded half away from zero to the fen. The single rounding point for
/// unit-price arithmetic. `None` when the value does not fit the engine's bound.
pub fn yuan_to_fen_rounded(yuan: Decimal) -> Option<i64> {
    // Checked: a hostile 28-digit amount must be refused, not overflow (found by clearing/service/tests/fuzz.rs).
    let fen = yuan.checked_mul(Decimal::ONE_HUNDRED)?.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
    let fen: i64 = fen.try_into().ok()?;
    (fen.abs() <= MAX_AMOUNT_FEN).then_some(fen)
}

/// A decimal number of yuan that must already be exact to the fen (wire amounts, rule-pack amounts).
/// `None` when it has more than two decimals or exceeds the bound.
pub fn yuan_to_fen_exact(yuan: Decimal) -> Option<i64> {
    let fen = yuan.checked_mul(Decimal::ONE_HUNDRED)?;
    if !fen.fract().is_zero() {
        return None;
    }
    let fen: i64 = fen.trunc().try_into().ok()?;
    (fen.abs() <= MAX_AMOUNT_FEN).then_some(fen)
}

/// A ratio given as a decimal fraction (`0.85`) in basis points; `None` unless it is within 0..=1 and
/// a whole number of basis points.
pub fn ratio_to_bp(ratio: Decimal) -> Option<RatioBp> {
    if ratio.is_sign_negative() && !ratio.is_zero() || ratio > Decimal::ONE {
        return None;
    }
    let bp = ratio * Decimal::from(RATIO_ONE_BP);
    if !bp.fract().is_zero() {
        return None;
    }
    bp.trunc().try_into().ok()
}

/// Fen as the wire's yuan string with exactly two decimals: `130000` → `"1300.00"`, `-18000` → `"-180.00"`.
pub fn fmt_yuan(fen: i64) -> String {
    let mut s = String::with_capacity(16);
    write_yuan(&mut s, fen);
    s
}

/// Appends the yuan form of `fen` to `out` (see [`fmt_yuan`]).
pub fn write_yuan(out: &mut String, fen: i64) {
    if fen < 0 {
        out.push('-');
    }
    let abs = fen.unsigned_abs();
    let _ = write!(out, "{}.{:02}", abs / 100, abs % 100);
}

/// A basis-point ratio as the wire's decimal string: `8500` → `"0.85"`, `9750` → `"0.975"`.
pub fn fmt_ratio(bp: RatioBp) -> String {
    (Decimal::from(bp) / Decimal::from(RATIO_ONE_BP)).normalize().to_string()
}

/// A basis-point ratio as a percentage for explanations: `8500` → `"85%"`, `9750` → `"97.5%"`.
pub fn fmt_percent(bp: RatioBp) -> String {
    format!("{}%", (Decimal::from(bp) / Decimal::ONE_HUNDRED).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn ratio_rounding_is_half_away_from_zero() {
        // 0.05 fen boundaries: 1 fen × 50% = 0.5 fen → 1 fen; −1 fen × 50% → −1 fen.
        assert_eq!(apply_ratio(1, 5_000), 1);
        assert_eq!(apply_ratio(-1, 5_000), -1);
        assert_eq!(apply_ratio(3, 5_000), 2);
        assert_eq!(apply_ratio(80_000, 7_000), 56_000);
        assert_eq!(apply_ratio(12_345, 8_500), 10_493); // 10493.25 → 10493
        assert_eq!(apply_ratio(12_347, 8_500), 10_495); // 10494.95 → 10495
    }

    #[test]
    fn decimal_conversions_are_exact_or_refused() {
        assert_eq!(yuan_to_fen_exact(dec!(1300.00)), Some(130_000));
        assert_eq!(yuan_to_fen_exact(dec!(0.015)), None);
        assert_eq!(yuan_to_fen_rounded(dec!(0.015)), Some(2));
        assert_eq!(yuan_to_fen_rounded(dec!(-0.015)), Some(-2));
        assert_eq!(yuan_to_fen_exact(dec!(1000000000)), None);
        assert_eq!(ratio_to_bp(dec!(0.85)), Some(8_500));
        assert_eq!(ratio_to_bp(dec!(0.975)), Some(9_750));
        assert_eq!(ratio_to_bp(dec!(1.2)), None);
        assert_eq!(ratio_to_bp(dec!(-0.1)), None);
        assert_eq!(ratio_to_bp(dec!(0.00001)), None);
    }

    #[test]
    fn hostile_magnitudes_are_refused_not_overflowed() {
        assert_eq!(yuan_to_fen_exact(Decimal::MAX), None);
        assert_eq!(yuan_to_fen_rounded(Decimal::MIN), None);
        assert_eq!(yuan_to_fen_exact(dec!(1000000.00)), Some(100_000_000));
    }

    #[test]
    fn yuan_strings_have_two_decimals() {
        assert_eq!(fmt_yuan(130_000), "1300.00");
        assert_eq!(fmt_yuan(0), "0.00");
        assert_eq!(fmt_yuan(-18_000), "-180.00");
        assert_eq!(fmt_yuan(-5), "-0.05");
        assert_eq!(fmt_ratio(8_500), "0.85");
        assert_eq!(fmt_percent(9_750), "97.5%");
    }
}
