use super::*;

fn key() -> MemberKey {
    MemberKey::new("421300", "P-ATOMIC")
}

async fn store_with_member(dir: &Path) -> EmbeddedStore {
    let s = EmbeddedStore::open(dir).unwrap();
    let u = MemberUpsert {
        key: key(),
        psn_type: "11".into(),
        retire_date: None,
        pooling_only: false,
        filings: vec![],
        mulaid_beneficiaries: vec![],
        set_balance_fen: Some(30_000),
        credit_fen: 0,
        credit_facts: Default::default(),
        arrears: vec![],
        identity: None,
    };
    s.upsert_member(u).await.unwrap();
    s
}

/// A settlement debiting 100.00 from the member's account, computed from version 1.
fn commit(n: u64, today: NaiveDate) -> Commit {
    let shard = crate::ids::shard_of("421300", "P-ATOMIC");
    Commit {
        shard,
        settlement: SettlementRecord {
            setl_id: format!("{shard:02x}{:012x}{n:010x}", 1),
            msgid: format!("ATOMIC{n}"),
            clr_date: today,
            insuplc_admdvs: "421300".into(),
            mdtrt_admdvs: "360100".into(),
            fixmedins_code: "H36010000001".into(),
            message: vec![n as u8],
            content_hash: [n as u8; 32],
            totals: PairDelta { count: 1, medfee_fen: 50_000, fund_fen: 20_000, acct_fen: 10_000 },
            orig_setl_id: None,
            reversed_by: None,
            supervision: Some(SupervisionDelta {
                month: "202601".into(),
                institution: "360100|H36010000001".into(),
                pair: "421300|360100".into(),
                sums: [1, 50_000, 0, 0, 10_000, 20_000, 1],
                kinds: vec!["high_cost".into()],
                flagged: Some("{}".into()),
                unflag: None,
            }),
        },
        members: vec![MemberChange {
            key: key(),
            expected_version: None,
            accumulator: Some(AccumulatorDelta {
                year: 2026,
                benefit: "general".into(),
                deductible_used_fen: 0,
                fund_paid_fen: 20_000,
                visits: 1,
            }),
            balance_delta_fen: -10_000,
            recent: Some(vec![RecentVisit { date: today, mdtrt_admdvs: "360100".into() }]),
            close: None,
        }],
        reverses: None,
    }
}

type Snapshot = (MemberRecord, WindowTotals, Vec<JournalEntry>, BTreeMap<String, i64>, Vec<(String, String, String)>);

/// Everything a commit could have touched, for before/after comparison.
async fn snapshot(s: &EmbeddedStore, day: NaiveDate) -> Snapshot {
    (
        s.load_member(&key()).await.unwrap().unwrap(),
        s.window_totals(day).await.unwrap(),
        s.window_journal(day).await.unwrap(),
        added(s.indicators("202601").await.unwrap()),
        s.flagged("202601", "", 10).await.unwrap(),
    )
}

#[test]
fn logged_deltas_and_stored_sums_read_back_as_written() {
    let d = SupervisionDelta {
        month: "202303".into(),
        institution: "360100|H36010000001".into(),
        pair: "421300|360100".into(),
        sums: [-1, -50_000, 0, 7, -10_000, -20_000, -1],
        kinds: vec!["high_cost".into(), "multi_region_day".into()],
        flagged: None,
        unflag: None,
    };
    assert_eq!(SupervisionDelta::decode_logged(d.encode_logged().as_bytes()).unwrap(), d);
    let clean = SupervisionDelta { kinds: vec![], ..d };
    assert_eq!(SupervisionDelta::decode_logged(clean.encode_logged().as_bytes()).unwrap(), clean);
    assert!(SupervisionDelta::decode_logged(b"202303\x1fx").is_err());
    let sums: BTreeMap<String, i64> = [("n".to_string(), 3), ("k:high_cost".to_string(), -1), ("m".to_string(), i64::MAX)].into();
    assert_eq!(decode_sums(&encode_sums(&sums)).unwrap(), sums);
    assert!(decode_sums(&encode_sums(&sums)[..5]).is_err());
}

