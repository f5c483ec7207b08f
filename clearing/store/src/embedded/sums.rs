//! Supervision's sums: the log of deltas, its segments, the flagged settlements.

use super::*;

/// Sums as stored: per field its name's length (two bytes LE), its name, the sum (i64 LE).
pub(crate) fn encode_sums(sums: &BTreeMap<String, i64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(sums.len() * 40);
    for (m, v) in sums.iter().filter(|(_, v)| **v != 0) {
        let name = &m.as_bytes()[..m.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Calls `f` with each (name, sum) of stored sums (`encode_sums`).
pub(crate) fn each_sum(mut b: &[u8], mut f: impl FnMut(&str, i64)) -> Result<(), StoreError> {
    while !b.is_empty() {
        let truncated = || corrupt("indicator segment truncated");
        let len = u16::from_le_bytes(b.get(..2).ok_or_else(truncated)?.try_into().expect("2 bytes")) as usize;
        let rest = &b[2..];
        if rest.len() < len + 8 {
            return Err(truncated());
        }
        f(std::str::from_utf8(&rest[..len]).map_err(corrupt)?, i64::from_le_bytes(rest[len..len + 8].try_into().expect("8 bytes")));
        b = &rest[len + 8..];
    }
    Ok(())
}

/// Adds stored sums into `into`.
pub(crate) fn add_decoded(b: &[u8], into: &mut BTreeMap<String, i64>) -> Result<(), StoreError> {
    each_sum(b, |name, v| match into.get_mut(name) {
        Some(have) => *have += v,
        None => {
            into.insert(name.to_string(), v);
        }
    })
}

/// Stored sums as fields, appended to `out` (a month's segments may repeat a field).
pub(crate) fn read_fields(b: &[u8], out: &mut Vec<(String, i64)>) -> Result<(), StoreError> {
    each_sum(b, |name, v| out.push((name.to_string(), v)))
}

#[cfg(test)]
pub(crate) fn decode_sums(b: &[u8]) -> Result<BTreeMap<String, i64>, StoreError> {
    let mut out = BTreeMap::new();
    add_decoded(b, &mut out)?;
    Ok(out)
}

/// Appends `sums` as a new segment of `month`, merging the month's segments into one when there are
/// more than `MAX_SEGMENTS`.
pub(crate) fn add_segment(t: &mut Tables<'_>, month: &str, sums: &BTreeMap<String, i64>) -> Result<(), StoreError> {
    let (from, to) = (format!("{month}|"), format!("{month}}}"));
    let mut keys = Vec::new();
    for row in t.sv_segments.range(from.as_str()..to.as_str()).map_err(unavailable)? {
        keys.push(row.map_err(unavailable)?.0.value().to_string());
    }
    let seq_of = |k: &str| u64::from_str_radix(&k[from.len()..], 16).map_err(|_| corrupt(format!("indicator segment {k:?}")));
    let next = match keys.last() {
        Some(k) => seq_of(k)? + 1,
        None => 0,
    };
    if keys.len() < MAX_SEGMENTS {
        let key = format!("{from}{next:016x}");
        t.faults.before_write(&key)?;
        t.sv_segments.insert(key.as_str(), encode_sums(sums).as_slice()).map_err(unavailable)?;
        return Ok(());
    }
    let mut merged = sums.clone();
    for k in &keys {
        let v = t.sv_segments.remove(k.as_str()).map_err(unavailable)?.ok_or_else(|| corrupt("indicator segment vanished"))?;
        add_decoded(v.value(), &mut merged)?;
    }
    let key = format!("{from}{next:016x}");
    t.faults.before_write(&key)?;
    t.sv_segments.insert(key.as_str(), encode_sums(&merged).as_slice()).map_err(unavailable)?;
    Ok(())
}

/// Adds the logged supervision deltas (oldest first, at most `MAX_FOLD`) to their months as one
/// segment each and removes them from the log, in the caller's transaction; returns how many were folded.
pub(crate) fn fold_log(t: &mut Tables<'_>) -> Result<usize, StoreError> {
    let mut months: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let (mut last, mut n) = (None, 0);
    for row in t.sv_log.iter().map_err(unavailable)?.take(MAX_FOLD) {
        let (k, v) = row.map_err(unavailable)?;
        let d = SupervisionDelta::decode_logged(v.value())?;
        let sums = months.entry(d.month.clone()).or_default();
        for (kind, entity, m, v) in d.adds() {
            *sums.entry(format!("{kind}|{entity}|{m}")).or_default() += v;
        }
        last = Some(k.value());
        n += 1;
    }
    for (month, sums) in &months {
        add_segment(t, month, sums)?;
    }
    if let Some(last) = last {
        t.sv_log.retain_in(..=last, |_, _| false).map_err(unavailable)?;
    }
    Ok(n)
}

/// A flagged settlement's row in the month's flagged list: `fl|<month>|<setl_id>` → entry (JSON).
pub(crate) fn flagged_row(month: &str, setl_id: &str) -> String {
    format!("fl|{month}|{setl_id}")
}

/// Adds `<entity>|<measure>` amounts to the month (a segment of their own).
pub(crate) fn add_indicators(t: &mut Tables<'_>, month: &str, fields: &[(String, i64)]) -> Result<(), StoreError> {
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for (f, v) in fields {
        *sums.entry(f.clone()).or_default() += v;
    }
    add_segment(t, month, &sums)
}

pub(crate) fn apply_supervision(t: &mut Tables<'_>, s: &SettlementRecord) -> Result<(), StoreError> {
    let Some(sv) = &s.supervision else { return Ok(()) };
    let seq = match t.next_log_seq {
        Some(n) => n,
        None => t.sv_log.last().map_err(unavailable)?.map_or(0, |(k, _)| k.value() + 1),
    };
    t.faults.before_write(&format!("svlog|{}", s.setl_id))?;
    t.sv_log.insert(seq, sv.encode_logged().as_bytes()).map_err(unavailable)?;
    t.next_log_seq = Some(seq + 1);
    if let Some(entry) = &sv.flagged {
        t.put(TableId::Meta, &flagged_row(&sv.month, &s.setl_id), entry.as_bytes())?;
    }
    if let Some(orig) = &sv.unflag {
        t.remove_meta(&flagged_row(&sv.month, orig))?;
    }
    Ok(())
}
