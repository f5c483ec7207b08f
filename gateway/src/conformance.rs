//! `national-gateway conformance`: replays the corpus of requests shaped as hospitals send them
//! (`examples/national/requests/`, in file-name order) against any national-interface endpoint and prints,
//! per transaction, what was sent, what was answered, the shape differences (national output fields
//! missing) and the amount differences (against `<name>.expect.json`, when there is one).
//!
//! A request file is the envelope a HIS sends. Its strings may hold placeholders, replaced before
//! sending: `{{today}}` (yyyy-MM-dd, Beijing), `{{now}}` (yyyy-MM-dd HH:mm:ss), `{{msgid}}` (a fresh msgid
//! for this request, which is also its envelope's), `{{msgid:<file>}}` (the msgid an earlier file was
//! sent with), `{{<file>:<path>}}` (a value of an earlier file's answer, by dotted path with `[i]`
//! for list items, e.g. `{{04-2201-register:output.data.mdtrt_id}}`) and `{{zip-base64:<corpus file>}}`
//! (that file, its own placeholders filled, zipped and in Base64: 9101's `in`). A 9102 answer is the
//! file itself (HTTP 200, an attachment); the kit reads it as `file.name`, `file.bytes` and
//! `file.rows[]` (a tab-separated table with a header line). Any other answer must be the JSON envelope.
//! A file whose name contains `refused` must be answered `infcode` -1; every other one 0. A file named
//! `…@NAME.json` is sent as the
//! caller given by `--caller NAME=PAASID:TOKEN_FILE` (the corpus's chronic visit is at a Suizhou
//! hospital: `@suizhou`), and skipped when that caller is not given.

use crate::auth;
use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ConformanceArgs {
    /// The endpoint: http(s)://host:port (the national path is added) or the full callService URL.
    #[arg(long)]
    pub url: String,
    #[arg(long)]
    pub paasid: String,
    /// The paasid's token (or --token-file).
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Report only the transactions of this infno (the files before them are still sent: their answers
    /// fill the placeholders).
    #[arg(long)]
    pub only: Option<String>,
    /// The corpus.
    #[arg(long, default_value = "examples/national/requests")]
    pub corpus: PathBuf,
    /// Also write each request as sent and its answer here (`<file>.sent.json`, `<file>.answer.json`).
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Another caller, `NAME=PAASID:TOKEN_FILE`: the files named `…@NAME.json` are sent as it (a visit
    /// at another region's institution, e.g. `@suizhou`). Repeatable; a file whose caller is not given
    /// is skipped and counted as such.
    #[arg(long = "caller", value_name = "NAME=PAASID:TOKEN_FILE")]
    pub callers: Vec<String>,
    /// For an https:// --url: the CA of the endpoint's certificate (PEM).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// A client certificate and key (PEM), for an endpoint that asks for one (mutual TLS).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    #[arg(long)]
    pub key: Option<PathBuf>,
}

/// The callers of a run: the main one (`""`) and the `--caller`s, name → (paasid, token).
fn callers(a: &ConformanceArgs) -> anyhow::Result<HashMap<String, (String, String)>> {
    let read = |f: &std::path::Path| -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(f).with_context(|| format!("token file {}", f.display()))?.trim().to_string())
    };
    let main = match (&a.token, &a.token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => read(f)?,
        (None, None) => anyhow::bail!("give --token or --token-file"),
    };
    let mut out = HashMap::from([(String::new(), (a.paasid.clone(), main))]);
    for c in &a.callers {
        let Some((name, rest)) = c.split_once('=') else { anyhow::bail!("--caller {c}: expected NAME=PAASID:TOKEN_FILE") };
        let Some((paasid, file)) = rest.split_once(':') else { anyhow::bail!("--caller {c}: expected NAME=PAASID:TOKEN_FILE") };
        out.insert(name.to_string(), (paasid.to_string(), read(std::path::Path::new(file))?));
    }
    Ok(out)
}

