//! Multilateral netting of one window, a pure function of the window's pair totals.
//!
//! Each settlement makes the insured region's fund owe the service location's fund
//! `fund_pay_sumamt + acct_pay`. Netting turns the window's obligations into one payment or receipt per
//! region through the central clearing account `000000`: a region's net position is what it is owed
//! minus what it owes; regions with a negative position pay exactly that to the central account,
//! regions with a positive one receive exactly that. Σ net = 0, so the central account ends at zero, and
//! the money moved, Σ max(0, net), is the least any settlement of these obligations can move (each
//! region must at least pay its net debit).

use crate::store::PairTotals;
use crate::store::WindowTotals;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// The central clearing account of the instructions.
pub const CENTRAL: &str = "000000";

/// One region's position in a window, fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub admdvs: String,
    /// What this region's fund owes others (as insured region).
    pub payable_fen: i64,
    /// What others owe this region's fund (as service location).
    pub receivable_fen: i64,
    /// receivable − payable.
    pub net_fen: i64,
}

/// One transfer to or from the central account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub from_admdvs: String,
    pub to_admdvs: String,
    pub amount_fen: i64,
}

/// A bilateral obligation after summing the window's settlements and reversals of one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    /// The debtor (insured region's fund).
    pub from_admdvs: String,
    /// The creditor (service location's fund).
    pub to_admdvs: String,
    pub amount_fen: i64,
    /// Settlements minus reversals behind it.
    pub count: i64,
}

/// The netting of one window. Canonical field order; `digest` is the SHA-256 of this struct
/// serialized as JSON with `digest` empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub clr_date: String,
    pub obligations: Vec<Obligation>,
    pub positions: Vec<Position>,
    pub instructions: Vec<Instruction>,
    /// Σ of every directed obligation.
    pub gross_total_fen: i64,
    /// Σ over region pairs of |a owes b − b owes a|.
    pub bilateral_net_total_fen: i64,
    /// Σ max(0, net): what the instructions move.
    pub multilateral_net_total_fen: i64,
    /// Settlements minus reversals in the window, and their amounts.
    pub settlement_count: i64,
    pub medfee_total_fen: i64,
    pub fund_total_fen: i64,
    pub acct_total_fen: i64,
    /// Journal entries (settlements + reversals) and the completeness check against them.
    pub journal_entries: i64,
    pub complete: bool,
    /// Each insured region's net debit against its advance (预付金) at netting time.
    pub advances: Vec<AdvanceRow>,
    pub digest: String,
}

/// A region's net debit against its advance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvanceRow {
    pub admdvs: String,
    pub advance_fen: i64,
    pub net_debit_fen: i64,
    /// net_debit / advance in basis points; `None` without an advance.
    pub usage_bp: Option<i64>,
    /// "ok" | "above_70" | "above_100" | "no_advance".
    pub flag: String,
}

/// Usage above this share of the advance is flagged (warning), and above 100% (over the advance).
const WARN_BP: i64 = 7_000;
const FULL_BP: i64 = 10_000;

/// Net debits against advances; regions with an advance and regions in debit both appear.
pub fn advance_rows(positions: &[Position], advances: &BTreeMap<String, i64>) -> Vec<AdvanceRow> {
    let mut regions: std::collections::BTreeSet<String> = advances.keys().cloned().collect();
    regions.extend(positions.iter().filter(|p| p.net_fen < 0).map(|p| p.admdvs.clone()));
    regions
        .into_iter()
        .map(|admdvs| {
            let net_debit_fen = positions.iter().find(|p| p.admdvs == admdvs).map_or(0, |p| (-p.net_fen).max(0));
            let advance_fen = advances.get(&admdvs).copied().unwrap_or(0);
            let usage_bp = (advance_fen > 0).then(|| ((net_debit_fen as i128 * 10_000) / advance_fen as i128) as i64);
            let flag = match usage_bp {
                None if net_debit_fen > 0 => "no_advance",
                None => "ok",
                Some(u) if u > FULL_BP => "above_100",
                Some(u) if u > WARN_BP => "above_70",
                Some(_) => "ok",
            };
            AdvanceRow { admdvs, advance_fen, net_debit_fen, usage_bp, flag: flag.into() }
        })
        .collect()
}

/// Why a window cannot be netted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NettingError {
    #[error("positions do not sum to zero ({0} fen)")]
    Unbalanced(i64),
}

