//! `national-gateway sandbox`: everything a HIS developer needs on one machine, in one command.
//! `clearing` on its embedded store (the bundled sample institutions and catalogues, two sample members)
//! and this gateway on loopback, in plain HTTP, with one caller bound to a sample hospital. It prints the
//! URL, the paasid, the token and one `curl` line that settles a sample claim (2207); everything lives in
//! a fresh directory and stops with Ctrl-C.

use crate::server::{ServeArgs, serve};
use anyhow::Context;
use proto::v1 as pb;
use serde_json::json;
use std::path::{Path, PathBuf};
use tokio::io::AsyncBufReadExt;

/// The sandbox's caller: the system of Nanchang's level-3 sample hospital and of its designated sample
/// pharmacy (a pharmacy fill names the hospital as prescriber).
pub const SANDBOX_PAASID: &str = "sandbox_his";
const HOSPITAL: &str = "H36010000001";
const PHARMACY: &str = "P36010000001";
/// A second caller, the system of Suizhou's level-3 sample hospital: the corpus's chronic-disease visit
/// is a Nanchang member treated there (`…@suizhou.json`).
pub const SANDBOX_SUIZHOU_PAASID: &str = "sandbox_his_suizhou";
const SUIZHOU_HOSPITAL: &str = "H42130000001";

