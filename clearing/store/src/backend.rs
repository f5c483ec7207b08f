//! The generic operations a store back-end implements beneath the typed ones: small shared metadata
//! (written once, or as maps) and versioned records of a shard. The features never call these: they
//! use the typed traits of `features` (`WindowMeta`, `InstitutionRecords`, `MemberIdentityIndex`,
//! `VisitRecords`), which are the one place that spells the keys. Outside this crate only the
//! conformance tests call these (`scripts/check_modules.py` fails on any other call or on naming
//! `backend`/`Primitives`; `Store: Primitives`, so the compiler alone cannot keep them out).

use crate::{Record, RecordWrite, StoreError};
use std::collections::BTreeMap;
use std::future::Future;

/// What every back-end provides beneath `Store`.
pub trait Primitives: Send + Sync + 'static {
    /// Small shared metadata (reports, acknowledgements, advances). Writes `value` under `key` unless a
    /// value is there; returns the value in force (the first one written).
    fn put_once(&self, key: &str, value: &str) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn get_meta(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Sets `field` of the map `key`; with `only_new`, keeps an existing value. Returns the value in force.
    fn map_set(&self, key: &str, field: &str, value: &str, only_new: bool) -> impl Future<Output = Result<String, StoreError>> + Send;
    fn map_get(&self, key: &str) -> impl Future<Output = Result<BTreeMap<String, String>, StoreError>> + Send;
    /// One field of the map `key`.
    fn map_get_field(&self, key: &str, field: &str) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Versioned records of `shard` (visits): several read at once.
    fn get_records(&self, shard: u16, keys: &[String]) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send;
    /// Writes several records of `shard` at once, all or nothing, each only if its version is as
    /// expected. `Ok(false)`: a version differed and nothing was written (reload and try again).
    fn put_records(&self, shard: u16, writes: Vec<RecordWrite>) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The names of `shard`'s records that start with `prefix` (the expiry sweep).
    fn record_keys(&self, shard: u16, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}
