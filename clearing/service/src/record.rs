//! The stored formats that are protobuf encodings, in one place. A settlement is kept as the
//! `clearinghouse.v1.Settlement` message it was answered with, so a resend is answered byte for byte
//! as the first time (the recorded-answers test pins those bytes); the rooms build and read it as
//! `record::Settlement`. A request's idempotency content is the SHA-256 of its protobuf encoding, as it
//! has been since the first stored settlement: `claim_hash`, `registration_hash`, `reversal_hash` and
//! `closure_hash` encode the domain drafts exactly as the wire message would be, so a resend after an
//! upgrade still matches. Below `grpc/`, this is the one room that names protobuf types (besides
//! `routing/`, the adapter hop's own gRPC client); the others use the record through `record::Settlement`.

use crate::claim::{ClaimDraft, Closure, Registration, Reversal};
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
pub fn reversal_hash(r: &Reversal) -> [u8; 32] {
    let m = pb::ReverseClaimRequest { setl_id: r.setl_id.clone(), msgid: r.msgid.clone(), reason: r.reason.clone() };
    content_hash(&m.encode_to_vec())
}

/// An account closure's idempotency content.
pub fn closure_hash(c: &Closure) -> [u8; 32] {
    let m = pb::CloseAccountRequest {
        insuplc_admdvs: c.insuplc_admdvs.clone(),
        psn_no: c.psn_no.clone(),
        reason: c.reason.clone(),
        msgid: c.msgid.clone(),
    };
    content_hash(&m.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::{settlement, visits};

    fn sha(m: &impl Message) -> [u8; 32] {
        Sha256::digest(m.encode_to_vec()).into()
    }

    /// Every request's idempotency content is, as it has always been stored, the hash of the message as
    /// sent: each field set, read in by the wire's conversion and hashed from the draft.
    #[test]
    fn drafts_hash_as_their_messages() {
        let line = |k: &str| pb::ClaimLine {
            hilist_code: format!("00120100001000{k}"),
            cnt: format!("{k}.5"),
            pric: format!("1{k}.00"),
            det_item_fee_sumamt: format!("2{k}.00"),
        };
        let c = pb::Claim {
            msgid: "M1".into(),
            psn_no: "P1".into(),
            insuplc_admdvs: "360100".into(),
            mdtrt_admdvs: "421300".into(),
            fixmedins_code: "P42130200001".into(),
            hosp_lv: 2,
            med_type: "41".into(),
            dise_code: "M03900".into(),
            prescribing_hosp_lv: 3,
            setl_time: "2024-06-01T10:00:00+08:00".into(),
            acct_used_flag: true,
            acct_payer_psn_no: "P2".into(),
            lines: vec![line("1"), line("2")],
            prescribing_fixmedins_code: "H42130200746".into(),
        };
        assert_eq!(claim_hash(&settlement::claim(c.clone())), sha(&c));
        assert_eq!(claim_message(&settlement::claim(c.clone())), c);

        let r = pb::RegisterVisitRequest {
            msgid: "M1".into(),
            psn_no: "P1".into(),
            insuplc_admdvs: "360100".into(),
            mdtrt_admdvs: "421300".into(),
            fixmedins_code: "H42130200746".into(),
            hosp_lv: 2,
            med_type: "14".into(),
            dise_code: "M03900".into(),
            prescribing_hosp_lv: 1,
            begntime: "2024-06-01T10:00:00+08:00".into(),
            ipt_otp_no: "OP-1".into(),
            prescribing_fixmedins_code: "H42130200001".into(),
        };
        assert_eq!(registration_hash(&visits::registration(&r)), hex::encode(sha(&r)));
        let rev = pb::ReverseClaimRequest { setl_id: "S1".into(), msgid: "M2".into(), reason: "refund".into() };
        assert_eq!(reversal_hash(&settlement::reversal(&rev)), sha(&rev));
        let cl =
            pb::CloseAccountRequest { insuplc_admdvs: "360100".into(), psn_no: "P1".into(), reason: "death".into(), msgid: "M3".into() };
        assert_eq!(closure_hash(&settlement::closure(&cl)), sha(&cl));
    }
}