/// The output fields each transaction must answer (national names, dotted paths; `[]` = every item of
/// a list, which must not be empty).
fn required_paths(infno: &str) -> &'static [&'static str] {
    match infno {
        "1101" => &[
            "output.baseinfo.psn_no",
            "output.baseinfo.psn_cert_type",
            "output.baseinfo.certno",
            "output.baseinfo.psn_name",
            "output.baseinfo.gend",
            "output.baseinfo.brdy",
            "output.baseinfo.age",
            "output.insuinfo[].insutype",
            "output.insuinfo[].balc",
            "output.insuinfo[].psn_type",
            "output.insuinfo[].psn_insu_stas",
            "output.insuinfo[].cvlserv_flag",
            "output.insuinfo[].insuplc_admdvs",
            "output.idetinfo",
        ],
        "9101" => &["output.file_qury_no", "output.filename", "output.dld_endtime"],
        "9102" => &["file.name", "file.rows[].setl_id", "file.rows[].stmt_rslt"],
        "5201" => &[
            "output.mdtrtinfo[].mdtrt_id",
            "output.mdtrtinfo[].psn_no",
            "output.mdtrtinfo[].certno",
            "output.mdtrtinfo[].psn_name",
            "output.mdtrtinfo[].insutype",
            "output.mdtrtinfo[].insu_optins",
            "output.mdtrtinfo[].begntime",
            "output.mdtrtinfo[].med_type",
        ],
        "1312" => &[
            "output.data[].hilist_code",
            "output.data[].hilist_name",
            "output.data[].chrgitm_lv",
            "output.data[].med_chrgitm_type",
            "output.data[].lmt_used_flag",
        ],
        "2201" => &["output.data.mdtrt_id", "output.data.psn_no", "output.data.ipt_otp_no"],
        "2204" => &[
            "output.result[].feedetl_sn",
            "output.result[].det_item_fee_sumamt",
            "output.result[].chrgitm_lv",
            "output.result[].selfpay_prop",
            "output.result[].med_chrgitm_type",
            "output.result[].lmt_used_flag",
        ],
        "2206" | "2207" | "2208" | "5203" => &[
            "output.setlinfo.setl_id",
            "output.setlinfo.psn_no",
            "output.setlinfo.setl_time",
            "output.setlinfo.medfee_sumamt",
            "output.setlinfo.fulamt_ownpay_amt",
            "output.setlinfo.overlmt_selfpay",
            "output.setlinfo.preselfpay_amt",
            "output.setlinfo.inscp_scp_amt",
            "output.setlinfo.act_pay_dedc",
            "output.setlinfo.hifp_pay",
            "output.setlinfo.pool_prop_selfpay",
            "output.setlinfo.fund_pay_sumamt",
            "output.setlinfo.acct_pay",
            "output.setlinfo.balc",
            "output.setlinfo.clr_optins",
            "output.setlinfo.clr_type",
            "output.setlinfo.clr_way",
            "output.setldetail[].fund_pay_type",
            "output.setldetail[].fund_payamt",
        ],
        "5204" => &["output[].feedetl_sn", "output[].det_item_fee_sumamt", "output[].hilist_code", "output[].fee_ocur_time"],
        "3201" | "3202" => &["output.stmtinfo.setl_optins", "output.stmtinfo.stmt_rslt", "output.stmtinfo.stmt_rslt_dscr"],
        "9001" => &["output.signinoutb.sign_no", "output.signinoutb.sign_time"],
        _ => &[],
    }
}

/// The values at a dotted path (`a.b[].c` every item's, `a[2].c` one item's).
fn values_at<'v>(v: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut at = vec![v];
    for part in path.split('.') {
        let (name, index) = match part.find('[') {
            Some(i) => (&part[..i], Some(&part[i + 1..part.len() - 1])),
            None => (part, None),
        };
        let mut next = Vec::new();
        for v in at {
            let inner = if name.is_empty() { Some(v) } else { v.get(name) };
            match (inner, index) {
                (Some(x), None) => next.push(x),
                (Some(Value::Array(a)), Some("")) => next.extend(a.iter()),
                (Some(Value::Array(a)), Some(i)) => next.extend(i.parse::<usize>().ok().and_then(|i| a.get(i))),
                _ => {}
            }
        }
        at = next;
    }
    at
}

