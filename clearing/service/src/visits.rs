//! The hospital's flow: a registered outpatient visit (national 2201) collects fee details as they arise
//! (2204, each priced at once with the service location's catalogue on the visit date), may lose some
//! (2205) or be cancelled (2202), and is settled (2207) or previewed (2206) by its `mdtrt_id`. Settling a
//! visit is `settle` of a claim made of the visit's lines: the same engine path, the same idempotency
//! (msgid) and window as SettleClaim.
//!
//! State: one versioned record per visit (`visit:<mdtrt_id>`) and one per member listing its open visits
//! (`visits-of:<insured>:<psn_no>`, for the open-visits limit), both in the member's shard (the
//! `mdtrt_id` starts with it), written together with compare-and-set (`Store::put_records`): two
//! replicas working on one visit never lose a detail; a conflict reloads and applies again.
//!
//! A visit is `open` → `settling` (a settlement under one msgid is being made: details frozen; a resend
//! of that msgid finishes it) → `settled`; or `open` → `cancelled`. Open and cancelled visits past their
//! expiry are swept; settled and settling ones never are.

use crate::ids::idempotency_key;
use crate::ids::{shard_of, shard_of_setl_id};
use crate::limits::{MAX_COMMIT_ATTEMPTS, MAX_LINES_PER_VISIT, MAX_OPEN_VISITS_PER_MEMBER, MAX_VISIT_ID_LEN, STALE_SETTLING};
use crate::remote::CallCtx;
use crate::settle::Clearinghouse;
use crate::store::{MemberKey, Record, RecordWrite, Store};
use crate::wire;
use chrono::{DateTime, FixedOffset, Utc};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{Violations, id_like, signed_fen};
use proto::v1 as pb;
use region_adapter::money::{fmt_ratio, fmt_yuan};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
}

impl Line {
    /// Whether an upload of `d` is this very detail again.
    fn same_as(&self, d: &pb::FeeDetail) -> bool {
        self.chrg_bchno == d.chrg_bchno
            && self.hilist_code == d.hilist_code
            && self.cnt == d.cnt
            && self.pric == d.pric
            && self.det_item_fee_sumamt == d.det_item_fee_sumamt
            && self.fee_ocur_time == d.fee_ocur_time
    }