#[derive(Debug, Clone, clap::Args)]
pub struct SandboxArgs {
    /// The gateway's address (loopback only: the sandbox is plain HTTP).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// The `clearing` binary (default: beside this one).
    #[arg(long)]
    pub clearing_bin: Option<PathBuf>,
    /// Where the sandbox keeps its files (default: a new directory under the system's temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub async fn sandbox(a: SandboxArgs) -> anyhow::Result<()> {
    if !a.listen.ip().is_loopback() {
        anyhow::bail!("--listen {}: the sandbox serves plain HTTP, on a loopback address only", a.listen);
    }
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("national-sandbox-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let me = std::env::current_exe().context("this binary's path")?;
    let clearing_bin = a.clearing_bin.unwrap_or_else(|| me.with_file_name("clearing"));
    // clearing, on its embedded store in the sandbox's directory; it says where it listens.
    let mut clearing = tokio::process::Command::new(&clearing_bin)
        .args(["serve", "--plaintext", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("clearing.log"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {} (build it: cargo build -p clearing)", clearing_bin.display()))?;
    let mut lines = tokio::io::BufReader::new(clearing.stdout.take().context("clearing's stdout")?).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(l) = lines.next_line().await? {
            if let Some(a) = l.trim().strip_prefix("clearing listening on ") {
                return Ok::<_, anyhow::Error>(a.to_string());
            }
        }
        anyhow::bail!("clearing stopped before listening; see {}", dir.join("clearing.log").display())
    })
    .await
    .context("clearing did not start within 60 s")??;
    let clearing_url = format!("http://{addr}");
    seed_members(&clearing_url).await?;
    // The caller, its token, and a claim as a HIS sends it.
    let token = sandbox_token();
    let token_file = dir.join("token");
    std::fs::write(&token_file, &token)?;
    let suizhou_token_file = dir.join("token-suizhou");
    std::fs::write(&suizhou_token_file, sandbox_token())?;
    let paas = dir.join("paas.toml");
    std::fs::write(
        &paas,
        format!(
            "[[paas]]\npaasid = \"{SANDBOX_PAASID}\"\ntoken_file = \"token\"\nrole = \"institution\"\nadmdvs = \"360100\"\nfixmedins_code = [\"{HOSPITAL}\", \"{PHARMACY}\"]\n\n\
             [[paas]]\npaasid = \"{SANDBOX_SUIZHOU_PAASID}\"\ntoken_file = \"token-suizhou\"\nrole = \"institution\"\nadmdvs = \"421300\"\nfixmedins_code = \"{SUIZHOU_HOSPITAL}\"\n"
        ),
    )?;
    let claim = dir.join("2207.json");
    std::fs::write(&claim, serde_json::to_vec_pretty(&sample_2207())?)?;
    let listen = if a.listen.port() == 0 {
        let l = std::net::TcpListener::bind(a.listen)?;
        l.local_addr()?
    } else {
        a.listen
    };
    let url = format!("http://{listen}{}", crate::server::CALL_SERVICE);
    println!("national sandbox (files in {})", dir.display());
    println!("url: {url}");
    println!("paasid: {SANDBOX_PAASID}");
    println!("token: {token}");
    println!(
        "institutions: {HOSPITAL} (Nanchang, level 3) and {PHARMACY} (its designated pharmacy); members SANDBOX1 (Suizhou, filed for Jiangxi; 1101 by mdtrt_cert_no 421302198001010011) and SANDBOX2 (Nanchang, filed for Hubei; 360102197506150025)"
    );
    println!("settle the sample claim {} (each run signs anew):", claim.display());
    println!("{}", curl_line(&me, &token_file, &claim, &url));
    println!(
        "second caller: {SANDBOX_SUIZHOU_PAASID} ({SUIZHOU_HOSPITAL}, Suizhou), token in {}; replay the corpus (from the repository's root):",
        suizhou_token_file.display()
    );
    println!(
        "{} conformance --url {url} --paasid {SANDBOX_PAASID} --token-file {} --caller suizhou={SANDBOX_SUIZHOU_PAASID}:{}",
        me.display(),
        token_file.display(),
        suizhou_token_file.display()
    );
    let args = ["national-gateway", "--listen", &listen.to_string(), "--clearing", &clearing_url, "--plaintext", "--paas"];
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.push(paas.display().to_string());
    let serve_args = <ServeOnly as clap::Parser>::try_parse_from(argv)?.args;
    let served = serve(serve_args).await;
    drop(clearing);
    served
}

#[derive(clap::Parser)]
struct ServeOnly {
    #[command(flatten)]
    args: ServeArgs,
}

/// A `curl` line that signs itself each time it runs (`sign --curl` prints the four x-tif headers as
/// curl arguments).
fn curl_line(me: &Path, token_file: &Path, claim: &Path, url: &str) -> String {
    format!(
        "curl -s $({} sign --paasid {SANDBOX_PAASID} --token-file {} --curl) -H content-type:application/json --data @{} {url}",
        me.display(),
        token_file.display(),
        claim.display()
    )
}

fn sandbox_token() -> String {
    use sha2::Digest;
    let seed = format!("{}{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    format!("sandbox-{}", hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..16]))
}

/// The sandbox's members (`examples/national/sandbox-members.json`): SANDBOX1 of Suizhou filed for
/// treatment in Jiangxi and SANDBOX2 of Nanchang, funded, each with a (synthetic) resident ID for 1101.
pub fn members() -> anyhow::Result<Vec<pb::Member>> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(include_str!("../../examples/national/sandbox-members.json"))?;
    let text = |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Ok(rows
        .iter()
        .map(|r| pb::Member {
            psn_no: text(r, "psn_no"),
            insuplc_admdvs: text(r, "insuplc_admdvs"),
            psn_type: text(r, "psn_type"),
            acct_balc: text(r, "acct_balc"),
            filings: r["filings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .map(|f| pb::Filing { mdtrt_admdvs: f.into(), begndate: "2020-01-01".into(), ..Default::default() })
                .collect(),
            psn_cert_type: text(r, "psn_cert_type"),
            certno: text(r, "certno"),
            psn_name: text(r, "psn_name"),
            gend: text(r, "gend"),
            brdy: text(r, "brdy"),
            naty: text(r, "naty"),
            ..Default::default()
        })
        .collect())
}

async fn seed_members(clearing_url: &str) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(clearing_url.to_string())?.connect().await?;
    let mut reg = proto::v1::registry_client::RegistryClient::new(channel);
    for m in members()? {
        let psn_no = m.psn_no.clone();
        reg.upsert_member(m).await.map_err(|s| anyhow::anyhow!("seeding {psn_no}: {}", s.message()))?;
    }
    Ok(())
}

/// A 2207 envelope as a HIS sends it: SANDBOX1 treated at the sample hospital, three lines.
fn sample_2207() -> serde_json::Value {
    let t = "2024-03-12 10:00:00";
    let line = |sn: &str, code: &str, cnt: &str, pric: &str, sum: &str| json!({ "feedetl_sn": sn, "med_list_codg": code, "cnt": cnt, "pric": pric, "det_item_fee_sumamt": sum, "fee_ocur_time": t });
    json!({
        "infno": "2207", "msgid": format!("{HOSPITAL}202403121000000001"), "mdtrtarea_admvs": "360100", "insuplc_admdvs": "421300",
        "recer_sys_code": "HIS", "infver": "V1.0", "opter_type": "1", "opter": "001", "opter_name": "cashier",
        "inf_time": t, "fixmedins_code": HOSPITAL, "fixmedins_name": "sample hospital", "sign_no": "",
        "input": {
            "data": { "psn_no": "SANDBOX1", "insutype": "310", "med_type": "11", "medfee_sumamt": "880.00", "acct_used_flag": "1" },
            "feedetail": [
                line("0001", "001201000010000", "1", "500.00", "500.00"),
                line("0002", "001201000010000", "2", "150.00", "300.00"),
                line("0003", "001201000010000", "1", "80.00", "80.00"),
            ]
        }
    })
}