/// What one transaction of the corpus did.
#[derive(Debug)]
pub struct Outcome {
    pub file: String,
    pub infno: String,
    pub infcode: i64,
    pub err_msg: String,
    pub shape: Vec<String>,
    pub amounts: Vec<String>,
    /// Not sent: the caller it names was not given.
    pub skipped: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.shape.is_empty() && self.amounts.is_empty()
    }
    /// A file sent as a caller the run was not given (`--caller NAME=…`).
    fn skipped(file: String, infno: String, caller: &str) -> Outcome {
        Outcome {
            file,
            infno,
            infcode: 0,
            err_msg: String::new(),
            shape: Vec::new(),
            amounts: Vec::new(),
            skipped: Some(caller.to_string()),
        }
    }
}

/// Replays the corpus; the outcomes in order.
pub async fn run(a: &ConformanceArgs) -> anyhow::Result<Vec<Outcome>> {
    let callers = callers(a)?;
    let url =
        if a.url.contains("/fsi/") { a.url.clone() } else { format!("{}{}", a.url.trim_end_matches('/'), crate::server::CALL_SERVICE) };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.corpus)
        .with_context(|| format!("--corpus {}", a.corpus.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.to_string_lossy().ends_with(".expect.json"))
        .collect();
    files.sort();
    let client = Client::new(a)?;
    // To the millisecond: a run right after another (a corpus takes about a second) sends new msgids,
    // or its 2201 would be the previous run's visit again (national msgid: 12 + 13 + 4 = 29 ≤ 30).
    let run_tag = chrono::Utc::now().format("%m%d%H%M%S%3f").to_string();
    let mut answers: HashMap<String, Value> = HashMap::new();
    let mut msgids: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (seq, path) in files.iter().enumerate() {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(path)?;
        let mut env: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let infno = env["infno"].as_str().unwrap_or_default().to_string();
        let caller = stem.split_once('@').map_or("", |(_, c)| c).to_string();
        let Some((paasid, token)) = callers.get(&caller) else {
            if a.only.as_deref().is_none_or(|o| o == infno) {
                out.push(Outcome::skipped(stem, infno, &caller));
            }
            continue;
        };
        let msgid = format!("{}{run_tag}{seq:04}", env["fixmedins_code"].as_str().unwrap_or("CONFORMANCE"));
        msgids.insert(stem.clone(), msgid.clone());
        // A placeholder an earlier answer cannot fill (that transaction failed): this one differs too,
        // and the run goes on.
        if let Err(e) = substitute(&mut env, &Ctx { msgid: &msgid, msgids: &msgids, answers: &answers, corpus: &a.corpus }) {
            if a.only.as_deref().is_none_or(|o| o == infno) {
                out.push(Outcome {
                    file: stem,
                    infno,
                    infcode: i64::MIN,
                    err_msg: String::new(),
                    shape: vec![format!("not sent: {e:#}")],
                    amounts: Vec::new(),
                    skipped: None,
                });
            }
            continue;
        }
        let answer = send(&client, &url, paasid, token, &env).await.with_context(|| format!("{stem}: sending"))?;
        if let Some(dir) = &a.answers {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{stem}.sent.json")), serde_json::to_vec_pretty(&env)?)?;
            std::fs::write(dir.join(format!("{stem}.answer.json")), serde_json::to_vec_pretty(&answer)?)?;
        }
        let infcode = answer["infcode"].as_i64().unwrap_or(i64::MIN);
        let refused = stem.contains("refused");
        let mut shape = Vec::new();
        if refused && infcode != -1 {
            shape.push(format!("infcode {infcode}, expected -1 (a refusal)"));
        }
        if !refused && infcode != 0 {
            shape.push(format!("infcode {infcode}, expected 0: {}", answer["err_msg"].as_str().unwrap_or_default()));
        }
        if infcode == 0 {
            for p in required_paths(&infno) {
                let found = values_at(&answer, p);
                if found.is_empty() || found.iter().any(|v| v.is_null()) {
                    shape.push(format!("{p} missing"));
                }
            }
        }
        let mut amounts = Vec::new();
        let expect = path.with_file_name(format!("{stem}.expect.json"));
        if let Ok(t) = std::fs::read_to_string(&expect) {
            let e: Value = serde_json::from_str(&t).with_context(|| format!("{}", expect.display()))?;
            for (p, want) in e["amounts"].as_object().into_iter().flatten() {
                let got = values_at(&answer, p).first().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                if got.as_deref() != want.as_str() {
                    amounts.push(format!("{p}: {} ≠ expected {want}", got.unwrap_or_else(|| "missing".into())));
                }
            }
        }
        if a.only.as_deref().is_none_or(|o| o == infno) {
            out.push(Outcome {
                file: stem.clone(),
                infno,
                infcode,
                err_msg: answer["err_msg"].as_str().unwrap_or_default().into(),
                shape,
                amounts,
                skipped: None,
            });
        }
        answers.insert(stem, answer);
    }
    Ok(out)
}

