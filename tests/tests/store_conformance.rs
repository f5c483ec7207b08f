//! One conformance suite for every store: the embedded redb store, a single Redis, and a 3-node Redis
//! Cluster. Each store must give the same answers to the same sequence of commits.

use chrono::NaiveDate;
use clearing_service::ids::shard_of;
use clearing_service::store::embedded::EmbeddedStore;
use clearing_service::store::redis::{RedisOptions, RedisStore, keys};
use clearing_service::store::*;
use tests::{Redis, RedisCluster};

fn today() -> NaiveDate {
    clearing_service::calendar::today()
}

fn upsert(k: &MemberKey, balance_fen: i64) -> MemberUpsert {
    MemberUpsert {
        key: k.clone(),
        psn_type: "11".into(),
        retire_date: None,
        pooling_only: false,
        filings: vec![],
        mulaid_beneficiaries: vec![],
        set_balance_fen: Some(balance_fen),
        credit_fen: 0,
        credit_facts: Default::default(),
        arrears: vec![],
        identity: None,
    }
}

fn record(setl_id: &str, msgid: &str, hash: u8, clr_date: NaiveDate, fund: i64, acct: i64) -> SettlementRecord {
    SettlementRecord {
        setl_id: setl_id.into(),
        msgid: msgid.into(),
        clr_date,
        insuplc_admdvs: "421300".into(),
        mdtrt_admdvs: "360100".into(),
        fixmedins_code: "H36010000001".into(),
        message: vec![1, 2, 3, hash],
        content_hash: [hash; 32],
        totals: PairDelta { count: 1, medfee_fen: 100_000, fund_fen: fund, acct_fen: acct },
        orig_setl_id: None,
        reversed_by: None,
        supervision: None,
    }
}

fn change(k: &MemberKey, version: Option<u64>, fund: i64, balance: i64) -> MemberChange {
    MemberChange {
        key: k.clone(),
        expected_version: version,
        accumulator: Some(AccumulatorDelta {
            year: 2023,
            benefit: "general".into(),
            deductible_used_fen: 50_000,
            fund_paid_fen: fund,
            visits: 1,
        }),
        balance_delta_fen: balance,
        recent: None,
        close: None,
    }
}

/// A settlement id in `shard` (the store relies on the id naming its shard).
fn sid(shard: u16, n: u64) -> String {
    format!("{shard:02x}{:012x}{n:010x}", 1)
}

/// Two person numbers of one insured region whose shards differ (for cross-shard family pay).
fn two_shards(prefix: &str) -> (MemberKey, MemberKey) {
    let a = MemberKey::new("421300", &format!("{prefix}A"));
    let sa = shard_of("421300", &a.psn_no);
    let b = (0..).map(|i| MemberKey::new("421300", &format!("{prefix}B{i}"))).find(|b| shard_of("421300", &b.psn_no) != sa).unwrap();
    (a, b)
}

