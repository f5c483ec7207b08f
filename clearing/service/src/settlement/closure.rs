//! Closing a personal account (Suizhou 003 art. 17: "对出国、出境定居的职工医保参保人员，个人账户余额经本人
//! 申请可支付给本人；参保职工死亡的，其个人账户余额可一次性支付给其法定继承人或指定受益人"). The balance is
//! paid out once, recorded like a settlement of the pair insured → insured (so the window, netting and
//! reconciliation see it; netting moves nothing between funds for it), and the member is marked closed in
//! the same commit: afterwards every claim, credit and change of the member is refused by the store.

use crate::core::Planned;
use crate::core::{Clearinghouse, IdemCtx, id_clock};
use crate::ids::{idempotency_key, shard_of};
use crate::limits::{MAX_COMMIT_ATTEMPTS, STORE_OUTAGE_PATIENCE};
use crate::record::Settlement;
use crate::store::*;
use chrono::Utc;
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self, Violations};
use region_adapter::money::fmt_yuan;
use std::time::Instant;

/// Why an account is closed, as the request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureReason {
    /// 出国、出境定居: the balance is paid to the member.
    Emigration,
    /// 死亡: the balance is paid to the heirs or the named beneficiary.
    Death,
}

impl ClosureReason {
    pub fn parse(s: &str) -> Option<ClosureReason> {
        match s {
            "emigration" => Some(ClosureReason::Emigration),
            "death" => Some(ClosureReason::Death),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            ClosureReason::Emigration => "emigration",
            ClosureReason::Death => "death",
        }
    }
    fn payee(self) -> &'static str {
        match self {
            ClosureReason::Emigration => "paid to the member on emigration (出国、出境定居)",
            ClosureReason::Death => "paid once to the heirs or named beneficiary (法定继承人或指定受益人)",
        }
    }
}

/// The source every closure cites.
const SOURCE: &str = "Suizhou 003 art. 17 [003_a9d74b92acd07a75.txt]";

pub use crate::claim::Closure;

/// The refusal for a member whose account is closed (claims, family pay, closing again).
pub fn closed_error(c: &AccountClosure) -> ServiceError {
    ServiceError::FailedPrecondition(format!(
        "psn_no: the member's personal account was closed on {} ({}, {}); nothing is settled, credited or changed after closure",
        c.date, c.reason, c.setl_id
    ))
}

/// The closure's record and the member change that empties and closes the account.
fn plan_closure(
    req: &Closure,
    reason: ClosureReason,
    member: &MemberRecord,
    setl_id: &str,
    shard: u16,
    clr_date: chrono::NaiveDate,
    hash: [u8; 32],
) -> Planned {
    let now = Utc::now().with_timezone(&crate::calendar::shanghai());
    let balance = member.acct_balc_fen;
    let answer = Settlement {
        setl_id: setl_id.into(),
        msgid: req.msgid.clone(),
        psn_no: req.psn_no.clone(),
        insuplc_admdvs: req.insuplc_admdvs.clone(),
        mdtrt_admdvs: req.insuplc_admdvs.clone(),
        setl_time: now.fixed_offset().to_rfc3339(),
        clr_date: clr_date.to_string(),
        medfee_sumamt: fmt_yuan(balance),
        fulamt_ownpay_amt: fmt_yuan(0),
        overlmt_selfpay: fmt_yuan(0),
        preselfpay_amt: fmt_yuan(0),
        inscp_scp_amt: fmt_yuan(0),
        act_pay_dedc: fmt_yuan(0),
        hifp_pay: fmt_yuan(0),
        pool_prop_selfpay: fmt_yuan(0),
        fund_pay_sumamt: fmt_yuan(0),
        psn_part_amt: fmt_yuan(balance),
        acct_pay: fmt_yuan(balance),
        acct_mulaid_pay: fmt_yuan(0),
        psn_cash_pay: fmt_yuan(0),
        balc: fmt_yuan(0),
        psn_type: member.psn_type.clone(),
        recorded: true,
        explanation: vec![format!(
            "account closed ({}): the balance {} {}, once; the account takes nothing more ({SOURCE})",
            reason.code(),
            fmt_yuan(balance),
            reason.payee()
        )],
        account_closure: reason.code().into(),
        ..Default::default()
    };
    let settlement = SettlementRecord {
        setl_id: setl_id.into(),
        msgid: req.msgid.clone(),
        clr_date,
        insuplc_admdvs: req.insuplc_admdvs.clone(),
        mdtrt_admdvs: req.insuplc_admdvs.clone(),
        fixmedins_code: String::new(),
        message: crate::record::encode(&answer),
        content_hash: hash,
        totals: PairDelta { count: 1, medfee_fen: balance, fund_fen: 0, acct_fen: balance },
        orig_setl_id: None,
        reversed_by: None,
        supervision: None,
    };
    let change = MemberChange {
        key: member.key.clone(),
        expected_version: Some(member.version),
        accumulator: None,
        balance_delta_fen: -balance,
        recent: None,
        close: Some(AccountClosure { date: now.date_naive(), reason: reason.code().into(), setl_id: setl_id.into() }),
    };
    Planned { commit: Commit { shard, settlement, members: vec![change], reverses: None }, answer }
}

impl<S: Store> Clearinghouse<S> {
    /// Closes a member's account (`Registry.CloseAccount`); `known` says which insured regions exist.
    pub async fn close_account(
        &self,
        req: &Closure,
        known: &(dyn Fn(region_adapter::Admdvs) -> bool + Sync),
    ) -> Result<Settlement, ServiceError> {
        let mut v = Violations::default();
        fields::check_region(&mut v, "insuplc_admdvs", &req.insuplc_admdvs, known);
        fields::check_psn_no(&mut v, "psn_no", &req.psn_no);
        fields::check_msgid(&mut v, "msgid", &req.msgid);
        let reason = ClosureReason::parse(&req.reason);
        if reason.is_none() {
            v.add("reason", "must be emigration or death (Suizhou 003 art. 17)");
        }
        v.into_result(())?;
        let reason = reason.expect("checked");
        let hash = crate::record::closure_hash(req);
        let shard = shard_of(&req.insuplc_admdvs, &req.psn_no);
        let idem_key = idempotency_key(&req.insuplc_admdvs, "", &req.msgid);
        let key = IdemCtx { idem_key: &idem_key, hash: &hash, msgid: &req.msgid, until: Instant::now() + STORE_OUTAGE_PATIENCE };
        let member_key = MemberKey::new(&req.insuplc_admdvs, &req.psn_no);
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            // A resend is answered as it was, also after the account closed.
            if let Some(done) = self.replay(shard, &idem_key, &hash).await? {
                return Ok(done);
            }
            let member = self
                .store
                .load_member(&member_key)
                .await?
                .ok_or_else(|| ServiceError::NotFound { what: "member".into(), field: "psn_no".into() })?;
            if let Some(c) = &member.closed {
                return Err(closed_error(c));
            }
            let today = crate::calendar::today();
            let clr_date = self.store.open_window(shard, today).await?;
            let setl_id = self.ids.next(shard, id_clock());
            let planned = plan_closure(req, reason, &member, &setl_id, shard, clr_date, hash);
            if let Some(answer) = self.commit_attempt(planned, today, &key, attempt).await? {
                tracing::info!(target: "audit", setl_id = %answer.setl_id, region = %req.insuplc_admdvs, reason = reason.code(), amount = %answer.acct_pay, "account closed");
                return Ok(answer);
            }
        }
        Err(ServiceError::Aborted(MAX_COMMIT_ATTEMPTS))
    }
}
