//! The stored formats that are protobuf encodings, in one place. A settlement is kept as the
//! `clearinghouse.v1.Settlement` message it was answered with, so a resend is answered byte for byte
//! as the first time (the recorded-answers test pins those bytes); the rooms build and read it as
//! `record::Settlement`. A request's idempotency content is the SHA-256 of its protobuf encoding, as it
//! has been since the first stored settlement: `claim_hash`, `registration_hash`, `reversal_hash` and
//! `closure_hash` encode the domain drafts exactly as the wire message would be, so a resend after an
//! upgrade still matches. Nothing else below `grpc/` names the protobuf types.

use crate::claim::{ClaimDraft, Registration};
use crate::store::SettlementRecord;
use clearing_edge::error::ServiceError;
use prost::Message;
use proto::v1 as pb;
use sha2::{Digest, Sha256};

pub use pb::{Settlement, SettlementLine, SupervisionFlag};

/// SHA-256 of stored or hashed bytes.
pub(crate) fn content_hash(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A stored settlement's answer.
pub fn decode(rec: &SettlementRecord) -> Result<Settlement, ServiceError> {
    Settlement::decode(rec.message.as_slice())
        .map_err(|e| ServiceError::Internal(format!("stored settlement {} unreadable: {e}", rec.setl_id)))
}

/// The bytes a settlement is stored as.
pub fn encode(s: &Settlement) -> Vec<u8> {
    s.encode_to_vec()
}

/// The wire message of a claim draft (the encoding its idempotency content is the hash of).
pub fn claim_message(c: &ClaimDraft) -> pb::Claim {
    pb::Claim {
        msgid: c.msgid.clone(),
        psn_no: c.psn_no.clone(),
        insuplc_admdvs: c.insuplc_admdvs.clone(),
        mdtrt_admdvs: c.mdtrt_admdvs.clone(),
        fixmedins_code: c.fixmedins_code.clone(),
        hosp_lv: c.hosp_lv,
        med_type: c.med_type.clone(),
        dise_code: c.dise_code.clone(),
        prescribing_hosp_lv: c.prescribing_hosp_lv,
        setl_time: c.setl_time.clone(),
        acct_used_flag: c.acct_used_flag,
        acct_payer_psn_no: c.acct_payer_psn_no.clone(),
        lines: c
            .lines
            .iter()
            .map(|l| pb::ClaimLine {
                hilist_code: l.hilist_code.clone(),
                cnt: l.cnt.clone(),
                pric: l.pric.clone(),
                det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
            })
            .collect(),
        prescribing_fixmedins_code: c.prescribing_fixmedins_code.clone(),
    }
}

/// A claim's idempotency content: the hash of the claim as sent (before a listed level fills `hosp_lv`).
pub fn claim_hash(c: &ClaimDraft) -> [u8; 32] {
    content_hash(&claim_message(c).encode_to_vec())
}

/// A registration's idempotency content (hex), stored in its visit.
pub fn registration_hash(r: &Registration) -> String {
    let m = pb::RegisterVisitRequest {
        msgid: r.msgid.clone(),
        psn_no: r.psn_no.clone(),
        insuplc_admdvs: r.insuplc_admdvs.clone(),
        mdtrt_admdvs: r.mdtrt_admdvs.clone(),
        fixmedins_code: r.fixmedins_code.clone(),
        hosp_lv: r.hosp_lv,
        med_type: r.med_type.clone(),
        dise_code: r.dise_code.clone(),
        prescribing_hosp_lv: r.prescribing_hosp_lv,
        begntime: r.begntime.clone(),
        ipt_otp_no: r.ipt_otp_no.clone(),
        prescribing_fixmedins_code: r.prescribing_fixmedins_code.clone(),
    };
    hex::encode(content_hash(&m.encode_to_vec()))
}

/// A reversal's idempotency content (2208).
pub fn reversal_hash(setl_id: &str, msgid: &str, reason: &str) -> [u8; 32] {
    content_hash(&pb::ReverseClaimRequest { setl_id: setl_id.into(), msgid: msgid.into(), reason: reason.into() }.encode_to_vec())
}

/// An account closure's idempotency content.
pub fn closure_hash(insuplc_admdvs: &str, psn_no: &str, reason: &str, msgid: &str) -> [u8; 32] {
    let m = pb::CloseAccountRequest {
        insuplc_admdvs: insuplc_admdvs.into(),
        psn_no: psn_no.into(),
        reason: reason.into(),
        msgid: msgid.into(),
    };
    content_hash(&m.encode_to_vec())
}
