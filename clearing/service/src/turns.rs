//! One settlement at a time per member in this replica.
//!
//! A settlement reads its member, computes, and commits only if the member is still at the version it
//! read. Under a stream's pipelining, a member's claims overlap: they all read one version, one commits,
//! and the others compute again. In a stream run of 20,000 claims on the embedded store, about a fifth
//! computed twice, a few up to eight times, and in 4 of 10 runs one ran out of attempts (ABORTED) while
//! its commits waited in the writer's queue (BENCHMARKS.md, issue 32, second session). So a settlement
//! takes its member's turn before reading it, and holds it until its commit has answered: the member's
//! next claim reads what this one wrote. Other replicas still meet a changed version now and then; the
//! version check and the retry stay.

use clearing_store::MemberKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept before the ones no settlement holds or awaits are swept (a waiter whose caller went
/// away leaves its entry behind); after a sweep, the next comes at twice the entries left, so a replica
/// with more members under way than this does not sweep on every settlement.
const SWEEP_ABOVE: usize = 4096;

type Gate = Arc<tokio::sync::Mutex<()>>;

/// The members whose settlement is under way in this replica, each with its gate.
#[derive(Default)]
pub struct MemberTurns {
    gates: Mutex<Gates>,
}

#[derive(Default)]
struct Gates {
    by_member: HashMap<String, Gate>,
    /// Entries above which the next `take` sweeps (`SWEEP_ABOVE` at least).
    sweep_at: usize,
}

/// A member's turn: held until dropped.
pub struct Turn<'a> {
    turns: &'a MemberTurns,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl MemberTurns {
    /// Waits until no other settlement of `member` in this replica is under way, then holds its turn.
    pub async fn take(&self, member: &MemberKey) -> Turn<'_> {
        let key = member.storage_key();
        let gate = {
            let mut gates = self.gates.lock().expect("member turns");
            if gates.by_member.len() > gates.sweep_at.max(SWEEP_ABOVE) {
                gates.by_member.retain(|_, g| Arc::strong_count(g) > 1);
                gates.sweep_at = 2 * gates.by_member.len();
            }
            gates.by_member.entry(key.clone()).or_default().clone()
        };
        let guard = gate.lock_owned().await;
        Turn { turns: self, key, guard: Some(guard) }
    }

    /// Members with a settlement under way or waiting.
    pub fn len(&self) -> usize {
        self.gates.lock().expect("member turns").by_member.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let gates = &mut self.turns.gates.lock().expect("member turns").by_member;
        // Only the map holds the gate now: nobody holds or awaits this member's turn.
        if gates.get(&self.key).is_some_and(|g| Arc::strong_count(g) == 1) {
            gates.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `f` is still waiting after one poll.
    async fn waiting<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        tokio::select! {
            biased;
            _ = f => false,
            _ = std::future::ready(()) => true,
        }
    }

    #[tokio::test]
    async fn a_members_second_settlement_waits_for_the_first_and_others_do_not() {
        let turns = MemberTurns::default();
        let (a, b) = (MemberKey::new("421300", "P1"), MemberKey::new("421300", "P2"));
        let first = turns.take(&a).await;
        let mut second = Box::pin(turns.take(&a));
        assert!(waiting(second.as_mut()).await, "the same member waits");
        let other = turns.take(&b).await;
        assert_eq!(turns.len(), 2);
        drop(first);
        let second = second.await;
        drop((second, other));
        assert!(turns.is_empty(), "no gate is left once every turn is over");
    }

    #[tokio::test]
    async fn a_waiter_whose_caller_went_away_is_swept() {
        let turns = MemberTurns::default();
        let p1 = MemberKey::new("421300", "P1");
        let held = turns.take(&p1).await;
        let mut gone = Box::pin(turns.take(&p1));
        assert!(waiting(gone.as_mut()).await);
        // The holder finishes while the waiter still counts, then the waiter's caller goes away.
        drop(held);
        drop(gone);
        assert_eq!(turns.len(), 1, "the abandoned gate is left behind");
        let busy: Vec<Turn<'_>> = {
            let mut v = Vec::new();
            for i in 0..SWEEP_ABOVE {
                v.push(turns.take(&MemberKey::new("421300", &format!("Q{i}"))).await);
            }
            v
        };
        assert_eq!(turns.len(), SWEEP_ABOVE + 1);
        let last = turns.take(&MemberKey::new("421300", "LAST")).await;
        assert_eq!(turns.len(), SWEEP_ABOVE + 1, "the sweep dropped the abandoned gate and kept the held ones");
        drop((busy, last));
        assert!(turns.is_empty());
        // The member whose waiter went away takes its turn as any other.
        let again = turns.take(&p1).await;
        assert_eq!(turns.len(), 1);
        drop(again);
        assert!(turns.is_empty());
    }
}
