//! The hospital's flow: a registered outpatient visit (national 2201) collects fee details as they arise
//! (2204, each priced at once with the service location's catalogue on the visit date; its medical type
//! and disease may be set before by 2203), may lose some
//! (2205) or be cancelled (2202), and is settled (2207) or previewed (2206) by its `mdtrt_id`. Settling a
//! visit is `settle` of a claim made of the visit's lines: the same engine path, the same idempotency
//! (msgid) and window as SettleClaim.
//!
//! State: one versioned record per visit (`visit:<mdtrt_id>`) and one per member listing its open visits
//! (`visits-of:<insured>:<psn_no>`, for the open-visits limit), both in the member's shard (the
//! `mdtrt_id` starts with it), written together with compare-and-set (`VisitRecords::put_visit_records`): two
//! replicas working on one visit never lose a detail; a conflict reloads and applies again.
//!
//! A visit is `open` → `settling` (a settlement under one msgid is being made: details frozen; a resend
//! of that msgid finishes it) → `settled`; or `open` → `cancelled`. Open and cancelled visits past their
//! expiry are swept; settled and settling ones never are.

mod details;
mod info;
mod open;
mod register;
mod settle;
mod sweep;

use crate::claim::{self, ClaimDraft, DraftLine, Registration};
use crate::core::Clearinghouse;
use crate::ids::idempotency_key;
use crate::ids::{shard_of, shard_of_setl_id};
use crate::limits::{
    MAX_COMMIT_ATTEMPTS, MAX_LINES_PER_VISIT, MAX_OPEN_VISITS_PER_INSTITUTION, MAX_OPEN_VISITS_PER_MEMBER, MAX_VISIT_ID_LEN, STALE_SETTLING,
};
use crate::routing::remote::CallCtx;
use crate::store::{MemberKey, Record, RecordWrite, Store, VisitRecords};
use chrono::{DateTime, FixedOffset, Utc};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{Violations, id_like, signed_fen};
use region_adapter::money::{fmt_ratio, fmt_yuan};

pub use crate::record::Settlement;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hospital's flow over one clearinghouse: its store (visits and open-visit lists), its router
/// (pricing details), its institution list and its settlement path (a visit settles as a claim).
pub struct Visits<'a, S: Store> {
    ch: &'a Clearinghouse<S>,
}

impl<S: Store> Clearinghouse<S> {
    /// The visit operations (2201–2207 by `mdtrt_id`, the sweep).
    pub fn visits(&self) -> Visits<'_, S> {
        Visits { ch: self }
    }
}

/// Placeholder line that lets a registration be validated exactly like a claim (it is never priced).
const PROBE_CODE: &str = "001201000010000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Settling,
    Settled,
    Cancelled,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Settling => "settling",
            Status::Settled => "settled",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A fee detail as sent (2204).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeeDetail {
    pub feedetl_sn: String,
    pub chrg_bchno: String,
    pub hilist_code: String,
    pub cnt: String,
    pub pric: String,
    pub det_item_fee_sumamt: String,
    pub fee_ocur_time: String,
}

/// 2205: the details to cancel, a batch (`chrg_bchno`) or named ones of it (`feedetl_sn`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetailsCancel {
    pub mdtrt_id: String,
    pub chrg_bchno: String,
    pub feedetl_sn: Vec<String>,
}

/// 2206/2207 by `mdtrt_id`: the settlement's own fields (the rest is the visit's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitSettle {
    pub mdtrt_id: String,
    pub msgid: String,
    /// Must be the sum of the visit's details.
    pub medfee_sumamt: String,
    pub acct_used_flag: bool,
    pub acct_payer_psn_no: String,
    /// When given, every detail must be of this batch.
    pub chrg_bchno: String,
    /// When given, must be the visit's medical type.
    pub med_type: String,
}

/// 2203: the visit's medical type and disease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitInfo {
    pub mdtrt_id: String,
    pub psn_no: String,
    pub med_type: String,
    pub dise_code: String,
}

/// 2204's answer: the visit after the upload and each uploaded detail's line with its verdict, in
/// the order sent.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub visit: VisitRecord,
    pub results: Vec<Line>,
}

