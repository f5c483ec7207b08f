//! A member as stored: the registry facts (one JSON field), balance, version, accumulators, credits,
//! recent visits and the closure, read back into a `MemberRecord`.

use super::*;

/// The registry facts kept as one JSON field.
#[derive(Serialize, Deserialize)]
pub(crate) struct Facts {
    pub(crate) psn_type: String,
    pub(crate) retire_date: Option<NaiveDate>,
    pub(crate) pooling_only: bool,
    pub(crate) filings: Vec<FilingRecord>,
    pub(crate) mulaid_beneficiaries: Vec<BeneficiaryRecord>,
    #[serde(default)]
    pub(crate) credit_facts: CreditFacts,
    #[serde(default)]
    pub(crate) arrears: Vec<PeriodRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) identity: Option<PersonIdentity>,
}

pub(crate) fn member_from_fields(key: &MemberKey, fields: HashMap<String, String>) -> Result<Option<MemberRecord>, StoreError> {
    let Some(f) = fields.get("f") else { return Ok(None) };
    let facts: Facts = serde_json::from_str(f).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let int = |s: Option<&String>| -> Result<i64, StoreError> {
        s.map_or(Ok(0), |v| v.parse::<i64>().map_err(|e| StoreError::Corrupt(format!("{v:?}: {e}"))))
    };
    let mut accs: BTreeMap<(i32, String), AccumulatorRecord> = BTreeMap::new();
    let mut credits = BTreeMap::new();
    for (k, v) in &fields {
        if let Some(month) = k.strip_prefix("c:") {
            credits.insert(month.to_string(), int(Some(v))?);
            continue;
        }
        let Some(rest) = k.strip_prefix("a:") else { continue };
        let (yb, kind) = rest.rsplit_once(':').ok_or_else(|| StoreError::Corrupt(format!("field {k}")))?;
        let (year, benefit) = yb.split_once(':').ok_or_else(|| StoreError::Corrupt(format!("field {k}")))?;
        let year: i32 = year.parse().map_err(|_| StoreError::Corrupt(format!("field {k}")))?;
        let n = int(Some(v))?;
        let a = accs.entry((year, benefit.to_string())).or_insert_with(|| AccumulatorRecord {
            year,
            benefit: benefit.to_string(),
            deductible_used_fen: 0,
            fund_paid_fen: 0,
            visits: 0,
        });
        match kind {
            "d" => a.deductible_used_fen = n,
            "f" => a.fund_paid_fen = n,
            "n" => a.visits = n,
            _ => return Err(StoreError::Corrupt(format!("field {k}"))),
        }
    }
    Ok(Some(MemberRecord {
        key: key.clone(),
        psn_type: facts.psn_type,
        retire_date: facts.retire_date,
        pooling_only: facts.pooling_only,
        acct_balc_fen: int(fields.get("b"))?,
        filings: facts.filings,
        mulaid_beneficiaries: facts.mulaid_beneficiaries,
        accumulators: accs.into_values().collect(),
        version: int(fields.get("v"))? as u64,
        credit_facts: facts.credit_facts,
        arrears: facts.arrears,
        credits,
        recent: fields.get("h").map(|h| RecentVisit::decode_all(h)).transpose()?.unwrap_or_default(),
        closed: fields.get("x").map(|x| AccountClosure::decode(x)).transpose()?,
        identity: facts.identity,
    }))
}