async fn conformance<S: Store>(s: &S, tag: &str) {
    let k = MemberKey::new("421300", &format!("{tag}P1"));
    let shard = shard_of("421300", &k.psn_no);
    // Members: missing, created (version 1), replaced (version 2, accumulators kept), credited.
    assert!(s.load_member(&k).await.unwrap().is_none());
    let m = s.upsert_member(upsert(&k, 30_000)).await.unwrap();
    assert_eq!((m.version, m.acct_balc_fen), (1, 30_000));
    let mut u = upsert(&k, 0);
    u.set_balance_fen = None;
    u.credit_fen = 7_000;
    u.filings = vec![FilingRecord {
        mdtrt_admdvs: "360000".into(),
        begndate: NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
        enddate: None,
        group: None,
    }];
    let m = s.upsert_member(u).await.unwrap();
    assert_eq!((m.version, m.acct_balc_fen, m.filings.len()), (2, 37_000, 1));
    assert_eq!(s.load_member(&k).await.unwrap().unwrap(), m);

    // A commit writes accumulators, balance, settlement, idempotency, totals.
    let day = s.open_window(shard, today()).await.unwrap();
    assert_eq!(day, today());
    let r1 = record(&sid(shard, 1), &format!("{tag}M1"), 1, day, 24_000, 30_000);
    let c1 = Commit { shard, settlement: r1.clone(), members: vec![change(&k, Some(2), 24_000, -30_000)], reverses: None };
    assert_eq!(s.commit(c1.clone(), today()).await.unwrap(), CommitOutcome::Committed);
    let m = s.load_member(&k).await.unwrap().unwrap();
    assert_eq!((m.version, m.acct_balc_fen), (3, 7_000));
    let a = m.accumulator(2023, "general").unwrap();
    assert_eq!((a.deductible_used_fen, a.fund_paid_fen, a.visits), (50_000, 24_000, 1));
    assert_eq!(s.get_settlement(&r1.setl_id).await.unwrap().unwrap(), r1);
    let idem = clearing_service::ids::idempotency_key("360100", &r1.fixmedins_code, &r1.msgid);
    assert_eq!(
        s.lookup_idempotency(shard, &idem).await.unwrap(),
        Some(IdempotencyRecord { content_hash: [1; 32], setl_id: r1.setl_id.clone() })
    );

    // The same commit again is a replay of the stored settlement; other content is a mismatch.
    assert_eq!(s.commit(c1.clone(), today()).await.unwrap(), CommitOutcome::Replayed(Box::new(r1.clone())));
    let mut other = c1.clone();
    other.settlement = record(&sid(shard, 2), &r1.msgid, 9, day, 1, 1);
    assert_eq!(s.commit(other, today()).await.unwrap(), CommitOutcome::IdempotencyMismatch);
    // The same msgid from the same sender for another member (another shard) is a mismatch too.
    let stranger = (0..).map(|i| MemberKey::new("421300", &format!("{tag}X{i}"))).find(|k| shard_of("421300", &k.psn_no) != shard).unwrap();
    s.upsert_member(upsert(&stranger, 0)).await.unwrap();
    let ss = shard_of("421300", &stranger.psn_no);
    let reuse = Commit {
        shard: ss,
        settlement: record(&sid(ss, 20), &r1.msgid, 20, day, 1, 0),
        members: vec![change(&stranger, Some(1), 1, 0)],
        reverses: None,
    };
    assert_eq!(s.commit(reuse, today()).await.unwrap(), CommitOutcome::IdempotencyMismatch);
    assert_eq!(s.load_member(&stranger).await.unwrap().unwrap().version, 1);
    // Stale version, taken id, overdrawn account, wrong window: refused, nothing written.
    let stale = Commit {
        shard,
        settlement: record(&sid(shard, 3), &format!("{tag}M3"), 3, day, 1, 0),
        members: vec![change(&k, Some(2), 1, 0)],
        reverses: None,
    };
    assert_eq!(s.commit(stale, today()).await.unwrap(), CommitOutcome::VersionConflict);
    let taken = Commit {
        shard,
        settlement: record(&r1.setl_id, &format!("{tag}M4"), 4, day, 1, 0),
        members: vec![change(&k, Some(3), 1, 0)],
        reverses: None,
    };
    assert_eq!(s.commit(taken, today()).await.unwrap(), CommitOutcome::SetlIdTaken);
    let broke = Commit {
        shard,
        settlement: record(&sid(shard, 5), &format!("{tag}M5"), 5, day, 1, 8_000),
        members: vec![change(&k, Some(3), 1, -8_000)],
        reverses: None,
    };
    assert_eq!(s.commit(broke, today()).await.unwrap(), CommitOutcome::InsufficientBalance);
    let tomorrow = day.succ_opt().unwrap();
    let early = Commit {
        shard,
        settlement: record(&sid(shard, 6), &format!("{tag}M6"), 6, tomorrow, 1, 0),
        members: vec![change(&k, Some(3), 1, 0)],
        reverses: None,
    };
    assert_eq!(s.commit(early, today()).await.unwrap(), CommitOutcome::WindowMoved);
    assert_eq!(s.load_member(&k).await.unwrap().unwrap(), m, "refused commits wrote nothing");

    // A reversal marks its original, once.
    let mut rv = record(&sid(shard, 7), &format!("{tag}R1"), 7, day, -24_000, -30_000);
    rv.totals.count = -1;
    rv.totals.medfee_fen = -100_000;
    rv.orig_setl_id = Some(r1.setl_id.clone());
    let mut back = change(&k, None, -24_000, 30_000);
    back.accumulator.as_mut().unwrap().deductible_used_fen = -50_000;
    back.accumulator.as_mut().unwrap().visits = -1;
    let rc = Commit { shard, settlement: rv.clone(), members: vec![back.clone()], reverses: Some(r1.setl_id.clone()) };
    assert_eq!(s.commit(rc, today()).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(s.get_settlement(&r1.setl_id).await.unwrap().unwrap().reversed_by, Some(rv.setl_id.clone()));
    let mut rv2 = rv.clone();
    rv2.setl_id = sid(shard, 8);
    rv2.msgid = format!("{tag}R2");
    rv2.content_hash = [8; 32];
    let rc2 = Commit { shard, settlement: rv2, members: vec![back], reverses: Some(r1.setl_id.clone()) };
    assert_eq!(s.commit(rc2, today()).await.unwrap(), CommitOutcome::AlreadyReversed);
    let m = s.load_member(&k).await.unwrap().unwrap();
    let a = m.accumulator(2023, "general").unwrap();
    assert_eq!((a.deductible_used_fen, a.fund_paid_fen, a.visits, m.acct_balc_fen), (0, 0, 0, 37_000));

    // Family pay across shards: the payer's account pays, the patient's accumulators move.
    let (patient, payer) = two_shards(tag);
    s.upsert_member(upsert(&patient, 0)).await.unwrap();
    s.upsert_member(upsert(&payer, 10_000)).await.unwrap();
    let ps = shard_of("421300", &patient.psn_no);
    let fam = Commit {
        shard: ps,
        settlement: record(&sid(ps, 9), &format!("{tag}F1"), 10, day, 5_000, 6_000),
        members: vec![
            change(&patient, Some(1), 5_000, 0),
            MemberChange {
                key: payer.clone(),
                expected_version: Some(1),
                accumulator: None,
                balance_delta_fen: -6_000,
                recent: None,
                close: None,
            },
        ],
        reverses: None,
    };
    assert_eq!(s.commit(fam, today()).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(s.load_member(&payer).await.unwrap().unwrap().acct_balc_fen, 4_000);
    assert_eq!(s.load_member(&patient).await.unwrap().unwrap().accumulator(2023, "general").unwrap().fund_paid_fen, 5_000);
    // Overdrawing the payer is refused and changes neither side.
    let over = Commit {
        shard: ps,
        settlement: record(&sid(ps, 10), &format!("{tag}F2"), 11, day, 5_000, 6_000),
        members: vec![
            change(&patient, Some(2), 5_000, 0),
            MemberChange {
                key: payer.clone(),
                expected_version: Some(2),
                accumulator: None,
                balance_delta_fen: -6_000,
                recent: None,
                close: None,
            },
        ],
        reverses: None,
    };
    assert_eq!(s.commit(over, today()).await.unwrap(), CommitOutcome::InsufficientBalance);
    assert_eq!(s.load_member(&payer).await.unwrap().unwrap().acct_balc_fen, 4_000);
    assert_eq!(s.load_member(&patient).await.unwrap().unwrap().version, 2);
    // A stale patient version releases the payer's reservation.
    let stale = Commit {
        shard: ps,
        settlement: record(&sid(ps, 11), &format!("{tag}F3"), 12, day, 5_000, 1_000),
        members: vec![
            change(&patient, Some(1), 5_000, 0),
            MemberChange {
                key: payer.clone(),
                expected_version: None,
                accumulator: None,
                balance_delta_fen: -1_000,
                recent: None,
                close: None,
            },
        ],
        reverses: None,
    };
    assert_eq!(s.commit(stale, today()).await.unwrap(), CommitOutcome::VersionConflict);
    assert_eq!(s.load_member(&payer).await.unwrap().unwrap().acct_balc_fen, 4_000);

    // A reversal whose original is not there is a defined outcome that writes nothing, and the family
    // payer's reservation (a hold on a cluster) is released on that path too.
    let ghost = Commit {
        shard: ps,
        settlement: SettlementRecord {
            orig_setl_id: Some(sid(ps, 999)),
            totals: PairDelta { count: -1, medfee_fen: -100_000, fund_fen: -5_000, acct_fen: -1_000 },
            ..record(&sid(ps, 12), &format!("{tag}G1"), 13, day, -5_000, -1_000)
        },
        members: vec![
            change(&patient, None, -5_000, 0),
            MemberChange {
                key: payer.clone(),
                expected_version: None,
                accumulator: None,
                balance_delta_fen: -1_000,
                recent: None,
                close: None,
            },
        ],
        reverses: Some(sid(ps, 999)),
    };
    let (patient_before, payer_before) = (s.load_member(&patient).await.unwrap(), s.load_member(&payer).await.unwrap().unwrap());
    assert_eq!(s.commit(ghost, today()).await.unwrap(), CommitOutcome::OriginalMissing);
    assert_eq!(s.load_member(&patient).await.unwrap(), patient_before);
    let payer_after = s.load_member(&payer).await.unwrap().unwrap();
    assert_eq!(payer_after.acct_balc_fen, payer_before.acct_balc_fen, "the payer's reservation was released at once");
    assert_eq!(s.get_settlement(&sid(ps, 12)).await.unwrap(), None);

    // Window totals sum every shard's commits for the day: r1 + reversal + family.
    let totals = s.window_totals(day).await.unwrap();
    let pair = totals.pairs.iter().find(|(p, _)| p == &("421300".to_string(), "360100".to_string())).unwrap().1;
    assert_eq!((pair.count, pair.owed_fen), (1, 11_000));
    let t = &totals.all;
    assert_eq!((t.count, t.entries, t.medfee_fen, t.fund_fen, t.acct_fen), (1, 3, 100_000, 5_000, 6_000));
    assert_eq!(totals.by_mdtrt["360100"], *t);
    // The journal, summed entry by entry, says the same (netting's completeness check reads both).
    assert_eq!(s.journal_sums(day).await.unwrap(), *t);

    // Monthly account credits: at most once per member-month; a region's members listed in pages.
    let region = "140100";
    let ks: Vec<MemberKey> = (0..5).map(|i| MemberKey::new(region, &format!("{tag}CR{i}"))).collect();
    for k in &ks {
        s.upsert_member(upsert(k, 1_000)).await.unwrap();
    }
    assert_eq!(s.credit_month(&ks[0], "202405", 7_000).await.unwrap(), CreditOutcome::Credited { balance_fen: 8_000 });
    assert_eq!(s.credit_month(&ks[0], "202405", 9_999).await.unwrap(), CreditOutcome::AlreadyCredited { fen: 7_000 });
    assert_eq!(s.credit_month(&MemberKey::new(region, "NOBODY"), "202405", 1).await.unwrap(), CreditOutcome::Missing);
    let m = s.load_member(&ks[0]).await.unwrap().unwrap();
    assert_eq!((m.acct_balc_fen, m.credits.get("202405").copied()), (8_000, Some(7_000)));
    // An upsert keeps the credits made.
    s.upsert_member(upsert(&ks[0], 500)).await.unwrap();
    assert_eq!(s.load_member(&ks[0]).await.unwrap().unwrap().credits.len(), 1);
    let mine = |v: Vec<String>| v.into_iter().filter(|p| p.starts_with(&format!("{tag}CR"))).collect::<Vec<_>>();
    let first = s.members_of(region, "", 3).await.unwrap();
    let rest = s.members_of(region, first.last().unwrap(), 100).await.unwrap();
    let all = mine([first, rest].concat());
    assert_eq!(all, ks.iter().map(|k| k.psn_no.clone()).collect::<Vec<_>>());

    // Versioned records of a shard (visits): compare-and-set of several at once, all or nothing.
    let shard = shard_of("421300", &format!("{tag}VISIT"));
    let (v, l) = (format!("visit:{tag}1"), format!("visits-of:{tag}"));
    let w = |key: &str, expected: u64, data: Option<&str>| RecordWrite { key: key.into(), expected, data: data.map(str::to_string) };
    assert!(s.put_records(shard, vec![w(&v, 0, Some("a")), w(&l, 0, Some("[1]"))]).await.unwrap());
    let got = s.get_records(shard, &[v.clone(), l.clone(), "visit:none".into()]).await.unwrap();
    assert_eq!(got, vec![Some(Record { version: 1, data: "a".into() }), Some(Record { version: 1, data: "[1]".into() }), None]);
    // A stale version anywhere writes nothing.
    assert!(!s.put_records(shard, vec![w(&v, 1, Some("b")), w(&l, 0, Some("[2]"))]).await.unwrap());
    assert!(!s.put_records(shard, vec![w(&v, 0, Some("b"))]).await.unwrap(), "create over an existing record");
    assert_eq!(s.get_records(shard, std::slice::from_ref(&v)).await.unwrap()[0].as_ref().unwrap().data, "a");
    assert!(s.put_records(shard, vec![w(&v, 1, Some("b")), w(&l, 1, Some("[2]"))]).await.unwrap());
    assert_eq!(s.record_keys(shard, "visit:").await.unwrap(), vec![v.clone()]);
    // Delete: gone, and out of the shard's index.
    assert!(s.put_records(shard, vec![w(&v, 2, None)]).await.unwrap());
    assert_eq!(s.get_records(shard, std::slice::from_ref(&v)).await.unwrap(), vec![None]);
    assert!(s.record_keys(shard, "visit:").await.unwrap().is_empty());
    assert_eq!(s.record_keys(shard, "visits-of:").await.unwrap(), vec![l]);

    // Supervision: a commit adds its indicators and flagged entry and replaces the member's recent
    // visits, atomically with the settlement; a replay adds nothing; a reversal subtracts and unflags.
    let k = MemberKey::new("421300", &format!("{tag}SV"));
    let shard = shard_of("421300", &k.psn_no);
    let m = s.upsert_member(upsert(&k, 0)).await.unwrap();
    let day = s.open_window(shard, today()).await.unwrap();
    let delta = SupervisionDelta {
        month: "202301".into(),
        institution: "360100|H36010000001".into(),
        pair: "421300|360100".into(),
        sums: [1, 100_000, 0, 30_000, 0, 1_000, 1],
        kinds: vec!["high_cost".into()],
        flagged: Some("{\"e\":1}".into()),
        unflag: None,
    };
    let fields: Vec<(String, i64)> = [
        ("i|360100|H36010000001|n", 1),
        ("i|360100|H36010000001|m", 100_000),
        ("i|360100|H36010000001|e", 30_000),
        ("i|360100|H36010000001|f", 1_000),
        ("i|360100|H36010000001|x", 1),
        ("i|360100|H36010000001|k:high_cost", 1),
        ("p|421300|360100|n", 1),
        ("p|421300|360100|m", 100_000),
        ("p|421300|360100|e", 30_000),
        ("p|421300|360100|f", 1_000),
        ("p|421300|360100|x", 1),
        ("p|421300|360100|k:high_cost", 1),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_string(), v))
    .collect();
    let as_map = |v: Vec<(String, i64)>| v.into_iter().collect::<std::collections::BTreeMap<_, _>>();
    assert_eq!(as_map(delta.fields()), as_map(fields.clone()), "a delta's fields");
    let mut r1 = record(&sid(shard, 900), &format!("{tag}SV1"), 9, day, 1_000, 0);
    r1.supervision = Some(delta.clone());
    let visit = RecentVisit { date: NaiveDate::from_ymd_opt(2023, 1, 9).unwrap(), mdtrt_admdvs: "360100".into() };
    let mut ch = change(&k, Some(m.version), 1_000, 0);
    ch.recent = Some(vec![visit.clone()]);
    let c1 = Commit { shard, settlement: r1.clone(), members: vec![ch], reverses: None };
    assert_eq!(s.commit(c1.clone(), today()).await.unwrap(), CommitOutcome::Committed);
    let expected: std::collections::BTreeMap<String, i64> = fields.iter().cloned().collect();
    assert_eq!(added(s.indicators("202301").await.unwrap()), expected);
    let listed = s.flagged("202301", "", 10).await.unwrap();
    assert_eq!(listed.iter().map(|(_, id, e)| (id.as_str(), e.as_str())).collect::<Vec<_>>(), [(r1.setl_id.as_str(), "{\"e\":1}")]);
    assert!(s.flagged("202301", &listed[0].0, 10).await.unwrap().is_empty(), "nothing after the last cursor");
    let m = s.load_member(&k).await.unwrap().unwrap();
    assert_eq!(m.recent, vec![visit.clone()]);
    assert!(matches!(s.commit(c1, today()).await.unwrap(), CommitOutcome::Replayed(_)));
    assert_eq!(added(s.indicators("202301").await.unwrap()), expected, "a replay adds nothing");
    let mut rev = record(&sid(shard, 901), &format!("{tag}SV2"), 10, day, -1_000, 0);
    rev.orig_setl_id = Some(r1.setl_id.clone());
    rev.supervision = Some(SupervisionDelta { sums: delta.sums.map(|v| -v), flagged: None, unflag: Some(r1.setl_id.clone()), ..delta });
    let undo = MemberChange { key: k.clone(), expected_version: None, accumulator: None, balance_delta_fen: 0, recent: None, close: None };
    let c2 = Commit { shard, settlement: rev, members: vec![undo], reverses: Some(r1.setl_id.clone()) };
    assert_eq!(s.commit(c2, today()).await.unwrap(), CommitOutcome::Committed);
    assert!(added(s.indicators("202301").await.unwrap()).is_empty(), "a reversal subtracts everything it added");
    assert!(s.flagged("202301", "", 10).await.unwrap().is_empty(), "a reversed settlement leaves the flagged list");
    assert_eq!(s.load_member(&k).await.unwrap().unwrap().recent, vec![visit], "a reversal leaves the visit history");
    // A bulk load adds like commits do.
    s.add_indicators(shard, "202302", &[("i|360100|H36010000001|n".into(), 5)]).await.unwrap();
    s.add_indicators(shard + 1, "202302", &[("i|360100|H36010000001|n".into(), 2)]).await.unwrap();
    assert_eq!(added(s.indicators("202302").await.unwrap()).into_iter().collect::<Vec<_>>(), [("i|360100|H36010000001|n".to_string(), 7)]);

    // A msgid is the institution's (issue 29): two institutions of one region may use the same one …
    let day = s.open_window(shard, today()).await.unwrap();
    let at = |code: &str, n: u64, hash: u8| SettlementRecord {
        fixmedins_code: code.into(),
        ..record(&sid(shard, n), &format!("{tag}MSG"), hash, day, 1, 0)
    };
    let one = |r: SettlementRecord| Commit { shard, settlement: r, members: vec![change(&k, None, 1, 0)], reverses: None };
    assert_eq!(s.commit(one(at("H36010000001", 40, 40)), today()).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(s.commit(one(at("H36010000002", 41, 41)), today()).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(s.commit(one(at("H36010000002", 42, 42)), today()).await.unwrap(), CommitOutcome::IdempotencyMismatch);
    // … and an answer stored before, under `<mdtrt>:<msgid>` (as a record without an institution is
    // still keyed), keeps answering its resends, which now name the institution.
    let old = at("", 50, 50);
    let old = SettlementRecord { msgid: format!("{tag}OLD"), ..old };
    assert_eq!(s.commit(one(old.clone()), today()).await.unwrap(), CommitOutcome::Committed);
    let resend = SettlementRecord { fixmedins_code: "H36010000001".into(), setl_id: sid(shard, 51), ..old.clone() };
    assert_eq!(s.commit(one(resend.clone()), today()).await.unwrap(), CommitOutcome::Replayed(Box::new(old.clone())));
    let key = clearing_service::ids::idempotency_key("360100", "H36010000001", &old.msgid);
    assert_eq!(
        s.lookup_idempotency(shard, &key).await.unwrap(),
        Some(IdempotencyRecord { content_hash: [50; 32], setl_id: old.setl_id.clone() })
    );
    let changed = SettlementRecord { content_hash: [52; 32], setl_id: sid(shard, 52), ..resend };
    assert_eq!(s.commit(one(changed), today()).await.unwrap(), CommitOutcome::IdempotencyMismatch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    conformance(&s, "E").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_conforms() {
    let r = Redis::start();
    let s = RedisStore::connect(&RedisOptions { urls: vec![r.url()], allow_volatile: false }).await.unwrap();
    assert!(!s.is_cluster());
    conformance(&s, "R").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_store_conforms() {
    let c = RedisCluster::start();
    let s = RedisStore::connect(&RedisOptions { urls: vec![c.urls()], allow_volatile: false }).await.unwrap();
    assert!(s.is_cluster());
    conformance(&s, "C").await;
    // Nothing left half-done by the cross-shard saga.
    assert_eq!(s.sweep_holds().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_fsync_always_is_refused_unless_overridden() {
    let r = Redis::start_with(&["--appendfsync", "everysec"]);
    let e = RedisStore::connect(&RedisOptions { urls: vec![r.url()], allow_volatile: false }).await.err().expect("refused");
    assert!(e.to_string().contains("appendfsync=everysec"), "{e}");
    let r2 = Redis::start_with(&["--appendonly", "no"]);
    assert!(RedisStore::connect(&RedisOptions { urls: vec![r2.url()], allow_volatile: false }).await.is_err());
    assert!(RedisStore::connect(&RedisOptions { urls: vec![r2.url()], allow_volatile: true }).await.is_ok());
}

/// Folding is exactly once: four folders race each other (as replicas do) while commits keep landing;
/// afterwards the window-wide totals equal the sum of the commits.
async fn folding_races(s: RedisStore, tag: &str) {
    let day = today();
    let members: Vec<MemberKey> = (0..40).map(|i| MemberKey::new("421300", &format!("{tag}F{i}"))).collect();
    for m in &members {
        s.upsert_member(upsert(m, 0)).await.unwrap();
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut folders = Vec::new();
    for _ in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        folders.push(tokio::spawn(async move {
            let mut passes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.fold_window(today()).await.unwrap();
                passes += 1;
            }
            passes
        }));
    }
    let mut expected = (0i64, 0i64);
    for n in 0..400u64 {
        let m = &members[n as usize % members.len()];
        let shard = shard_of("421300", &m.psn_no);
        let fund = 100 + n as i64;
        let c = Commit {
            shard,
            settlement: record(&sid(shard, 1_000 + n), &format!("{tag}FM{n}"), (n % 250) as u8, day, fund, 0),
            members: vec![change(m, None, fund, 0)],
            reverses: None,
        };
        assert_eq!(s.commit(c, today()).await.unwrap(), CommitOutcome::Committed);
        expected.0 += 1;
        expected.1 += fund;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut passes = 0;
    for f in folders {
        passes += f.await.unwrap();
    }
    assert!(passes >= 4, "the folders ran ({passes} passes)");
    let t = s.window_totals(day).await.unwrap();
    assert_eq!((t.all.count, t.all.fund_fen, t.all.entries), (expected.0, expected.1, expected.0), "folded exactly once");
    assert_eq!(t.pairs.iter().map(|(_, p)| p.owed_fen).sum::<i64>(), expected.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folding_is_exactly_once_under_racing_folders() {
    let r = Redis::start();
    folding_races(RedisStore::connect(&RedisOptions { urls: vec![r.url()], allow_volatile: false }).await.unwrap(), "FR").await;
    let c = RedisCluster::start();
    folding_races(RedisStore::connect(&RedisOptions { urls: vec![c.urls()], allow_volatile: false }).await.unwrap(), "FC").await;
}

/// Redis errors are classified by whether a retry can help: a wrong-typed key is a final internal
/// error (read once, never retried), out of memory is exhaustion, a dead server is unavailability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_errors_are_classified_by_whether_a_retry_can_help() {
    let mut r = Redis::start();
    let s = RedisStore::connect(&RedisOptions { urls: vec![r.url()], allow_volatile: false }).await.unwrap();
    let k = MemberKey::new("421300", "ERRP1");
    s.upsert_member(upsert(&k, 10_000)).await.unwrap();

    // WRONGTYPE: a member key that holds a string. INTERNAL, and the read was not repeated.
    let bad = MemberKey::new("421300", "ERRP2");
    let bad_key = keys::member_key(&bad);
    r.cli(&["SET", &bad_key, "x"]);
    r.cli(&["CONFIG", "RESETSTAT"]);
    let e = s.load_member(&bad).await.unwrap_err();
    assert!(matches!(&e, StoreError::Failed(m) if m.contains("WRONGTYPE") && !m.contains("Operation against")), "{e:?}");
    let stats = r.cli(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_hgetall:calls=1,"), "a final error is not retried:\n{stats}");
    // The same key inside the commit script: a script error, final too.
    let shard = shard_of("421300", "ERRP2");
    let c = Commit {
        shard,
        settlement: record(&sid(shard, 1), "ERRM1", 1, today(), 100, 0),
        members: vec![change(&bad, None, 100, 0)],
        reverses: None,
    };
    assert!(matches!(s.commit(c, today()).await, Err(StoreError::Failed(_))));

    // Out of memory: RESOURCE_EXHAUSTED, nothing written.
    r.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    r.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let shard = shard_of("421300", "ERRP1");
    let c = Commit {
        shard,
        settlement: record(&sid(shard, 2), "ERRM2", 2, today(), 100, 0),
        members: vec![change(&k, None, 100, 0)],
        reverses: None,
    };
    let e = s.commit(c, today()).await.unwrap_err();
    assert!(matches!(e, StoreError::Exhausted(_)), "{e:?}");
    r.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(s.load_member(&k).await.unwrap().unwrap().version, 1, "nothing written");

    // A dead server: UNAVAILABLE once the read's bounded retries are spent.
    r.crash();
    let e = s.load_member(&k).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
}

/// Issue 20's migration: settlement records written before the binary record (JSON with the message
/// hex-encoded) are read as they were, next to new ones, and a reversal of such an original works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reads_records_written_before_the_binary_record() {
    let r = Redis::start();
    let s = RedisStore::connect(&RedisOptions { urls: vec![r.url()], allow_volatile: false }).await.unwrap();
    let k = MemberKey::new("421300", "MIGR1");
    s.upsert_member(upsert(&k, 10_000)).await.unwrap();
    let shard = shard_of("421300", "MIGR1");
    let ids = clearing_service::ids::SetlIds::new();
    let (old_id, new_id) = (ids.next(shard, 1), ids.next(shard, 2));
    // One written the old way (as a build before issue 20 stored it) ...
    let old = record(&old_id, "MIGR-1", 1, today(), 10_000, 0);
    let json = serde_json::to_string(&old).unwrap();
    assert!(json.starts_with('{') && json.contains("\"message\":\"01020301\""), "{json}");
    r.cli(&["HSET", &keys::settlement_key(&old_id).unwrap(), "rec", &json]);
    // ... and one committed now.
    let new = record(&new_id, "MIGR-2", 2, today(), 20_000, 0);
    let c = Commit { shard, settlement: new.clone(), members: vec![change(&k, Some(1), 20_000, 0)], reverses: None };
    assert_eq!(s.commit(c, today()).await.unwrap(), CommitOutcome::Committed);
    let stored = r.cli(&["HSTRLEN", &keys::settlement_key(&new_id).unwrap(), "rec"]);
    assert!(stored.trim().parse::<usize>().unwrap() < serde_json::to_string(&new).unwrap().len(), "binary is smaller");
    assert_eq!(s.get_settlement(&old_id).await.unwrap(), Some(old.clone()));
    assert_eq!(s.get_settlement(&new_id).await.unwrap(), Some(new));
    // The old original is reversed by a new reversal, and reads back marked.
    let rev_id = ids.next(shard, 3);
    let mut reversal = record(&rev_id, "MIGR-R", 3, today(), -10_000, 0);
    reversal.totals.count = -1;
    reversal.orig_setl_id = Some(old_id.clone());
    let c = Commit { shard, settlement: reversal, members: vec![], reverses: Some(old_id.clone()) };
    assert_eq!(s.commit(c, today()).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(s.get_settlement(&old_id).await.unwrap().unwrap().reversed_by, Some(rev_id));
}