/// One uploaded detail with the catalogue's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub feedetl_sn: String,
    pub chrg_bchno: String,
    pub hilist_code: String,
    pub cnt: String,
    pub pric: String,
    pub det_item_fee_sumamt: String,
    pub fee_ocur_time: String,
    pub hilist_name: String,
    pub chrgitm_lv: String,
    pub selfpay_prop: String,
    pub pric_uplmt_amt: String,
    pub fulamt_ownpay_amt: String,
    pub overlmt_selfpay: String,
    pub preselfpay_amt: String,
    pub inscp_scp_amt: String,
    /// 医疗收费项目类别 and 限制使用标志 from the catalogue (absent in visits stored before them).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub med_chrgitm_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lmt_used_flag: String,
}

impl Line {
    /// Whether an upload of `d` is this very detail again.
    fn same_as(&self, d: &FeeDetail) -> bool {
        self.chrg_bchno == d.chrg_bchno
            && self.hilist_code == d.hilist_code
            && self.cnt == d.cnt
            && self.pric == d.pric
            && self.det_item_fee_sumamt == d.det_item_fee_sumamt
            && self.fee_ocur_time == d.fee_ocur_time
    }
}

/// A visit as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitRecord {
    pub mdtrt_id: String,
    /// The registration as sent (for the idempotency of RegisterVisit).
    pub registration: String,
    pub psn_no: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    pub fixmedins_code: String,
    pub hosp_lv: u32,
    pub med_type: String,
    pub dise_code: String,
    pub prescribing_hosp_lv: u32,
    /// A pharmacy fill's prescribing institution (absent in visits stored before it existed).
    #[serde(default)]
    pub prescribing_fixmedins_code: String,
    pub begntime: String,
    pub ipt_otp_no: String,
    pub status: Status,
    pub setl_id: String,
    pub setl_msgid: String,
    pub lines: Vec<Line>,
    pub expires_ms: i64,
    /// When the visit entered `settling`, or a resend last worked on it (ms since the epoch; 0 in records
    /// written before it was kept: the sweep stamps those first): the sweep resolves a visit left
    /// settling for `STALE_SETTLING`.
    #[serde(default)]
    pub settling_since_ms: i64,
}

impl VisitRecord {
    /// The sum of the visit's details (fen).
    pub fn sum_fen(&self) -> i64 {
        self.lines.iter().filter_map(|l| signed_fen(&l.det_item_fee_sumamt)).sum()
    }

    /// The status as the wire names it.
    pub fn status_name(&self) -> &'static str {
        self.status.name()
    }

    /// When an unsettled visit expires, in Asia/Shanghai (RFC 3339).
    pub fn expires_at(&self) -> String {
        DateTime::from_timestamp_millis(self.expires_ms)
            .map(|t| t.with_timezone(&crate::calendar::shanghai()).to_rfc3339())
            .unwrap_or_default()
    }

    fn expired(&self, now_ms: i64) -> bool {
        matches!(self.status, Status::Open | Status::Cancelled) && now_ms >= self.expires_ms
    }

    /// Left `settling` long enough that no settlement call can still be working on it.
    fn stuck_settling(&self, now_ms: i64) -> bool {
        self.status == Status::Settling
            && self.settling_since_ms > 0
            && now_ms - self.settling_since_ms >= STALE_SETTLING.as_millis() as i64
    }

    /// The claim this visit settles as: its registration, the settlement's own fields, its lines in
    /// upload order; the visit's start is the settlement time (its date prices and applies policy).
    fn claim(&self, req: &VisitSettle) -> ClaimDraft {
        let lines = self
            .lines
            .iter()
            .map(|l| DraftLine {
                hilist_code: l.hilist_code.clone(),
                cnt: l.cnt.clone(),
                pric: l.pric.clone(),
                det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
            })
            .collect();
        ClaimDraft {
            msgid: req.msgid.clone(),
            acct_used_flag: req.acct_used_flag,
            acct_payer_psn_no: req.acct_payer_psn_no.clone(),
            ..self.claim_of(lines)
        }
    }

    /// A claim of this visit's registration with `lines` (no msgid, no account): what uploads are
    /// validated and priced as, and the base of the settlement's claim.
    fn claim_of(&self, lines: Vec<DraftLine>) -> ClaimDraft {
        ClaimDraft {
            psn_no: self.psn_no.clone(),
            insuplc_admdvs: self.insuplc_admdvs.clone(),
            mdtrt_admdvs: self.mdtrt_admdvs.clone(),
            fixmedins_code: self.fixmedins_code.clone(),
            hosp_lv: self.hosp_lv,
            med_type: self.med_type.clone(),
            dise_code: self.dise_code.clone(),
            prescribing_hosp_lv: self.prescribing_hosp_lv,
            prescribing_fixmedins_code: self.prescribing_fixmedins_code.clone(),
            setl_time: self.begntime.clone(),
            lines,
            ..Default::default()
        }
    }
}

