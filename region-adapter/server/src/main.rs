//! `region-adapter`: the rule engine of some regions as a gRPC service, for a province that keeps its
//! rules and catalogue on its own platform. Stateless; `clearing` routes claims to it (see the
//! routing table in the README).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use clearing_edge::telemetry::LogFormat;
use region_adapter_server::api::AdapterApi;
use region_adapter_server::rules::load_rules;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "region-adapter", version, about = "Serve regions' rule packs (pricing and policy) over gRPC")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the RegionAdapter gRPC service.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory of rule packs (*.toml) [default: the bundled packs]. Re-read on SIGHUP.
    #[arg(long, env = "REGION_ADAPTER_RULES")]
    rules: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "REGION_ADAPTER_LISTEN", default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
    /// Log format.
    #[arg(long, env = "REGION_ADAPTER_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    tls: clearing_edge::tls::TlsArgs,
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = clearing_edge::telemetry::init("region-adapter", a.log_format)?;
    let security = clearing_edge::tls::listener_security(&a.tls, a.listen)?;
    let rules = load_rules(a.rules.as_deref())?;
    let codes: Vec<String> = rules.regions.keys().map(|k| k.to_string()).collect();
    tracing::info!(regions = %codes.join(","), "rule packs loaded");
    let api = AdapterApi::new(rules);
    #[cfg(unix)]
    {
        let api = api.clone();
        let dir = a.rules.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            while hup.recv().await.is_some() {
                match load_rules(dir.as_deref()) {
                    Ok(r) => {
                        api.replace(r);
                        tracing::info!("rule packs reloaded");
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; the previous packs stay in force"),
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(a.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", a.listen))?;
    let addr = listener.local_addr()?;
    println!("region-adapter listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "serving clearinghouse.v1.RegionAdapter");
    region_adapter_server::api::serve(api, listener, security, clearing_edge::server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() {
    let r = match Cli::parse().command {
        Command::Serve(a) => serve(a).await,
    };
    if let Err(e) = r {
        eprintln!("region-adapter: {e:#}");
        std::process::exit(1);
    }
}