    fn to_pb(&self) -> pb::FeeDetailVerdict {
        pb::FeeDetailVerdict {
            feedetl_sn: self.feedetl_sn.clone(),
            chrg_bchno: self.chrg_bchno.clone(),
            hilist_code: self.hilist_code.clone(),
            hilist_name: self.hilist_name.clone(),
            chrgitm_lv: self.chrgitm_lv.clone(),
            selfpay_prop: self.selfpay_prop.clone(),
            pric_uplmt_amt: self.pric_uplmt_amt.clone(),
            cnt: self.cnt.clone(),
            pric: self.pric.clone(),
            det_item_fee_sumamt: self.det_item_fee_sumamt.clone(),
            fulamt_ownpay_amt: self.fulamt_ownpay_amt.clone(),
            overlmt_selfpay: self.overlmt_selfpay.clone(),
            preselfpay_amt: self.preselfpay_amt.clone(),
            inscp_scp_amt: self.inscp_scp_amt.clone(),
            fee_ocur_time: self.fee_ocur_time.clone(),
        }
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
    fn sum_fen(&self) -> i64 {
        self.lines.iter().filter_map(|l| signed_fen(&l.det_item_fee_sumamt)).sum()
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

    pub fn to_pb(&self) -> pb::Visit {
        pb::Visit {
            mdtrt_id: self.mdtrt_id.clone(),
            psn_no: self.psn_no.clone(),
            insuplc_admdvs: self.insuplc_admdvs.clone(),
            mdtrt_admdvs: self.mdtrt_admdvs.clone(),
            fixmedins_code: self.fixmedins_code.clone(),
            hosp_lv: self.hosp_lv,
            med_type: self.med_type.clone(),
            dise_code: self.dise_code.clone(),
            prescribing_hosp_lv: self.prescribing_hosp_lv,
            begntime: self.begntime.clone(),
            ipt_otp_no: self.ipt_otp_no.clone(),
            status: self.status.name().into(),
            setl_id: self.setl_id.clone(),
            setl_msgid: self.setl_msgid.clone(),
            details: self.lines.iter().map(Line::to_pb).collect(),
            medfee_sumamt: fmt_yuan(self.sum_fen()),
            expires_at: DateTime::from_timestamp_millis(self.expires_ms)
                .map(|t| t.with_timezone(&crate::calendar::shanghai()).to_rfc3339())
                .unwrap_or_default(),
        }
    }

    /// The claim this visit settles as: its registration, the settlement's own fields, its lines in
    /// upload order; the visit's start is the settlement time (its date prices and applies policy).
    fn claim(&self, req: &pb::SettleVisitRequest) -> pb::Claim {
        let lines = self
            .lines
            .iter()
            .map(|l| pb::ClaimLine {
                hilist_code: l.hilist_code.clone(),
                cnt: l.cnt.clone(),
                pric: l.pric.clone(),
                det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
            })
            .collect();
        pb::Claim {
            msgid: req.msgid.clone(),
            acct_used_flag: req.acct_used_flag,
            acct_payer_psn_no: req.acct_payer_psn_no.clone(),
            ..self.claim_of(lines)
        }
    }

    /// A claim of this visit's registration with `lines` (no msgid, no account): what uploads are
    /// validated and priced as, and the base of the settlement's claim.
    fn claim_of(&self, lines: Vec<pb::ClaimLine>) -> pb::Claim {
        pb::Claim {
            psn_no: self.psn_no.clone(),
            insuplc_admdvs: self.insuplc_admdvs.clone(),
            mdtrt_admdvs: self.mdtrt_admdvs.clone(),
            fixmedins_code: self.fixmedins_code.clone(),
            hosp_lv: self.hosp_lv,
            med_type: self.med_type.clone(),
            dise_code: self.dise_code.clone(),
            prescribing_hosp_lv: self.prescribing_hosp_lv,
            setl_time: self.begntime.clone(),
            lines,
            ..Default::default()
        }
    }
}

/// An open visit in its member's list.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenVisit {
    mdtrt_id: String,
    expires_ms: i64,
    /// The visit's service location (1101: a service location may read a member with an open visit there).
    #[serde(default)]
    mdtrt_admdvs: String,
}

fn visit_key(mdtrt_id: &str) -> String {
    format!("visit:{mdtrt_id}")
}

fn member_visits_key(insured: &str, psn_no: &str) -> String {
    format!("visits-of:{insured}:{psn_no}")
}

/// The visit id of a registration: the member's shard, then 22 hex digits of SHA-256(service location,
/// msgid), so a resent registration finds its visit and any replica can route by the id alone.
pub fn mdtrt_id_of(insured: &str, psn_no: &str, mdtrt: &str, msgid: &str) -> String {
    let h = Sha256::digest(format!("{mdtrt}|{msgid}").as_bytes());
    format!("{:02x}{}", shard_of(insured, psn_no), &hex::encode(h)[..22])
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn visit_not_found(mdtrt_id: &str) -> ServiceError {
    ServiceError::NotFound { what: format!("visit {mdtrt_id}"), field: "mdtrt_id".into() }
}

fn corrupt(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("stored visit unreadable: {e}"))
}

/// Who may touch a visit of a service location (grpc.rs passes the authorization matrix in).
pub type Authorize<'a> = &'a (dyn Fn(&str) -> Result<(), ServiceError> + Sync);

/// A loaded visit with the versions it was read at.
struct Loaded {
    shard: u16,
    visit: VisitRecord,
    version: u64,
}

impl<S: Store> Clearinghouse<S> {
    async fn load_visit(&self, mdtrt_id: &str, authorize: Authorize<'_>) -> Result<Loaded, ServiceError> {
        let shard = shard_of_setl_id(mdtrt_id).ok_or_else(|| visit_not_found(mdtrt_id))?;
        let [rec]: [Option<Record>; 1] = self
            .store
            .get_records(shard, &[visit_key(mdtrt_id)])
            .await?
            .try_into()
            .map_err(|_| ServiceError::Internal("record count".into()))?;
        let rec = rec.ok_or_else(|| visit_not_found(mdtrt_id))?;
        let visit: VisitRecord = serde_json::from_str(&rec.data).map_err(corrupt)?;
        // A caller that may not touch the visit learns nothing about it.
        authorize(&visit.mdtrt_admdvs).map_err(|_| visit_not_found(mdtrt_id))?;
        Ok(Loaded { shard, visit, version: rec.version })
    }

