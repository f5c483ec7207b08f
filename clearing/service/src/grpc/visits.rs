//! The wire of the hospital's flow (2201–2207 by `mdtrt_id`): requests read into the visits room's
//! drafts, its visits and verdicts written back as `Visit`, `FeeDetailVerdict` and
//! `UploadFeeDetailsResponse`.

use crate::claim::Registration;
use crate::visits::{DetailsCancel, FeeDetail, Line, Uploaded, VisitInfo, VisitRecord, VisitSettle};
use proto::v1 as pb;
use region_adapter::money::fmt_yuan;

pub fn registration(r: &pb::RegisterVisitRequest) -> Registration {
    Registration {
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
    }
}

pub fn fee_details(r: &pb::UploadFeeDetailsRequest) -> Vec<FeeDetail> {
    r.details
        .iter()
        .map(|d| FeeDetail {
            feedetl_sn: d.feedetl_sn.clone(),
            chrg_bchno: d.chrg_bchno.clone(),
            hilist_code: d.hilist_code.clone(),
            cnt: d.cnt.clone(),
            pric: d.pric.clone(),
            det_item_fee_sumamt: d.det_item_fee_sumamt.clone(),
            fee_ocur_time: d.fee_ocur_time.clone(),
        })
        .collect()
}

pub fn details_cancel(r: &pb::CancelFeeDetailsRequest) -> DetailsCancel {
    DetailsCancel { mdtrt_id: r.mdtrt_id.clone(), chrg_bchno: r.chrg_bchno.clone(), feedetl_sn: r.feedetl_sn.clone() }
}

pub fn visit_settle(r: &pb::SettleVisitRequest) -> VisitSettle {
    VisitSettle {
        mdtrt_id: r.mdtrt_id.clone(),
        msgid: r.msgid.clone(),
        medfee_sumamt: r.medfee_sumamt.clone(),
        acct_used_flag: r.acct_used_flag,
        acct_payer_psn_no: r.acct_payer_psn_no.clone(),
        chrg_bchno: r.chrg_bchno.clone(),
        med_type: r.med_type.clone(),
    }
}

pub fn visit_info(r: &pb::UpdateVisitInfoRequest) -> VisitInfo {
    VisitInfo { mdtrt_id: r.mdtrt_id.clone(), psn_no: r.psn_no.clone(), med_type: r.med_type.clone(), dise_code: r.dise_code.clone() }
}

pub fn verdict_pb(l: &Line) -> pb::FeeDetailVerdict {
    pb::FeeDetailVerdict {
        feedetl_sn: l.feedetl_sn.clone(),
        chrg_bchno: l.chrg_bchno.clone(),
        hilist_code: l.hilist_code.clone(),
        hilist_name: l.hilist_name.clone(),
        chrgitm_lv: l.chrgitm_lv.clone(),
        selfpay_prop: l.selfpay_prop.clone(),
        pric_uplmt_amt: l.pric_uplmt_amt.clone(),
        cnt: l.cnt.clone(),
        pric: l.pric.clone(),
        det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
        fulamt_ownpay_amt: l.fulamt_ownpay_amt.clone(),
        overlmt_selfpay: l.overlmt_selfpay.clone(),
        preselfpay_amt: l.preselfpay_amt.clone(),
        inscp_scp_amt: l.inscp_scp_amt.clone(),
        med_chrgitm_type: l.med_chrgitm_type.clone(),
        lmt_used_flag: l.lmt_used_flag.clone(),
        fee_ocur_time: l.fee_ocur_time.clone(),
    }
}

pub fn visit_pb(v: &VisitRecord) -> pb::Visit {
    pb::Visit {
        mdtrt_id: v.mdtrt_id.clone(),
        psn_no: v.psn_no.clone(),
        insuplc_admdvs: v.insuplc_admdvs.clone(),
        mdtrt_admdvs: v.mdtrt_admdvs.clone(),
        fixmedins_code: v.fixmedins_code.clone(),
        hosp_lv: v.hosp_lv,
        med_type: v.med_type.clone(),
        dise_code: v.dise_code.clone(),
        prescribing_hosp_lv: v.prescribing_hosp_lv,
        begntime: v.begntime.clone(),
        ipt_otp_no: v.ipt_otp_no.clone(),
        status: v.status_name().into(),
        setl_id: v.setl_id.clone(),
        setl_msgid: v.setl_msgid.clone(),
        details: v.lines.iter().map(verdict_pb).collect(),
        medfee_sumamt: fmt_yuan(v.sum_fen()),
        expires_at: v.expires_at(),
    }
}

pub fn uploaded_pb(u: &Uploaded) -> pb::UploadFeeDetailsResponse {
    pb::UploadFeeDetailsResponse {
        mdtrt_id: u.visit.mdtrt_id.clone(),
        results: u.results.iter().map(verdict_pb).collect(),
        medfee_sumamt: fmt_yuan(u.visit.sum_fen()),
    }
}
