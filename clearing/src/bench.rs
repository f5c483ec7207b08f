//! `clearing bench`: a load generator that drives concurrent `SettleClaim` clients with realistic
//! synthetic claims over many members and the seed regions, and prints throughput and latency
//! percentiles. It measures a running service over real gRPC; it asserts nothing.

use crate::client::connect;
use proto::v1 as pb;
use proto::v1::clearing_client::ClearingClient;
use proto::v1::registry_client::RegistryClient;
use region_adapter::RuleSet;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Service address.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Claims in total (resends and reversals come on top).
    #[arg(long, default_value_t = 20_000)]
    pub claims: usize,
    /// Members, spread over the seed regions.
    #[arg(long, default_value_t = 2_000)]
    pub members: usize,
    /// HTTP/2 connections shared by the clients.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Share of claims resent with the same msgid (idempotent replays), percent.
    #[arg(long, default_value_t = 2)]
    pub resend_percent: u64,
    /// Share of settlements reversed afterwards, percent.
    #[arg(long, default_value_t = 1)]
    pub reverse_percent: u64,
    /// A tag for msgids and person numbers, so runs against one store do not collide.
    #[arg(long, default_value = "")]
    pub run_id: String,
}

/// splitmix64: a small, deterministic generator for synthetic workloads (not for anything secret).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Synthetic members and claims over a rule set.
pub struct Workload {
    regions: Vec<String>,
    /// Per service location: catalogue codes with a plausible unit price (fen).
    items: BTreeMap<String, Vec<(String, i64)>>,
    pub run_id: String,
}

impl Workload {
    pub fn new(rules: &RuleSet, run_id: &str) -> Workload {
        let date = crate::window::today();
        let mut items = BTreeMap::new();
        for (adm, pack) in &rules.regions {
            let v: Vec<(String, i64)> = pack
                .catalogue
                .order
                .iter()
                .filter_map(|c| pack.catalogue.lookup(c, date))
                .map(|it| {
                    let cap = it.price_cap.and_then(|c| region_adapter::money::yuan_to_fen_rounded(c)).unwrap_or(3_000);
                    (it.code.to_string(), cap.max(50))
                })
                .collect();
            items.insert(adm.to_string(), v);
        }
        Workload { regions: rules.regions.keys().map(|a| a.to_string()).collect(), items, run_id: run_id.to_string() }
    }

    pub fn member(&self, i: usize) -> pb::Member {
        let insured = &self.regions[i % self.regions.len()];
        let retired = i % 10 < 3;
        pb::Member {
            psn_no: format!("B{}{i:08}", self.run_id),
            insuplc_admdvs: insured.clone(),
            psn_type: if retired { "12".into() } else { "11".into() },
            acct_balc: format!("{}.00", 200 + (i % 20) * 100),
            // Filed for every province of the seed regions, so filing-required regions pay too.
            filings: self
                .regions
                .iter()
                .map(|r| pb::Filing { mdtrt_admdvs: format!("{}0000", &r[..2]), begndate: "2020-01-01".into(), enddate: String::new() })
                .collect(),
            ..Default::default()
        }
    }

    pub fn claim(&self, rng: &mut Rng, n: u64, members: usize) -> pb::Claim {
        let i = rng.below(members as u64) as usize;
        let insured = &self.regions[i % self.regions.len()];
        let others: Vec<&String> = self.regions.iter().filter(|r| *r != insured).collect();
        let mdtrt = others[rng.below(others.len() as u64) as usize];
        let items = &self.items[mdtrt];
        let nlines = 1 + rng.below(6) as usize;
        let lines = (0..nlines)
            .map(|_| {
                let (code, cap) = &items[rng.below(items.len() as u64) as usize];
                let qty = 1 + rng.below(20) as i64;
                // Prices around the cap: some over it, most under.
                let price_fen = (cap * (70 + rng.below(40) as i64) / 100).max(1);
                pb::ClaimLine {
                    hilist_code: code.clone(),
                    cnt: qty.to_string(),
                    pric: region_adapter::money::fmt_yuan(price_fen),
                    det_item_fee_sumamt: region_adapter::money::fmt_yuan(price_fen * qty),
                }
            })
            .collect();
        let pharmacy = rng.below(10) == 0;
        pb::Claim {
            msgid: format!("B{}{n:012}", self.run_id),
            psn_no: format!("B{}{i:08}", self.run_id),
            insuplc_admdvs: insured.clone(),
            mdtrt_admdvs: mdtrt.clone(),
            fixmedins_code: format!("{}{}{:05}", if pharmacy { "P" } else { "H" }, mdtrt, rng.below(1000)),
            hosp_lv: 2 + rng.below(2) as u32,
            med_type: if pharmacy { "41".into() } else { "11".into() },
            prescribing_hosp_lv: if pharmacy { 2 + rng.below(2) as u32 } else { 0 },
            setl_time: chrono::Utc::now().with_timezone(&crate::window::shanghai()).to_rfc3339(),
            acct_used_flag: rng.below(2) == 0,
            lines,
            ..Default::default()
        }
    }
}

