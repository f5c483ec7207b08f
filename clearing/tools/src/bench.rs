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
    /// `unary`: one SettleClaim call per claim; `stream`: each client submits its claims on one
    /// SettleClaimStream call, `window` at a time (reversals are unary-only and skipped).
    #[arg(long, value_enum, default_value = "unary")]
    pub mode: BenchMode,
    /// Claims in flight per client in stream mode.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Rule packs the workload draws regions and catalogue items from (the service must serve the
    /// same; `clearing bench-rules` writes a national set) [default: the bundled packs].
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
    /// A name for the result line (`RESULT name=…`) that scripts read.
    #[arg(long, default_value = "bench")]
    pub name: String,
    /// The national gateway (http://host:port) for `--mode gateway`; it must know the bench callers
    /// (`clearing bench-rules --paas-out FILE` writes them).
    #[arg(long)]
    pub gateway: Option<String>,
    /// The members are already registered (an earlier run with the same --run-id and --members): skip
    /// the upserts, so CPU measured around the run is the claims' alone.
    #[arg(long)]
    pub skip_register: bool,
    /// Added to every msgid, so several runs over the same members (one --run-id) settle new claims.
    #[arg(long, default_value = "")]
    pub msg_tag: String,
    /// Spread visit dates over this many days up to today (1: every visit today, as a day of real-time
    /// settlement sees them). With few members and many claims, one day makes nearly every claim a
    /// supervision flag (a member in several service regions a day): `bench-supervision.sh` spreads them.
    #[arg(long, default_value_t = 1)]
    pub visit_days: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    Unary,
    Stream,
    /// Signed 2207/2208 calls through `national-gateway` (`--gateway`); members still over gRPC.
    Gateway,
}

/// Where the unary and gateway modes send a claim.
enum Target {
    Grpc(ClearingClient<tonic::transport::Channel>),
    National(crate::national::NationalClient),
}

/// Calls retried by `retry_cancelled` in this process (reported as `retries=` on the RESULT line).
static RETRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Calls `call` again, at most twice more, when the connection under it was closed before an answer
/// came: what tonic reports (`CANCELLED` from a transport error) for a call caught by the server's
/// connection-age GOAWAY (`clearing_edge::limits::MAX_CONNECTION_AGE`, 120 s), which a run longer than
/// that meets. A `CANCELLED` the server sent (its call deadline) is not retried. Safe because every call
/// retried is idempotent: a settlement or reversal by its msgid (a resend gets the stored answer), an
/// upsert by its content.
async fn retry_cancelled<T, F: Future<Output = Result<T, tonic::Status>>>(mut call: impl FnMut() -> F) -> Result<T, tonic::Status> {
    let mut attempt = 0;
    loop {
        match call().await {
            Err(s) if s.code() == tonic::Code::Cancelled && from_transport(&s) && attempt < 2 => {
                attempt += 1;
                RETRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            r => return r,
        }
    }
}

/// The status was made on this side from a transport error (the connection closed), not sent by the server.
fn from_transport(s: &tonic::Status) -> bool {
    let mut e: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(inner) = e {
        if inner.is::<tonic::transport::Error>() {
            return true;
        }
        e = inner.source();
    }
    false
}

impl Target {
    /// Settles a claim: its setl_id, or the refusal's code.
    async fn settle(&mut self, claim: &pb::Claim) -> Result<String, String> {
        match self {
            Target::Grpc(c) => retry_cancelled(|| {
                let (mut c, claim) = (c.clone(), claim.clone());
                async move { c.settle_claim(claim).await }
            })
            .await
            .map(|s| s.into_inner().setl_id)
            .map_err(|s| format!("{:?}", s.code())),
            Target::National(n) => n.settle(claim).await,
        }
    }
    async fn reverse(&mut self, setl_id: &str, msgid: &str, mdtrt: &str) -> Result<(), String> {
        match self {
            Target::Grpc(c) => {
                let req = pb::ReverseClaimRequest { setl_id: setl_id.into(), msgid: msgid.into(), reason: "bench".into() };
                retry_cancelled(|| {
                    let (mut c, req) = (c.clone(), req.clone());
                    async move { c.reverse_claim(req).await }
                })
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}", s.code()))
            }
            Target::National(n) => n.reverse(setl_id, msgid, mdtrt).await,
        }
    }
}

/// Provinces for synthetic regions: none of them has provincial floors (Jiangsu, Shanxi) or a seed city.
const SYNTHETIC_PROVINCES: [u32; 26] =
    [11, 12, 13, 21, 22, 23, 31, 33, 34, 35, 37, 41, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65];