/// Nets a window. `journal` is the window's sums computed from its journal entries, read by another
/// path than the totals (which Redis folds in the background); the report is complete only when the
/// two agree on entries, count and every amount, and the pairs' owed amounts add up to the totals.
pub fn net(clr_date: &str, totals: &WindowTotals, journal: &PairTotals, advances: &BTreeMap<String, i64>) -> Result<Report, NettingError> {
    // Directed obligations; a negative total (more reversed than settled) is owed the other way.
    // Hash maps for the work (hundreds of thousands of pairs), sorted once for the canonical report.
    let mut owed: HashMap<(&str, &str), (i64, i64)> = HashMap::with_capacity(totals.pairs.len());
    for ((ins, mdt), p) in &totals.pairs {
        if ins == mdt || (p.owed_fen == 0 && p.count == 0) {
            continue;
        }
        let (key, amt) =
            if p.owed_fen >= 0 { ((ins.as_str(), mdt.as_str()), p.owed_fen) } else { ((mdt.as_str(), ins.as_str()), -p.owed_fen) };
        let e = owed.entry(key).or_default();
        e.0 += amt;
        e.1 += p.count;
    }
    let all = &totals.all;
    let mut pos: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut gross = 0;
    let mut bilateral = 0;
    for (&(from, to), &(amt, _)) in &owed {
        gross += amt;
        pos.entry(from).or_default().0 += amt;
        pos.entry(to).or_default().1 += amt;
        // Each unordered pair once: from the smaller code, or from the only direction there is.
        match owed.get(&(to, from)) {
            Some(&(back, _)) if from < to => bilateral += (amt - back).abs(),
            Some(_) => {}
            None => bilateral += amt,
        }
    }
    let mut pos: Vec<(&str, (i64, i64))> = pos.into_iter().collect();
    pos.sort_unstable();
    // ((debtor, creditor), (amount, count)), sorted for the canonical report.
    type Owed<'a> = ((&'a str, &'a str), (i64, i64));
    let mut owed: Vec<Owed<'_>> = owed.into_iter().collect();
    owed.sort_unstable();
    let positions: Vec<Position> = pos
        .into_iter()
        .map(|(admdvs, (payable_fen, receivable_fen))| Position {
            admdvs: admdvs.to_string(),
            payable_fen,
            receivable_fen,
            net_fen: receivable_fen - payable_fen,
        })
        .collect();
    let sum: i64 = positions.iter().map(|p| p.net_fen).sum();
    if sum != 0 {
        return Err(NettingError::Unbalanced(sum));
    }
    let mut instructions = Vec::new();
    for p in &positions {
        match p.net_fen {
            n if n < 0 => instructions.push(Instruction { from_admdvs: p.admdvs.clone(), to_admdvs: CENTRAL.into(), amount_fen: -n }),
            n if n > 0 => instructions.push(Instruction { from_admdvs: CENTRAL.into(), to_admdvs: p.admdvs.clone(), amount_fen: n }),
            _ => {}
        }
    }
    // Σ net = 0 (checked above) makes what is paid in equal what is paid out: Σ max(0, net).
    let moved: i64 = positions.iter().map(|p| p.net_fen.max(0)).sum();
    let advances = advance_rows(&positions, advances);
    let mut report = Report {
        clr_date: clr_date.to_string(),
        obligations: owed
            .into_iter()
            .map(|((from, to), (amount_fen, count))| Obligation {
                from_admdvs: from.to_string(),
                to_admdvs: to.to_string(),
                amount_fen,
                count,
            })
            .collect(),
        positions,
        instructions,
        gross_total_fen: gross,
        bilateral_net_total_fen: bilateral,
        multilateral_net_total_fen: moved,
        settlement_count: all.count,
        medfee_total_fen: all.medfee_fen,
        fund_total_fen: all.fund_fen,
        acct_total_fen: all.acct_fen,
        journal_entries: journal.entries,
        // The totals and the journals are written by one commit, read here by two paths.
        complete: journal == all && all.fund_fen + all.acct_fen == totals.pairs.iter().map(|(_, p)| p.owed_fen).sum::<i64>(),
        advances,
        digest: String::new(),
    };
    // The digest field is still empty here: hash the canonical JSON as it is, without a copy.
    report.digest = hex::encode(Sha256::digest(serde_json::to_vec(&report).expect("report serializes")));
    Ok(report)
}

