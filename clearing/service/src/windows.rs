//! Windows, netting, reconciliation and advances: the national role's operations over the store.
//!
//! Rules of the window life cycle:
//! - Closing is idempotent and cannot be undone: a closed day never reopens; what comes after the
//!   close lands in the next open day (reversals included, as negative entries).
//! - A window can be netted only once closed. The first netting stores the report write-once; every
//!   later call (any replica) returns that same report, digest included. If netting fails (an
//!   unbalanced position, an unreadable store) nothing is stored and it can simply be run again: the
//!   totals of a closed window no longer change.
//! - Acknowledgements are recorded once per region with its bank reference; the same reference again is
//!   accepted, a different one refused. The window is settled when every region with an instruction
//!   has acknowledged.

use crate::metrics::M;
use crate::netting::{self, Report};
use crate::settle::Clearinghouse;
use crate::store::{JournalEntry, Store};
use chrono::{Datelike, NaiveDate};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as fields, Violations};
use opentelemetry::KeyValue;
use proto::v1 as pb;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};
use std::collections::{BTreeMap, HashMap};
use tracing::Instrument;

/// Differences listed in one reconciliation answer (all are counted).
pub const MAX_DIFFERENCES: usize = 10_000;
/// Items in one detail reconciliation (a service location's day is far below this).
pub const MAX_RECONCILE_ITEMS: usize = 20_000_000;

fn report_key(d: NaiveDate) -> String {
    format!("report:{d}")
}
fn acks_key(d: NaiveDate) -> String {
    format!("acks:{d}")
}
const ADVANCES_KEY: &str = "advances";

fn date(field: &str, s: &str) -> Result<NaiveDate, ServiceError> {
    let mut v = Violations::default();
    let d = fields::parse_date(&mut v, field, s);
    v.into_result(())?;
    Ok(d.expect("checked"))
}

fn region(field: &str, s: &str) -> Result<String, ServiceError> {
    match region_adapter::Admdvs::parse(s) {
        Some(a) if a != region_adapter::Admdvs::CENTRAL => Ok(a.to_string()),
        _ => Err(ServiceError::field(field, "must be a 6-digit division code")),
    }
}

pub fn report_pb(r: &Report) -> pb::NettingReport {
    pb::NettingReport {
        clr_date: r.clr_date.clone(),
        positions: r
            .positions
            .iter()
            .map(|p| pb::Position {
                admdvs: p.admdvs.clone(),
                payable: fmt_yuan(p.payable_fen),
                receivable: fmt_yuan(p.receivable_fen),
                net: fmt_yuan(p.net_fen),
            })
            .collect(),
        instructions: r
            .instructions
            .iter()
            .map(|i| pb::Instruction { from_admdvs: i.from_admdvs.clone(), to_admdvs: i.to_admdvs.clone(), amount: fmt_yuan(i.amount_fen) })
            .collect(),
        gross_total: fmt_yuan(r.gross_total_fen),
        bilateral_net_total: fmt_yuan(r.bilateral_net_total_fen),
        multilateral_net_total: fmt_yuan(r.multilateral_net_total_fen),
        saving: fmt_yuan(r.gross_total_fen - r.multilateral_net_total_fen),
        digest: r.digest.clone(),
        obligations: r
            .obligations
            .iter()
            .map(|o| pb::Obligation {
                from_admdvs: o.from_admdvs.clone(),
                to_admdvs: o.to_admdvs.clone(),
                amount: fmt_yuan(o.amount_fen),
                count: o.count,
            })
            .collect(),
        settlement_count: r.settlement_count,
        medfee_total: fmt_yuan(r.medfee_total_fen),
        fund_total: fmt_yuan(r.fund_total_fen),
        acct_total: fmt_yuan(r.acct_total_fen),
        journal_entries: r.journal_entries,
        complete: r.complete,
        advances: r.advances.iter().map(advance_pb).collect(),
    }
}

fn advance_pb(a: &netting::AdvanceRow) -> pb::AdvancePosition {
    pb::AdvancePosition {
        admdvs: a.admdvs.clone(),
        advance: fmt_yuan(a.advance_fen),
        net_debit: fmt_yuan(a.net_debit_fen),
        usage: a.usage_bp.map(|u| region_adapter::money::fmt_ratio(u.clamp(0, u32::MAX as i64) as u32)).unwrap_or_default(),
        flag: a.flag.clone(),
    }
}

impl<S: Store> Clearinghouse<S> {
    async fn advances(&self) -> Result<BTreeMap<String, i64>, ServiceError> {
        let raw = self.store.map_get(ADVANCES_KEY).await?;
        raw.into_iter()
            .map(|(k, v)| match v.parse::<i64>() {
                Ok(f) => Ok((k, f)),
                Err(e) => Err(ServiceError::Internal(format!("advance of {k}: {e}"))),
            })
            .collect()
    }

