//! Members as a store last read or committed them (issues 20 and 32), bounded: the Redis store keeps the
//! members this replica saw (never trusted: its commit script checks each version), the embedded store
//! the members its writer committed (it is their only writer, so the entries are what the file holds).

use crate::members::MemberRecord;
use std::collections::HashMap;
use std::sync::Arc;

/// Members by key, bounded: two generations of at most `cap / 2` entries each; a lookup that finds an
/// entry in the older one moves it to the newer, and when the newer is full the older is dropped. So the
/// members settling now stay, and memory stays under `cap` entries (each the size of the member's record,
/// mostly its registry facts).
pub struct MemberCache {
    pub(crate) cap: usize,
    pub(crate) gens: std::sync::Mutex<[HashMap<String, Arc<MemberRecord>>; 2]>,
}

/// Members kept by default (`--member-cache`).
pub const DEFAULT_MEMBER_CACHE: usize = 100_000;

impl MemberCache {
    pub(crate) fn new(cap: usize) -> MemberCache {
        MemberCache { cap, gens: std::sync::Mutex::new([HashMap::new(), HashMap::new()]) }
    }

    pub(crate) fn get(&self, key: &str) -> Option<Arc<MemberRecord>> {
        if self.cap == 0 {
            return None;
        }
        let mut g = self.gens.lock().expect("member cache");
        if let Some(m) = g[0].get(key) {
            return Some(m.clone());
        }
        let m = g[1].remove(key)?;
        Self::put_in(&mut g, self.cap, key.to_string(), m.clone());
        Some(m)
    }

    pub(crate) fn put(&self, key: String, m: Arc<MemberRecord>) {
        if self.cap > 0 {
            Self::put_in(&mut self.gens.lock().expect("member cache"), self.cap, key, m);
        }
    }

    pub(crate) fn put_in(g: &mut [HashMap<String, Arc<MemberRecord>>; 2], cap: usize, key: String, m: Arc<MemberRecord>) {
        if g[0].len() >= cap.div_ceil(2) && !g[0].contains_key(&key) {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[1].remove(&key);
        g[0].insert(key, m);
    }

    /// Changes the entry of `key` in place, if there is one and `f` says so (`f` answers whether to keep
    /// it). Copy-on-write: a settlement still holding the entry keeps what it read.
    pub(crate) fn update(&self, key: &str, f: impl FnOnce(&mut Arc<MemberRecord>) -> bool) {
        if self.cap == 0 {
            return;
        }
        let mut g = self.gens.lock().expect("member cache");
        let keep = match g[0].get_mut(key) {
            Some(m) => f(m),
            None => match g[1].get_mut(key) {
                Some(m) => f(m),
                None => return,
            },
        };
        if !keep {
            g[0].remove(key);
            g[1].remove(key);
        }
    }

    pub(crate) fn forget(&self, key: &str) {
        self.update(key, |_| false);
    }
}
