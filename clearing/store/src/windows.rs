//! Window totals per region pair, and the journal each settlement appends to.

use crate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Totals of one (insured, service location) pair in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PairTotals {
    pub count: i64,
    /// Journal entries behind the totals (settlements and reversals, each 1).
    #[serde(default)]
    pub entries: i64,
    pub medfee_fen: i64,
    pub fund_fen: i64,
    pub acct_fen: i64,
}

impl PairTotals {
    /// Adds another total (of another shard, pair or service location).
    pub fn merge(&mut self, o: &PairTotals) {
        self.count += o.count;
        self.entries += o.entries;
        self.medfee_fen += o.medfee_fen;
        self.fund_fen += o.fund_fen;
        self.acct_fen += o.acct_fen;
    }

    pub fn add(&mut self, d: &PairDelta) {
        self.count += d.count;
        self.entries += 1;
        self.medfee_fen += d.medfee_fen;
        self.fund_fen += d.fund_fen;
        self.acct_fen += d.acct_fen;
    }
}

/// What one directed pair (insured → service location) owes in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairOwed {
    /// Settlements minus reversals.
    pub count: i64,
    /// Σ fund_pay_sumamt + acct_pay, fen.
    pub owed_fen: i64,
}

/// A window's totals as netting and reconciliation need them: per pair only what is owed (so that
/// netting reads two numbers per region pair), the full sums per service location and for the window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowTotals {
    /// Sorted by pair.
    pub pairs: Vec<((String, String), PairOwed)>,
    pub by_mdtrt: BTreeMap<String, PairTotals>,
    pub all: PairTotals,
}

impl WindowTotals {
    /// Builds the view from full per-pair totals (the embedded store keeps those).
    pub fn from_pairs(rows: impl IntoIterator<Item = ((String, String), PairTotals)>) -> WindowTotals {
        let mut out = WindowTotals::default();
        for ((ins, mdt), t) in rows {
            out.pairs.push(((ins, mdt.clone()), PairOwed { count: t.count, owed_fen: t.fund_fen + t.acct_fen }));
            let m = out.by_mdtrt.entry(mdt).or_default();
            m.merge(&t);
            out.all.merge(&t);
        }
        out.pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// One entry of a window's journal: a settlement or a reversal with its amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub setl_id: String,
    pub insuplc_admdvs: String,
    pub mdtrt_admdvs: String,
    /// The institution (empty on entries written before issue 29, and for account closures).
    pub fixmedins_code: String,
    pub totals: PairDelta,
}

impl JournalEntry {
    pub fn of(s: &SettlementRecord) -> JournalEntry {
        JournalEntry {
            setl_id: s.setl_id.clone(),
            insuplc_admdvs: s.insuplc_admdvs.clone(),
            mdtrt_admdvs: s.mdtrt_admdvs.clone(),
            fixmedins_code: s.fixmedins_code.clone(),
            totals: s.totals,
        }
    }
    /// `setl_id|insured|mdtrt|fixmedins_code|count|medfee|fund|acct`, the stored form (entries written
    /// before issue 29 lack the institution; both are read). The four numbers stay last:
    /// `redis/journal_sum.lua` reads them from the end.
    pub fn encode(&self) -> String {
        let t = &self.totals;
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            self.setl_id, self.insuplc_admdvs, self.mdtrt_admdvs, self.fixmedins_code, t.count, t.medfee_fen, t.fund_fen, t.acct_fen
        )
    }
    pub fn decode(s: &str) -> Result<JournalEntry, StoreError> {
        let bad = || StoreError::Corrupt(format!("journal entry {s:?}"));
        let p: Vec<&str> = s.split('|').collect();
        let (code, at) = match p.len() {
            7 => ("", 3),
            8 => (p[3], 4),
            _ => return Err(bad()),
        };
        let n = |i: usize| p[at + i].parse::<i64>().map_err(|_| bad());
        Ok(JournalEntry {
            setl_id: p[0].into(),
            insuplc_admdvs: p[1].into(),
            mdtrt_admdvs: p[2].into(),
            fixmedins_code: code.into(),
            totals: PairDelta { count: n(0)?, medfee_fen: n(1)?, fund_fen: n(2)?, acct_fen: n(3)? },
        })
    }
}

/// Indicator fields added up, zeros left out.
pub fn added(fields: Vec<(String, i64)>) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = BTreeMap::new();
    for (f, v) in fields {
        *out.entry(f).or_default() += v;
    }
    out.retain(|_, v| *v != 0);
    out
}
