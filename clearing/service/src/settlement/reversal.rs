//! 2208: reversing a settlement (a new, negative settlement that restores the accumulators and the
//! paying account), and reading one back.

use crate::core::*;
use crate::ids::{idempotency_key, shard_of, shard_of_setl_id};
use crate::limits::{MAX_COMMIT_ATTEMPTS, MAX_TEXT_LEN, STORE_OUTAGE_PATIENCE};
use crate::settlement::plan;
use crate::store::*;
use chrono::Utc;
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self, Violations};
use std::time::Instant;

pub use crate::claim::Reversal;

/// A lookup of the settlement an institution made under a msgid (2601), with the member it was for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgidQuery {
    pub mdtrt_admdvs: String,
    pub fixmedins_code: String,
    pub msgid: String,
    pub insuplc_admdvs: String,
    pub psn_no: String,
}

impl<S: Store> Clearinghouse<S> {
    /// Reverses a settlement (2208). `authorize` sees the original (its regions and institution) before
    /// anything else is read back or written.
    pub async fn reverse(
        &self,
        req: &Reversal,
        authorize: &(dyn Fn(&Settlement) -> Result<(), ServiceError> + Sync),
    ) -> Result<Settlement, ServiceError> {
        let mut v = Violations::default();
        let shard = shard_of_setl_id(&req.setl_id);
        if shard.is_none() {
            v.add("setl_id", "malformed settlement id");
        }
        fields::check_msgid(&mut v, "msgid", &req.msgid);
        if req.reason.chars().count() > MAX_TEXT_LEN {
            v.add("reason", format!("at most {MAX_TEXT_LEN} characters"));
        }
        v.into_result(())?;
        let hash = crate::record::reversal_hash(req);
        let until = Instant::now() + STORE_OUTAGE_PATIENCE;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            // Read: the original (authorized before anything else is read or written), the msgid's
            // stored answer, the paying member.
            let orig = self.store.get_settlement(&req.setl_id).await?.ok_or_else(|| settlement_not_found(&req.setl_id))?;
            let decoded = decode(&orig)?;
            authorize(&decoded)?;
            let idem_key = idempotency_key(&orig.mdtrt_admdvs, &decoded.fixmedins_code, &req.msgid);
            if let Some(done) = self.replay(shard.unwrap_or(0), &idem_key, &hash).await? {
                return Ok(done);
            }
            let payer = self
                .store
                .load_member(&plan::paying_member(&decoded))
                .await?
                .ok_or_else(|| ServiceError::Internal("paying member of a stored settlement is missing".into()))?;
            // Plan (pure) and commit.
            let today = crate::calendar::today();
            let member_shard = shard_of(&decoded.insuplc_admdvs, &decoded.psn_no);
            let clr_date = self.store.open_window(member_shard, today).await?;
            let setl_id = self.ids.next(member_shard, id_clock());
            let planned = plan::plan_reversal(&plan::ReversalInputs {
                request: req,
                original: &orig,
                decoded: &decoded,
                payer: &payer,
                shard: member_shard,
                setl_id: &setl_id,
                clr_date,
                content_hash: hash,
                now: Utc::now().with_timezone(&crate::calendar::shanghai()).fixed_offset(),
            })?;
            let key = IdemCtx { idem_key: &idem_key, hash: &hash, msgid: &req.msgid, until };
            if let Some(answer) = self.commit_attempt(planned, today, &key, attempt).await? {
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }

    /// The settlement `req`'s institution made under its msgid (2601), or NOT_FOUND naming `msgid`.
    pub async fn find_settlement_by_msgid(&self, req: &MsgidQuery) -> Result<Settlement, ServiceError> {
        let mut v = Violations::default();
        fields::check_msgid(&mut v, "msgid", &req.msgid);
        fields::check_psn_no(&mut v, "psn_no", &req.psn_no);
        for (field, code) in [("mdtrt_admdvs", &req.mdtrt_admdvs), ("insuplc_admdvs", &req.insuplc_admdvs)] {
            if region_adapter::Admdvs::parse(code).is_none() {
                v.add(field, "must be a 6-digit division code");
            }
        }
        if region_adapter::codes::parse_fixmedins_code(&req.fixmedins_code).is_none() {
            v.add("fixmedins_code", "must be H or P + 6-digit division + 5 digits");
        }
        v.into_result(())?;
        let not_found = || ServiceError::NotFound { what: format!("settlement of msgid {}", req.msgid), field: "msgid".into() };
        let key = idempotency_key(&req.mdtrt_admdvs, &req.fixmedins_code, &req.msgid);
        let idem = self.store.lookup_idempotency(shard_of(&req.insuplc_admdvs, &req.psn_no), &key).await?.ok_or_else(not_found)?;
        let s = self.get_settlement(&idem.setl_id).await?;
        // The msgid's settlement must be this member's and this institution's (an answer stored under the
        // key before issue 29 may be a neighbour's).
        if s.psn_no != req.psn_no || s.insuplc_admdvs != req.insuplc_admdvs || s.fixmedins_code != req.fixmedins_code {
            return Err(not_found());
        }
        Ok(s)
    }

    pub async fn get_settlement(&self, setl_id: &str) -> Result<Settlement, ServiceError> {
        if shard_of_setl_id(setl_id).is_none() {
            return Err(ServiceError::field("setl_id", "malformed settlement id"));
        }
        let rec = self.store.get_settlement(setl_id).await?.ok_or_else(|| settlement_not_found(setl_id))?;
        let mut s = decode(&rec)?;
        s.reversed_by_setl_id = rec.reversed_by.unwrap_or_default();
        Ok(s)
    }
}
