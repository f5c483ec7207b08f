//! Issue 4's proofs with real processes: two `clearing` replicas on one Redis (and on a 3-node
//! cluster) under 64 concurrent clients; `kill -9` of Redis and of a replica under load. Afterwards
//! the books must balance exactly.

use proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::*;
use tonic::Code;

/// Members per test and their regions; caps and deductibles (in service, fen) of those regions:
/// Suizhou 003 art. 8, Nanchang 002 §4(二)1, Tongliao 004 Q8 (deductible an assumption of 0).
const REGIONS: [(&str, &str, i64, i64); 3] =
    [("421300", "360100", 130_000, 50_000), ("360100", "421300", 180_000, 60_000), ("150500", "421300", 400_000, 0)];
const MEMBERS: usize = 50;
const CLIENTS: usize = 64;

fn psn(tag: &str, i: usize) -> String {
    format!("{tag}{i:04}")
}

/// A random claim of member `i` (splitmix-style, deterministic per seed).
fn random_claim(tag: &str, n: usize, i: usize, r: u64) -> pb::Claim {
    let (ins, mdtrt, _, _) = REGIONS[i % REGIONS.len()];
    let lv = 2 + (r % 2) as u32; // level 2/3: paid by every region (Tongliao needs ≥ 2 across provinces)
    let yuan = 50 + (r >> 8) % 1500;
    let year = if (r >> 20).is_multiple_of(4) { "2024" } else { "2023" };
    let month = 1 + (r >> 24) % 12;
    let mut c = claim(&format!("{tag}-{n}"), ins, &psn(tag, i), mdtrt, lv, &format!("{year}-{month:02}-15"), yuan as u32);
    c.acct_used_flag = (r >> 30).is_multiple_of(2);
    c
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn register(c: &Clearing, tag: &str) {
    let mut reg = c.registry().await;
    for i in 0..MEMBERS {
        let (ins, mdtrt, _, _) = REGIONS[i % REGIONS.len()];
        let mut m = member(ins, &psn(tag, i), "11", &[&format!("{}0000", &mdtrt[..2])]);
        m.acct_balc = "2000.00".into();
        reg.upsert_member(m).await.unwrap();
    }
}

/// Failed calls a client retried, by status code.
type Retries = BTreeMap<String, usize>;

/// Drives `claims` random claims from CLIENTS concurrent clients spread over `replicas`, retrying an
/// unavailable call with the same msgid until it succeeds; returns every answer per msgid.
/// Also returns how many calls failed and were retried, per status code.
async fn drive(replicas: &[String], tag: &str, claims: usize, patience: Duration) -> (BTreeMap<String, Vec<pb::Settlement>>, Retries) {
    let answers: Arc<Mutex<BTreeMap<String, Vec<pb::Settlement>>>> = Arc::default();
    let retries: Arc<Mutex<Retries>> = Arc::default();
    let per = claims / CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let replicas = replicas.to_vec();
        let answers = answers.clone();
        let retries = retries.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            for r in &replicas {
                clients.push(ClearingClient::new(tonic::transport::Channel::from_shared(r.clone()).unwrap().connect_lazy()));
            }
            for k in 0..per {
                let n = c * per + k;
                let r = mix(n as u64 ^ 0xC0FFEE);
                let i = (r % MEMBERS as u64) as usize;
                let claim = random_claim(&tag, n, i, r >> 6);
                let deadline = Instant::now() + patience;
                let mut attempt = 0;
                loop {
                    let cl = &mut clients[(c + attempt) % replicas.len()];
                    attempt += 1;
                    match cl.settle_claim(claim.clone()).await {
                        Ok(s) => {
                            answers.lock().unwrap().entry(claim.msgid.clone()).or_default().push(s.into_inner());
                            break;
                        }
                        Err(e)
                            if matches!(
                                e.code(),
                                Code::Unavailable
                                    | Code::Aborted
                                    | Code::Unknown
                                    | Code::Internal
                                    | Code::Cancelled
                                    | Code::DeadlineExceeded
                            ) && Instant::now() < deadline =>
                        {
                            *retries.lock().unwrap().entry(format!("{:?}", e.code())).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("{}: {e:?}", claim.msgid),
                    }
                }
                // Now and then a client resends an answered claim: it must get the same answer.
                if r.is_multiple_of(17) {
                    let again = clients[0].settle_claim(claim.clone()).await;
                    if let Ok(s) = again {
                        answers.lock().unwrap().entry(claim.msgid.clone()).or_default().push(s.into_inner());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (Arc::try_unwrap(answers).unwrap().into_inner().unwrap(), Arc::try_unwrap(retries).unwrap().into_inner().unwrap())
}

/// The books balance: accumulators = Σ settlements per member-year, caps and deductibles respected,
/// window totals = Σ settlements, each answer stored exactly once and identical to what clients got.
async fn audit(
    c: &Clearing,
    store: &clearing_service::store::redis::RedisStore,
    tag: &str,
    answers: &BTreeMap<String, Vec<pb::Settlement>>,
) {
    use clearing_service::store::Store;
    use prost::Message;
    let mut per_member: HashMap<(String, u32), (i64, i64, i64)> = HashMap::new();
    let mut cl = c.clearing().await;
    let mut setl_ids = std::collections::HashSet::new();
    let (mut fund, mut acct, mut medfee) = (0i64, 0i64, 0i64);
    for (msgid, got) in answers {
        let first = &got[0];
        for g in got {
            assert_eq!(g.encode_to_vec(), first.encode_to_vec(), "{msgid}: a resend got a different answer");
        }
        assert!(setl_ids.insert(first.setl_id.clone()), "{msgid}: setl_id reused");
        let stored = cl.get_settlement(pb::GetSettlementRequest { setl_id: first.setl_id.clone() }).await.unwrap().into_inner();
        assert_eq!(stored.encode_to_vec(), first.encode_to_vec(), "{msgid}: stored settlement differs from the answer");
        let e = per_member.entry((first.psn_no.clone(), first.year)).or_default();
        e.0 += fen(&first.act_pay_dedc);
        e.1 += fen(&first.hifp_pay);
        e.2 += 1;
        fund += fen(&first.fund_pay_sumamt);
        acct += fen(&first.acct_pay);
        medfee += fen(&first.medfee_sumamt);
    }
    let mut reg = c.registry().await;
    for i in 0..MEMBERS {
        let (ins, _, cap, deductible) = REGIONS[i % REGIONS.len()];
        let m =
            reg.get_member(pb::GetMemberRequest { insuplc_admdvs: ins.into(), psn_no: psn(tag, i), year: 0 }).await.unwrap().into_inner();
        let mut seen = 0;
        for a in &m.accumulators {
            let (d, f, n) = per_member.get(&(psn(tag, i), a.year)).copied().unwrap_or_default();
            assert_eq!((fen(&a.deductible_used), fen(&a.fund_paid), a.visits as i64), (d, f, n), "member {i} year {}", a.year);
            assert!(fen(&a.fund_paid) <= cap, "member {i} year {}: cap passed", a.year);
            assert!(fen(&a.deductible_used) <= deductible, "member {i} year {}: deductible used twice", a.year);
            seen += n;
        }
        let expected: i64 = per_member.iter().filter(|((p, _), _)| *p == psn(tag, i)).map(|(_, v)| v.2).sum();
        assert_eq!(seen, expected, "member {i}: settlements missing from accumulators");
    }
    let totals = store.window_totals(clearing_service::calendar::today()).await.unwrap();
    let t = &totals.all;
    assert_eq!(
        (t.count, t.fund_fen, t.acct_fen, t.medfee_fen),
        (answers.len() as i64, fund, acct, medfee),
        "window totals = Σ settlements"
    );
    assert_eq!(totals.pairs.iter().map(|(_, p)| p.owed_fen).sum::<i64>(), fund + acct, "pair totals = Σ settlements");
}

async fn store_of(urls: &str) -> clearing_service::store::redis::RedisStore {
    clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
        urls: vec![urls.to_string()],
        allow_volatile: false,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_keep_exact_books_under_64_clients() {
    let r = Redis::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let b = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    register(&a, "CC").await;
    let (answers, _) = drive(&[a.url(), b.url()], "CC", 3_200, Duration::from_secs(30)).await;
    assert_eq!(answers.len(), 3_200);
    audit(&b, &store_of(&r.url()).await, "CC", &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_a_3_node_cluster_keep_exact_books() {
    let cluster = RedisCluster::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &cluster.urls()]);
    let b = Clearing::start_with(&["--store", "redis", "--redis-url", &cluster.nodes[1].url()]);
    register(&a, "CL").await;
    let (answers, _) = drive(&[a.url(), b.url()], "CL", 1_920, Duration::from_secs(30)).await;
    audit(&a, &store_of(&cluster.urls()).await, "CL", &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_redis_and_of_a_replica_loses_nothing_acknowledged() {
    let redis = Arc::new(Mutex::new(Redis::start()));
    let url = redis.lock().unwrap().url();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &url]);
    let mut b = Clearing::start_with(&["--store", "redis", "--redis-url", &url]);
    register(&a, "KR").await;
    // Redis is killed three times under load and restarted from its AOF.
    let chaos = {
        let redis = redis.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(400));
                let mut r = redis.lock().unwrap();
                r.crash();
                std::thread::sleep(Duration::from_millis(200));
                r.restart();
            }
        })
    };
    let (answers, retried) = drive(&[a.url(), b.url()], "KR", 1_920, Duration::from_secs(60)).await;
    chaos.await.unwrap();
    // Redis came back within every caller's deadline, so the replicas rode out each restart themselves
    // (reconnect, resolve the unknown commit by its idempotency key, commit again): no caller saw
    // UNAVAILABLE. The replicas' logs show that the crashes did hit requests in flight.
    let unavailable = retried.get("Unavailable").copied().unwrap_or(0);
    assert_eq!(unavailable, 0, "UNAVAILABLE answers although Redis came back at once: {retried:?}");
    let hit = |c: &Clearing| {
        let log = c.log();
        log.matches("commit outcome unknown").count() + log.matches("redis read failed; retrying").count()
    };
    assert!(hit(&a) + hit(&b) > 0, "the Redis crashes hit no request: the test proved nothing");
    println!("redis crashes: {} commits and reads resolved inside the replicas; client retries {retried:?}", hit(&a) + hit(&b));
    audit(&a, &store_of(&url).await, "KR", &answers).await;
    // Separately, a replica is killed under load; its clients retry the same msgid on the other one.
    register(&a, "KC").await;
    let b_url = b.url();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.crash();
        b
    });
    let (answers2, retried) = drive(&[a.url(), b_url], "KC", 1_280, Duration::from_secs(30)).await;
    assert!(retried.values().sum::<usize>() > 0, "the replica crash hit no request");
    let mut b = killer.await.unwrap();
    // The window holds both phases, so the totals are checked against all answers.
    let mut both = answers.clone();
    both.extend(answers2.clone());
    audit(&a, &store_of(&url).await, "KC", &both).await;
    b.restart();
    // After the restart, every answer of both phases is there, identical, read through the restarted replica.
    let mut cl = b.clearing().await;
    use prost::Message;
    for got in answers.values().chain(answers2.values()) {
        let s = cl.get_settlement(pb::GetSettlementRequest { setl_id: got[0].setl_id.clone() }).await.unwrap().into_inner();
        assert_eq!(s.encode_to_vec(), got[0].encode_to_vec());
    }
}