    /// Reloads `mdtrt_id`, applies `change` and writes it back with compare-and-set (also updating the
    /// member's open list when the visit stops being open), again after a conflict.
    async fn change_visit<T>(
        &self,
        mdtrt_id: &str,
        authorize: Authorize<'_>,
        mut change: impl FnMut(&mut VisitRecord) -> Result<T, ServiceError>,
    ) -> Result<(VisitRecord, T), ServiceError> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let Loaded { shard, mut visit, version } = self.load_visit(mdtrt_id, authorize).await?;
            let was_open = visit.status == Status::Open;
            let out = change(&mut visit)?;
            let data = serde_json::to_string(&visit).map_err(corrupt)?;
            let mut writes = vec![RecordWrite { key: visit_key(mdtrt_id), expected: version, data: Some(data) }];
            if was_open && visit.status != Status::Open {
                writes.push(self.without_open_visit(shard, &visit).await?);
            } else if !was_open && visit.status == Status::Open {
                writes.push(self.with_open_visit(shard, &visit).await?);
            }
            if self.store.put_records(shard, writes).await? {
                return Ok((visit, out));
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// The member's open list without `visit` (to be written with the visit's change).
    async fn without_open_visit(&self, shard: u16, visit: &VisitRecord) -> Result<RecordWrite, ServiceError> {
        self.change_open_list(shard, visit, |open| open.retain(|o| o.mdtrt_id != visit.mdtrt_id)).await
    }

    /// The member's open list with `visit` again (a visit reopened after a settlement that did not happen).
    async fn with_open_visit(&self, shard: u16, visit: &VisitRecord) -> Result<RecordWrite, ServiceError> {
        self.change_open_list(shard, visit, |open| {
            if !open.iter().any(|o| o.mdtrt_id == visit.mdtrt_id) {
                open.push(OpenVisit {
                    mdtrt_id: visit.mdtrt_id.clone(),
                    expires_ms: visit.expires_ms,
                    mdtrt_admdvs: visit.mdtrt_admdvs.clone(),
                });
            }
        })
        .await
    }

    /// The member's open list changed by `change`, as a write expecting the version read.
    async fn change_open_list(
        &self,
        shard: u16,
        visit: &VisitRecord,
        change: impl FnOnce(&mut Vec<OpenVisit>),
    ) -> Result<RecordWrite, ServiceError> {
        let key = member_visits_key(&visit.insuplc_admdvs, &visit.psn_no);
        let [rec]: [Option<Record>; 1] = self
            .store
            .get_records(shard, std::slice::from_ref(&key))
            .await?
            .try_into()
            .map_err(|_| ServiceError::Internal("record count".into()))?;
        let (version, mut open): (u64, Vec<OpenVisit>) = match rec {
            None => (0, Vec::new()),
            Some(r) => (r.version, serde_json::from_str(&r.data).map_err(corrupt)?),
        };
        change(&mut open);
        Ok(RecordWrite { key, expected: version, data: Some(serde_json::to_string(&open).map_err(corrupt)?) })
    }

    /// The service locations where the member has an open (unexpired) visit.
    pub async fn open_visit_regions(&self, insured: &str, psn_no: &str) -> Result<Vec<region_adapter::Admdvs>, ServiceError> {
        let key = member_visits_key(insured, psn_no);
        let recs = self.store.get_records(shard_of(insured, psn_no), std::slice::from_ref(&key)).await?;
        let Some(Some(rec)) = recs.into_iter().next() else { return Ok(Vec::new()) };
        let open: Vec<OpenVisit> = serde_json::from_str(&rec.data).map_err(corrupt)?;
        let now = now_ms();
        Ok(open.iter().filter(|o| o.expires_ms > now).filter_map(|o| region_adapter::Admdvs::parse(&o.mdtrt_admdvs)).collect())
    }

    /// 2201. Validated exactly like a claim of the same fields; idempotent on (service location, msgid).
    pub async fn register_visit(&self, req: &pb::RegisterVisitRequest) -> Result<pb::Visit, ServiceError> {
        let mut v = Violations::default();
        if !req.ipt_otp_no.is_empty() && !id_like(&req.ipt_otp_no, MAX_VISIT_ID_LEN, b"-_.") {
            v.add("ipt_otp_no", format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
        }
        let probe = pb::Claim {
            msgid: req.msgid.clone(),
            psn_no: req.psn_no.clone(),
            insuplc_admdvs: req.insuplc_admdvs.clone(),
            mdtrt_admdvs: req.mdtrt_admdvs.clone(),
            fixmedins_code: req.fixmedins_code.clone(),
            hosp_lv: req.hosp_lv,
            med_type: req.med_type.clone(),
            dise_code: req.dise_code.clone(),
            prescribing_hosp_lv: req.prescribing_hosp_lv,
            setl_time: req.begntime.clone(),
            lines: vec![pb::ClaimLine {
                hilist_code: PROBE_CODE.into(),
                cnt: "1".into(),
                pric: "0.01".into(),
                det_item_fee_sumamt: "0.01".into(),
            }],
            ..Default::default()
        };
        let listed = self.with_listed_level(&probe).await?;
        let probe_checked = listed.as_ref().unwrap_or(&probe);
        let routing = self.router.current();
        let now = Utc::now().with_timezone(&crate::calendar::shanghai());
        let checked = wire::validate_claim(probe_checked, &|a| routing.knows(a), now).map_err(|e| rename_setl_time(e, "begntime"));
        let mut violations = v.0;
        if let Err(ServiceError::Invalid(more)) = &checked {
            violations.extend(more.iter().cloned());
        } else {
            checked?;
        }
        if !violations.is_empty() {
            return Err(ServiceError::Invalid(violations));
        }
        // The member must exist (its shard holds the visit).
        if self.store.load_member(&MemberKey::new(&req.insuplc_admdvs, &req.psn_no)).await?.is_none() {
            return Err(ServiceError::NotFound { what: "member".into(), field: "psn_no".into() });
        }
        let registration = hex::encode(Sha256::digest(prost::Message::encode_to_vec(req)));
        let mdtrt_id = mdtrt_id_of(&req.insuplc_admdvs, &req.psn_no, &req.mdtrt_admdvs, &req.msgid);
        let shard = shard_of(&req.insuplc_admdvs, &req.psn_no);
        let list_key = member_visits_key(&req.insuplc_admdvs, &req.psn_no);
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let recs = self.store.get_records(shard, &[visit_key(&mdtrt_id), list_key.clone()]).await?;
            if let Some(existing) = &recs[0] {
                let visit: VisitRecord = serde_json::from_str(&existing.data).map_err(corrupt)?;
                if visit.registration != registration {
                    return Err(ServiceError::IdempotencyMismatch(req.msgid.clone()));
                }
                return Ok(visit.to_pb());
            }
            let now = now_ms();
            let (list_version, mut open): (u64, Vec<OpenVisit>) = match &recs[1] {
                None => (0, Vec::new()),
                Some(r) => (r.version, serde_json::from_str(&r.data).map_err(corrupt)?),
            };
            // Expired entries do not count (the sweep removes their visits).
            open.retain(|o| o.expires_ms > now);
            if open.len() >= MAX_OPEN_VISITS_PER_MEMBER {
                return Err(ServiceError::FailedPrecondition(format!(
                    "the member has {} open visits (at most {MAX_OPEN_VISITS_PER_MEMBER}): settle or cancel one first",
                    open.len()
                )));
            }
            let expires_ms = now + self.visit_ttl().as_millis() as i64;
            let visit = VisitRecord {
                mdtrt_id: mdtrt_id.clone(),
                registration: registration.clone(),
                psn_no: req.psn_no.clone(),
                insuplc_admdvs: req.insuplc_admdvs.clone(),
                mdtrt_admdvs: req.mdtrt_admdvs.clone(),
                fixmedins_code: req.fixmedins_code.clone(),
                hosp_lv: listed.as_ref().map(|c| c.hosp_lv).unwrap_or(req.hosp_lv),
                med_type: req.med_type.clone(),
                dise_code: req.dise_code.clone(),
                prescribing_hosp_lv: req.prescribing_hosp_lv,
                begntime: req.begntime.clone(),
                ipt_otp_no: req.ipt_otp_no.clone(),
                status: Status::Open,
                setl_id: String::new(),
                setl_msgid: String::new(),
                lines: Vec::new(),
                expires_ms,
                settling_since_ms: 0,
            };
            open.push(OpenVisit { mdtrt_id: mdtrt_id.clone(), expires_ms, mdtrt_admdvs: req.mdtrt_admdvs.clone() });
            let writes = vec![
                RecordWrite { key: visit_key(&mdtrt_id), expected: 0, data: Some(serde_json::to_string(&visit).map_err(corrupt)?) },
                RecordWrite { key: list_key.clone(), expected: list_version, data: Some(serde_json::to_string(&open).map_err(corrupt)?) },
            ];
            if self.store.put_records(shard, writes).await? {
                return Ok(visit.to_pb());
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// 2204. All or nothing; each detail answered with the catalogue's verdict.
    pub async fn upload_fee_details(
        &self,
        ctx: &CallCtx,
        req: &pb::UploadFeeDetailsRequest,
        authorize: Authorize<'_>,
    ) -> Result<pb::UploadFeeDetailsResponse, ServiceError> {
        if req.details.is_empty() {
            return Err(ServiceError::field("details", "at least one detail"));
        }
        if req.details.len() > MAX_LINES_PER_VISIT {
            return Err(ServiceError::field(
                "details",
                format!("{} details; a visit has at most {MAX_LINES_PER_VISIT}", req.details.len()),
            ));
        }
        // Priced once, outside the compare-and-set loop (the catalogue does not change under it).
        let Loaded { visit: first, .. } = self.load_visit(&req.mdtrt_id, authorize).await?;
        require_open(&first, now_ms())?;
        let priced = self.price_details(ctx, &first, &req.details).await?;
        let (visit, ()) = self
            .change_visit(&req.mdtrt_id, authorize, |visit| {
                require_open(visit, now_ms())?;
                let mut v = Violations::default();
                let mut added = 0;
                for (i, d) in req.details.iter().enumerate() {
                    match visit.lines.iter().find(|l| l.feedetl_sn == d.feedetl_sn) {
                        Some(l) if l.same_as(d) => {}
                        Some(_) => v.add(format!("details[{i}].feedetl_sn"), format!("{} was uploaded with other content", d.feedetl_sn)),
                        None => added += 1,
                    }
                }
                if visit.lines.len() + added > MAX_LINES_PER_VISIT {
                    v.add("details", format!("the visit would have {} details; at most {MAX_LINES_PER_VISIT}", visit.lines.len() + added));
                }
                v.into_result(())?;
                for line in &priced {
                    if !visit.lines.iter().any(|l| l.feedetl_sn == line.feedetl_sn) {
                        visit.lines.push(line.clone());
                    }
                }
                Ok(())
            })
            .await?;
        let results =
            req.details.iter().filter_map(|d| visit.lines.iter().find(|l| l.feedetl_sn == d.feedetl_sn).map(Line::to_pb)).collect();
        Ok(pb::UploadFeeDetailsResponse { mdtrt_id: visit.mdtrt_id.clone(), results, medfee_sumamt: fmt_yuan(visit.sum_fen()) })
    }

    /// Validates details exactly like claim lines (field paths `details[i].…`) and prices them with the
    /// service location's catalogue on the visit date.
    async fn price_details(&self, ctx: &CallCtx, visit: &VisitRecord, details: &[pb::FeeDetail]) -> Result<Vec<Line>, ServiceError> {
        let mut v = Violations::default();
        let mut seen = std::collections::HashSet::new();
        for (i, d) in details.iter().enumerate() {
            if !id_like(&d.feedetl_sn, MAX_VISIT_ID_LEN, b"-_.") {
                v.add(format!("details[{i}].feedetl_sn"), format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
            } else if !seen.insert(&d.feedetl_sn) {
                v.add(format!("details[{i}].feedetl_sn"), format!("{} appears twice in this upload", d.feedetl_sn));
            }
            if !d.chrg_bchno.is_empty() && !id_like(&d.chrg_bchno, MAX_VISIT_ID_LEN, b"-_.") {
                v.add(format!("details[{i}].chrg_bchno"), format!("1–{MAX_VISIT_ID_LEN} letters, digits, - _ ."));
            }
            if DateTime::parse_from_rfc3339(&d.fee_ocur_time).is_err() {
                v.add(format!("details[{i}].fee_ocur_time"), "must be an RFC 3339 time");
            }
        }
        let lines = details
            .iter()
            .map(|d| pb::ClaimLine {
                hilist_code: d.hilist_code.clone(),
                cnt: d.cnt.clone(),
                pric: d.pric.clone(),
                det_item_fee_sumamt: d.det_item_fee_sumamt.clone(),
            })
            .collect();
        let probe = pb::Claim { msgid: "visit-upload".into(), ..visit.claim_of(lines) };
        let routing = self.router.current();
        let now: DateTime<FixedOffset> = Utc::now().with_timezone(&crate::calendar::shanghai());
        // The registration was checked; what can fail here are the lines (lines[i] → details[i]).
        let vc = match wire::validate_claim(&probe, &|a| routing.knows(a), now) {
            Ok(vc) => Some(vc),
            Err(ServiceError::Invalid(more)) => {
                for f in more {
                    v.add(f.field.replacen("lines", "details", 1), f.description);
                }
                None
            }
            Err(e) => return Err(e),
        };
        v.into_result(())?;
        let vc = vc.expect("valid");
        let priced = self.router.price(ctx, &routing, vc.mdtrt, vc.visit_date, &vc.line_inputs()).await?;
        Ok(details
            .iter()
            .zip(&priced.priced.lines)
            .zip(&priced.names)
            .map(|((d, p), name)| Line {
                feedetl_sn: d.feedetl_sn.clone(),
                chrg_bchno: d.chrg_bchno.clone(),
                hilist_code: d.hilist_code.clone(),
                cnt: d.cnt.clone(),
                pric: d.pric.clone(),
                det_item_fee_sumamt: d.det_item_fee_sumamt.clone(),
                fee_ocur_time: d.fee_ocur_time.clone(),
                hilist_name: name.clone(),
                chrgitm_lv: p.class.map(|c| c.code().to_string()).unwrap_or_default(),
                selfpay_prop: fmt_ratio(p.selfpay_prop_bp),
                pric_uplmt_amt: p.price_cap.map(|c| c.to_string()).unwrap_or_default(),
                fulamt_ownpay_amt: fmt_yuan(p.fulamt_ownpay_fen),
                overlmt_selfpay: fmt_yuan(p.overlmt_selfpay_fen),
                preselfpay_amt: fmt_yuan(p.preselfpay_fen),
                inscp_scp_amt: fmt_yuan(p.inscp_fen),
            })
            .collect())
    }

    /// 2205: the batch's details (or the named ones of it) leave the visit. Cancelling what is not
    /// there is not an error (a resend).
    pub async fn cancel_fee_details(&self, req: &pb::CancelFeeDetailsRequest, authorize: Authorize<'_>) -> Result<pb::Visit, ServiceError> {
        if req.chrg_bchno.is_empty() && req.feedetl_sn.is_empty() {
            return Err(ServiceError::field("chrg_bchno", "name the batch (or feedetl_sn) to cancel"));
        }
        let (visit, ()) = self
            .change_visit(&req.mdtrt_id, authorize, |visit| {
                require_open(visit, now_ms())?;
                visit.lines.retain(|l| {
                    let batch = req.chrg_bchno.is_empty() || l.chrg_bchno == req.chrg_bchno;
                    let named = req.feedetl_sn.is_empty() || req.feedetl_sn.contains(&l.feedetl_sn);
                    !(batch && named)
                });
                Ok(())
            })
            .await?;
        Ok(visit.to_pb())
    }

    /// 2202. A settled visit is not cancelled (reverse the settlement instead); cancelling twice is fine.
    pub async fn cancel_visit(&self, req: &pb::CancelVisitRequest, authorize: Authorize<'_>) -> Result<pb::Visit, ServiceError> {
        let (visit, ()) = self
            .change_visit(&req.mdtrt_id, authorize, |visit| match visit.status {
                Status::Open => {
                    visit.status = Status::Cancelled;
                    Ok(())
                }
                Status::Cancelled => Ok(()),
                Status::Settled => Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is settled ({}): reverse the settlement instead (2208)",
                    visit.mdtrt_id, visit.setl_id
                ))),
                Status::Settling => Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is being settled under msgid {}: resend that settlement",
                    visit.mdtrt_id, visit.setl_msgid
                ))),
            })
            .await?;
        Ok(visit.to_pb())
    }

