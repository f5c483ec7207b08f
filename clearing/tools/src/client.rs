//! The operator client: `clearing settle|preview|reverse|get|member …` talk to a running service and
//! print JSON with the proto field names, so a newcomer can drive the service without grpcurl.

use proto::v1 as pb;
use proto::v1::clearing_client::ClearingClient;
use proto::v1::registry_client::RegistryClient;
use std::path::Path;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// `clearing health`: the standard gRPC health check, for exec probes (kubelet's own gRPC probe
/// cannot present a client certificate). Exits non-zero unless the service answers SERVING.
pub async fn health(addr: &str, service: &str) -> anyhow::Result<()> {
    let mut c = tonic_health::pb::health_client::HealthClient::new(connect(addr).await?);
    let r =
        tokio::time::timeout(std::time::Duration::from_secs(3), c.check(tonic_health::pb::HealthCheckRequest { service: service.into() }))
            .await
            .map_err(|_| anyhow::anyhow!("{addr}: no answer within 3 s"))?
            .map_err(|s| anyhow::anyhow!("{addr}: {}", s.message()))?
            .into_inner();
    let serving = r.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    anyhow::ensure!(serving, "{addr}: status {}", r.status);
    println!("SERVING");
    Ok(())
}

/// A channel to `addr` (`host:port`, `http://…`, or `https://…` with the client certificate from
/// `CLEARING_CA`, `CLEARING_CLIENT_CERT`, `CLEARING_CLIENT_KEY`).
pub async fn connect(addr: &str) -> anyhow::Result<Channel> {
    let uri = if addr.starts_with("http") { addr.to_string() } else { format!("http://{addr}") };
    let mut ep = Channel::from_shared(uri.clone())?;
    if uri.starts_with("https://") {
        let tls = clearing_edge::tls::cli_tls_from_env()?
            .ok_or_else(|| anyhow::anyhow!("{addr}: set CLEARING_CA, CLEARING_CLIENT_CERT and CLEARING_CLIENT_KEY"))?;
        ep = ep.tls_config(tls)?;
    }
    ep.connect().await.map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn print<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A failed call as text: code, message, and each field violation.
pub fn describe_status(s: &tonic::Status) -> String {
    let mut out = format!("{:?}: {}", s.code(), s.message());
    if let Some(br) = s.get_details_bad_request() {
        for v in br.field_violations {
            out.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    out
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", describe_status(&s))
}

pub async fn settle(addr: &str, file: &Path, mode: clearing_service::settlement::settle::Mode) -> anyhow::Result<()> {
    use clearing_service::settlement::settle::Mode;
    let claim: pb::Claim = read_json(file)?;
    let mut c = ClearingClient::new(connect(addr).await?);
    let s = match mode {
        Mode::Preview => c.preview_claim(claim).await,
        Mode::Settle => c.settle_claim(claim).await,
    }
    .map_err(status)?;
    print(s.get_ref())
}

pub async fn reverse(addr: &str, setl_id: String, msgid: String, reason: String) -> anyhow::Result<()> {
    let mut c = ClearingClient::new(connect(addr).await?);
    let s = c.reverse_claim(pb::ReverseClaimRequest { setl_id, msgid, reason }).await.map_err(status)?;
    print(s.get_ref())
}

pub async fn get(addr: &str, setl_id: String) -> anyhow::Result<()> {
    let mut c = ClearingClient::new(connect(addr).await?);
    let s = c.get_settlement(pb::GetSettlementRequest { setl_id }).await.map_err(status)?;
    print(s.get_ref())
}

pub async fn upsert_member(addr: &str, file: &Path) -> anyhow::Result<()> {
    let m: pb::Member = read_json(file)?;
    let mut c = RegistryClient::new(connect(addr).await?);
    let r = c.upsert_member(m).await.map_err(status)?;
    print(r.get_ref())
}

pub async fn close_account(addr: &str, insuplc_admdvs: String, psn_no: String, reason: String, msgid: String) -> anyhow::Result<()> {
    let mut c = RegistryClient::new(connect(addr).await?);
    let r = c.close_account(pb::CloseAccountRequest { insuplc_admdvs, psn_no, reason, msgid }).await.map_err(status)?;
    print(r.get_ref())
}

pub async fn get_member(addr: &str, insuplc_admdvs: String, psn_no: String, year: u32) -> anyhow::Result<()> {
    let mut c = RegistryClient::new(connect(addr).await?);
    let r = c.get_member(pb::GetMemberRequest { insuplc_admdvs, psn_no, year }).await.map_err(status)?;
    print(r.get_ref())
}