/// Replaces the placeholders of every string in `v`.
/// What placeholders are filled from.
struct Ctx<'a> {
    msgid: &'a str,
    msgids: &'a HashMap<String, String>,
    answers: &'a HashMap<String, Value>,
    corpus: &'a std::path::Path,
}

/// `s` with its placeholders filled.
fn fill(s: &str, ctx: &Ctx<'_>) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let j = rest[i..].find("}}").map(|j| i + j).context("an unclosed {{")?;
        let name = &rest[i + 2..j];
        let shanghai = chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
        let value = match name {
            "today" => shanghai.format("%Y-%m-%d").to_string(),
            "now" => shanghai.format("%Y-%m-%d %H:%M:%S").to_string(),
            "msgid" => ctx.msgid.to_string(),
            _ if name.starts_with("msgid:") => {
                ctx.msgids.get(&name[6..]).cloned().with_context(|| format!("{name}: no such earlier file"))?
            }
            _ if name.starts_with("zip-base64:") => {
                // A file of the corpus (its placeholders filled), zipped and in Base64: 9101's `in`.
                let file = &name["zip-base64:".len()..];
                let text = std::fs::read_to_string(ctx.corpus.join(file)).with_context(|| format!("{name}: reading {file}"))?;
                let zip = crate::files::zipped(file, fill(&text, ctx)?.as_bytes());
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, zip)
            }
            _ => {
                let (file, path) = name.split_once(':').with_context(|| format!("{{{{{name}}}}}: unknown placeholder"))?;
                let answer = ctx.answers.get(file).with_context(|| format!("{name}: no answer of {file} yet"))?;
                let found = values_at(answer, path).first().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                found.with_context(|| format!("{name}: not in {file}'s answer"))?
            }
        };
        out.push_str(&value);
        rest = &rest[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute(v: &mut Value, ctx: &Ctx<'_>) -> anyhow::Result<()> {
    match v {
        Value::String(s) if s.contains("{{") => *s = fill(s, ctx)?,
        Value::Array(a) => {
            for x in a {
                substitute(x, ctx)?;
            }
        }
        Value::Object(m) => {
            for x in m.values_mut() {
                substitute(x, ctx)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A download's answer (9102: the file's bytes, not the envelope) as the kit checks it: `file.name`,
/// `file.bytes`, and `file.rows[]` when it is (a zip of) a tab-separated table with a header line.
fn file_answer(disposition: Option<&str>, body: &[u8]) -> Value {
    let name = disposition
        .and_then(|d| d.split(';').map(str::trim).find_map(|p| p.strip_prefix("filename=")))
        .map(|n| n.trim_matches('"').to_string())
        .unwrap_or_default();
    let text = crate::files::unzipped(body).ok().and_then(|t| String::from_utf8(t).ok()).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().map(|h| h.split('\t').collect()).unwrap_or_default();
    let rows: Vec<Value> =
        lines.map(|l| Value::Object(header.iter().zip(l.split('\t')).map(|(k, v)| (k.to_string(), Value::from(v))).collect())).collect();
    serde_json::json!({ "infcode": 0, "err_msg": "", "file": { "name": name, "bytes": body.len(), "rows": rows } })
}

/// How the kit reaches the endpoint: plain HTTP, or HTTPS verified against `--ca` (with a client
/// certificate for a gateway that asks for one). One connection per request: a corpus is a few dozen.
struct Client {
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    fn new(a: &ConformanceArgs) -> anyhow::Result<Client> {
        if !a.url.starts_with("https://") {
            return Ok(Client { tls: None });
        }
        use tokio_rustls::rustls;
        let ca = a.ca.as_ref().context("--ca: the CA of the gateway's certificate (PEM), for an https:// --url")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in clearing_edge::tls::pem_certs(ca, "--ca")? {
            roots.add(c)?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots);
        let cfg = match (&a.cert, &a.key) {
            (Some(c), Some(k)) => {
                builder.with_client_auth_cert(clearing_edge::tls::pem_certs(c, "--cert")?, clearing_edge::tls::pem_key(k, "--key")?)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => anyhow::bail!("--cert and --key go together"),
        };
        Ok(Client { tls: Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))) })
    }

    async fn request(&self, mut req: hyper::Request<Full<Bytes>>) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let uri = req.uri().clone();
        // On a connection of its own the request names its path, and the host in a header.
        let authority = uri.authority().context("--url: no host")?.to_string();
        req.headers_mut().insert(hyper::header::HOST, authority.parse()?);
        *req.uri_mut() = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        let host = uri.host().context("--url: no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.with_context(|| format!("connecting to {host}:{port}"))?;
        match &self.tls {
            None => exchange(tcp, req).await,
            Some(tls) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.clone()).context("--url: host")?;
                exchange(tls.connect(name, tcp).await.context("TLS handshake")?, req).await
            }
        }
    }
}

