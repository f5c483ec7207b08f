//! The engine's errors. Each names the claim field at fault, so the service can answer with a
//! field path (google.rpc.BadRequest) without knowing engine internals.

use crate::codes::Admdvs;
use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("a claim needs at least one line")]
    NoLines,
    #[error("{got} lines; at most {max} per claim")]
    TooManyLines { got: usize, max: usize },
    #[error("line {line}: malformed catalogue code (drug X/Z+11 characters, service 15 digits, consumable C+26 digits)")]
    MalformedCode { line: usize },
    #[error("line {line}: quantity must be > 0, at most 10000, with at most 4 decimals")]
    BadQuantity { line: usize },
    #[error("line {line}: unit price must be ≥ 0, at most 1000000, with at most 6 decimals")]
    BadPrice { line: usize },
    #[error("line {line}: amount must be ≥ 0 and at most 1000000.00")]
    BadAmount { line: usize },
    #[error("line {line}: det_item_fee_sumamt is not cnt × pric rounded to the fen")]
    LineAmountMismatch { line: usize },
    #[error("claim total above 1000000.00")]
    ClaimTooLarge,
    #[error("no policy of {admdvs} is in force on {date}")]
    NoPolicyOnDate { admdvs: Admdvs, date: NaiveDate },
    #[error("a pharmacy claim (med_type 41) needs prescribing_hosp_lv 1, 2 or 3")]
    MissingPrescribingLevel,
    #[error("a chronic-disease claim (med_type 14) needs dise_code")]
    MissingDiseaseCode,
    #[error("disease {code:?} is not on {admdvs}'s chronic/special-disease list")]
    UnknownDisease { admdvs: Admdvs, code: String },
    #[error("{admdvs}'s policy does not allow family mutual aid (家庭共济)")]
    FamilyAidNotAllowed { admdvs: Admdvs },
    #[error("settlement invariant broken: {0}")]
    Invariant(&'static str),
}

impl EngineError {
    /// The claim field at fault, as a path in the `Claim` message.
    pub fn field(&self) -> String {
        match self {
            EngineError::NoLines | EngineError::TooManyLines { .. } | EngineError::ClaimTooLarge => "lines".into(),
            EngineError::MalformedCode { line } => format!("lines[{line}].hilist_code"),
            EngineError::BadQuantity { line } => format!("lines[{line}].cnt"),
            EngineError::BadPrice { line } => format!("lines[{line}].pric"),
            EngineError::BadAmount { line } | EngineError::LineAmountMismatch { line } => {
                format!("lines[{line}].det_item_fee_sumamt")
            }
            EngineError::NoPolicyOnDate { .. } => "setl_time".into(),
            EngineError::MissingPrescribingLevel => "prescribing_hosp_lv".into(),
            EngineError::MissingDiseaseCode | EngineError::UnknownDisease { .. } => "dise_code".into(),
            EngineError::FamilyAidNotAllowed { .. } => "acct_payer_psn_no".into(),
            EngineError::Invariant(_) => "".into(),
        }
    }
}
