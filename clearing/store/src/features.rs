//! The stored schema of the features that keep small records beside the money: window metadata (the
//! netting report, acknowledgements, advances), the institutions upserted at run time, and the visits
//! of the hospital flow. Their names are spelled here only; features call these typed operations, which
//! every store gets from its primitive ones (`put_once`, `get_meta`, `map_*`, `*_records`).

use crate::{Record, RecordWrite, Store, StoreError};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::future::Future;

/// Record and map names.
pub mod names {
    use chrono::NaiveDate;

    /// A window's netting report, stored once.
    pub fn report(d: NaiveDate) -> String {
        format!("report:{d}")
    }
    /// A window's acknowledgements: admdvs → bank reference and time.
    pub fn acks(d: NaiveDate) -> String {
        format!("acks:{d}")
    }
    /// Advances (预付金): admdvs → fen.
    pub const ADVANCES: &str = "advances";
    /// Institutions upserted for a service location: fixmedins_code → JSON.
    pub fn institutions(mdtrt: &str) -> String {
        format!("institutions:{mdtrt}")
    }
    /// Prefix of every visit record (the expiry sweep lists them).
    pub const VISIT_PREFIX: &str = "visit:";
    /// A visit (versioned record in the member's shard).
    pub fn visit(mdtrt_id: &str) -> String {
        format!("{VISIT_PREFIX}{mdtrt_id}")
    }
    /// The key of the members' certificate index (random, made once per store; see `MemberIdentityIndex`).
    pub const MEMBER_IDENTITY_KEY: &str = "member-identity-key";
    /// The members holding a certificate, by the certificate's keyed hash (hex): member key → "1".
    pub fn member_identity(hash_hex: &str) -> String {
        format!("member-identity:{hash_hex}")
    }
    /// A member's open visits (versioned record in the member's shard).
    pub fn open_visits(insured: &str, psn_no: &str) -> String {
        format!("visits-of:{insured}:{psn_no}")
    }
}

/// Window metadata.
pub trait WindowMeta: Store {
    /// The stored netting report of `d` (JSON), if it was netted.
    fn netting_report(&self, d: NaiveDate) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        async move { self.get_meta(&names::report(d)).await }
    }
    /// Stores `d`'s report unless one is stored; returns the one in force.
    fn put_netting_report_once(&self, d: NaiveDate, json: &str) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move { self.put_once(&names::report(d), json).await }
    }
    fn acknowledgements(&self, d: NaiveDate) -> impl Future<Output = Result<BTreeMap<String, String>, StoreError>> + Send {
        async move { self.map_get(&names::acks(d)).await }
    }
    /// Records `admdvs`'s acknowledgement of `d` unless it has one; returns the one in force.
    fn acknowledge_once(&self, d: NaiveDate, admdvs: &str, value: &str) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move { self.map_set(&names::acks(d), admdvs, value, true).await }
    }
    fn advances(&self) -> impl Future<Output = Result<BTreeMap<String, String>, StoreError>> + Send {
        async move { self.map_get(names::ADVANCES).await }
    }
    fn set_advance(&self, admdvs: &str, fen: i64) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move { self.map_set(names::ADVANCES, admdvs, &fen.to_string(), false).await }
    }
}

impl<S: Store> WindowMeta for S {}

/// Institutions upserted at run time (the list `clearing` started with is in memory).
pub trait InstitutionRecords: Store {
    fn institution(&self, mdtrt: &str, code: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        async move { self.map_get_field(&names::institutions(mdtrt), code).await }
    }
    fn put_institution(&self, mdtrt: &str, code: &str, json: &str) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move { self.map_set(&names::institutions(mdtrt), code, json, false).await }
    }
}

impl<S: Store> InstitutionRecords for S {}

/// Members found by certificate (1101): the index maps the certificate's keyed hash, never the number,
/// to member keys. It is written before the member and never trusted alone: a reader checks the member's
/// own identity, so an entry left by a crash or by a changed certificate finds nothing.
pub trait MemberIdentityIndex: Store {
    /// The store's hash key (hex), made now from `fresh` unless one exists; the one in force.
    fn member_identity_key(&self, fresh: &str) -> impl Future<Output = Result<String, StoreError>> + Send {
        async move { self.put_once(names::MEMBER_IDENTITY_KEY, fresh).await }
    }
    fn index_member_identity(&self, hash_hex: &str, member: &crate::MemberKey) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move { self.map_set(&names::member_identity(hash_hex), &member.storage_key(), "1", false).await.map(|_| ()) }
    }
    /// The member keys indexed under `hash_hex` (candidates: check each member's identity).
    fn members_with_identity(&self, hash_hex: &str) -> impl Future<Output = Result<Vec<crate::MemberKey>, StoreError>> + Send {
        async move {
            let m = self.map_get(&names::member_identity(hash_hex)).await?;
            Ok(m.keys().filter_map(|k| crate::MemberKey::from_storage_key(k)).collect())
        }
    }
}

impl<S: Store> MemberIdentityIndex for S {}

/// Visits and members' open-visit lists: versioned records in the member's shard.
pub trait VisitRecords: Store {
    /// The records named, in order (`None` for one that does not exist).
    fn visit_records(&self, shard: u16, names: &[String]) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send {
        self.get_records(shard, names)
    }
    /// All or nothing, each only at its expected version; `Ok(false)` when one moved.
    fn put_visit_records(&self, shard: u16, writes: Vec<RecordWrite>) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.put_records(shard, writes)
    }
    /// The names of `shard`'s visit records (the expiry sweep).
    fn visit_names(&self, shard: u16) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        self.record_keys(shard, names::VISIT_PREFIX)
    }
}

impl<S: Store> VisitRecords for S {}
