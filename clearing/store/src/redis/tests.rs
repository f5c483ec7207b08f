use super::*;

/// The keys are data: a fold must find what earlier builds (the pending hashes) and this one (the
/// logs) wrote, under the names they wrote it.
#[test]
fn fold_keys_keep_the_names_stored_data_has() {
    let names = |k: FoldKeys| (k.pending, k.fold, k.seq);
    let day = "2026-01-01";
    let keys = |name| names(FoldKeys::of(7, name, day, String::new(), Vec::new(), None));
    assert_eq!(keys(WINDOW_SUMS), ("{ch:07}:w:2026-01-01".into(), "{ch:07}:wf:2026-01-01".into(), "{ch:07}:wseq:2026-01-01".into()));
    assert_eq!(keys(WINDOW_LOG), ("{ch:07}:wl:2026-01-01".into(), "{ch:07}:wlf:2026-01-01".into(), "{ch:07}:wlseq:2026-01-01".into()));
    let keys = |name| names(FoldKeys::of(255, name, "202601", String::new(), Vec::new(), None));
    assert_eq!(keys(SV_SUMS), ("{ch:ff}:sv:202601".into(), "{ch:ff}:svf:202601".into(), "{ch:ff}:svseq:202601".into()));
    assert_eq!(keys(SV_LOG), ("{ch:ff}:svl:202601".into(), "{ch:ff}:svlf:202601".into(), "{ch:ff}:svlseq:202601".into()));
    let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(window_log_key(7, date), "{ch:07}:wl:2026-01-01");
    assert_eq!(sv_pending_key(255, "202601"), "{ch:ff}:sv:202601");
}

fn member(psn: &str, version: u64) -> Arc<MemberRecord> {
    Arc::new(MemberRecord {
        key: MemberKey::new("421300", psn),
        psn_type: "11".into(),
        retire_date: None,
        pooling_only: false,
        acct_balc_fen: 0,
        filings: Vec::new(),
        mulaid_beneficiaries: Vec::new(),
        accumulators: Vec::new(),
        version,
        credit_facts: CreditFacts::default(),
        arrears: Vec::new(),
        credits: BTreeMap::new(),
        recent: Vec::new(),
        closed: None,
        identity: None,
    })
}

#[test]
fn the_member_cache_stays_bounded_and_keeps_the_members_in_use() {
    let c = MemberCache::new(4);
    for i in 0..4 {
        c.put(format!("m{i}"), member(&format!("m{i}"), 1));
    }
    // m0 is used again: moved to the newer generation, so it outlives m1.
    assert_eq!(c.get("m0").map(|m| m.version), Some(1));
    for i in 4..7 {
        c.put(format!("m{i}"), member(&format!("m{i}"), 1));
    }
    let held: Vec<String> = (0..7).map(|i| format!("m{i}")).filter(|k| c.get(k).is_some()).collect();
    assert!(held.len() <= 4, "{held:?}");
    assert!(held.contains(&"m0".to_string()) && held.contains(&"m6".to_string()), "{held:?}");
    assert!(c.get("m1").is_none());
    // A newer version replaces; forgetting removes from both generations.
    c.put("m6".into(), member("m6", 2));
    assert_eq!(c.get("m6").map(|m| m.version), Some(2));
    c.forget("m6");
    assert!(c.get("m6").is_none());
    // Off: nothing is kept.
    let off = MemberCache::new(0);
    off.put("m".into(), member("m", 1));
    assert!(off.get("m").is_none());
}