    pub async fn get_visit(&self, req: &pb::GetVisitRequest, authorize: Authorize<'_>) -> Result<pb::Visit, ServiceError> {
        Ok(self.load_visit(&req.mdtrt_id, authorize).await?.visit.to_pb())
    }

    /// 2206/2207 by mdtrt_id: `settle` of the visit's claim.
    pub async fn settle_visit(
        &self,
        ctx: &CallCtx,
        req: &pb::SettleVisitRequest,
        record: bool,
        authorize: Authorize<'_>,
    ) -> Result<pb::Settlement, ServiceError> {
        let Loaded { visit, .. } = self.load_visit(&req.mdtrt_id, authorize).await?;
        match visit.status {
            Status::Cancelled => return Err(ServiceError::FailedPrecondition(format!("visit {} is cancelled", visit.mdtrt_id))),
            Status::Settled | Status::Settling if visit.setl_msgid != req.msgid || !record => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "visit {} is {} under msgid {}{}",
                    visit.mdtrt_id,
                    visit.status.name(),
                    visit.setl_msgid,
                    if visit.setl_id.is_empty() { String::new() } else { format!(" as settlement {}", visit.setl_id) }
                )));
            }
            Status::Open => require_open(&visit, now_ms())?,
            Status::Settled | Status::Settling => {}
        }
        let mut v = Violations::default();
        match signed_fen(&req.medfee_sumamt) {
            Some(m) if m == visit.sum_fen() => {}
            Some(_) => v.add(
                "medfee_sumamt",
                format!("{} is not the sum of the visit's uploaded details ({})", req.medfee_sumamt, fmt_yuan(visit.sum_fen())),
            ),
            None => v.add("medfee_sumamt", "must be a decimal amount in yuan with at most two decimals"),
        }
        if visit.lines.is_empty() {
            v.add("mdtrt_id", "the visit has no fee details: upload them first (2204)");
        }
        if !req.chrg_bchno.is_empty()
            && let Some(l) = visit.lines.iter().find(|l| l.chrg_bchno != req.chrg_bchno)
        {
            v.add("chrg_bchno", format!("detail {} belongs to batch {:?}, not {}", l.feedetl_sn, l.chrg_bchno, req.chrg_bchno));
        }
        v.into_result(())?;
        let claim = visit.claim(req);
        if !record {
            return self.settle(ctx, &claim, false).await;
        }
        // Freeze the details under this msgid, settle, then record the settlement on the visit. A crash
        // in between leaves it `settling`: a resend of the msgid finishes it (settle is idempotent).
        if visit.status == Status::Settling {
            // A resend works on the visit now: the sweep's staleness counts from here.
            self.change_visit(&req.mdtrt_id, authorize, |v| {
                if v.status == Status::Settling && v.setl_msgid == req.msgid {
                    v.settling_since_ms = now_ms();
                }
                Ok(())
            })
            .await?;
        }
        if visit.status == Status::Open {
            let expected_lines = visit.lines.clone();
            self.change_visit(&req.mdtrt_id, authorize, |v| {
                if v.status != Status::Open || v.lines != expected_lines {
                    return Err(ServiceError::Aborted(1));
                }
                v.status = Status::Settling;
                v.setl_msgid = req.msgid.clone();
                v.settling_since_ms = now_ms();
                Ok(())
            })
            .await?;
        }
        match self.settle(ctx, &claim, true).await {
            Ok(s) => {
                let setl_id = s.setl_id.clone();
                self.change_visit(&req.mdtrt_id, authorize, |v| {
                    v.status = Status::Settled;
                    v.setl_id = setl_id.clone();
                    Ok(())
                })
                .await?;
                Ok(s)
            }
            Err(e) => {
                // A definite refusal nothing was written for: the visit opens again so the HIS can fix it.
                if matches!(
                    e,
                    ServiceError::Invalid(_)
                        | ServiceError::NotFound { .. }
                        | ServiceError::PermissionDenied(..)
                        | ServiceError::IdempotencyMismatch(_)
                        | ServiceError::FailedPrecondition(_)
                ) {
                    let _ = self
                        .change_visit(&req.mdtrt_id, authorize, |v| {
                            if v.status == Status::Settling && v.setl_msgid == req.msgid {
                                v.status = Status::Open;
                                v.setl_msgid.clear();
                            }
                            Ok(())
                        })
                        .await;
                }
                Err(e)
            }
        }
    }

    /// Deletes open and cancelled visits past their expiry (settled ones stay), with their entries in the
    /// members' open lists, and resolves visits stuck `settling` (`resolve_stuck_settling`). Returns how
    /// many were swept or resolved.
    pub async fn sweep_expired_visits(&self) -> Result<usize, ServiceError> {
        let mut swept = 0;
        for shard in 0..crate::ids::SHARDS {
            let keys = self.store.record_keys(shard, "visit:").await?;
            if keys.is_empty() {
                continue;
            }
            let recs = self.store.get_records(shard, &keys).await?;
            for (key, rec) in keys.iter().zip(recs) {
                let Some(rec) = rec else { continue };
                let visit: VisitRecord = serde_json::from_str(&rec.data).map_err(corrupt)?;
                if visit.status == Status::Settling && visit.settling_since_ms == 0 {
                    // Written before the time was kept (a settlement may be running on an older
                    // replica right now): its staleness counts from now.
                    let mut v = visit;
                    v.settling_since_ms = now_ms();
                    let data = Some(serde_json::to_string(&v).map_err(corrupt)?);
                    self.store.put_records(shard, vec![RecordWrite { key: key.clone(), expected: rec.version, data }]).await?;
                    continue;
                }
                if visit.stuck_settling(now_ms()) {
                    if self.resolve_stuck_settling(shard, key, rec.version, visit).await? {
                        swept += 1;
                    }
                    continue;
                }
                if !visit.expired(now_ms()) {
                    continue;
                }
                let mut writes = vec![RecordWrite { key: key.clone(), expected: rec.version, data: None }];
                if visit.status == Status::Open {
                    writes.push(self.without_open_visit(shard, &visit).await?);
                }
                // A conflict means someone touched it just now: the next sweep looks again.
                if self.store.put_records(shard, writes).await? {
                    swept += 1;
                }
            }
        }
        Ok(swept)
    }

    /// A visit left `settling` (a crash between the settlement's commit and the visit's update, and the
    /// HIS never resent the msgid): settled with the stored settlement when the msgid committed, reopened
    /// (back in the member's open list, details unchanged) when it did not. Logged either way; `false`
    /// when someone changed the visit meanwhile (the next sweep looks again).
    async fn resolve_stuck_settling(&self, shard: u16, key: &str, version: u64, mut visit: VisitRecord) -> Result<bool, ServiceError> {
        let idem = idempotency_key(&visit.mdtrt_admdvs, &visit.setl_msgid);
        let committed = self.store.lookup_idempotency(shard_of(&visit.insuplc_admdvs, &visit.psn_no), &idem).await?;
        let (action, reopened) = match committed {
            Some(stored) => {
                visit.status = Status::Settled;
                visit.setl_id = stored.setl_id;
                ("settled from its stored settlement", None)
            }
            None => {
                visit.status = Status::Open;
                visit.setl_msgid.clear();
                ("reopened: its settlement never committed", Some(self.with_open_visit(shard, &visit).await?))
            }
        };
        let this = RecordWrite { key: key.to_string(), expected: version, data: Some(serde_json::to_string(&visit).map_err(corrupt)?) };
        let done = self.store.put_records(shard, std::iter::once(this).chain(reopened).collect()).await?;
        if done {
            tracing::warn!(mdtrt_id = %visit.mdtrt_id, action, "a visit left settling was resolved");
        }
        Ok(done)
    }
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
