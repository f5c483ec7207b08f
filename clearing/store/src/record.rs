//! The stored form of a settlement record, the same on every store: one version byte, then the record
//! as a prost message. Version 1 (issue 20) replaced JSON with the wire message hex-encoded inside it
//! (2.9 KB a settlement, ~3 % of a settlement's CPU in hex and JSON); it is about 45 % of that size.
//!
//! Migration: records written before version 1 are JSON objects, whose first byte is `{`; they are
//! read as before, so a store written by an older build keeps working with no step of its own, and a
//! record is rewritten in the new form only when it changes (a reversal marks its original). A build
//! older than version 1 cannot read a version-1 record: roll back only to a build that can.

use super::{PairDelta, SettlementRecord, StoreError, SupervisionDelta};
use chrono::NaiveDate;
use prost::Message;

/// The first byte of a version-1 record (JSON records begin with `{`, 0x7b).
pub const VERSION: u8 = 1;

#[derive(Clone, PartialEq, prost::Message)]
struct Stored {
    #[prost(string, tag = "1")]
    setl_id: String,
    #[prost(string, tag = "2")]
    msgid: String,
    /// Days since 0001-01-01 (`NaiveDate::num_days_from_ce`).
    #[prost(int32, tag = "3")]
    clr_date: i32,
    #[prost(string, tag = "4")]
    insuplc_admdvs: String,
    #[prost(string, tag = "5")]
    mdtrt_admdvs: String,
    #[prost(bytes = "vec", tag = "6")]
    message: Vec<u8>,
    #[prost(bytes = "vec", tag = "7")]
    content_hash: Vec<u8>,
    #[prost(sint64, tag = "8")]
    count: i64,
    #[prost(sint64, tag = "9")]
    medfee_fen: i64,
    #[prost(sint64, tag = "10")]
    fund_fen: i64,
    #[prost(sint64, tag = "11")]
    acct_fen: i64,
    #[prost(string, optional, tag = "12")]
    orig_setl_id: Option<String>,
    #[prost(string, optional, tag = "13")]
    reversed_by: Option<String>,
    #[prost(message, optional, tag = "14")]
    supervision: Option<StoredSupervision>,
    #[prost(string, tag = "15")]
    fixmedins_code: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredSupervision {
    #[prost(string, tag = "1")]
    month: String,
    #[prost(string, tag = "2")]
    institution: String,
    #[prost(string, tag = "3")]
    pair: String,
    #[prost(sint64, repeated, tag = "4")]
    sums: Vec<i64>,
    #[prost(string, repeated, tag = "5")]
    kinds: Vec<String>,
    #[prost(string, optional, tag = "6")]
    flagged: Option<String>,
    #[prost(string, optional, tag = "7")]
    unflag: Option<String>,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored settlement: {what}"))
}

impl SettlementRecord {
    /// The stored bytes: `VERSION`, then the prost message.
    pub fn to_stored(&self) -> Vec<u8> {
        let sv = self.supervision.as_ref().map(|s| StoredSupervision {
            month: s.month.clone(),
            institution: s.institution.clone(),
            pair: s.pair.clone(),
            sums: s.sums.to_vec(),
            kinds: s.kinds.clone(),
            flagged: s.flagged.clone(),
            unflag: s.unflag.clone(),
        });
        let stored = Stored {
            setl_id: self.setl_id.clone(),
            msgid: self.msgid.clone(),
            clr_date: chrono::Datelike::num_days_from_ce(&self.clr_date),
            insuplc_admdvs: self.insuplc_admdvs.clone(),
            mdtrt_admdvs: self.mdtrt_admdvs.clone(),
            message: self.message.clone(),
            content_hash: self.content_hash.to_vec(),
            count: self.totals.count,
            medfee_fen: self.totals.medfee_fen,
            fund_fen: self.totals.fund_fen,
            acct_fen: self.totals.acct_fen,
            orig_setl_id: self.orig_setl_id.clone(),
            reversed_by: self.reversed_by.clone(),
            supervision: sv,
            fixmedins_code: self.fixmedins_code.clone(),
        };
        let mut out = Vec::with_capacity(1 + stored.encoded_len());
        out.push(VERSION);
        stored.encode(&mut out).expect("a Vec grows as needed");
        out
    }

