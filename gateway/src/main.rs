//! `national-gateway`: the command line of the gateway library (`national_gateway::server`).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use national_gateway::conformance::{ConformanceArgs, conformance};
use national_gateway::sandbox::{SandboxArgs, sandbox};
use national_gateway::server::{ServeArgs, serve, sign};
use std::path::PathBuf;

/// mimalloc rather than glibc's malloc: the JSON value trees of every request and answer made malloc/free
/// about a quarter of the gateway's CPU (BENCHMARKS.md, issue 16 and issue 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "national-gateway",
    version,
    about = "The clearinghouse behind the national medical-insurance interface (HTTP/JSON by infno, x-tif signatures)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the national interface.
    Serve(Box<ServeArgs>),
    /// Print the x-tif headers for a call (for a shell or a first test): paasid, timestamp, nonce, signature.
    Sign {
        #[arg(long)]
        paasid: String,
        /// File holding the paasid's token (never on the command line).
        #[arg(long)]
        token_file: PathBuf,
        /// Print them as curl arguments on one line (`curl $(national-gateway sign … --curl) …`).
        #[arg(long)]
        curl: bool,
    },
    /// A sandbox for a HIS developer: clearing on its embedded store with sample institutions,
    /// catalogues and members, and the gateway on loopback; prints the URL, a paasid, its token and a
    /// `curl` line that settles a sample claim.
    Sandbox(SandboxArgs),
    /// Replay the corpus of requests shaped as hospitals send them (examples/national/requests) against
    /// a national-interface endpoint (ours or another gateway); prints per transaction what was sent,
    /// what was answered, and the shape and amount differences. Fails when any transaction differs.
    Conformance(ConformanceArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => serve(*a).await,
        Command::Sign { paasid, token_file, curl } => sign(&paasid, &token_file, curl),
        Command::Sandbox(a) => sandbox(a).await,
        Command::Conformance(a) => conformance(a).await,
    }
}
