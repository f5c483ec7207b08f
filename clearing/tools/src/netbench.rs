//! The nightly job at national scale, on a throwaway Redis (`clearing bench-netting`), and the keys of
//! one settlement's commit for the Redis ceiling (`clearing bench-commit-keys`).

use crate::bench::Rng;
use proto::v1 as pb;
use std::collections::BTreeMap;
use std::time::Instant;

/// `clearing bench-netting`: the nightly job at national scale, on Redis.
#[derive(Debug, Clone, clap::Args)]
pub struct NettingBenchArgs {
    /// Redis URL (a throwaway instance: the window written is 2000-01-03).
    #[arg(long)]
    pub redis_url: String,
    #[arg(long, default_value_t = 10_000_000)]
    pub settlements: u64,
    #[arg(long, default_value_t = 400)]
    pub regions: u32,
    /// Reuse a window filled by an earlier run: drop its stored report and time the netting steps only.
    #[arg(long)]
    pub reuse: bool,
}

/// Fills one window (2000-01-03) with `settlements` entries over `regions` synthetic regions in the
/// layout the commit script writes (journal entries and pair totals per shard), then times the real
/// close → netting report path and a whole-window detail reconciliation with planted differences.
pub async fn run_netting(args: NettingBenchArgs) -> anyhow::Result<()> {
    use clearing_service::store::Store;
    use clearing_service::store::redis::keys;
    let d = chrono::NaiveDate::from_ymd_opt(2000, 1, 3).expect("date");
    if args.reuse {
        let client = ::redis::Client::open(args.redis_url.as_str())?;
        let mut con = client.get_multiplexed_async_connection().await?;
        let _: i64 = ::redis::cmd("DEL").arg(format!("{{clr:meta}}:report:{d}")).query_async(&mut con).await?;
        let store = clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
            urls: vec![args.redis_url.clone()],
            allow_volatile: true,
        })
        .await?;
        let t = Instant::now();
        let totals = store.window_totals(d).await?;
        let t1 = t.elapsed();
        let journal = store.journal_sums(d).await?;
        let t2 = t.elapsed();
        let r = clearing_service::windows::netting::net(&d.to_string(), &totals, &journal, &Default::default())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t3 = t.elapsed();
        let json = serde_json::to_string(&r)?;
        let stored = clearing_service::store::WindowMeta::put_netting_report_once(&store, d, &json).await?;
        let _back: clearing_service::windows::netting::Report = serde_json::from_str(&stored)?;
        let t4 = t.elapsed();
        println!(
            "  totals {} pairs {} ms; journal sums {} ms; net {} ms; report json {} KiB store+load {} ms",
            totals.pairs.len(),
            t1.as_millis(),
            (t2 - t1).as_millis(),
            (t3 - t2).as_millis(),
            json.len() / 1024,
            (t4 - t3).as_millis()
        );
        // The real path, as `clearing net` drives it: close (idempotent here) → netting report.
        let _: i64 = ::redis::cmd("DEL").arg(format!("{{clr:meta}}:report:{d}")).query_async(&mut con).await?;
        let core = clearing_service::core::Clearinghouse::new(
            store,
            clearing_service::routing::router::Router::new(region_adapter::bundled::rules()?),
        );
        let t = Instant::now();
        core.store.close_window(d).await?;
        let report = core.windows().netting_report(d).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("  close → report: {} ms; {} positions, complete {}", t.elapsed().as_millis(), report.positions.len(), report.complete);
        return Ok(());
    }
    let regions: Vec<String> = (0..args.regions).map(|i| format!("{}{:04}", 11 + i / 7, (i % 7 + 1) * 100)).collect();
    let client = ::redis::Client::open(args.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut rng = Rng::new(42);
    let fill = Instant::now();
    // (shard, insured, service location) → (count, medfee, fund, account).
    type Sums = (i64, i64, i64, i64);
    let mut pairs: BTreeMap<(u16, usize, usize), Sums> = BTreeMap::new();
    let mut entries: Vec<(String, i64, i64, i64)> = Vec::with_capacity(args.settlements as usize);
    const BATCH: u64 = 5_000;
    let mut n = 0u64;
    while n < args.settlements {
        let mut pipe = ::redis::pipe();
        for k in n..(n + BATCH).min(args.settlements) {
            let shard = (rng.next_u64() % clearing_service::ids::SHARDS as u64) as u16;
            let a = rng.below(regions.len() as u64) as usize;
            let b = (a + 1 + rng.below(regions.len() as u64 - 1) as usize) % regions.len();
            let (medfee, fund, acct) = (10_000 + rng.below(200_000) as i64, rng.below(80_000) as i64, rng.below(20_000) as i64);
            let setl_id = format!("{shard:02x}{:012x}{k:010x}", 946_828_800_000u64);
            let entry = clearing_service::store::JournalEntry {
                setl_id: setl_id.clone(),
                insuplc_admdvs: regions[a].clone(),
                mdtrt_admdvs: regions[b].clone(),
                fixmedins_code: format!("H{}00001", regions[b]),
                totals: clearing_service::store::PairDelta { count: 1, medfee_fen: medfee, fund_fen: fund, acct_fen: acct },
            };
            pipe.cmd("RPUSH").arg(keys::journal_key(shard, d)).arg(entry.encode()).ignore();
            let t = pairs.entry((shard, a, b)).or_default();
            t.0 += 1;
            t.1 += medfee;
            t.2 += fund;
            t.3 += acct;
            entries.push((setl_id, medfee, fund, acct));
        }
        let _: () = pipe.query_async(&mut con).await?;
        n = (n + BATCH).min(args.settlements);
    }
    let all: Vec<_> = pairs.iter().collect();
    for chunk in all.chunks(4_000) {
        let mut pipe = ::redis::pipe();
        for ((shard, a, b), (c, m, f, ac)) in chunk {
            let key = keys::period_key(*shard, keys::WINDOW_SUMS, &d.to_string());
            let p = format!("{}|{}", regions[*a], regions[*b]);
            for (kind, v) in [("n", *c), ("e", *c), ("m", *m), ("f", *f), ("a", *ac)] {
                pipe.cmd("HINCRBY").arg(&key).arg(format!("{p}|{kind}")).arg(v).ignore();
            }
        }
        let _: () = pipe.query_async(&mut con).await?;
    }
    println!(
        "bench-netting: {} settlements over {} regions ({} shard-pairs) written in {:.1?}",
        args.settlements,
        args.regions,
        pairs.len(),
        fill.elapsed()
    );

    let store = clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
        urls: vec![args.redis_url.clone()],
        allow_volatile: true,
    })
    .await?;
    // During the day the service's background folder moves shard totals into window-wide totals
    // every two seconds; here the whole day's folding is done (and timed) at once.
    let t = Instant::now();
    store.fold_window(d).await?;
    println!("  folding the day's shard totals into window-wide totals (background work, spread over the day): {:.1?}", t.elapsed());
    let rules = region_adapter::bundled::rules()?;
    let core = clearing_service::core::Clearinghouse::new(store, clearing_service::routing::router::Router::new(rules));
    let t = Instant::now();
    core.store.close_window(d).await?;
    let closed = t.elapsed();
    let report = core.windows().netting_report(d).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let total = t.elapsed();
    println!(
        "  close → report: {} ms (close {} ms, netting {} ms); {} positions, {} instructions, complete {}, moved {} of gross {}",
        total.as_millis(),
        closed.as_millis(),
        (total - closed).as_millis(),
        report.positions.len(),
        report.instructions.len(),
        report.complete,
        region_adapter::money::fmt_yuan(report.multilateral_net_total_fen),
        region_adapter::money::fmt_yuan(report.gross_total_fen)
    );
    // Detail reconciliation of the whole window with three planted differences.
    let mut items: Vec<pb::ReconcileItem> = entries
        .iter()
        .map(|(id, m, f, a)| pb::ReconcileItem {
            setl_id: id.clone(),
            medfee_sumamt: region_adapter::money::fmt_yuan(*m),
            fund_pay_sumamt: region_adapter::money::fmt_yuan(*f),
            acct_pay: region_adapter::money::fmt_yuan(*a),
        })
        .collect();
    drop(entries);
    items.swap_remove(0);
    items[1].acct_pay = "999999.99".into();
    items.push(pb::ReconcileItem {
        setl_id: "ffffffffffffffffffffffff".into(),
        medfee_sumamt: "1.00".into(),
        fund_pay_sumamt: "0.00".into(),
        acct_pay: "0.00".into(),
    });
    let t = Instant::now();
    // As ReconcileDetail reads them: the wire amounts checked, then the whole window compared.
    let items = clearing_service::grpc::windows::detail_items(&items).map_err(|e| anyhow::anyhow!("{e}"))?;
    let res = core.windows().reconcile_detail(d, None, None, &items).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "  detail reconciliation of {} settlements: {:.1?}; {} differences found (3 planted)",
        res.compared,
        t.elapsed(),
        res.differences_total
    );
    Ok(())
}

/// The keys of one settlement's `commit.lua` run, for the Redis ceiling (`scripts/commit-ceiling.sh`):
/// the member's key on the first line, then every key in the script's order on the second.
pub fn print_commit_keys() {
    use clearing_service::store::{MemberKey, redis::keys};
    let member = MemberKey::new("421300", "BENCH");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
    println!("{}", keys::member_key(&member));
    println!("{}", keys::commit_script_keys(&member, "__rand_int__", date, "202601").join(" "));
}
