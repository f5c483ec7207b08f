//! The national gateway in tests: the `national-gateway` process, and a HIS-like client that signs
//! its calls the way HIS code does (our own few lines of SHA-256 over HTTP/1.1, not the gateway's
//! code), so that the tests check the gateway against the interface, not against itself.

use crate::{STARTUP_PATIENCE, assert_no_person_numbers, bin, poll_until, remember_person};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use proto::v1 as pb;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

pub const CALL_SERVICE: &str = "/fsi/api/rsfComIfsService/callService";

/// The token a test gives `paasid`.
pub fn token_of(paasid: &str) -> String {
    format!("test-token-{paasid}-0123456789")
}

/// Writes a paas file with one caller per `(paasid, role, admdvs)`; a role `institution:<code>,<code>`
/// is an institution bound to those codes.
pub fn paas_file(dir: &Path, callers: &[(&str, &str, &str)]) -> PathBuf {
    let mut s = String::new();
    for (id, role, adm) in callers {
        let (role, codes) = match role.split_once(':') {
            Some((r, codes)) => {
                let list: Vec<String> = codes.split(',').map(|c| format!("\"{c}\"")).collect();
                (r, format!("fixmedins_code = [{}]\n", list.join(", ")))
            }
            None => (*role, String::new()),
        };
        s += &format!("[[paas]]\npaasid = \"{id}\"\ntoken = \"{}\"\nrole = \"{role}\"\nadmdvs = \"{adm}\"\n{codes}\n", token_of(id));
    }
    let p = dir.join("paas.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// A running `national-gateway serve`, killed when dropped.
pub struct Gateway {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Gateway {
    /// Starts the gateway in front of `clearing` (a URL) with the callers of `paas`; plain HTTP on
    /// loopback unless `extra` has `--tls-cert`.
    pub fn start(clearing: &str, paas: &Path, extra: &[&str]) -> Gateway {
        Gateway::start_with_env(clearing, paas, extra, &[])
    }

    /// With environment variables (e.g. `OTEL_*`).
    pub fn start_with_env(clearing: &str, paas: &Path, extra: &[&str], env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec!["--clearing".into(), clearing.into(), "--paas".into(), paas.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        if !extra.contains(&"--tls-cert") {
            args.push("--plaintext".into());
        }
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, addr) = spawn(dir.path(), &args, &env, "127.0.0.1:0".parse().unwrap());
        Gateway { child: Some(child), addr, dir, args, env }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// SIGKILL: nothing gets to finish.
    pub fn crash(&mut self) {
        let mut c = self.child.take().expect("running");
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Starts again on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "crash first");
        let (child, addr) = spawn(self.dir.path(), &self.args, &self.env, self.addr);
        self.child = Some(child);
        self.addr = addr;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert_no_person_numbers("national-gateway", &self.log());
    }
}

fn spawn(dir: &Path, args: &[String], env: &[(String, String)], listen: SocketAddr) -> (Child, SocketAddr) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("gateway.log")).unwrap();
    let started = poll_until(STARTUP_PATIENCE, || {
        let mut child = Command::new(bin("national-gateway"))
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .args(args)
            .env("RUST_LOG", "info,national_gateway=debug,clearing_edge=debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .expect("spawn national-gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if let Some(a) = line.trim().strip_prefix("national-gateway listening on ") {
            return Some((child, a.parse().unwrap()));
        }
        let _ = child.wait();
        None
    });
    started.unwrap_or_else(|| {
        panic!("national-gateway did not start; log:\n{}", std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default())
    })
}

/// One answer: the HTTP status and the national body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn infcode(&self) -> i64 {
        self.body["infcode"].as_i64().unwrap_or(i64::MIN)
    }
    pub fn err_msg(&self) -> &str {
        self.body["err_msg"].as_str().unwrap_or("")
    }
    pub fn output(&self) -> &Value {
        &self.body["output"]
    }
    /// `output.setlinfo.<field>` as text.
    pub fn setl(&self, field: &str) -> String {
        self.body["output"]["setlinfo"][field]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.body["output"]["setlinfo"][field].to_string())
    }
    /// Asserts success and returns self.
    pub fn ok(self) -> Reply {
        assert_eq!((self.status, self.infcode()), (200, 0), "not done: {}", self.body);
        self
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh nonce (unique per test process and call).
pub fn nonce() -> String {
    let n = NONCE.fetch_add(1, Ordering::Relaxed);
    format!("n{}x{n:08}x{}", std::process::id(), chrono::Utc::now().timestamp_subsec_nanos())
}

/// The x-tif headers for `paasid` with `token` at `timestamp` with `nonce`.
pub fn x_tif(paasid: &str, token: &str, timestamp: i64, nonce: &str) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let sig = hex::encode(Sha256::digest(format!("{ts}{token}{nonce}{ts}").as_bytes()));
    vec![
        ("x-tif-paasid".into(), paasid.into()),
        ("x-tif-timestamp".into(), ts),
        ("x-tif-nonce".into(), nonce.into()),
        ("x-tif-signature".into(), sig),
    ]
}

