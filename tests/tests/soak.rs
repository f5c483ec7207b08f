//! The soak (issue 14): claims, reversals and family-account payments from many clients at two
//! replicas on Redis (AOF always), or with `SOAK_CLUSTER=1` on a 3-node Redis Cluster (where family pay
//! crosses shards through the hold saga), while `clearing` and `redis-server` are killed with SIGKILL
//! at random moments and today's window is closed half-way. Then the books are checked.
//!
//! Not part of the default test run (it is `#[ignore]`d and bounded by `SOAK_SECS`, 60 by default):
//! `scripts/soak.sh [--cluster] [--minutes N]` builds and runs it.

use prost::Message;
use proto::v1 as pb;
use proto::v1::netting_client::NettingClient;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::*;
use tonic::Code;
use tonic::transport::Channel;

/// Insured region, where its members are treated, deductible and cap (in service, fen): Suizhou
/// 003 art. 8, Nanchang 002 §4(二)1, Tongliao 004 Q8 (deductible an assumption of 0).
const REGIONS: [(&str, &str, i64, i64); 3] =
    [("421300", "360100", 50_000, 130_000), ("360100", "421300", 60_000, 180_000), ("150500", "421300", 0, 400_000)];
/// Members per region; every fourth member pays for the next one from its account (家庭共济).
const MEMBERS_PER_REGION: usize = 40;
const CLIENTS: usize = 24;
const INITIAL_BALANCE_FEN: i64 = 300_000;
/// How long one request is retried (same msgid, either replica) before the soak calls it lost.
const REQUEST_PATIENCE: Duration = Duration::from_secs(120);

