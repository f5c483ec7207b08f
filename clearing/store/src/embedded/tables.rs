//! The tables of the embedded store and how rows are read.

use super::*;

pub(crate) const MEMBERS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("members");

pub(crate) const SETTLEMENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("settlements");

pub(crate) const IDEMPOTENCY: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("idempotency");

/// `<clr_date>|<insured>|<service location>` → pair totals (the Redis store keeps them per shard and
/// folds them into window-wide totals; one database needs no shard dimension).
pub(crate) const WINDOW_TOTALS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("window_totals");

/// The window's journal, for reconciliation and the window's checks: the entry with its amounts, under
/// `journal_row` (`<clr_date>|t<time-ordered setl_id>`; rows written before issue 32 are
/// `<clr_date>|<setl_id>`). Read by day and ordered by setl_id, whichever form.
pub(crate) const JOURNAL: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("journal");

/// A journal row's key: the day, then the settlement id with its shard moved to the end, so the
/// milliseconds and the process's sequence lead. A settlement id starts with its shard, which put each
/// new entry on a random page of the day (a page written per commit); in time order every commit of a
/// batch appends to the same last page (issue 32: about one page write less per settlement, 1.045×
/// throughput). The `t` keeps these rows apart from the older `<setl_id>` rows of the same day.
pub(crate) fn journal_row(clr_date: chrono::NaiveDate, setl_id: &str) -> String {
    match (setl_id.get(..2), setl_id.get(2..)) {
        (Some(shard), Some(rest)) => format!("{clr_date}|t{rest}{shard}"),
        _ => format!("{clr_date}|t{setl_id}"),
    }
}

/// `<clr_date>` → window state; a present key means the window is closed.
pub(crate) const WINDOWS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("windows");

/// Shared metadata: `<key>` → value, and `<key>|<field>` → value for maps.
pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");

/// Supervision deltas of commits not yet folded into the months' segments, by an increasing sequence:
/// a commit appends one row at the end of the tree (a page it shares with its neighbours) instead of
/// updating two rows anywhere in it; `fold_indicators` adds them up in bulk.
pub(crate) const SV_LOG: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("supervision_log");

/// A month's indicators as a few segments, `<month>|<seq, 16 hex>` → `<entity>|<measure>` sums
/// (`encode_sums`): each fold appends one segment per month it saw (one sequential write, however many
/// institutions), and once a month has more than `MAX_SEGMENTS` they are merged into one. A month is
/// read by adding up its segments.
pub(crate) const SV_SEGMENTS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("supervision_segments");

pub(crate) const MAX_SEGMENTS: usize = 16;

/// Log rows folded per transaction at most, so that a fold holds the writer for tens of milliseconds
/// (a fold that finds more leaves the rest for the next one).
pub(crate) const MAX_FOLD: usize = 2_000;

pub(crate) struct Tables<'t> {
    pub(crate) members: Table<'t, &'static str, &'static [u8]>,
    pub(crate) settlements: Table<'t, &'static str, &'static [u8]>,
    pub(crate) idempotency: Table<'t, &'static str, &'static [u8]>,
    pub(crate) totals: Table<'t, &'static str, &'static [u8]>,
    pub(crate) journal: Table<'t, &'static str, &'static [u8]>,
    pub(crate) windows: Table<'t, &'static str, &'static [u8]>,
    pub(crate) meta: Table<'t, &'static str, &'static [u8]>,
    pub(crate) sv_log: Table<'t, u64, &'static [u8]>,
    pub(crate) sv_segments: Table<'t, &'static str, &'static [u8]>,
    /// The supervision log's next key in this transaction (looked up once, then counted).
    pub(crate) next_log_seq: Option<u64>,
    pub(crate) faults: &'t Faults,
    /// Members as committed before this transaction (see `EmbeddedStore::members`).
    pub(crate) cache: &'t MemberCache,
    /// Members this transaction wrote, as written: read back by its later jobs, and put in `cache` once
    /// it has committed (dropped with it when it aborts).
    pub(crate) written: HashMap<String, MemberRecord>,
}