/// The member cache (issue 20) under replicas that change a member behind each other's back: every
/// answer equals the answer of one embedded-store instance given the same calls in the same order.
/// Replica A settles from its cache; B settles, re-registers the member as retired, funds its account,
/// removes a family link; each time A's next settlement finds its cached member stale (the commit's
/// version check), reads it again and computes again. A resend whose computation now fails (the family
/// link is gone) still gets its stored answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_member_cache_costs_a_retry_never_a_wrong_answer() {
    let r = Redis::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let b = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    let single = Clearing::start();
    let (mut a_cl, mut b_cl, mut one) = (a.clearing().await, b.clearing().await, single.clearing().await);
    let (mut a_reg, mut b_reg, mut one_reg) = (a.registry().await, b.registry().await, single.registry().await);
    let patient = member("421300", "MC1", "11", &["360000"]);
    let mut payer = funded(member("421300", "MCP", "11", &["360000"]), "500.00");
    payer.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: "MC1".into(), relation: "spouse".into() }];
    for m in [&patient, &payer] {
        a_reg.upsert_member(m.clone()).await.unwrap();
        one_reg.upsert_member(m.clone()).await.unwrap();
    }
    let mut fam = claim("MC-5", "421300", "MC1", "360100", 2, "2024-02-01", 700);
    fam.acct_used_flag = true;
    fam.acct_payer_psn_no = "MCP".into();
    let mut own = claim("MC-7", "421300", "MC1", "360100", 2, "2024-03-01", 400);
    own.acct_used_flag = true;
    let mut unlinked = payer.clone();
    unlinked.mulaid_beneficiaries.clear();
    #[allow(clippy::large_enum_variant)] // a test's list of steps
    enum Step {
        Settle(bool, pb::Claim),
        Upsert(pb::Member),
    }
    let steps = vec![
        Step::Settle(true, claim("MC-1", "421300", "MC1", "360100", 3, "2023-03-10", 800)),
        Step::Settle(false, claim("MC-2", "421300", "MC1", "360100", 1, "2023-05-01", 2000)),
        Step::Settle(true, claim("MC-3", "421300", "MC1", "360100", 1, "2023-06-01", 2000)),
        Step::Upsert(member("421300", "MC1", "12", &["360000"])),
        Step::Settle(true, claim("MC-4", "421300", "MC1", "360100", 1, "2024-01-03", 2000)),
        Step::Settle(true, fam.clone()),
        Step::Upsert(unlinked),
        Step::Settle(true, fam),
        Step::Upsert(funded(member("421300", "MC1", "12", &["360000"]), "300.00")),
        Step::Settle(true, own),
    ];
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Upsert(m) => {
                b_reg.upsert_member(m.clone()).await.unwrap();
                one_reg.upsert_member(m).await.unwrap();
            }
            Step::Settle(on_a, c) => {
                let replica = if on_a { &mut a_cl } else { &mut b_cl };
                let got = replica.settle_claim(c.clone()).await.unwrap_or_else(|e| panic!("step {n}: {e}")).into_inner();
                let want = one.settle_claim(c.clone()).await.unwrap_or_else(|e| panic!("step {n}, one instance: {e}")).into_inner();
                let strip = |s: pb::Settlement| pb::Settlement { setl_id: String::new(), clr_date: String::new(), ..s };
                assert_eq!(strip(got), strip(want), "step {n}: {}", c.msgid);
            }
        }
    }
    // A's cache was stale three times (after B's settlement and B's two upserts of the patient): each
    // cost a retry, none a wrong answer.
    let conflicts = a.log().matches("commit conflict; recomputing").count();
    assert!(conflicts >= 3, "A settled from its cache only {conflicts} times when stale: the test proved nothing");
    let m = a_reg
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "MC1".into(), year: 2024 })
        .await
        .unwrap()
        .into_inner();
    let o = one_reg
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "MC1".into(), year: 2024 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((m.acct_balc, m.accumulators), (o.acct_balc, o.accumulators));
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Settles `claim`, waiting out a Redis that is still coming back (UNAVAILABLE) within the patience.
async fn settle_when_up(cl: &ClearingClient<tonic::transport::Channel>, claim: &pb::Claim) -> pb::Settlement {
    eventually(&format!("{} settled", claim.msgid), PATIENCE, || {
        let (mut cl, claim) = (cl.clone(), claim.clone());
        async move {
            match cl.settle_claim(claim).await {
                Ok(s) => Some(s.into_inner()),
                Err(e) if e.code() == Code::Unavailable => None,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await
}

/// Issue 27: a crash that cuts Redis's append-only file inside a commit's `MULTI … EXEC` brings none of
/// it back. Claim X is settled through a replica; Redis is killed and its AOF cut a few bytes into X's
/// settlement record, after X's HINCRBYs of the member's accumulators; the restart repairs the file
/// (the start script cuts back to before X's MULTI, and says so); the resent X is computed and
/// committed again as X′; a second crash and restart replays exactly X′. Under Redis's default
/// (`aof-load-truncated yes`, no repair) the second restart replayed X's half as well: two visits and
/// twice the fund pay for one answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_that_cuts_the_aof_inside_a_commit_brings_none_of_it_back() {
    let mut redis = Redis::start();
    let url = redis.url();
    // No background fold: X's commit is the last write in the file.
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &url, "--fold-interval-secs", "3600"]);
    registered(&a, &[member("421300", "AOF1", "11", &["360000"])]).await;
    let x = claim("AOF-X", "421300", "AOF1", "360100", 2, "2024-03-15", 800);
    let cl = a.clearing().await;
    let first = settle_when_up(&cl, &x).await;
    assert!(fen(&first.hifp_pay) > 0, "the fund pays part of X: {first:?}");

    redis.crash();
    let aof = redis.incr_aof();
    let bytes = std::fs::read(&aof).unwrap();
    // X's record is `HSET <tag>:s:<setl_id> rec <record>`, after the member's HINCRBYs in the same MULTI.
    let needle = format!(":s:{}\r\n$3\r\nrec\r\n$", first.setl_id);
    let at = find(&bytes, needle.as_bytes()).expect("X's record in the AOF");
    let length_line = at + needle.len();
    let value = length_line + find(&bytes[length_line..], b"\r\n").expect("the record's length") + 2;
    let multi = rfind(&bytes[..at], b"MULTI").expect("X's MULTI");
    assert!(find(&bytes[multi..at], b"HINCRBY").is_some(), "X's accumulators come before its record in the AOF");
    std::fs::write(&aof, &bytes[..value + 4]).unwrap();
    redis.restart();
    assert!(redis.log().contains("cutting it back to its last complete transaction"), "the restart repaired the AOF:\n{}", redis.log());

    // X is gone with all its parts; the resend computes and commits X′, with the same amounts.
    let again = settle_when_up(&cl, &x).await;
    assert_ne!(again.setl_id, first.setl_id, "X′ is a new settlement");
    assert_eq!((&again.hifp_pay, &again.act_pay_dedc, &again.psn_cash_pay), (&first.hifp_pay, &first.act_pay_dedc, &first.psn_cash_pay));

    redis.crash();
    redis.restart();
    // Read through a replica started now (no member cached): the member holds X′ and nothing of X.
    let fresh = Clearing::start_with(&["--store", "redis", "--redis-url", &url, "--fold-interval-secs", "3600"]);
    let m = fresh
        .registry()
        .await
        .get_member(pb::GetMemberRequest { insuplc_admdvs: "421300".into(), psn_no: "AOF1".into(), year: 2024 })
        .await
        .unwrap()
        .into_inner();
    let acc: Vec<(i64, i64, i64)> =
        m.accumulators.iter().filter(|a| a.year == 2024).map(|a| (fen(&a.deductible_used), fen(&a.fund_paid), a.visits as i64)).collect();
    assert_eq!(acc, vec![(fen(&again.act_pay_dedc), fen(&again.hifp_pay), 1)], "accumulators = X′ alone");
    let mut fcl = fresh.clearing().await;
    let code = fcl.get_settlement(pb::GetSettlementRequest { setl_id: first.setl_id.clone() }).await.unwrap_err().code();
    assert_eq!(code, Code::NotFound, "X's record did not come back");
    let stored = fcl.get_settlement(pb::GetSettlementRequest { setl_id: again.setl_id.clone() }).await.unwrap().into_inner();
    assert_eq!(stored, again);
    use clearing_service::store::Store;
    let t = store_of(&url).await.window_totals(clearing_service::calendar::today()).await.unwrap().all;
    assert_eq!((t.count, t.fund_fen), (1, fen(&again.fund_pay_sumamt)), "the window holds X′ alone");
}

/// Issue 27: `clearing serve` refuses a Redis that would load a cut AOF (`aof-load-truncated yes`),
/// saying why and what to set; a node that turns unsafe while the service runs (a restart with another
/// configuration) stops writes, with the reason, until it is safe again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_would_load_a_cut_aof_is_refused() {
    let unsafe_redis = Redis::start_with(&["--aof-load-truncated", "yes"]);
    let out = std::process::Command::new(bin("clearing"))
        .args(["serve", "--plaintext", "--listen", "127.0.0.1:0", "--store", "redis", "--redis-url", &unsafe_redis.url()])
        .output()
        .expect("run clearing serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started on an unsafe Redis: {err}");
    assert!(err.contains("aof-load-truncated=yes") && err.contains("need aof-load-truncated=no"), "{err}");
    assert!(err.contains("redis-check-aof --fix"), "the message says how Redis is to be restarted: {err}");

    let redis = Redis::start();
    let a = Clearing::start_with(&["--store", "redis", "--redis-url", &redis.url()]);
    registered(&a, &[member("421300", "AOF2", "11", &["360000"])]).await;
    let cl = a.clearing().await;
    settle_when_up(&cl, &claim("AOF-1", "421300", "AOF2", "360100", 2, "2024-03-15", 300)).await;
    assert!(redis.cli(&["config", "set", "aof-load-truncated", "yes"]).contains("OK"));
    // A new msgid each try: a resend of an answered one is read, not written.
    let tries = std::sync::atomic::AtomicUsize::new(0);
    let refused = eventually("writes refused on the unsafe node", PATIENCE, || {
        let mut cl = cl.clone();
        let msgid = format!("AOF-2-{}", tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        async move {
            match cl.settle_claim(claim(&msgid, "421300", "AOF2", "360100", 2, "2024-03-16", 300)).await {
                Err(e) if e.code() == Code::Unavailable => Some(e),
                Err(e) => panic!("{e:?}"),
                Ok(_) => None,
            }
        }
    })
    .await;
    assert!(a.log().contains("aof-load-truncated=yes"), "the log says why");
    assert!(!refused.message().contains("127.0.0.1"), "no endpoint in the answer: {}", refused.message());
    assert!(redis.cli(&["config", "set", "aof-load-truncated", "no"]).contains("OK"));
    settle_when_up(&cl, &claim("AOF-3", "421300", "AOF2", "360100", 2, "2024-03-17", 300)).await;

    // Every node of a cluster is checked: one unsafe node refuses the start.
    let cluster = RedisCluster::start();
    assert!(cluster.nodes[2].cli(&["config", "set", "aof-load-truncated", "yes"]).contains("OK"));
    let e = clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
        urls: vec![cluster.urls()],
        allow_volatile: false,
    })
    .await
    .err()
    .expect("refused");
    assert!(e.to_string().contains(&format!("127.0.0.1:{}", cluster.nodes[2].port)) && e.to_string().contains("aof-load-truncated"), "{e}");
}