#[tokio::test]
async fn a_month_stays_a_few_segments_and_sums_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..40 {
        let fields = vec![("i|360100|H36010000001|n".to_string(), 1), (format!("i|360100|H360100{i:05}|m"), 100)];
        s.add_indicators(0, "202303", &fields).await.unwrap();
    }
    let got = added(s.indicators("202303").await.unwrap());
    assert_eq!(got.get("i|360100|H36010000001|n"), Some(&40));
    assert_eq!(got.len(), 41);
    let txn = s.db.begin_read().unwrap();
    let segments = txn.open_table(SV_SEGMENTS).unwrap().iter().unwrap().count();
    assert!(segments <= MAX_SEGMENTS, "{segments} segments");
    assert!(s.indicators("202304").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_commit_whose_last_write_fails_leaves_no_indicator_nor_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_member(dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let before = snapshot(&s, today).await;
    let c = commit(1, today);
    // The flagged entry is the commit's last write.
    s.fail_writes_of(Some(&flagged_row("202601", &c.settlement.setl_id)));
    assert!(matches!(s.commit(c.clone(), today).await, Err(StoreError::Unavailable(_))));
    assert_eq!(snapshot(&s, today).await, before, "no member, recent visit, total, journal, indicator or flag changed");
    s.fail_writes_of(None);
    assert_eq!(s.commit(c, today).await.unwrap(), CommitOutcome::Committed);
    let after = snapshot(&s, today).await;
    assert_eq!(after.3.get("i|360100|H36010000001|n"), Some(&1));
    assert_eq!(after.4.len(), 1);
    assert_eq!(after.0.recent.len(), 1);
}

#[tokio::test]
async fn a_commit_whose_write_fails_half_way_leaves_nothing_and_a_retry_debits_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_member(dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let before = snapshot(&s, today).await;
    let c = commit(1, today);
    // The member row is written first; the settlement row (the second write) fails.
    s.fail_writes_of(Some(&c.settlement.setl_id));
    let r = s.commit(c.clone(), today).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert_eq!(snapshot(&s, today).await, before, "no member, balance, total or journal changed");
    assert_eq!(s.get_settlement(&c.settlement.setl_id).await.unwrap(), None);
    let idem = crate::ids::idempotency_key("360100", "H36010000001", "ATOMIC1");
    assert_eq!(s.lookup_idempotency(c.shard, &idem).await.unwrap(), None);
    // The caller retries with the same msgid once the store works again: debited once.
    s.fail_writes_of(None);
    assert_eq!(s.commit(c.clone(), today).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(
        s.commit(c, today).await.unwrap(),
        CommitOutcome::Replayed(Box::new(s.get_settlement(&commit(1, today).settlement.setl_id).await.unwrap().unwrap()))
    );
    let m = s.load_member(&key()).await.unwrap().unwrap();
    assert_eq!((m.acct_balc_fen, m.version), (20_000, before.0.version + 1));
    assert_eq!(cached_is_filed(&s), 20_000);
    assert_eq!(s.window_journal(today).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_commit_in_a_batch_does_not_take_its_neighbours_down_nor_leave_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_member(dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let (a, b, c) = (commit(1, today), commit(2, today), commit(3, today));
    s.fail_writes_of(Some(&b.settlement.setl_id));
    let mut replies = Vec::new();
    let batch: Vec<Job> = [a, b.clone(), c]
        .into_iter()
        .map(|c| {
            let (tx, rx) = oneshot::channel();
            replies.push(rx);
            Job::Commit(Box::new(c), today, tx)
        })
        .collect();
    let answers = apply_batch(&s.db, &s.faults, &s.members, &batch);
    let outcomes: Vec<String> = answers
        .into_iter()
        .map(|a| match a {
            Answer::Commit(r) => format!("{r:?}").split('(').next().unwrap().to_string(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(outcomes, ["Ok", "Err", "Ok"]);
    s.fail_writes_of(None);
    let m = s.load_member(&key()).await.unwrap().unwrap();
    assert_eq!(m.acct_balc_fen, 10_000, "two debits of 100.00, not three");
    assert_eq!(m.accumulator(2026, "general").unwrap().visits, 2);
    assert_eq!(s.get_settlement(&b.settlement.setl_id).await.unwrap(), None);
    let t = s.window_totals(today).await.unwrap();
    assert_eq!((t.all.count, t.all.entries, t.all.acct_fen), (2, 2, 20_000));
    assert_eq!(s.window_journal(today).await.unwrap().len(), 2);
    assert_eq!(cached_is_filed(&s), 10_000, "the aborted transaction's member never reached the cache");
}

/// The member as the cache has it, checked against its row in the file (the writer's cache must only
/// ever hold a committed version); answers its balance.
fn cached_is_filed(s: &EmbeddedStore) -> i64 {
    let k = key().storage_key();
    let cached = s.members.get(&k).expect("the writer cached the member it committed");
    let filed = s.filed_member(&k).unwrap().unwrap();
    assert_eq!(*cached, filed);
    cached.acct_balc_fen
}

#[tokio::test]
async fn a_day_journaled_under_both_row_keys_reads_every_entry_once_in_setl_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = store_with_member(dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let (old, new_a, new_b) = (commit(2, today), commit(1, today), commit(3, today));
    // A row as builds before issue 32 wrote it, `<day>|<setl_id>`, and its settlement's neighbours
    // written now, in time order.
    let txn = s.db.begin_write().unwrap();
    let old_row = format!("{today}|{}", old.settlement.setl_id);
    txn.open_table(JOURNAL).unwrap().insert(old_row.as_str(), JournalEntry::of(&old.settlement).encode().as_bytes()).unwrap();
    txn.commit().unwrap();
    for c in [new_b, new_a] {
        assert_eq!(s.commit(c, today).await.unwrap(), CommitOutcome::Committed);
    }
    let ids: Vec<String> = s.window_journal(today).await.unwrap().into_iter().map(|e| e.setl_id).collect();
    let expected: Vec<String> = [1, 2, 3].map(|n| commit(n, today).settlement.setl_id).into();
    assert_eq!(ids, expected);
    // The commits wrote their rows with the time first, so a batch appends where the last one ended.
    let id = &commit(1, today).settlement.setl_id;
    let txn = s.db.begin_read().unwrap();
    let rows: Vec<String> = txn.open_table(JOURNAL).unwrap().iter().unwrap().map(|r| r.unwrap().0.value().to_string()).collect();
    assert!(rows.contains(&format!("{today}|t{}{}", &id[2..], &id[..2])), "{rows:?}");
    assert!(rows.contains(&old_row), "{rows:?}");
    assert_eq!(rows.len(), 3);
}