impl Tables<'_> {
    /// Every row write goes through here, so a planted fault can hit any of them. A member's row is
    /// written by `put_member` only (the member cache must see every member write).
    pub(crate) fn put(&mut self, table: TableId, key: &str, value: &[u8]) -> Result<(), StoreError> {
        debug_assert!(!matches!(table, TableId::Members), "member rows are written through put_member");
        self.put_row(table, key, value)
    }

    fn put_row(&mut self, table: TableId, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.faults.before_write(key)?;
        let t = match table {
            TableId::Members => &mut self.members,
            TableId::Settlements => &mut self.settlements,
            TableId::Idempotency => &mut self.idempotency,
            TableId::Totals => &mut self.totals,
            TableId::Journal => &mut self.journal,
            TableId::Windows => &mut self.windows,
            TableId::Meta => &mut self.meta,
        };
        t.insert(key, value).map_err(unavailable)?;
        Ok(())
    }

    /// A member as this transaction sees it: its own write, else the committed one (cached, or decoded
    /// from its row).
    pub(crate) fn member(&self, key: &str) -> Result<Option<MemberRecord>, StoreError> {
        if let Some(m) = self.written.get(key) {
            return Ok(Some(m.clone()));
        }
        if let Some(m) = self.cache.get(key) {
            return Ok(Some(MemberRecord::clone(&m)));
        }
        get_json(&self.members, key)
    }

    /// Writes a member's row; every member write goes through here, so the cache never holds a version
    /// the file does not.
    pub(crate) fn put_member(&mut self, key: &str, rec: MemberRecord) -> Result<(), StoreError> {
        self.put_row(TableId::Members, key, &serde_json::to_vec(&rec).map_err(corrupt)?)?;
        self.written.insert(key.to_string(), rec);
        Ok(())
    }

    pub(crate) fn remove_meta(&mut self, key: &str) -> Result<(), StoreError> {
        self.faults.before_write(key)?;
        self.meta.remove(key).map_err(unavailable)?;
        Ok(())
    }

    pub(crate) fn put_json<T: serde::Serialize>(&mut self, table: TableId, key: &str, v: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(v).map_err(corrupt)?;
        self.put(table, key, &bytes)
    }
}

#[derive(Clone, Copy)]
pub(crate) enum TableId {
    Members,
    Settlements,
    Idempotency,
    Totals,
    Journal,
    Windows,
    Meta,
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
    t: &Table<'_, &'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match t.get(key).map_err(unavailable)? {
        Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

/// A stored settlement of either form (see `record`).
pub(crate) fn get_settlement(t: &Table<'_, &'static str, &'static [u8]>, setl_id: &str) -> Result<Option<SettlementRecord>, StoreError> {
    match t.get(setl_id).map_err(unavailable)? {
        Some(v) => SettlementRecord::from_stored(v.value()).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn get_str(t: &Table<'_, &'static str, &'static [u8]>, key: &str) -> Result<Option<String>, StoreError> {
    match t.get(key).map_err(unavailable)? {
        Some(v) => String::from_utf8(v.value().to_vec()).map(Some).map_err(corrupt),
        None => Ok(None),
    }
}

/// A versioned record's row in the meta table: `rec|<shard>|<name>` → `<version>\0<data>`.
pub(crate) fn record_row(shard: u16, name: &str) -> String {
    format!("rec|{shard:03}|{name}")
}

pub(crate) fn parse_record(bytes: &[u8]) -> Result<Record, StoreError> {
    let split = bytes.iter().position(|b| *b == 0).ok_or_else(|| corrupt("record without a version"))?;
    let version = std::str::from_utf8(&bytes[..split]).ok().and_then(|v| v.parse().ok()).ok_or_else(|| corrupt("record version"))?;
    let data = String::from_utf8(bytes[split + 1..].to_vec()).map_err(corrupt)?;
    Ok(Record { version, data })
}
