//! Monthly personal-account credits (个人账户计入). Not part of settling a claim, but part of a
//! region's policy that operators query, with dated transitions such as Jiangsu's 2022/2023/2024 steps.

use crate::model::{MemberClass, PolicyVersion, Provenance, RetiredCredit};
use crate::money::apply_ratio;
use chrono::NaiveDate;

/// What a credit may be computed from, fen a month.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreditBasis {
    pub contribution_base_fen: i64,
    pub own_pension_fen: i64,
    /// The member's own monthly credit in the previous year (for "keep last year's amount").
    pub previous_year_credit_fen: i64,
}

/// The monthly credit for a member of `class` on `date`, and the rule it comes from. `None` when no
/// retired step has started yet on `date`.
pub fn monthly_credit_fen(policy: &PolicyVersion, class: MemberClass, date: NaiveDate, basis: CreditBasis) -> Option<(i64, &Provenance)> {
    let a = &policy.account;
    match class {
        MemberClass::InService => {
            Some((apply_ratio(basis.contribution_base_fen, a.in_service_share_bp.value), &a.in_service_share_bp.provenance))
        }
        MemberClass::Retired => {
            let step = a.retired.iter().rev().find(|s| s.from <= date)?;
            let fen = match step.rule.value {
                RetiredCredit::FixedMonthly(f) => f,
                RetiredCredit::ShareOfAveragePension { share_bp, average_pension_monthly_fen } => {
                    apply_ratio(average_pension_monthly_fen, share_bp)
                }
                RetiredCredit::ShareOfOwnPension { share_bp } => apply_ratio(basis.own_pension_fen, share_bp),
                RetiredCredit::KeepPreviousYear => basis.previous_year_credit_fen,
            };
            Some((fen, &step.rule.provenance))
        }
    }
}