    async fn stored_report(&self, d: NaiveDate) -> Result<Option<Report>, ServiceError> {
        match self.store.get_meta(&report_key(d)).await? {
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| ServiceError::Internal(format!("stored report of {d}: {e}"))),
            None => Ok(None),
        }
    }

    /// The window's live totals as netting input (open or closed).
    async fn live_report(&self, d: NaiveDate) -> Result<Report, ServiceError> {
        let totals = self.store.window_totals(d).await?;
        let journal = self.store.journal_sums(d).await?;
        netting::net(&d.to_string(), &totals, &journal, &self.advances().await?)
            .map_err(|e| ServiceError::Internal(format!("netting {d}: {e}")))
    }

    pub async fn close_window(&self, clr_date: &str) -> Result<pb::Window, ServiceError> {
        let d = date("clr_date", clr_date)?;
        if d > crate::calendar::today() {
            return Err(ServiceError::field("clr_date", "a future window cannot be closed"));
        }
        self.store.close_window(d).instrument(tracing::debug_span!("window.close", clr_date = %d)).await?;
        tracing::info!(clr_date = %d, "window closed");
        self.window(d).await
    }

    pub async fn get_window(&self, clr_date: &str) -> Result<pb::Window, ServiceError> {
        self.window(date("clr_date", clr_date)?).await
    }

    async fn window(&self, d: NaiveDate) -> Result<pb::Window, ServiceError> {
        let closed = self.store.closed_windows().await?.contains(&d);
        let report = self.stored_report(d).await?;
        let acks = self.store.map_get(&acks_key(d)).await?;
        let acknowledgements: Vec<pb::Acknowledgement> = acks
            .iter()
            .map(|(admdvs, v)| {
                let (bank_ref, at) = v.split_once('|').unwrap_or((v.as_str(), ""));
                pb::Acknowledgement { admdvs: admdvs.clone(), bank_ref: bank_ref.into(), acknowledged_at: at.into() }
            })
            .collect();
        let (state, count, digest, awaiting) = match &report {
            Some(r) => {
                let awaiting: Vec<String> =
                    r.positions.iter().filter(|p| p.net_fen != 0 && !acks.contains_key(&p.admdvs)).map(|p| p.admdvs.clone()).collect();
                (if awaiting.is_empty() { "settled" } else { "netted" }, r.settlement_count, r.digest.clone(), awaiting)
            }
            None => {
                let count = self.store.window_totals(d).await?.all.count;
                (if closed { "closed" } else { "open" }, count, String::new(), Vec::new())
            }
        };
        Ok(pb::Window {
            clr_date: d.to_string(),
            state: state.into(),
            settlement_count: count,
            report_digest: digest,
            acknowledgements,
            awaiting_admdvs: awaiting,
        })
    }

    pub async fn list_windows(&self) -> Result<pb::ListWindowsResponse, ServiceError> {
        let mut dates = self.store.closed_windows().await?;
        let today = crate::calendar::today();
        let open = self.store.open_window(0, today).await?;
        if !dates.contains(&open) {
            dates.push(open);
        }
        let mut windows = Vec::with_capacity(dates.len());
        for d in dates {
            windows.push(self.window(d).await?);
        }
        Ok(pb::ListWindowsResponse { windows })
    }

    /// The netting report of a closed window, computed once and stored write-once.
    pub async fn netting_report(&self, clr_date: &str) -> Result<Report, ServiceError> {
        let d = date("clr_date", clr_date)?;
        if let Some(r) = self.stored_report(d).await? {
            return Ok(r);
        }
        if !self.store.closed_windows().await?.contains(&d) {
            return Err(ServiceError::FailedPrecondition(format!("window {d} is open: close it before netting (CloseWindow)")));
        }
        let started = std::time::Instant::now();
        let report = self.live_report(d).instrument(tracing::debug_span!("netting", clr_date = %d)).await?;
        let date_label = [KeyValue::new("clr_date", d.to_string())];
        M.netting_duration.record(started.elapsed().as_secs_f64(), &[]);
        M.window_settlements.record(report.settlement_count.max(0) as u64, &date_label);
        M.window_pairs.record(report.obligations.len() as u64, &date_label);
        record_advance_usage(&report.advances);
        if !report.complete {
            tracing::error!(clr_date = %d, "netting: totals and journal disagree; the report is marked incomplete");
        }
        let json = serde_json::to_string(&report).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let stored = self.store.put_once(&report_key(d), &json).await?;
        tracing::info!(clr_date = %d, elapsed_ms = started.elapsed().as_millis() as u64, regions = report.positions.len(), "window netted");
        // Another replica may have stored its (identical, deterministic) report first: return what is stored.
        if stored == json { Ok(report) } else { serde_json::from_str(&stored).map_err(|e| ServiceError::Internal(e.to_string())) }
    }

    pub async fn acknowledge(&self, req: &pb::AcknowledgeSettlementRequest) -> Result<pb::Window, ServiceError> {
        let d = date("clr_date", &req.clr_date)?;
        let adm = region("admdvs", &req.admdvs)?;
        if req.bank_ref.is_empty() || req.bank_ref.len() > 64 || req.bank_ref.contains('|') {
            return Err(ServiceError::field("bank_ref", "1–64 characters, no '|'"));
        }
        let report =
            self.stored_report(d).await?.ok_or_else(|| ServiceError::FailedPrecondition(format!("window {d} is not netted yet")))?;
        if !report.positions.iter().any(|p| p.admdvs == adm && p.net_fen != 0) {
            return Err(ServiceError::FailedPrecondition(format!("{adm} has no instruction in window {d}")));
        }
        let value = format!("{}|{}", req.bank_ref, chrono::Utc::now().to_rfc3339());
        let stored = self.store.map_set(&acks_key(d), &adm, &value, true).await?;
        if stored.split('|').next() != Some(req.bank_ref.as_str()) {
            return Err(ServiceError::FailedPrecondition(format!("{adm} already acknowledged window {d} with another bank reference")));
        }
        self.window(d).await
    }

    pub async fn set_advance(&self, req: &pb::SetAdvanceRequest) -> Result<pb::AdvancePosition, ServiceError> {
        let adm = region("admdvs", &req.admdvs)?;
        let mut v = Violations::default();
        let fen = fields::parse_money(&mut v, "amount", &req.amount, MAX_AMOUNT_FEN);
        v.into_result(())?;
        self.store.map_set(ADVANCES_KEY, &adm, &fen.expect("checked").to_string(), false).await?;
        let rows = netting::advance_rows(&[], &self.advances().await?);
        Ok(rows.iter().find(|r| r.admdvs == adm).map(advance_pb).expect("just set"))
    }

    pub async fn advance_positions(&self, clr_date: &str) -> Result<pb::AdvancePositions, ServiceError> {
        let d = date("clr_date", clr_date)?;
        let report = match self.stored_report(d).await? {
            Some(r) => r,
            None => self.live_report(d).await?,
        };
        record_advance_usage(&report.advances);
        Ok(pb::AdvancePositions { clr_date: d.to_string(), positions: report.advances.iter().map(advance_pb).collect() })
    }

    pub async fn reconcile_totals(&self, req: &pb::ReconcileTotalsRequest) -> Result<pb::ReconcileResult, ServiceError> {
        let d = date("clr_date", &req.clr_date)?;
        let mdtrt = region("mdtrt_admdvs", &req.mdtrt_admdvs)?;
        let mut v = Violations::default();
        let medfee = wire_signed(&mut v, "medfee_sumamt", &req.medfee_sumamt);
        let fund = wire_signed(&mut v, "fund_pay_sumamt", &req.fund_pay_sumamt);
        let acct = wire_signed(&mut v, "acct_pay", &req.acct_pay);
        v.into_result(())?;
        let ours = self.store.window_totals(d).await?.by_mdtrt.remove(&mdtrt).unwrap_or_default();
        let mut differences = Vec::new();
        let mut cmp = |field: &str, o: i64, t: i64, money: bool| {
            if o != t {
                let f = |x: i64| if money { fmt_yuan(x) } else { x.to_string() };
                differences.push(pb::Difference {
                    kind: "totals_differ".into(),
                    setl_id: String::new(),
                    field: field.into(),
                    ours: f(o),
                    theirs: f(t),
                });
            }
        };
        cmp("count", ours.count, req.count, false);
        cmp("medfee_sumamt", ours.medfee_fen, medfee.expect("checked"), true);
        cmp("fund_pay_sumamt", ours.fund_fen, fund.expect("checked"), true);
        cmp("acct_pay", ours.acct_fen, acct.expect("checked"), true);
        Ok(pb::ReconcileResult { matched: differences.is_empty(), differences_total: differences.len() as i64, differences, compared: 1 })
    }

    /// Detail reconciliation of one service location's window: their items against our journal.
    pub async fn reconcile_detail(
        &self,
        clr_date: &str,
        mdtrt: &str,
        theirs: Vec<pb::ReconcileItem>,
    ) -> Result<pb::ReconcileResult, ServiceError> {
        let d = date("clr_date", clr_date)?;
        // An empty service location reconciles the whole window (the national role's check).
        let mdtrt = if mdtrt.is_empty() { None } else { Some(region("mdtrt_admdvs", mdtrt)?) };
        let journal: Vec<JournalEntry> =
            self.store.window_journal(d).await?.into_iter().filter(|e| mdtrt.as_ref().is_none_or(|m| &e.mdtrt_admdvs == m)).collect();
        let mut ours: HashMap<&str, &JournalEntry> = journal.iter().map(|e| (e.setl_id.as_str(), e)).collect();
        let mut out = pb::ReconcileResult::default();
        let push = |out: &mut pb::ReconcileResult, diff: pb::Difference| {
            out.differences_total += 1;
            if out.differences.len() < MAX_DIFFERENCES {
                out.differences.push(diff);
            }
        };
        let compared = theirs.len() as i64;
        for (i, item) in theirs.iter().enumerate() {
            let mut v = Violations::default();
            let t = [
                wire_signed(&mut v, &format!("items[{i}].medfee_sumamt"), &item.medfee_sumamt),
                wire_signed(&mut v, &format!("items[{i}].fund_pay_sumamt"), &item.fund_pay_sumamt),
                wire_signed(&mut v, &format!("items[{i}].acct_pay"), &item.acct_pay),
            ];
            v.into_result(())?;
            match ours.remove(item.setl_id.as_str()) {
                None => push(&mut out, pb::Difference { kind: "missing_here".into(), setl_id: item.setl_id.clone(), ..Default::default() }),
                Some(e) => {
                    for (field, o, t) in [
                        ("medfee_sumamt", e.totals.medfee_fen, t[0]),
                        ("fund_pay_sumamt", e.totals.fund_fen, t[1]),
                        ("acct_pay", e.totals.acct_fen, t[2]),
                    ] {
                        let t = t.expect("checked");
                        if o != t {
                            push(
                                &mut out,
                                pb::Difference {
                                    kind: "amount_differs".into(),
                                    setl_id: item.setl_id.clone(),
                                    field: field.into(),
                                    ours: fmt_yuan(o),
                                    theirs: fmt_yuan(t),
                                },
                            );
                        }
                    }
                }
            }
        }
        let mut missing: Vec<&&JournalEntry> = ours.values().collect();
        missing.sort_by(|a, b| a.setl_id.cmp(&b.setl_id));
        for e in missing {
            push(&mut out, pb::Difference { kind: "missing_there".into(), setl_id: e.setl_id.clone(), ..Default::default() });
        }
        out.matched = out.differences_total == 0;
        out.compared = compared;
        Ok(out)
    }

    pub async fn monthly_statement(&self, setlym: &str) -> Result<pb::MonthlyStatement, ServiceError> {
        let (y, m) = match (
            setlym.len(),
            setlym.get(..4).and_then(|y| y.parse::<i32>().ok()),
            setlym.get(4..).and_then(|m| m.parse::<u32>().ok()),
        ) {
            (6, Some(y), Some(m)) if (1..=12).contains(&m) => (y, m),
            _ => return Err(ServiceError::field("setlym", "must be YYYYMM")),
        };
        let mut dates = self.store.closed_windows().await?;
        let open = self.store.open_window(0, crate::calendar::today()).await?;
        dates.push(open);
        let mut out = pb::MonthlyStatement { setlym: setlym.into(), ..Default::default() };
        let mut per: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let (mut gross, mut moved) = (0, 0);
        dates.sort();
        dates.dedup();
        for d in dates.into_iter().filter(|d| d.year() == y && d.month() == m) {
            match self.stored_report(d).await? {
                Some(r) => {
                    out.clr_dates.push(d.to_string());
                    for p in &r.positions {
                        let e = per.entry(p.admdvs.clone()).or_default();
                        e.0 += p.payable_fen;
                        e.1 += p.receivable_fen;
                    }
                    gross += r.gross_total_fen;
                    moved += r.multilateral_net_total_fen;
                    out.settlement_count += r.settlement_count;
                }
                None => out.pending_clr_dates.push(d.to_string()),
            }
        }
        out.positions = per
            .into_iter()
            .map(|(admdvs, (p, r))| pb::Position { admdvs, payable: fmt_yuan(p), receivable: fmt_yuan(r), net: fmt_yuan(r - p) })
            .collect();
        out.gross_total = fmt_yuan(gross);
        out.multilateral_net_total = fmt_yuan(moved);
        Ok(out)
    }
}

/// A signed wire amount (reconciliation totals may be negative after reversals).
fn wire_signed(v: &mut Violations, field: &str, s: &str) -> Option<i64> {
    let neg = s.starts_with('-');
    fields::parse_money(v, field, s.trim_start_matches('-'), MAX_AMOUNT_FEN * 1_000).map(|f| if neg { -f } else { f })
}

/// The advance-usage gauge, per region with an advance.
fn record_advance_usage(rows: &[netting::AdvanceRow]) {
    for r in rows {
        if let Some(bp) = r.usage_bp {
            M.advance_usage.record(bp.max(0) as u64, &[KeyValue::new("admdvs", r.admdvs.clone())]);
        }
    }
}