fn psn(region: usize, i: usize) -> String {
    format!("SOAK{region}{i:04}")
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What the clients were told, by msgid.
#[derive(Default)]
struct Book {
    answers: BTreeMap<String, pb::Settlement>,
    /// Settlements not reversed yet, for the reversing clients to pick.
    reversible: Vec<String>,
    retries: BTreeMap<String, usize>,
}

enum Target {
    Single(Redis),
    Cluster(RedisCluster),
}

impl Target {
    fn urls(&self) -> String {
        match self {
            Target::Single(r) => r.url(),
            Target::Cluster(c) => c.urls(),
        }
    }
    fn nodes(&mut self) -> Vec<&mut Redis> {
        match self {
            Target::Single(r) => vec![r],
            Target::Cluster(c) => c.nodes.iter_mut().collect(),
        }
    }
}

/// Sends `req` until it is answered, on replica `first` and then alternately on the other; transient
/// failures (a killed replica or store) are retried with the same msgid. Anything else is a finding.
async fn until_answered<F, Fut>(book: &Mutex<Book>, clients: &[String], first: usize, mut call: F) -> Result<pb::Settlement, tonic::Status>
where
    F: FnMut(ClearingClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<pb::Settlement>, tonic::Status>>,
{
    let deadline = Instant::now() + REQUEST_PATIENCE;
    let mut attempt = first;
    loop {
        let ch = Channel::from_shared(clients[attempt % clients.len()].clone()).unwrap().connect_lazy();
        attempt += 1;
        match call(ClearingClient::new(ch)).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(e)
                if matches!(e.code(), Code::Unavailable | Code::Aborted | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded)
                    && Instant::now() < deadline =>
            {
                *book.lock().unwrap().retries.entry(format!("{:?}", e.code())).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of minutes: scripts/soak.sh runs it"]
async fn soak_with_kills_of_clearing_and_redis() {
    let secs: u64 = std::env::var("SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let cluster = std::env::var("SOAK_CLUSTER").is_ok_and(|v| v == "1");
    let target = Arc::new(Mutex::new(if cluster { Target::Cluster(RedisCluster::start()) } else { Target::Single(Redis::start()) }));
    let urls = target.lock().unwrap().urls();
    let replicas = Arc::new(Mutex::new(vec![
        Clearing::start_with(&["--store", "redis", "--redis-url", &urls]),
        Clearing::start_with(&["--store", "redis", "--redis-url", &urls]),
    ]));
    let endpoints: Vec<String> = replicas.lock().unwrap().iter().map(|c| c.url()).collect();
    let layout = if cluster { "3-node Redis Cluster" } else { "one Redis" };
    println!("soak: {secs} s on {layout} (AOF always), two replicas, {CLIENTS} clients");

    // Members: every fourth one has bound the next as a family beneficiary and pays for it.
    let connect = |url: &str| Channel::from_shared(url.to_string()).unwrap().connect_lazy();
    let mut reg = RegistryClient::new(connect(&endpoints[0]));
    let mut payers: HashMap<String, String> = HashMap::new();
    for (r, (ins, mdtrt, _, _)) in REGIONS.iter().enumerate() {
        for i in 0..MEMBERS_PER_REGION {
            let mut m = member(ins, &psn(r, i), "11", &[&format!("{}0000", &mdtrt[..2])]);
            m.acct_balc = format!("{}.00", INITIAL_BALANCE_FEN / 100);
            if i % 4 == 0 {
                m.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: psn(r, i + 1), relation: "child".into() }];
                payers.insert(psn(r, i + 1), psn(r, i));
            }
            reg.upsert_member(m).await.unwrap();
        }
    }
    drop(reg);
    let cross_shard = payers.iter().filter(|(p, q)| {
        let ins = REGIONS[p[4..5].parse::<usize>().unwrap()].0;
        clearing_service::ids::shard_of(ins, p) != clearing_service::ids::shard_of(ins, q)
    });
    println!("soak: {} family pairs, {} of them across shards", payers.len(), cross_shard.count());

    let book: Arc<Mutex<Book>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    let today = clearing_service::calendar::today();

    // Chaos: at random moments one of the replicas or one Redis node is killed with SIGKILL and started
    // again a moment later; half-way, today's window is closed.
    let kills: Arc<Mutex<BTreeMap<&'static str, usize>>> = Arc::default();
    let chaos = {
        let (target, replicas, kills, stop) = (target.clone(), replicas.clone(), kills.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = mix(n ^ 0x50AC);
                std::thread::sleep(Duration::from_millis(1_500 + r % 4_000));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let down = Duration::from_millis(50 + (r >> 16) % 1_000);
                if (r >> 8).is_multiple_of(3) {
                    let mut t = target.lock().unwrap();
                    let mut nodes = t.nodes();
                    let k = (r >> 32) as usize % nodes.len();
                    nodes[k].crash();
                    std::thread::sleep(down);
                    nodes[k].restart();
                    *kills.lock().unwrap().entry("redis-server").or_default() += 1;
                } else {
                    let mut reps = replicas.lock().unwrap();
                    let k = (r >> 32) as usize % reps.len();
                    reps[k].crash();
                    std::thread::sleep(down);
                    reps[k].restart();
                    *kills.lock().unwrap().entry("clearing").or_default() += 1;
                }
            }
        })
    };
    let closer = {
        let (endpoints, stop) = (endpoints.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs / 2)).await;
            let deadline = Instant::now() + REQUEST_PATIENCE;
            let mut k = 0;
            loop {
                let ch = Channel::from_shared(endpoints[k % 2].clone()).unwrap().connect_lazy();
                k += 1;
                match NettingClient::new(ch).close_window(pb::CloseWindowRequest { clr_date: today.to_string() }).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => panic!("closing the window failed: {e:?}"),
                }
            }
            println!("soak: window {today} closed at {:.0} s", Instant::now().duration_since(started).as_secs_f64());
        })
    };

    let counts: Arc<[AtomicUsize; 3]> = Arc::default(); // own-account claims, family claims, reversals
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (book, endpoints, payers, counts) = (book.clone(), endpoints.clone(), payers.clone(), counts.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let r = mix(((c as u64) << 32) ^ n);
                let msgid = format!("SK{c:02}-{n}");
                // One request in eight reverses an earlier settlement (each at most once).
                let pick = if r.is_multiple_of(8) { take_one(&mut book.lock().unwrap().reversible, r) } else { None };
                let answer = if let Some(setl_id) = pick {
                    let req = pb::ReverseClaimRequest { setl_id, msgid: msgid.clone(), reason: "soak".into() };
                    counts[2].fetch_add(1, Ordering::Relaxed);
                    until_answered(&book, &endpoints, c, |mut cl| {
                        let req = req.clone();
                        async move { cl.reverse_claim(req).await }
                    })
                    .await
                } else {
                    let region = (r >> 8) as usize % REGIONS.len();
                    let i = (r >> 16) as usize % MEMBERS_PER_REGION;
                    let (ins, mdtrt, _, _) = REGIONS[region];
                    let patient = psn(region, i);
                    let yuan = 20 + (r >> 24) % 900;
                    let mut k = claim(&msgid, ins, &patient, mdtrt, 2 + (r >> 40) as u32 % 2, "2026-03-15", yuan as u32);
                    k.acct_used_flag = !(r >> 44).is_multiple_of(3);
                    match payers.get(&patient) {
                        Some(payer) if k.acct_used_flag && (r >> 48).is_multiple_of(2) => {
                            k.acct_payer_psn_no = payer.clone();
                            counts[1].fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            counts[0].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    until_answered(&book, &endpoints, c, |mut cl| {
                        let k = k.clone();
                        async move { cl.settle_claim(k).await }
                    })
                    .await
                };
                let s = answer.unwrap_or_else(|e| panic!("{msgid}: {e:?}"));
                let mut b = book.lock().unwrap();
                if !s.refd_setl_flag {
                    b.reversible.push(s.setl_id.clone());
                }
                b.answers.insert(msgid, s);
            }
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    chaos.await.unwrap();
    closer.await.unwrap();
    let elapsed = started.elapsed();
    let book = Arc::try_unwrap(book).ok().unwrap().into_inner().unwrap();
    let [own, family, reversals] = &*counts;
    println!(
        "soak: {} answers in {:.0} s ({} own-account claims, {} family-account claims, {} reversals); kills {:?}; client retries {:?}",
        book.answers.len(),
        elapsed.as_secs_f64(),
        own.load(Ordering::Relaxed),
        family.load(Ordering::Relaxed),
        reversals.load(Ordering::Relaxed),
        kills.lock().unwrap(),
        book.retries
    );
    // How many Redis restarts found the AOF cut inside a write and repaired it (issue 27).
    let repairs: usize = target.lock().unwrap().nodes().iter().map(|n| n.log().matches("cutting it back").count()).sum();
    println!("soak: {repairs} Redis restarts repaired an AOF a kill had cut inside a write");

    // ---- the books ----
    let store = clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
        urls: vec![urls.clone()],
        allow_volatile: false,
    })
    .await
    .unwrap();
    let mut cl = ClearingClient::new(connect(&endpoints[0]));
    let mut reg = RegistryClient::new(connect(&endpoints[1]));

    // 1. Every acknowledged settlement reads back identically (a later reversal only adds its id).
    let mut setl_ids = HashSet::new();
    for (msgid, a) in &book.answers {
        assert!(setl_ids.insert(a.setl_id.clone()), "{msgid}: a settlement id answered twice");
        let mut stored = cl.get_settlement(pb::GetSettlementRequest { setl_id: a.setl_id.clone() }).await.unwrap().into_inner();
        stored.reversed_by_setl_id.clear();
        assert_eq!(stored.encode_to_vec(), a.encode_to_vec(), "{msgid}: stored settlement differs from the answer");
    }
    println!("soak: check 1 ok: {} acknowledged settlements read back identically", book.answers.len());

    // 2. No hold is left: the replicas' sweepers resolve what an interrupted saga left (bounded wait).
    let holds_left = || {
        let mut t = target.lock().unwrap();
        t.nodes()
            .iter()
            .map(|n| {
                n.cli(&["--scan", "--pattern", "*:holds"])
                    .lines()
                    .filter(|k| !k.is_empty())
                    .map(|k| n.cli(&["SCARD", k]).trim().parse::<usize>().unwrap_or(0))
                    .sum::<usize>()
            })
            .sum::<usize>()
    };
    let mut left = holds_left();
    let deadline = Instant::now() + Duration::from_secs(90);
    while left > 0 && Instant::now() < deadline {
        store.sweep_holds().await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        left = holds_left();
    }
    assert_eq!(left, 0, "holds left behind");
    println!("soak: check 2 ok: no hold left");

    // 3. Accumulators = Σ of their settlements; no deductible or cap passed; balances = initial − Σ account pay.
    let mut acc: HashMap<(String, u32), (i64, i64, i64)> = HashMap::new();
    let mut paid: HashMap<String, i64> = HashMap::new();
    for a in book.answers.values() {
        let e = acc.entry((a.psn_no.clone(), a.year)).or_default();
        e.0 += fen(&a.act_pay_dedc);
        e.1 += fen(&a.hifp_pay);
        e.2 += if a.refd_setl_flag { -1 } else { 1 };
        let payer = if a.acct_payer_psn_no.is_empty() { a.psn_no.clone() } else { a.acct_payer_psn_no.clone() };
        *paid.entry(payer).or_default() += fen(&a.acct_pay);
    }
    let mut members = 0;
    for (r, (ins, _, deductible, cap)) in REGIONS.iter().enumerate() {
        for i in 0..MEMBERS_PER_REGION {
            let p = psn(r, i);
            let m = reg
                .get_member(pb::GetMemberRequest { insuplc_admdvs: ins.to_string(), psn_no: p.clone(), year: 0 })
                .await
                .unwrap()
                .into_inner();
            let mut visits = 0;
            for a in &m.accumulators {
                let want = acc.get(&(p.clone(), a.year)).copied().unwrap_or_default();
                assert_eq!(
                    (fen(&a.deductible_used), fen(&a.fund_paid), a.visits as i64),
                    want,
                    "{p} {}: accumulators ≠ Σ settlements",
                    a.year
                );
                assert!(fen(&a.deductible_used) <= *deductible && fen(&a.fund_paid) <= *cap, "{p} {}: deductible or cap passed", a.year);
                visits += a.visits as i64;
            }
            let want_visits: i64 = acc.iter().filter(|((q, _), _)| *q == p).map(|(_, v)| v.2).sum();
            assert_eq!(visits, want_visits, "{p}: settlements missing from the accumulators");
            let balance = fen(&m.acct_balc);
            assert_eq!(balance, INITIAL_BALANCE_FEN - paid.get(&p).copied().unwrap_or(0), "{p}: balance ≠ initial − Σ account pay");
            assert!(balance >= 0, "{p}: overdrawn");
            members += 1;
        }
    }
    println!(
        "soak: check 3 ok: {members} members' accumulators and balances equal the sums of their settlements; no cap, deductible or balance broken"
    );

    // 4. No msgid produced two settlements: the journals of both windows hold exactly the answered ids.
    use clearing_service::store::Store;
    let tomorrow = today.succ_opt().unwrap();
    let mut journal: Vec<String> = store.window_journal(today).await.unwrap().into_iter().map(|e| e.setl_id).collect();
    journal.extend(store.window_journal(tomorrow).await.unwrap().into_iter().map(|e| e.setl_id));
    let unique: HashSet<&String> = journal.iter().collect();
    assert_eq!(unique.len(), journal.len(), "a settlement id twice in the journals");
    assert_eq!(
        unique,
        setl_ids.iter().collect::<HashSet<_>>(),
        "journals ≠ acknowledged settlements (a msgid settled twice, or a commit nobody was told of)"
    );
    println!("soak: check 4 ok: {} journal entries, one per acknowledged msgid", journal.len());

    // 5. The closed window's netting report equals the sum of the answers dated that day.
    let mut net = NettingClient::new(connect(&endpoints[0]));
    let report = net.get_netting_report(pb::GetNettingReportRequest { clr_date: today.to_string() }).await.unwrap().into_inner();
    let day: Vec<&pb::Settlement> = book.answers.values().filter(|a| a.clr_date == today.to_string()).collect();
    let sum = |f: fn(&pb::Settlement) -> &str| day.iter().map(|a| fen(f(a))).sum::<i64>();
    let count: i64 = day.iter().map(|a| if a.refd_setl_flag { -1 } else { 1 }).sum();
    let later = book.answers.len() - day.len();
    let fields = (report.settlement_count, fen(&report.fund_total), fen(&report.acct_total), fen(&report.medfee_total));
    assert_eq!(
        fields,
        (count, sum(|a| &a.fund_pay_sumamt), sum(|a| &a.acct_pay), sum(|a| &a.medfee_sumamt)),
        "report ≠ Σ answers of {today}"
    );
    assert!(report.complete, "the report's totals and journal disagree");
    assert!(later > 0, "nothing landed after the close: the close did not happen half-way");
    println!(
        "soak: check 5 ok: report of {today} = Σ of its {} answers (count {count}, fund {}, account {}); {later} answers landed in {tomorrow}",
        day.len(),
        report.fund_total,
        report.acct_total
    );
}

/// Takes one settlement out of `v` (so that it is reversed at most once).
fn take_one(v: &mut Vec<String>, r: u64) -> Option<String> {
    if v.is_empty() {
        return None;
    }
    let i = (r >> 3) as usize % v.len();
    Some(v.swap_remove(i))
}
