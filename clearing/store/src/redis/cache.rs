//! Members as this replica last read or committed them (issue 20): the Redis store's use of the
//! `MemberCache`.

use super::*;

impl RedisStore {
    /// Keeps at most `cap` members in the member cache (`--member-cache`; 0 turns it off).
    pub fn with_member_cache(mut self, cap: usize) -> RedisStore {
        self.members = Arc::new(MemberCache::new(cap));
        self
    }

    /// Forgets the members of a commit that did not commit (or may not have): their next settlement
    /// reads them again.
    pub(crate) fn forget_members(&self, c: &Commit) {
        for m in &c.members {
            self.members.forget(&member_key(&m.key));
        }
    }

    /// After COMMITTED: a member whose version the script checked held exactly the state the change was
    /// computed from (every writer bumps the version), so the cached entry of that version with the
    /// change applied, by the arithmetic every store shares, is what Redis holds now. A change without
    /// a version check (a reversal), or a payer in another shard (the hold saga bumps it twice), is not
    /// known that way: forgotten.
    pub(crate) fn remember_committed(&self, c: &Commit, local: &[&MemberChange]) {
        for m in &c.members {
            let k = member_key(&m.key);
            let checked = local.iter().any(|l| std::ptr::eq(*l, m));
            self.members.update(&k, |rec| match m.expected_version {
                Some(v) if checked && rec.version == v => {
                    let rec = Arc::make_mut(rec);
                    apply_member_change(rec, m);
                    // As a read orders them (see `member_from_fields`).
                    rec.accumulators.sort_by(|a, b| (a.year, &a.benefit).cmp(&(b.year, &b.benefit)));
                    true
                }
                // Already newer (a read after this commit put it there).
                Some(v) => rec.version > v,
                None => false,
            });
        }
    }
}
