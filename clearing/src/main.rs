//! `clearing`: the clearing service and its operator tools.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use clearing_service::config::{Config, ServeArgs, StoreKind};
use clearing_service::core::Clearinghouse;
use clearing_service::routing::router::Router;
use clearing_service::store::Store;
use clearing_service::store::embedded::EmbeddedStore;
use clearing_service::store::redis::{RedisOptions, RedisStore};
use region_adapter_server::rules::load_rules;
use std::io::Write;
use std::path::PathBuf;

/// mimalloc rather than glibc's malloc: with glibc, malloc, free and their consolidation were about a
/// third of a settlement's CPU in the service (issue 20; BENCHMARKS.md, "Issue 20").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "clearing",
    version,
    about = "Clearinghouse for cross-region outpatient claims of China's regional medical-insurance funds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC service.
    Serve(Box<ServeArgs>),
    /// Settle a claim from a JSON file (proto field names) and print the settlement.
    Settle {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Preview a claim: the same numbers, nothing recorded.
    Preview {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Reverse a settlement.
    Reverse {
        #[arg(long)]
        setl_id: String,
        #[arg(long)]
        msgid: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Print a settlement.
    Get {
        setl_id: String,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Register or read members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
    /// Close a clearing day, net it, write the report (JSON, CSV) and a picture of the flows (SVG).
    Net {
        /// The clearing day, YYYY-MM-DD (Asia/Shanghai), or `yesterday`.
        #[arg(long)]
        date: String,
        /// Where the report files go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Credit one month of personal-account money to every member of an insured region (idempotent per
    /// member and month: run it again after an interruption).
    Credit {
        /// The insured region, e.g. 421300.
        #[arg(long)]
        region: String,
        /// YYYYMM.
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Write a month's supervision report (JSON, CSV and an HTML page): indicators per institution and
    /// region pair, the early-warning list, flag counts and flagged settlements (no person numbers).
    Supervision {
        /// YYYYMM (the month of the visits).
        #[arg(long)]
        month: String,
        /// Where the report files go.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Print the monthly statement (netted windows of a month summed per region).
    Statement {
        /// YYYYMM.
        #[arg(long)]
        month: String,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Health check (grpc.health.v1), e.g. for a Kubernetes exec probe; exits non-zero unless SERVING.
    Health {
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
        /// The service to ask about ("" = the server as a whole).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Load generator: concurrent SettleClaim clients; prints throughput and latency percentiles.
    Bench(clearing_tools::bench::BenchArgs),
    /// The gRPC ceiling: a minimal server of the same services answering settlement-sized messages.
    BenchEcho {
        #[arg(long, default_value = "127.0.0.1:50059")]
        listen: std::net::SocketAddr,
    },
    /// Write the bundled rule packs plus synthetic regions (copies of the seed regions under new codes)
    /// up to `--regions`, for benchmarks at national scale.
    BenchRules {
        #[arg(long, default_value_t = 400)]
        regions: usize,
        #[arg(long)]
        out: PathBuf,
        /// Also write a paas file for `national-gateway serve --paas` with the load generator's callers
        /// (one platform per province; benchmark tokens).
        #[arg(long)]
        paas_out: Option<PathBuf>,
    },
    /// Netting at national scale on a throwaway Redis: fill a window, time close → report and reconciliation.
    BenchNetting(clearing_tools::netbench::NettingBenchArgs),
    /// Print the Redis keys `commit.lua` takes for one settlement (member key first, then all of them,
    /// space-separated, `__rand_int__` standing for the ids): for `scripts/commit-ceiling.sh`.
    BenchCommitKeys,
    /// Supervision at national scale: load a month's indicator aggregates into a store, or time reading them.
    BenchIndicators(clearing_tools::supervise::IndicatorBenchArgs),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Create or replace a member from a JSON file.
    Upsert {
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Close a member's personal account for good (emigration or death, Suizhou 003 art. 17): the
    /// balance is paid out once and recorded like a settlement; prints that record. Resending with the
    /// same --msgid answers the same record.
    Close {
        #[arg(long)]
        insuplc_admdvs: String,
        #[arg(long)]
        psn_no: String,
        /// `emigration` or `death`.
        #[arg(long)]
        reason: String,
        /// Idempotency key of this closure.
        #[arg(long)]
        msgid: String,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
    /// Print a member with accumulators.
    Get {
        #[arg(long)]
        insuplc_admdvs: String,
        #[arg(long)]
        psn_no: String,
        #[arg(long, default_value_t = 0)]
        year: u32,
        #[arg(long, default_value = "127.0.0.1:50051", env = "CLEARING_ADDR")]
        addr: String,
    },
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::resolve(&args)?;
    let _telemetry = clearing_edge::telemetry::init("clearing", cfg.log_format)?;
    let rules = load_rules(cfg.rules.as_deref())?;
    tracing::info!(regions = rules.regions.len(), source = %cfg.rules.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "bundled".into()), "rule packs loaded");
    match cfg.store {
        StoreKind::Embedded => {
            let store = EmbeddedStore::open_with(&cfg.data_dir, cfg.member_cache)?;
            tracing::info!(data_dir = %cfg.data_dir.display(), "embedded store open");
            // Supervision's deltas are logged by each commit and added up here in bulk: once 5,000 are
            // waiting or 30 s have passed (a read of a month folds what is waiting first).
            let folder = store.clone();
            tokio::spawn(async move {
                let mut last = std::time::Instant::now();
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    let waiting = folder.pending_indicators().unwrap_or(u64::MAX);
                    if waiting == 0 || (waiting < 5_000 && last.elapsed() < std::time::Duration::from_secs(30)) {
                        continue;
                    }
                    last = std::time::Instant::now();
                    if let Err(e) = folder.fold_indicators().await {
                        tracing::warn!(error = %e, "folding supervision indicators failed; will retry");
                    }
                }
            });
            run(&args, &cfg, store, rules).await
        }
        StoreKind::Redis => {
            let store = RedisStore::connect(&RedisOptions { urls: cfg.redis_urls.clone(), allow_volatile: cfg.redis_allow_volatile })
                .await?
                .with_member_cache(cfg.member_cache);
            tracing::info!(cluster = store.is_cluster(), "redis store connected");
            // Every node's durability again, every few seconds: a node that restarts or joins with an
            // unsafe configuration (appendfsync, aof-load-truncated) stops writes until it is fixed.
            let checker = store.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(clearing_service::limits::DURABILITY_RECHECK).await;
                    if let Err(e) = checker.recheck_durability().await {
                        tracing::debug!(error = %e, "durability recheck: redis did not answer; will retry");
                    }
                }
            });
            // Window totals are folded from the shards into window-wide totals during the day, so the
            // nightly netting reads about one entry per region pair.
            let folder = store.clone();
            let every = cfg.fold_interval;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let today = clearing_service::calendar::today();
                    let open = folder.open_window_now(today).await.unwrap_or(today);
                    if let Err(e) = folder.fold_window(open).await {
                        tracing::warn!(error = %e, "folding window totals failed; will retry");
                    }
                    // This month's supervision indicators likewise (other months are folded when read).
                    let month = clearing_service::calendar::Month::of(today).to_string();
                    if let Err(e) = folder.fold_indicators(&month).await {
                        tracing::warn!(error = %e, "folding supervision indicators failed; will retry");
                    }
                }
            });
            if store.is_cluster() {
                // Holds of cross-shard family pay left by a crash are resolved in the background.
                let sweeper = store.clone();
                tokio::spawn(async move {
                    loop {
                        if let Err(e) = sweeper.sweep_holds().await {
                            tracing::warn!(error = %e, "hold sweep failed; will retry");
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                    }
                });
            }
            run(&args, &cfg, store, rules).await
        }
    }
}

async fn run<S: Store>(args: &ServeArgs, cfg: &Config, store: S, rules: region_adapter_server::rules::RuleSet) -> anyhow::Result<()> {
    let router = Router::with_routes(rules, &cfg.routes, cfg.adapter_tls()?).map_err(anyhow::Error::msg)?;
    let security = clearing_edge::tls::listener_security(&cfg.listener_tls(), cfg.listen)?;
    for r in &cfg.routes {
        tracing::info!(admdvs = %r.admdvs, target = %r.target, "route");
    }
    let institutions = clearing_service::registry::institutions::InstitutionList::load(cfg.institutions.as_deref())?;
    tracing::info!(institutions = institutions.len(), source = %cfg.institutions.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "bundled".into()), "institution list loaded");
    let core = Clearinghouse::with_institutions(store, router, institutions);
    core.set_visit_ttl(cfg.visit_ttl);
    core.set_supervision(cfg.supervision);
    // Registered visits that never settle are swept (settled ones stay).
    let sweeper = core.clone();
    let every = cfg.visit_sweep;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match sweeper.visits().sweep_expired_visits().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(swept = n, "expired visits swept"),
                Err(e) => tracing::warn!(error = %e, "visit sweep failed; will retry"),
            }
        }
    });
    spawn_reloader(args.clone(), core.clone());
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // One line on stdout that scripts and tests wait for.
    println!("clearing listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "serving clearinghouse.v1");
    clearing_service::server::serve(core, listener, security, clearing_edge::server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// On SIGHUP: re-read the config file and rule packs and swap the routing table. A bad file or pack
/// changes nothing and is logged.
fn spawn_reloader<S: Store>(args: ServeArgs, core: std::sync::Arc<Clearinghouse<S>>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; routing reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let r = (|| {
                let cfg = Config::resolve(&args)?;
                let rules = match &cfg.rules {
                    Some(d) => Some(load_rules(Some(d))?),
                    None => None,
                };
                core.router.reload(rules, &cfg.routes).map_err(anyhow::Error::msg)?;
                anyhow::Ok(cfg.routes.len())
            })();
            match r {
                Ok(n) => tracing::info!(routes = n, "routing table and rule packs reloaded"),
                Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; the previous routing table stays in force"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (args, core);
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(a) => serve(*a).await,
        Command::Settle { file, addr } => {
            clearing_tools::client::settle(&addr, &file, clearing_service::settlement::settle::Mode::Settle).await
        }
        Command::Preview { file, addr } => {
            clearing_tools::client::settle(&addr, &file, clearing_service::settlement::settle::Mode::Preview).await
        }
        Command::Reverse { setl_id, msgid, reason, addr } => clearing_tools::client::reverse(&addr, setl_id, msgid, reason).await,
        Command::Get { setl_id, addr } => clearing_tools::client::get(&addr, setl_id).await,
        Command::Member { command: MemberCommand::Upsert { file, addr } } => clearing_tools::client::upsert_member(&addr, &file).await,
        Command::Member { command: MemberCommand::Close { insuplc_admdvs, psn_no, reason, msgid, addr } } => {
            clearing_tools::client::close_account(&addr, insuplc_admdvs, psn_no, reason, msgid).await
        }
        Command::Member { command: MemberCommand::Get { insuplc_admdvs, psn_no, year, addr } } => {
            clearing_tools::client::get_member(&addr, insuplc_admdvs, psn_no, year).await
        }
        Command::Health { addr, service } => clearing_tools::client::health(&addr, &service).await,
        Command::BenchNetting(a) => clearing_tools::netbench::run_netting(a).await,
        Command::BenchCommitKeys => {
            clearing_tools::netbench::print_commit_keys();
            Ok(())
        }
        Command::BenchIndicators(a) => clearing_tools::supervise::bench_indicators(a).await,
        Command::Net { date, out, addr } => clearing_tools::netcli::net(&addr, &date, &out).await,
        Command::Statement { month, addr } => clearing_tools::netcli::statement(&addr, &month).await,
        Command::Credit { region, month, addr } => clearing_tools::netcli::credit(&addr, &region, &month).await,
        Command::Supervision { month, out, addr } => clearing_tools::supervise::supervision(&addr, &month, &out).await,
        Command::Bench(a) => match load_rules(a.rules.as_deref()) {
            Ok(r) => clearing_tools::bench::run(a, r).await,
            Err(e) => Err(e),
        },
        Command::BenchEcho { listen } => clearing_tools::echo::serve(listen).await,
        Command::BenchRules { regions, out, paas_out } => (|| {
            std::fs::create_dir_all(&out)?;
            let files = clearing_tools::bench::synthetic_rule_files(regions);
            for (name, text) in &files {
                std::fs::write(out.join(name), text)?;
            }
            if let Some(p) = paas_out {
                let rules = load_rules(Some(&out))?;
                std::fs::write(&p, clearing_tools::national::bench_paas_file(&rules))?;
            }
            println!("{} files, {regions} regions, in {}", files.len(), out.display());
            anyhow::Ok(())
        })(),
    };
    if let Err(e) = r {
        eprintln!("clearing: {e:#}");
        std::process::exit(1);
    }
}
