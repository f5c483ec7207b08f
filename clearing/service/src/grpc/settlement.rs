//! The wire of settlement: `Claim` read into a `ClaimDraft`, and the drafts of a reversal (2208), a
//! msgid lookup (2601), an account closure and an institution. The answer, `Settlement`, is the
//! stored record itself (`record.rs`) and leaves as it is.

use crate::claim::{ClaimDraft, DraftLine};
use crate::registry::institutions::{Found, Institution};
use crate::settlement::closure::Closure;
use crate::settlement::reversal::{MsgidQuery, Reversal};
use proto::v1 as pb;

/// A claim as sent, moved out of its message (no copy: the stream and unary paths own it).
pub fn claim(c: pb::Claim) -> ClaimDraft {
    ClaimDraft {
        msgid: c.msgid,
        psn_no: c.psn_no,
        insuplc_admdvs: c.insuplc_admdvs,
        mdtrt_admdvs: c.mdtrt_admdvs,
        fixmedins_code: c.fixmedins_code,
        hosp_lv: c.hosp_lv,
        med_type: c.med_type,
        dise_code: c.dise_code,
        prescribing_hosp_lv: c.prescribing_hosp_lv,
        setl_time: c.setl_time,
        acct_used_flag: c.acct_used_flag,
        acct_payer_psn_no: c.acct_payer_psn_no,
        lines: c
            .lines
            .into_iter()
            .map(|l| DraftLine { hilist_code: l.hilist_code, cnt: l.cnt, pric: l.pric, det_item_fee_sumamt: l.det_item_fee_sumamt })
            .collect(),
        prescribing_fixmedins_code: c.prescribing_fixmedins_code,
    }
}

pub fn reversal(r: &pb::ReverseClaimRequest) -> Reversal {
    Reversal { setl_id: r.setl_id.clone(), msgid: r.msgid.clone(), reason: r.reason.clone() }
}

pub fn msgid_query(r: &pb::FindSettlementByMsgidRequest) -> MsgidQuery {
    MsgidQuery {
        mdtrt_admdvs: r.mdtrt_admdvs.clone(),
        fixmedins_code: r.fixmedins_code.clone(),
        msgid: r.msgid.clone(),
        insuplc_admdvs: r.insuplc_admdvs.clone(),
        psn_no: r.psn_no.clone(),
    }
}

pub fn closure(r: &pb::CloseAccountRequest) -> Closure {
    Closure { insuplc_admdvs: r.insuplc_admdvs.clone(), psn_no: r.psn_no.clone(), reason: r.reason.clone(), msgid: r.msgid.clone() }
}

pub fn institution(r: &pb::Institution) -> Institution {
    Institution {
        fixmedins_code: r.fixmedins_code.clone(),
        fixmedins_name: r.fixmedins_name.clone(),
        fixmedins_type: r.fixmedins_type.clone(),
        hosp_lv: r.hosp_lv,
        outpatient_pooling: r.outpatient_pooling,
    }
}

pub fn institution_pb(f: &Found) -> pb::Institution {
    let i = &f.institution;
    pb::Institution {
        fixmedins_code: i.fixmedins_code.clone(),
        fixmedins_name: i.fixmedins_name.clone(),
        fixmedins_type: i.fixmedins_type.clone(),
        hosp_lv: i.hosp_lv,
        mdtrt_admdvs: crate::registry::institutions::service_location(&i.fixmedins_code).map(|a| a.to_string()).unwrap_or_default(),
        origin: f.origin.into(),
        outpatient_pooling: i.outpatient_pooling,
    }
}