/// An open visit in its member's list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OpenVisit {
    mdtrt_id: String,
    expires_ms: i64,
    /// The visit's service location (1101: a service location may read a member with an open visit there).
    #[serde(default)]
    mdtrt_admdvs: String,
    /// The institution (the per-institution bound; absent in entries stored before it existed).
    #[serde(default)]
    fixmedins_code: String,
}

use crate::store::features::names::{open_visits as member_visits_key, visit as visit_key};

/// The visit id of a registration: the member's shard, then 22 hex digits of SHA-256(service location,
/// institution, msgid), so a resent registration finds its visit, any replica can route by the id
/// alone, and a msgid is the institution's (issue 29: another institution's registration with the same
/// msgid is another visit).
pub fn mdtrt_id_of(insured: &str, psn_no: &str, mdtrt: &str, fixmedins_code: &str, msgid: &str) -> String {
    let h = Sha256::digest(format!("{mdtrt}|{fixmedins_code}|{msgid}").as_bytes());
    format!("{:02x}{}", shard_of(insured, psn_no), &hex::encode(h)[..22])
}

use crate::calendar::now_ms;

fn visit_not_found(mdtrt_id: &str) -> ServiceError {
    ServiceError::NotFound { what: format!("visit {mdtrt_id}"), field: "mdtrt_id".into() }
}

fn corrupt(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("stored visit unreadable: {e}"))
}

/// Who may touch a visit of a service location (grpc.rs passes the authorization matrix in).
pub type Authorize<'a> = &'a (dyn Fn(&str, &str) -> Result<(), ServiceError> + Sync);

/// A loaded visit with the versions it was read at.
pub(crate) struct Loaded {
    shard: u16,
    visit: VisitRecord,
    version: u64,
}

fn require_open(visit: &VisitRecord, now_ms: i64) -> Result<(), ServiceError> {
    match visit.status {
        Status::Open if now_ms >= visit.expires_ms => {
            Err(ServiceError::FailedPrecondition(format!("visit {} expired unsettled: register it again", visit.mdtrt_id)))
        }
        Status::Open => Ok(()),
        Status::Settling => Err(ServiceError::FailedPrecondition(format!(
            "visit {} is being settled under msgid {}: its details cannot change",
            visit.mdtrt_id, visit.setl_msgid
        ))),
        Status::Settled => Err(ServiceError::FailedPrecondition(format!(
            "visit {} is settled ({}): its details cannot change; reverse the settlement instead (2208)",
            visit.mdtrt_id, visit.setl_id
        ))),
        Status::Cancelled => Err(ServiceError::FailedPrecondition(format!("visit {} is cancelled: it accepts nothing", visit.mdtrt_id))),
    }
}

/// A claim's `setl_time` violation is the registration's `begntime`.
fn rename_setl_time(e: ServiceError, to: &str) -> ServiceError {
    match e {
        ServiceError::Invalid(v) => ServiceError::Invalid(
            v.into_iter()
                .map(|mut f| {
                    if f.field == "setl_time" {
                        f.field = to.into();
                    }
                    f
                })
                .collect(),
        ),
        other => other,
    }
}