    /// A stored record of either form: version 1, or the JSON of the builds before it.
    pub fn from_stored(bytes: &[u8]) -> Result<SettlementRecord, StoreError> {
        match bytes.first() {
            Some(&VERSION) => {}
            Some(b'{') => return serde_json::from_slice(bytes).map_err(corrupt),
            Some(other) => return Err(corrupt(format!("unknown record version {other}"))),
            None => return Err(corrupt("empty")),
        }
        let s = Stored::decode(&bytes[1..]).map_err(corrupt)?;
        let clr_date = NaiveDate::from_num_days_from_ce_opt(s.clr_date).ok_or_else(|| corrupt(format!("clr_date {}", s.clr_date)))?;
        let content_hash: [u8; 32] = s.content_hash.as_slice().try_into().map_err(|_| corrupt("content hash is not 32 bytes"))?;
        let supervision = match s.supervision {
            None => None,
            Some(v) => Some(SupervisionDelta {
                month: v.month,
                institution: v.institution,
                pair: v.pair,
                sums: v.sums.as_slice().try_into().map_err(|_| corrupt(format!("{} supervision sums", v.sums.len())))?,
                kinds: v.kinds,
                flagged: v.flagged,
                unflag: v.unflag,
            }),
        };
        Ok(SettlementRecord {
            setl_id: s.setl_id,
            msgid: s.msgid,
            clr_date,
            insuplc_admdvs: s.insuplc_admdvs,
            mdtrt_admdvs: s.mdtrt_admdvs,
            fixmedins_code: s.fixmedins_code,
            message: s.message,
            content_hash,
            totals: PairDelta { count: s.count, medfee_fen: s.medfee_fen, fund_fen: s.fund_fen, acct_fen: s.acct_fen },
            orig_setl_id: s.orig_setl_id,
            reversed_by: s.reversed_by,
            supervision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(supervision: Option<SupervisionDelta>, orig: Option<&str>) -> SettlementRecord {
        SettlementRecord {
            setl_id: "0701ABC".into(),
            msgid: "M-1".into(),
            clr_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            insuplc_admdvs: "421300".into(),
            mdtrt_admdvs: "360100".into(),
            fixmedins_code: "H36010000001".into(),
            message: vec![0, 1, 2, 250, 255],
            content_hash: [7; 32],
            totals: PairDelta { count: -1, medfee_fen: -112_760, fund_fen: -22_310, acct_fen: 0 },
            orig_setl_id: orig.map(str::to_string),
            reversed_by: None,
            supervision,
        }
    }

    #[test]
    fn both_forms_read_back_equal() {
        let sv = SupervisionDelta {
            month: "202611".into(),
            institution: "360100|H36010000001".into(),
            pair: "421300|360100".into(),
            sums: [-1, -112_760, 0, 3, 0, -22_310, -1],
            kinds: vec!["high_cost".into()],
            flagged: None,
            unflag: Some("0701ABB".into()),
        };
        for rec in [record(None, None), record(Some(sv), Some("0701ABB")), record(Some(SupervisionDelta::default()), None)] {
            let stored = rec.to_stored();
            assert_eq!(stored[0], VERSION);
            assert_eq!(SettlementRecord::from_stored(&stored).unwrap(), rec);
            // The JSON of the builds before version 1 still reads.
            let json = serde_json::to_vec(&rec).unwrap();
            assert_eq!(SettlementRecord::from_stored(&json).unwrap(), rec);
            assert!(stored.len() < json.len());
        }
    }

    #[test]
    fn anything_else_is_refused() {
        assert!(SettlementRecord::from_stored(&[]).is_err());
        assert!(SettlementRecord::from_stored(&[2, 1, 2]).is_err());
        let mut cut = record(None, None).to_stored();
        cut.truncate(cut.len() - 3);
        assert!(SettlementRecord::from_stored(&cut).is_err());
    }
}