/// The regions and institution of a call.
#[derive(Debug, Clone)]
pub struct Where {
    pub mdtrtarea_admvs: String,
    pub insuplc_admdvs: String,
    pub fixmedins_code: String,
}

impl Where {
    pub fn of(claim: &pb::Claim) -> Where {
        Where {
            mdtrtarea_admvs: claim.mdtrt_admdvs.clone(),
            insuplc_admdvs: claim.insuplc_admdvs.clone(),
            fixmedins_code: claim.fixmedins_code.clone(),
        }
    }
}

/// The national envelope.
pub fn envelope(infno: &str, msgid: &str, w: &Where, input: Value) -> Value {
    json!({
        "infno": infno, "msgid": msgid, "mdtrtarea_admvs": w.mdtrtarea_admvs, "insuplc_admdvs": w.insuplc_admdvs,
        "recer_sys_code": "HIS", "infver": "V1.0", "opter_type": "1", "opter": "001", "opter_name": "cashier",
        "inf_time": "2024-03-10 09:30:00", "fixmedins_code": w.fixmedins_code, "fixmedins_name": "", "sign_no": "",
        "input": input,
    })
}

/// The 2206/2207 input of a claim: `data` and `feedetail` with the national names; `hosp_lv` only when
/// `with_level` (a HIS normally leaves it to the institution list).
pub fn national_input(c: &pb::Claim, with_level: bool) -> Value {
    remember_person(&c.psn_no);
    let t = chrono::DateTime::parse_from_rfc3339(&c.setl_time).unwrap().format("%Y-%m-%d %H:%M:%S").to_string();
    let total: i64 = c.lines.iter().map(|l| crate::fen(&l.det_item_fee_sumamt)).sum();
    let mut data = json!({
        "psn_no": c.psn_no, "insutype": "310", "med_type": c.med_type,
        "medfee_sumamt": format!("{}.{:02}", total / 100, total % 100),
        "acct_used_flag": if c.acct_used_flag { "1" } else { "0" },
    });
    if with_level {
        data["hosp_lv"] = json!(c.hosp_lv);
    }
    if !c.dise_code.is_empty() {
        data["dise_codg"] = json!(c.dise_code);
    }
    if c.prescribing_hosp_lv != 0 {
        data["prescribing_hosp_lv"] = json!(c.prescribing_hosp_lv);
    }
    if !c.acct_payer_psn_no.is_empty() {
        data["acct_payer_psn_no"] = json!(c.acct_payer_psn_no);
    }
    let feedetail: Vec<Value> = c
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({ "feedetl_sn": format!("{:04}", i + 1), "med_list_codg": l.hilist_code, "cnt": l.cnt, "pric": l.pric,
                    "det_item_fee_sumamt": l.det_item_fee_sumamt, "fee_ocur_time": t })
        })
        .collect();
    json!({ "data": data, "feedetail": feedetail })
}

/// A HIS-like caller of one gateway with one paasid.
#[derive(Clone)]
pub struct His {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
    pub paasid: String,
    pub token: String,
}

impl His {
    pub fn new(base: &str, paasid: &str) -> His {
        His::with_token(base, paasid, &token_of(paasid))
    }

    pub fn with_token(base: &str, paasid: &str, token: &str) -> His {
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        His { client, base: base.into(), paasid: paasid.into(), token: token.into() }
    }

    /// A signed call of `infno`.
    pub async fn call(&self, infno: &str, msgid: &str, w: &Where, input: Value) -> Reply {
        let body = serde_json::to_vec(&envelope(infno, msgid, w, input)).unwrap();
        let headers = x_tif(&self.paasid, &self.token, chrono::Utc::now().timestamp(), &nonce());
        self.post(&headers, "application/json;charset=utf-8", body).await
    }

    /// A POST with exactly these headers and body.
    pub async fn post(&self, headers: &[(String, String)], content_type: &str, body: Vec<u8>) -> Reply {
        self.send(headers, content_type, body).await.expect("HTTP call")
    }

    /// A signed JSON POST that may fail at the transport (the gateway killed under it): `None` then.
    pub async fn post_try(&self, headers: &[(String, String)], body: Vec<u8>) -> Option<Reply> {
        self.send(headers, "application/json", body).await
    }

    async fn send(&self, headers: &[(String, String)], content_type: &str, body: Vec<u8>) -> Option<Reply> {
        let mut req = hyper::Request::post(format!("{}{CALL_SERVICE}", self.base)).header("content-type", content_type);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = self.client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.ok()?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.ok()?.to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes), "raw_hex": hex::encode(&bytes) }));
        Some(Reply { status, body })
    }
}
