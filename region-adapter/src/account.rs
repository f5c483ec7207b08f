//! Monthly personal-account credits (个人账户计入). Not part of settling a claim, but part of a
//! region's policy that operators query, with dated transitions such as Jiangsu's 2022/2023/2024 steps.

use crate::model::{MemberClass, PolicyVersion, Provenance, RetiredCredit};
use crate::money::{apply_ratio, fmt_ratio, fmt_yuan};
use chrono::{Datelike, NaiveDate};

/// What a credit may be computed from, fen a month.
#[derive(Debug, Clone, Copy, Default)]
pub struct CreditBasis {
    pub contribution_base_fen: i64,
    pub own_pension_fen: i64,
    /// The member's own monthly credit in the previous year (for "keep last year's amount"): a
    /// registry fact the insured platform gives (Jiangsu's 2022 credit) or the credit recorded here;
    /// 0 = not on record.
    pub previous_year_credit_fen: i64,
    /// Years under 统账结合 and insured years in all (0 = not on record).
    pub combined_years: u32,
    pub insured_years: u32,
    /// Whether a retiree reached the required contribution years (达到缴费年限); `None` = not on record.
    pub reached_required_years: Option<bool>,
    /// The month is in a period of arrears on record (contributions not paid).
    pub in_arrears: bool,
}

/// What one member is credited for one month, or why nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberCredit {
    /// `rule`: the rule and its source without the member's own numbers (for a run's summary).
    Credit {
        fen: i64,
        explanation: String,
        rule: String,
    },
    Nothing {
        reason: String,
    },
}

/// The monthly credit of one member on `date` (the month's first day), by the region's rule in force,
/// with its explanation citing the sources; `Nothing` with the reason when the rule gives none or a
/// fact it needs is not on record.
pub fn member_credit(policy: &PolicyVersion, class: MemberClass, pooling_only: bool, date: NaiveDate, basis: CreditBasis) -> MemberCredit {
    let a = &policy.account;
    let nothing = |reason: String| MemberCredit::Nothing { reason };
    if pooling_only && !a.pooling_only_has_account.value {
        return nothing(format!("pooling-only (单建统筹): no personal account ({})", a.pooling_only_has_account.provenance));
    }
    let Some((fen, source)) = monthly_credit_fen(policy, class, date, basis) else {
        return nothing(format!("no retired credit rule in force on {date}"));
    };
    let (step, rule) = match class {
        MemberClass::InService => {
            let arrears = &policy.contributions.no_credit_in_arrears;
            if basis.in_arrears && arrears.value {
                return nothing(format!("in service, in arrears this month: no contribution paid, no credit ({})", arrears.provenance));
            }
            if basis.contribution_base_fen <= 0 {
                return nothing("in service without a contribution base on record".into());
            }
            let share = fmt_ratio(a.in_service_share_bp.value);
            (
                format!("in service: {share} × contribution base {}", fmt_yuan(basis.contribution_base_fen)),
                format!("in service: {share} × the contribution base"),
            )
        }
        MemberClass::Retired => match a.retired.iter().rev().find(|s| s.from <= date).map(|s| s.rule.value.clone()) {
            Some(RetiredCredit::FixedMonthly(f)) => {
                ("retired: a fixed monthly amount".to_string(), format!("retired: {} a month", fmt_yuan(f)))
            }
            Some(RetiredCredit::ShareOfAveragePension { share_bp, average_pension_monthly_fen, average_pension }) => {
                // A placeholder average is named as one wherever the credit is explained.
                let of = match &average_pension {
                    p @ Provenance::Placeholder(_) => format!(" ({p})"),
                    _ => String::new(),
                };
                let r = format!("retired: {} × average pension {}{of}", fmt_ratio(share_bp), fmt_yuan(average_pension_monthly_fen));
                (r.clone(), r)
            }
            Some(RetiredCredit::ShareOfOwnPension { share_bp }) => {
                if basis.own_pension_fen <= 0 {
                    return nothing("retired without an own pension on record".into());
                }
                (
                    format!("retired: {} × own pension {}", fmt_ratio(share_bp), fmt_yuan(basis.own_pension_fen)),
                    format!("retired: {} × the own pension", fmt_ratio(share_bp)),
                )
            }
            Some(RetiredCredit::KeepPreviousYear) => {
                if fen <= 0 {
                    return nothing(format!(
                        "retired: the rule keeps the member's own monthly credit of {}, which is not on record (registry fact monthly_credit_{}) ({source})",
                        date.year() - 1,
                        date.year() - 1
                    ));
                }
                ("retired: last year's monthly credit, kept".to_string(), "retired: last year's monthly credit, kept".to_string())
            }
            None => return nothing(format!("no retired credit rule in force on {date}")),
        },
    };
    let mut rule = format!("{rule} ({source})");
    let mut explanation = format!("{step} = {} ({source})", fmt_yuan(fen));
    let mut fen = fen;
    if class == MemberClass::Retired
        && let Some(p) = &a.mixed_years_pro_rata
        && p.value
        && basis.insured_years > 0
        && basis.combined_years < basis.insured_years
    {
        // The rule is for retirees who reached the required contribution years (退休后达到缴费年限的); the
        // seed gives no credit for one who did not, so none is made (an assumption, the conservative
        // reading). A fact not on record skips the month: the member is credited once it arrives (a
        // pro-rated 0 recorded now would block the month for good).
        match basis.reached_required_years {
            None => {
                return nothing(format!(
                    "retired, alternated 统账结合 and 单建统筹: whether the required contribution years were reached is not on record (registry fact reached_required_years) ({})",
                    p.provenance
                ));
            }
            Some(false) => {
                return nothing(format!(
                    "retired, alternated 统账结合 and 单建统筹 without reaching the required contribution years: the rule credits only those who reached them, and the seed gives no other ({})",
                    p.provenance
                ));
            }
            Some(true) => {}
        }
        if basis.combined_years == 0 {
            return nothing(format!("retired: years under 统账结合 not on record, needed to pro-rate ({})", p.provenance));
        }
        // Half away from zero to the fen (credits are positive).
        let (num, den) = (fen as i128 * basis.combined_years as i128, basis.insured_years as i128);
        let pro = ((2 * num + den) / (2 * den)) as i64;
        explanation +=
            &format!("; × {}/{} years under 统账结合 = {} ({})", basis.combined_years, basis.insured_years, fmt_yuan(pro), p.provenance);
        fen = pro;
        rule += &format!("; pro rata to the years under 统账结合 ({})", p.provenance);
    }
    MemberCredit::Credit { fen, explanation, rule }
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
                RetiredCredit::ShareOfAveragePension { share_bp, average_pension_monthly_fen, .. } => {
                    apply_ratio(average_pension_monthly_fen, share_bp)
                }
                RetiredCredit::ShareOfOwnPension { share_bp } => apply_ratio(basis.own_pension_fen, share_bp),
                // The member's own monthly credit of last year, on record or 0 (no guess: a rule
                // that keeps an amount keeps the member's, Jiangsu 000 §三 Q5).
                RetiredCredit::KeepPreviousYear => basis.previous_year_credit_fen,
            };
            Some((fen, &step.rule.provenance))
        }
    }
}