/// The bundled rule files plus synthetic regions up to `regions` in all, for benchmarks at national
/// scale. A synthetic region is a copy of a seed region's pack and sample catalogue under a new code
/// (`{province}{nn}00`) and name, marked as synthetic in its first line; its parameters are the
/// template's (an assumption for benchmarking only, never for settling real claims).
pub fn synthetic_rule_files(regions: usize) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = region_adapter::bundled::FILES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    let templates: Vec<(&str, &str)> =
        vec![("421300", "suizhou"), ("360100", "nanchang"), ("150500", "tongliao"), ("320100", "nanjing"), ("140100", "taiyuan")];
    let text = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()).expect("bundled file");
    let mut extra = Vec::new();
    for k in 0..regions.saturating_sub(templates.len()) {
        let (tcode, tname) = templates[k % templates.len()];
        let province = SYNTHETIC_PROVINCES[k % SYNTHETIC_PROVINCES.len()];
        let city = 1 + k / SYNTHETIC_PROVINCES.len();
        let code = format!("{province}{city:02}00");
        let pcode = format!("{province}0000");
        let header = format!("# SYNTHETIC benchmark region {code}, a copy of {tcode}-{tname}: assumption, for benchmarks only.\n");
        let pack = text(&format!("{tcode}-{tname}.toml"));
        let t_prov = format!("{}0000", &tcode[..2]);
        let pack = pack.replacen(&format!("admdvs = \"{tcode}\""), &format!("admdvs = \"{code}\""), 1).replacen(
            &format!("province = \"{t_prov}\""),
            &format!("province = \"{pcode}\""),
            1,
        );
        let pack = replace_first_value(&pack, "name", &format!("合成区{k:03}"));
        let pack = replace_first_value(&pack, "name_en", &format!("Synthetic {k:03}"));
        let cat =
            text(&format!("{tcode}-{tname}.catalogue.toml")).replacen(&format!("admdvs = \"{tcode}\""), &format!("admdvs = \"{code}\""), 1);
        extra.push((format!("{code}-synthetic.toml"), format!("{header}{pack}")));
        extra.push((format!("{code}-synthetic.catalogue.toml"), format!("{header}{cat}")));
    }
    files.extend(extra);
    files
}