/// Latency percentiles of a sample, microseconds.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn run(args: BenchArgs, rules: RuleSet) -> anyhow::Result<()> {
    let run_id = if args.run_id.is_empty() { format!("{:x}", chrono::Utc::now().timestamp() % 0xfffff) } else { args.run_id.clone() };
    let w = Arc::new(Workload::new(&rules, &run_id));
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(connect(&args.addr).await?);
    }
    let setup = Instant::now();
    let mut reg = RegistryClient::new(channels[0].clone());
    for i in 0..args.members {
        reg.upsert_member(w.member(i)).await.map_err(|s| anyhow::anyhow!("upsert: {}", crate::client::describe_status(&s)))?;
    }
    eprintln!("bench: {} members registered in {:.1?}", args.members, setup.elapsed());
    let per_client = args.claims.div_ceil(args.clients.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let w = w.clone();
        let ch = channels[c % channels.len()].clone();
        let (members, resend, reverse) = (args.members, args.resend_percent, args.reverse_percent);
        tasks.push(tokio::spawn(async move {
            let mut client = ClearingClient::new(ch);
            let mut rng = Rng::new(0x5EED ^ (c as u64) << 20);
            let mut lat = Vec::with_capacity(per_client * 2);
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut ops = 0u64;
            for k in 0..per_client {
                let claim = w.claim(&mut rng, (c * per_client + k) as u64, members);
                let t = Instant::now();
                let r = client.settle_claim(claim.clone()).await;
                lat.push(t.elapsed().as_micros() as u64);
                ops += 1;
                match r {
                    Err(s) => *errors.entry(format!("{:?}", s.code())).or_default() += 1,
                    Ok(s) => {
                        if rng.below(100) < resend {
                            let t = Instant::now();
                            let again = client.settle_claim(claim).await;
                            lat.push(t.elapsed().as_micros() as u64);
                            ops += 1;
                            if again.map(|a| a.get_ref().setl_id != s.get_ref().setl_id).unwrap_or(true) {
                                *errors.entry("resend-differs".into()).or_default() += 1;
                            }
                        }
                        if rng.below(100) < reverse {
                            let t = Instant::now();
                            let r = client
                                .reverse_claim(pb::ReverseClaimRequest {
                                    setl_id: s.get_ref().setl_id.clone(),
                                    msgid: format!("{}R", s.get_ref().msgid),
                                    reason: "bench".into(),
                                })
                                .await;
                            lat.push(t.elapsed().as_micros() as u64);
                            ops += 1;
                            if let Err(s) = r {
                                *errors.entry(format!("reverse {:?}", s.code())).or_default() += 1;
                            }
                        }
                    }
                }
            }
            (lat, errors, ops)
        }));
    }
    let mut lat = Vec::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut ops = 0;
    for t in tasks {
        let (l, e, o) = t.await?;
        lat.extend(l);
        ops += o;
        for (k, v) in e {
            *errors.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed();
    lat.sort_unstable();
    report(ops, elapsed, &lat, &errors, &args);
    Ok(())
}

fn report(ops: u64, elapsed: Duration, lat: &[u64], errors: &BTreeMap<String, u64>, args: &BenchArgs) {
    println!(
        "clearing bench: {} clients over {} connections, {} members, {} requests in {:.2?}",
        args.clients, args.connections, args.members, ops, elapsed
    );
    println!("  throughput: {:.0} requests/s", ops as f64 / elapsed.as_secs_f64());
    println!(
        "  latency µs: p50 {}  p99 {}  p999 {}  max {}",
        percentile(lat, 0.50),
        percentile(lat, 0.99),
        percentile(lat, 0.999),
        lat.last().copied().unwrap_or(0)
    );
    if errors.is_empty() {
        println!("  errors: none");
    } else {
        println!("  errors: {errors:?}");
    }
}