/// One HTTP/1.1 request on its own connection.
async fn exchange<IO>(io: IO, req: hyper::Request<Full<Bytes>>) -> anyhow::Result<hyper::Response<hyper::body::Incoming>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

async fn send(client: &Client, url: &str, paasid: &str, token: &str, env: &Value) -> anyhow::Result<Value> {
    use sha2::Digest;
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = hex::encode(
        &sha2::Sha256::digest(format!("{}{}", env["msgid"], chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()))[..12],
    );
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .header(auth::H_PAASID, paasid)
        .header(auth::H_TIMESTAMP, &ts)
        .header(auth::H_NONCE, &nonce)
        .header(auth::H_SIGNATURE, auth::signature(&ts, token.as_bytes(), &nonce))
        .body(Full::new(Bytes::from(serde_json::to_vec(env)?)))?;
    let resp = client.request(req).await.context("no answer")?;
    let status = resp.status();
    let disposition = resp.headers().get(hyper::header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp.into_body().collect().await?.to_bytes();
    // A download (9102) is a file sent as an attachment; anything else must be the JSON envelope.
    if status == hyper::StatusCode::OK && disposition.as_deref().is_some_and(|d| d.starts_with("attachment")) {
        return Ok(file_answer(disposition.as_deref(), &body));
    }
    serde_json::from_slice(&body).with_context(|| {
        let text = String::from_utf8_lossy(&body);
        format!("HTTP {status}, not JSON: {}", text.chars().take(200).collect::<String>())
    })
}

/// Prints the outcomes; an error when any differs.
pub async fn conformance(a: ConformanceArgs) -> anyhow::Result<()> {
    let outcomes = run(&a).await?;
    let (mut differing, mut skipped) = (0, std::collections::BTreeSet::new());
    for o in &outcomes {
        if let Some(c) = &o.skipped {
            println!("{} {} skipped: sent as caller {c}, not given (--caller {c}=PAASID:TOKEN_FILE)", o.file, o.infno);
            skipped.insert(c.clone());
            continue;
        }
        let verdict = if o.ok() { "ok" } else { "DIFFERS" };
        println!(
            "{} {} sent; answered infcode {}{}: {verdict}",
            o.file,
            o.infno,
            o.infcode,
            if o.err_msg.is_empty() { String::new() } else { format!(" ({})", o.err_msg) }
        );
        for d in &o.shape {
            println!("  shape: {d}");
        }
        for d in &o.amounts {
            println!("  amount: {d}");
        }
        differing += usize::from(!o.ok());
    }
    let not_sent = outcomes.iter().filter(|o| o.skipped.is_some()).count();
    if not_sent > 0 {
        println!("{not_sent} skipped (no caller {})", skipped.into_iter().collect::<Vec<_>>().join(", "));
    }
    println!("{} transactions, {differing} with differences", outcomes.len() - not_sent);
    if differing > 0 {
        anyhow::bail!("{differing} transactions differ");
    }
    Ok(())
}