/// Replaces the value of the first line `key = "…"`.
fn replace_first_value(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|l| {
            if !done && l.starts_with(&format!("{key} = \"")) {
                done = true;
                format!("{key} = \"{value}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// splitmix64: a small, deterministic generator for synthetic workloads (not for anything secret).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Synthetic members and claims over a rule set.
pub struct Workload {
    regions: Vec<String>,
    /// Per service location: catalogue codes with a plausible unit price (fen).
    items: BTreeMap<String, Vec<(String, i64)>>,
    pub run_id: String,
    /// Part of every msgid after the run id (`--msg-tag`).
    pub msg_tag: String,
    /// `--visit-days`.
    pub visit_days: u64,
}

impl Workload {
    pub fn new(rules: &RuleSet, run_id: &str) -> Workload {
        let date = clearing_service::calendar::today();
        let mut items = BTreeMap::new();
        for (adm, pack) in &rules.regions {
            let v: Vec<(String, i64)> = pack
                .catalogue
                .order
                .iter()
                .filter_map(|c| pack.catalogue.lookup(c, date))
                .map(|it| {
                    let cap = it.price_cap.and_then(region_adapter::money::yuan_to_fen_rounded).unwrap_or(3_000);
                    (it.code.to_string(), cap.max(50))
                })
                .collect();
            items.insert(adm.to_string(), v);
        }
        Workload {
            regions: rules.regions.keys().map(|a| a.to_string()).collect(),
            items,
            run_id: run_id.to_string(),
            msg_tag: String::new(),
            visit_days: 1,
        }
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
                .map(|r| format!("{}0000", &r[..2]))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|p| pb::Filing { mdtrt_admdvs: p, begndate: "2020-01-01".into(), enddate: String::new(), ..Default::default() })
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
        // One of the workload's listed institutions (`institutions`): the list decides the level.
        let k = rng.below(INSTITUTIONS_PER_REGION) as u32;
        let hospital = format!("H{mdtrt}{k:05}");
        pb::Claim {
            msgid: format!("B{}{}{n:012}", self.run_id, self.msg_tag),
            psn_no: format!("B{}{i:08}", self.run_id),
            insuplc_admdvs: insured.clone(),
            mdtrt_admdvs: mdtrt.clone(),
            fixmedins_code: if pharmacy { format!("P{mdtrt}{k:05}") } else { hospital.clone() },
            hosp_lv: if pharmacy { 0 } else { listed_level(k) },
            med_type: if pharmacy { "41".into() } else { "11".into() },
            prescribing_hosp_lv: if pharmacy { listed_level(k) } else { 0 },
            prescribing_fixmedins_code: if pharmacy { hospital } else { String::new() },
            // Days back from the claim's number, so the random sequence is the same for every --visit-days.
            setl_time: (chrono::Utc::now() - chrono::Duration::days((n.wrapping_mul(7919) % self.visit_days.max(1)) as i64))
                .with_timezone(&clearing_service::calendar::shanghai())
                .to_rfc3339(),
            acct_used_flag: rng.below(2) == 0,
            lines,
            ..Default::default()
        }
    }
}

/// Hospitals and pharmacies per region of the workload (listed at setup with `institutions`).
pub const INSTITUTIONS_PER_REGION: u64 = 20;

/// The level of the workload's hospital `k`: 2 or 3.
fn listed_level(k: u32) -> u32 {
    2 + k % 2
}

impl Workload {
    /// Every institution the workload's claims name, for the service's institution list: per region,
    /// hospitals `H<region><k>` of level 2 or 3 and pharmacies `P<region><k>` designated for pooling.
    pub fn institutions(&self) -> Vec<pb::Institution> {
        let mut out = Vec::new();
        for r in &self.regions {
            for k in 0..INSTITUTIONS_PER_REGION as u32 {
                out.push(pb::Institution {
                    fixmedins_code: format!("H{r}{k:05}"),
                    fixmedins_name: format!("bench hospital {k}"),
                    fixmedins_type: "1".into(),
                    hosp_lv: listed_level(k),
                    ..Default::default()
                });
                out.push(pb::Institution {
                    fixmedins_code: format!("P{r}{k:05}"),
                    fixmedins_name: format!("bench pharmacy {k}"),
                    fixmedins_type: "2".into(),
                    outpatient_pooling: true,
                    ..Default::default()
                });
            }
        }
        out
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
    let mut w = Workload::new(&rules, &run_id);
    w.msg_tag = args.msg_tag.clone();
    w.visit_days = args.visit_days;
    let w = Arc::new(w);
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(connect(&args.addr).await?);
    }
    let setup = Instant::now();
    if !args.skip_register {
        let mut cat = proto::v1::catalogue_client::CatalogueClient::new(channels[0].clone());
        for inst in w.institutions() {
            cat.upsert_institution(inst)
                .await
                .map_err(|s| anyhow::anyhow!("upsert institution: {}", crate::client::describe_status(&s)))?;
        }
    }
    // The members, registered by `--clients` concurrent callers (member i by caller i mod clients), so
    // a national day's millions register in minutes.
    let callers = if args.skip_register { 0 } else { args.clients.max(1) };
    let mut registering = Vec::new();
    for c in 0..callers {
        let (w, reg, members) = (w.clone(), RegistryClient::new(channels[c % channels.len()].clone()), args.members);
        registering.push(tokio::spawn(async move {
            for i in (c..members).step_by(callers) {
                let m = w.member(i);
                retry_cancelled(|| {
                    let (mut reg, m) = (reg.clone(), m.clone());
                    async move { reg.upsert_member(m).await }
                })
                .await
                .map_err(|s| anyhow::anyhow!("upsert: {}", crate::client::describe_status(&s)))?;
            }
            anyhow::Ok(())
        }));
    }
    for r in registering {
        r.await??;
    }
    eprintln!("bench: {} members registered in {:.1?}", args.members, setup.elapsed());
    let per_client = args.claims.div_ceil(args.clients.max(1));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients.max(1) {
        let w = w.clone();
        let ch = channels[c % channels.len()].clone();
        let (members, resend, reverse) = (args.members, args.resend_percent, args.reverse_percent);
        if args.mode == BenchMode::Stream {
            let window = args.window.max(1);
            tasks.push(tokio::spawn(stream_client(ClearingClient::new(ch), w, c, per_client, members, resend, window)));
            continue;
        }
        let national = match (&args.mode, &args.gateway) {
            (BenchMode::Gateway, Some(url)) => Some(crate::national::NationalClient::new(url)),
            (BenchMode::Gateway, None) => anyhow::bail!("--mode gateway needs --gateway http://host:port"),
            _ => None,
        };
        tasks.push(tokio::spawn(async move {
            let mut target = match national {
                Some(n) => Target::National(n),
                None => Target::Grpc(ClearingClient::new(ch)),
            };
            let mut rng = Rng::new(0x5EED ^ (c as u64) << 20);
            let mut lat = Vec::with_capacity(per_client * 2);
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut ops = 0u64;
            for k in 0..per_client {
                let claim = w.claim(&mut rng, (c * per_client + k) as u64, members);
                let t = Instant::now();
                let r = target.settle(&claim).await;
                lat.push(t.elapsed().as_micros() as u64);
                ops += 1;
                match r {
                    Err(code) => *errors.entry(code).or_default() += 1,
                    Ok(setl_id) => {
                        if rng.below(100) < resend {
                            let t = Instant::now();
                            let again = target.settle(&claim).await;
                            lat.push(t.elapsed().as_micros() as u64);
                            ops += 1;
                            if again.map(|a| a != setl_id).unwrap_or(true) {
                                *errors.entry("resend-differs".into()).or_default() += 1;
                            }
                        }
                        if rng.below(100) < reverse {
                            let t = Instant::now();
                            let r = target.reverse(&setl_id, &format!("{}R", claim.msgid), &claim.mdtrt_admdvs).await;
                            lat.push(t.elapsed().as_micros() as u64);
                            ops += 1;
                            if let Err(code) = r {
                                *errors.entry(format!("reverse {code}")).or_default() += 1;
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

/// One client of stream mode: keeps `window` claims in flight on one SettleClaimStream call; resends
/// (same msgid) go out after the first answer came back.
async fn stream_client(
    mut client: ClearingClient<tonic::transport::Channel>,
    w: Arc<Workload>,
    c: usize,
    per_client: usize,
    members: usize,
    resend: u64,
    window: usize,
) -> (Vec<u64>, BTreeMap<String, u64>, u64) {
    let mut rng = Rng::new(0x5EED ^ (c as u64) << 20);
    let mut lat = Vec::with_capacity(per_client * 2);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::Claim>(window);
    let mut answers = match client.settle_claim_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            errors.insert(format!("stream {:?}", s.code()), 1);
            return (lat, errors, 0);
        }
    };
    let mut in_flight: std::collections::HashMap<String, (Instant, pb::Claim, Option<String>)> = std::collections::HashMap::new();
    let mut resends: Vec<(pb::Claim, String)> = Vec::new();
    let (mut sent, mut ops) = (0usize, 0u64);
    loop {
        while in_flight.len() < window && (sent < per_client || !resends.is_empty()) {
            let (claim, first) = match resends.pop() {
                Some((claim, setl_id)) => (claim, Some(setl_id)),
                None => {
                    sent += 1;
                    (w.claim(&mut rng, (c * per_client + sent - 1) as u64, members), None)
                }
            };
            in_flight.insert(claim.msgid.clone(), (Instant::now(), claim.clone(), first));
            if tx.send(claim).await.is_err() {
                break;
            }
        }
        if in_flight.is_empty() {
            break;
        }
        let a = match answers.message().await {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(s) => {
                *errors.entry(format!("stream {:?}", s.code())).or_default() += 1;
                break;
            }
        };
        let Some((t, claim, first)) = in_flight.remove(&a.msgid) else { continue };
        lat.push(t.elapsed().as_micros() as u64);
        ops += 1;
        match (a.code, a.settlement, first) {
            (0, Some(s), None) if rng.below(100) < resend => resends.push((claim, s.setl_id)),
            (0, Some(s), Some(first)) if s.setl_id != first => *errors.entry("resend-differs".into()).or_default() += 1,
            (0, _, _) => {}
            (code, _, _) => *errors.entry(format!("{:?}", tonic::Code::from_i32(code))).or_default() += 1,
        }
    }
    drop(tx);
    (lat, errors, ops)
}

fn report(ops: u64, elapsed: Duration, lat: &[u64], errors: &BTreeMap<String, u64>, args: &BenchArgs) {
    println!(
        "clearing bench [{}, {:?}]: {} clients over {} connections, {} members, {} requests in {:.2?}",
        args.name, args.mode, args.clients, args.connections, args.members, ops, elapsed
    );
    println!("  throughput: {:.0} requests/s", ops as f64 / elapsed.as_secs_f64());
    println!(
        "  latency µs: p50 {}  p99 {}  p999 {}  max {}",
        percentile(lat, 0.50),
        percentile(lat, 0.99),
        percentile(lat, 0.999),
        lat.last().copied().unwrap_or(0)
    );
    let retries = RETRIES.load(std::sync::atomic::Ordering::Relaxed);
    if retries > 0 {
        println!("  calls sent again after their connection closed (GOAWAY): {retries}");
    }
    if errors.is_empty() {
        println!("  errors: none");
    } else {
        println!("  errors: {errors:?}");
    }
    println!(
        "RESULT name={} mode={:?} ops={} seconds={:.3} throughput={:.0} p50_us={} p99_us={} p999_us={} errors={} retries={}",
        args.name,
        args.mode,
        ops,
        elapsed.as_secs_f64(),
        ops as f64 / elapsed.as_secs_f64(),
        percentile(lat, 0.50),
        percentile(lat, 0.99),
        percentile(lat, 0.999),
        errors.values().sum::<u64>(),
        RETRIES.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_regions_load_as_a_national_rule_set() {
        let files = super::synthetic_rule_files(400);
        let rules = region_adapter::RuleSet::load_texts(&files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rules.regions.len(), 400);
    }
}
