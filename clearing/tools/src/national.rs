//! The load generator's national-interface client: the same workload as `clearing bench`, sent as
//! signed 2207/2208 calls to `national-gateway` (HTTP/1.1 with keep-alive, as HIS programs call), so
//! the gateway's added cost is measured next to direct gRPC in one run. Bench callers are one
//! `platform` per province with tokens derived from the paasid (benchmarks only).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use proto::v1 as pb;
use region_adapter::RuleSet;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

pub const CALL_SERVICE: &str = "/fsi/api/rsfComIfsService/callService";

/// The bench caller settling at `mdtrt`: its province's platform.
pub fn bench_paasid(mdtrt: &str) -> String {
    format!("bench_{}", &mdtrt[..2.min(mdtrt.len())])
}

pub fn bench_token(paasid: &str) -> String {
    format!("bench-token-{paasid}-0123456789")
}

/// A paas file with one platform per province of `rules` (for `national-gateway serve --paas`).
pub fn bench_paas_file(rules: &RuleSet) -> String {
    let provinces: std::collections::BTreeSet<String> = rules.regions.keys().map(|a| a.to_string()[..2].to_string()).collect();
    provinces
        .iter()
        .map(|p| {
            let id = format!("bench_{p}");
            format!("[[paas]]\npaasid = \"{id}\"\ntoken = \"{}\"\nrole = \"platform\"\nadmdvs = \"{p}0000\"\n\n", bench_token(&id))
        })
        .collect()
}

/// The national 2207 input of a claim (the level sent, as the workload's institutions are on no list).
pub fn input_2207(c: &pb::Claim) -> Value {
    let time = chrono::DateTime::parse_from_rfc3339(&c.setl_time).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
    let total: i64 = c.lines.iter().filter_map(|l| clearing_edge::fields::signed_fen(&l.det_item_fee_sumamt)).sum();
    let mut data = json!({
        "psn_no": c.psn_no, "insutype": "310", "med_type": c.med_type, "hosp_lv": c.hosp_lv,
        "medfee_sumamt": region_adapter::money::fmt_yuan(total), "acct_used_flag": if c.acct_used_flag { "1" } else { "0" },
    });
    if c.prescribing_hosp_lv != 0 {
        data["prescribing_hosp_lv"] = json!(c.prescribing_hosp_lv);
    }
    let feedetail: Vec<Value> = c
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            json!({ "feedetl_sn": (i + 1).to_string(), "med_list_codg": l.hilist_code, "cnt": l.cnt, "pric": l.pric,
                    "det_item_fee_sumamt": l.det_item_fee_sumamt, "fee_ocur_time": time })
        })
        .collect();
    json!({ "data": data, "feedetail": feedetail })
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A signing HTTP client of one gateway.
#[derive(Clone)]
pub struct NationalClient {
    client: Client<HttpConnector, Full<Bytes>>,
    url: String,
}

impl NationalClient {
    pub fn new(base: &str) -> NationalClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        NationalClient {
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).pool_max_idle_per_host(1024).build(http),
            url: format!("{}{CALL_SERVICE}", base.trim_end_matches('/')),
        }
    }

    /// One signed call; `Ok(output)` on infcode 0, `Err(reason)` otherwise.
    pub async fn call(&self, infno: &str, msgid: &str, mdtrt: &str, insured: &str, fixmedins: &str, input: Value) -> Result<Value, String> {
        let paasid = bench_paasid(mdtrt);
        let ts = chrono::Utc::now().timestamp().to_string();
        let nonce = format!("b{:08}x{:012}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed));
        let sig = hex::encode(Sha256::digest(format!("{ts}{}{nonce}{ts}", bench_token(&paasid)).as_bytes()));
        let body = json!({
            "infno": infno, "msgid": msgid, "mdtrtarea_admvs": mdtrt, "insuplc_admdvs": insured, "recer_sys_code": "BENCH",
            "infver": "V1.0", "opter_type": "1", "opter": "1", "opter_name": "bench", "inf_time": "2026-01-01 00:00:00",
            "fixmedins_code": fixmedins, "fixmedins_name": "", "sign_no": "", "input": input,
        });
        let req = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .header("x-tif-paasid", &paasid)
            .header("x-tif-timestamp", &ts)
            .header("x-tif-nonce", &nonce)
            .header("x-tif-signature", sig)
            .body(Full::new(Bytes::from(serde_json::to_vec(&body).map_err(|e| e.to_string())?)))
            .map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| format!("http: {e}"))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| format!("http body: {e}"))?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| format!("HTTP {status}: not JSON"))?;
        if v["infcode"] == 0 { Ok(v["output"].clone()) } else { Err(format!("HTTP {status}")) }
    }

    /// 2207 of a claim: its setl_id.
    pub async fn settle(&self, c: &pb::Claim) -> Result<String, String> {
        let out = self.call("2207", &c.msgid, &c.mdtrt_admdvs, &c.insuplc_admdvs, &c.fixmedins_code, input_2207(c)).await?;
        Ok(out["setlinfo"]["setl_id"].as_str().unwrap_or_default().to_string())
    }

    /// 2208 of a settlement made at `mdtrt`.
    pub async fn reverse(&self, setl_id: &str, msgid: &str, mdtrt: &str) -> Result<(), String> {
        let input = json!({ "data": { "setl_id": setl_id, "memo": "bench" } });
        self.call("2208", msgid, mdtrt, "", &format!("H{mdtrt}00001"), input).await.map(|_| ())
    }
}