/// SHA-256 of the canonical JSON of a report with an empty digest.
pub fn digest(r: &Report) -> String {
    let mut c = r.clone();
    c.digest.clear();
    hex::encode(Sha256::digest(serde_json::to_vec(&c).expect("report serializes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(a: &str, b: &str, owed: i64) -> ((String, String), PairTotals) {
        ((a.into(), b.into()), PairTotals { count: 1, entries: 1, medfee_fen: owed, fund_fen: owed, acct_fen: 0 })
    }

    fn totals(pairs: &[((String, String), PairTotals)]) -> WindowTotals {
        WindowTotals::from_pairs(pairs.iter().cloned())
    }

    /// The sums a journal holding exactly these pairs' entries gives.
    fn journal(pairs: &[((String, String), PairTotals)]) -> PairTotals {
        let mut j = PairTotals::default();
        pairs.iter().for_each(|(_, t)| j.merge(t));
        j
    }

    #[test]
    fn three_regions_net_to_two_transfers() {
        // A owes B 100, B owes C 100, C owes A 30: gross 230; bilateral nets stay 230 (no pair owes
        // both ways); multilateral: A −70, B 0, C +70 → one transfer of 70 each way via the centre.
        let r = net(
            "2026-11-22",
            &totals(&[pair("A", "B", 100), pair("B", "C", 100), pair("C", "A", 30)]),
            &journal(&[pair("A", "B", 100), pair("B", "C", 100), pair("C", "A", 30)]),
            &BTreeMap::from([("A".to_string(), 80)]),
        )
        .unwrap();
        assert_eq!((r.gross_total_fen, r.bilateral_net_total_fen, r.multilateral_net_total_fen), (230, 230, 70));
        assert_eq!(
            r.instructions,
            vec![
                Instruction { from_admdvs: "A".into(), to_admdvs: CENTRAL.into(), amount_fen: 70 },
                Instruction { from_admdvs: CENTRAL.into(), to_admdvs: "C".into(), amount_fen: 70 }
            ]
        );
        assert!(r.complete);
        assert_eq!(r.digest, digest(&r));
        // A's net debit 70 of an advance of 80 = 87.5%: above 70%.
        assert_eq!(r.advances[0].usage_bp, Some(8_750));
        assert_eq!(r.advances[0].flag, "above_70");
    }

    #[test]
    fn reversals_that_outweigh_settlements_turn_the_obligation_around() {
        let r = net("d", &totals(&[pair("A", "B", -50)]), &journal(&[pair("A", "B", -50)]), &BTreeMap::new()).unwrap();
        assert_eq!(r.obligations[0].from_admdvs, "B");
        assert_eq!(r.positions.iter().find(|p| p.admdvs == "A").unwrap().net_fen, 50);
    }

    #[test]
    fn a_report_is_complete_only_when_the_journal_agrees_with_the_totals_in_every_amount() {
        let pairs = [pair("A", "B", 500), pair("B", "A", 200)];
        assert!(net("d", &totals(&pairs), &journal(&pairs), &BTreeMap::new()).unwrap().complete);
        // One entry more in the journal than in the totals.
        let mut j = journal(&pairs);
        j.entries += 1;
        assert!(!net("d", &totals(&pairs), &j, &BTreeMap::new()).unwrap().complete, "an entry the totals lack");
        // The same number of entries, but one amount differs by a fen: the old count-only check passed this.
        for bump in [
            |j: &mut PairTotals| j.fund_fen += 1,
            |j: &mut PairTotals| j.acct_fen -= 1,
            |j: &mut PairTotals| j.medfee_fen += 1,
            |j: &mut PairTotals| j.count -= 1,
        ] {
            let mut j = journal(&pairs);
            bump(&mut j);
            assert!(!net("d", &totals(&pairs), &j, &BTreeMap::new()).unwrap().complete, "journal amounts disagree with the totals");
        }
    }

    proptest! {
        #[test]
        fn netting_invariants_hold_for_random_obligation_matrices(m in prop::collection::vec((0u8..12, 0u8..12, -50_000i64..5_000_000), 0..200)) {
            let pairs: Vec<_> = m.iter().map(|(a, b, v)| pair(&format!("R{a:02}"), &format!("R{b:02}"), *v)).collect();
            let r = net("d", &totals(&pairs), &journal(&pairs), &BTreeMap::new()).unwrap();
            prop_assert!(r.complete);
            // Σ net = 0.
            prop_assert_eq!(r.positions.iter().map(|p| p.net_fen).sum::<i64>(), 0);
            // Each region at most one instruction, only through the central account.
            let mut seen = std::collections::HashSet::new();
            for i in &r.instructions {
                prop_assert!(i.amount_fen > 0);
                prop_assert!((i.from_admdvs == CENTRAL) != (i.to_admdvs == CENTRAL));
                let region = if i.from_admdvs == CENTRAL { &i.to_admdvs } else { &i.from_admdvs };
                prop_assert!(seen.insert(region.clone()), "two instructions for {}", region);
            }
            // Executing the instructions leaves every region at its net position and the centre at 0.
            let mut bal: BTreeMap<String, i64> = BTreeMap::new();
            for i in &r.instructions {
                *bal.entry(i.from_admdvs.clone()).or_default() -= i.amount_fen;
                *bal.entry(i.to_admdvs.clone()).or_default() += i.amount_fen;
            }
            prop_assert_eq!(bal.remove(CENTRAL).unwrap_or(0), 0);
            for p in &r.positions {
                prop_assert_eq!(bal.get(&p.admdvs).copied().unwrap_or(0), p.net_fen);
            }
            // The minimum: every debtor must pay at least its net debit, and the instructions move exactly that.
            let lower_bound: i64 = r.positions.iter().map(|p| (-p.net_fen).max(0)).sum();
            prop_assert_eq!(r.multilateral_net_total_fen, lower_bound);
            prop_assert!(r.multilateral_net_total_fen <= r.bilateral_net_total_fen);
            prop_assert!(r.bilateral_net_total_fen <= r.gross_total_fen);
            // Same input, same report (digest included).
            prop_assert_eq!(net("d", &totals(&pairs), &journal(&pairs), &BTreeMap::new()).unwrap(), r);
        }
    }
}
