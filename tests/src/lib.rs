//! The end-to-end test harness: starts the real binaries as child processes on free loopback ports
//! with temporary data directories, and gives tests gRPC clients over TCP. Nothing here is a mock.
//!
//! Binaries are taken from the workspace's target directory (built by `cargo build --bins`, which the
//! README's test command runs first); `CLEARINGHOUSE_BIN_DIR` overrides the directory.

#![forbid(unsafe_code)]

pub mod gateway;
pub mod otlp;
pub mod pki;

use proto::v1 as pb;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub use proto::v1::catalogue_client::CatalogueClient;
pub use proto::v1::clearing_client::ClearingClient;
pub use proto::v1::registry_client::RegistryClient;
pub use proto::v1::supervision_client::SupervisionClient;

/// How long a test waits for a process to come up before failing.
pub(crate) const STARTUP_PATIENCE: Duration = Duration::from_secs(30);

/// How long `eventually` waits for what a test expects, unless the test says otherwise.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The pauses between two tries of a bounded wait: 10 ms, doubling up to 200 ms.
fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(Duration::from_millis(10)), |p| Some((*p * 2).min(Duration::from_millis(200))))
}

/// The one bounded wait of the tests: runs `check` until it yields a value, pausing briefly (10 ms,
/// doubling up to 200 ms) between tries, and panics naming `what` when `patience` has passed. Tests
/// wait for an outcome with this, never with a fixed sleep.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    for pause in pauses() {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {patience:?} waiting for {what}");
        tokio::time::sleep(pause).await;
    }
    unreachable!("pauses never end")
}

/// `eventually` for the harness's blocking code (starting and stopping processes): the value, or
/// `None` once `patience` has passed (the caller says what failed).
pub fn poll_until<T>(patience: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + patience;
    for pause in pauses() {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause);
    }
    None
}

/// The directory holding the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CLEARINGHOUSE_BIN_DIR") {
        return PathBuf::from(d);
    }
    // This test executable lives in <target>/<profile>/deps/; the binaries in <target>/<profile>/.
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target profile directory").to_path_buf()
}

/// The path of a workspace binary, or a panic that says how to build it.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} not found: run `cargo build --bins` first (scripts/test.sh does)", p.display());
    p
}

/// The repository root (for examples/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A running `clearing serve`, killed when dropped.
pub struct Clearing {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Kept alive as long as the server: the data directory and the log.
    pub dir: tempfile::TempDir,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Clearing {
    /// Starts `clearing serve` on a free port with a fresh data directory.
    pub fn start() -> Clearing {
        Clearing::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Clearing {
        Clearing::start_with_env(extra, &[])
    }

    /// With extra arguments and environment variables (e.g. `OTEL_*`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Clearing {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (child, addr) = spawn(dir.path(), &extra_args, &env, "127.0.0.1:0".parse().unwrap());
        Clearing { child: Some(child), addr, dir, extra_args, env }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clearing.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.expect("connect")
    }

    pub async fn clearing(&self) -> ClearingClient<Channel> {
        ClearingClient::new(self.channel().await)
    }
    pub async fn registry(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel().await)
    }
    pub async fn catalogue(&self) -> CatalogueClient<Channel> {
        CatalogueClient::new(self.channel().await)
    }
    pub async fn supervision(&self) -> SupervisionClient<Channel> {
        SupervisionClient::new(self.channel().await)
    }

    /// Stops the service with SIGTERM (graceful) and waits for it to exit; returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        wait_exit(&mut child)
    }

    /// Kills the service with SIGKILL (a crash): nothing gets to flush.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the service again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or crash first");
        let (child, addr) = spawn(self.dir.path(), &self.extra_args, &self.env, self.addr);
        self.child = Some(child);
        self.addr = addr;
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    match poll_until(STARTUP_PATIENCE, || child.try_wait().expect("wait")) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("service did not stop within {STARTUP_PATIENCE:?} of SIGTERM");
        }
    }
}

impl Drop for Clearing {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert_no_person_numbers("clearing", &self.log());
    }
}

fn spawn(dir: &Path, extra: &[String], env: &[(String, String)], listen: SocketAddr) -> (Child, SocketAddr) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("clearing.log")).expect("log file");
    // A restart on the old port can race the kernel releasing it: tried again within the patience.
    let started = poll_until(STARTUP_PATIENCE, || {
        let mut child = Command::new(bin("clearing"))
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            // Plain text on loopback unless the test configures TLS.
            .args(if extra.iter().any(|a| a == "--tls-cert") { &[][..] } else { &["--plaintext"][..] })
            // Our own debug lines too: the person-number check on drop reads everything we log.
            .env("RUST_LOG", "info,clearing=debug,clearing_service=debug,clearing_edge=debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("log"))
            .spawn()
            .expect("spawn clearing");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read stdout");
        if let Some(addr) = line.trim().strip_prefix("clearing listening on ") {
            return Some((child, addr.parse().expect("address")));
        }
        let _ = child.wait();
        None
    });
    started.unwrap_or_else(|| {
        panic!("clearing did not start; log:\n{}", std::fs::read_to_string(dir.join("clearing.log")).unwrap_or_default())
    })
}

impl Clearing {
    /// Sends a signal (`HUP`, `TERM`, …) to the running service.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill").success();
        assert!(ok, "kill -{sig} {pid}");
    }
}

/// A running `region-adapter serve` with its own rules directory, killed when dropped.
pub struct Adapter {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The rules directory and the log.
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Adapter {
    /// Serves the bundled packs whose file names start with one of `regions` (e.g. `["421300"]`).
    pub fn start(regions: &[&str]) -> Adapter {
        Adapter::start_with(regions, &[])
    }

    /// With extra `serve` arguments (TLS files); plain text on loopback when none are given.
    pub fn start_with(regions: &[&str], extra: &[&str]) -> Adapter {
        Adapter::start_with_env(regions, extra, &[])
    }

    pub fn start_with_env(regions: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Adapter {
        let dir = tempfile::tempdir().expect("temp dir");
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).expect("rules dir");
        let bundled = repo_root().join("region-adapter/rules");
        for e in std::fs::read_dir(&bundled).expect("bundled rules") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            if regions.iter().any(|r| name.starts_with(r)) {
                std::fs::copy(e.path(), rules.join(&name)).expect("copy pack");
            }
        }
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for (k, v) in env {
            extra.push(format!("env:{k}={v}"));
        }
        let (child, addr) = spawn_adapter(dir.path(), &extra, "127.0.0.1:0".parse().unwrap());
        Adapter { child: Some(child), addr, dir, extra }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("adapter.log")).unwrap_or_default()
    }

    /// Stops the adapter with SIGTERM and waits for it.
    pub fn stop(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        wait_exit(&mut child);
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop first");
        let (child, addr) = spawn_adapter(self.dir.path(), &self.extra, self.addr);
        self.child = Some(child);
        self.addr = addr;
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        assert_no_person_numbers("region-adapter", &self.log());
    }
}

/// `extra` holds arguments, and environment variables written `env:KEY=VALUE`.
fn spawn_adapter(dir: &Path, extra: &[String], listen: SocketAddr) -> (Child, SocketAddr) {
    let env: Vec<(&str, &str)> = extra.iter().filter_map(|a| a.strip_prefix("env:")?.split_once('=')).collect();
    let extra: Vec<&String> = extra.iter().filter(|a| !a.starts_with("env:")).collect();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("adapter.log")).expect("log file");
    let started = poll_until(STARTUP_PATIENCE, || {
        let mut child = Command::new(bin("region-adapter"))
            .args(["serve", "--listen", &listen.to_string(), "--rules"])
            .arg(dir.join("rules"))
            .args(&extra)
            .args(if extra.iter().any(|a| *a == "--tls-cert") { &[][..] } else { &["--plaintext"][..] })
            .envs(env.iter().copied())
            // The adapter logs each call's deadline and trace context at debug level.
            .env("RUST_LOG", "info,region_adapter_server=debug")
            .stdout(Stdio::piped())
            .stderr(log.try_clone().expect("log"))
            .spawn()
            .expect("spawn region-adapter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read stdout");
        if let Some(addr) = line.trim().strip_prefix("region-adapter listening on ") {
            return Some((child, addr.parse().expect("address")));
        }
        let _ = child.wait();
        None
    });
    started.unwrap_or_else(|| {
        panic!("region-adapter did not start; log:\n{}", std::fs::read_to_string(dir.join("adapter.log")).unwrap_or_default())
    })
}

/// Runs the `clearing` CLI (operator client) and returns (success, stdout, stderr).
pub fn clearing_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin("clearing")).args(args).output().expect("run clearing");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

// ---- building requests ----------------------------------------------------------------------

/// Every person number the builders made, for the log check: no service log may contain one.
static PERSON_NUMBERS: std::sync::Mutex<std::collections::BTreeSet<String>> = std::sync::Mutex::new(std::collections::BTreeSet::new());

pub fn remember_person(psn_no: &str) {
    if psn_no.len() >= 3 {
        PERSON_NUMBERS.lock().unwrap().insert(psn_no.to_string());
    }
}

/// The person numbers (built by this harness) that appear as words in `log`.
pub fn person_numbers_in(log: &str) -> Vec<String> {
    let known = PERSON_NUMBERS.lock().unwrap();
    let mut found: Vec<String> =
        log.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| known.contains(*w)).map(str::to_string).collect();
    found.sort();
    found.dedup();
    found
}

/// Personal data must not reach logs (issue 7): every service a test starts is checked when dropped.
pub(crate) fn assert_no_person_numbers(what: &str, log: &str) {
    if std::thread::panicking() {
        // A failing test: keep the process's log where CI leaves it, for whoever reads the failure.
        keep_log_of_failure(what, log);
        return;
    }
    let found = person_numbers_in(log);
    assert!(found.is_empty(), "{what} logged person numbers {found:?}:\n{log}");
}

/// Writes the log of a process of a failed test under `target/test-failures/` (named by process and time)
/// and says where on stderr.
fn keep_log_of_failure(what: &str, log: &str) {
    let dir = repo_root().join("target").join("test-failures");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let name = format!("{what}-{}-{}.log", std::process::id(), chrono::Utc::now().format("%H%M%S%.6f"));
    if std::fs::write(dir.join(&name), log).is_ok() {
        eprintln!("kept the log of {what} of this failed test: target/test-failures/{name}");
    }
}

/// Registers members through the service's Registry, panicking with the person number on failure.
pub async fn registered(c: &Clearing, members: &[pb::Member]) {
    let mut r = c.registry().await;
    for m in members {
        // Certificate numbers are personal data too: no log may hold one.
        remember_person(&m.psn_no);
        remember_person(&m.certno);
        r.upsert_member(m.clone()).await.unwrap_or_else(|e| panic!("{}: {e}", m.psn_no));
    }
}

/// A member of `insured` with `psn_type`, filed for `filings` (city or province codes).
pub fn member(insured: &str, psn_no: &str, psn_type: &str, filings: &[&str]) -> pb::Member {
    remember_person(psn_no);
    pb::Member {
        psn_no: psn_no.into(),
        insuplc_admdvs: insured.into(),
        psn_type: psn_type.into(),
        filings: filings
            .iter()
            .map(|f| pb::Filing {
                mdtrt_admdvs: f.to_string(),
                begndate: "2020-01-01".into(),
                enddate: String::new(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A service item that is 甲类 without a price cap in every sample catalogue: all of it is in scope.
pub const CLASS_A_NO_CAP: &str = "001201000010000";

/// The bundled institution list's hospital of level `lv` in city `mdtrt` (`clearing/service/institutions.toml`:
/// …00001 is level 3, …00002 level 2, …00003 level 1).
pub fn listed_institution(mdtrt: &str, lv: u32) -> String {
    format!("H{mdtrt}0000{}", 4 - lv.clamp(1, 3))
}

/// The bundled list's pharmacy of city `mdtrt` designated for outpatient pooling (…00001), or one that is
/// not (the district pharmacy …200001 of Suizhou, Nanchang, Nanjing, Tongliao; Taiyuan's is …500001).
pub fn listed_pharmacy(mdtrt: &str, designated: bool) -> String {
    if designated {
        format!("P{mdtrt}00001")
    } else {
        let district = if mdtrt == "140100" { "140105" } else { &format!("{}02", &mdtrt[..4]) };
        format!("P{district}00001")
    }
}

/// A claim of `yuan` yuan, all in scope, at a level-`lv` institution of `mdtrt` on `date`.
pub fn claim(msgid: &str, insured: &str, psn_no: &str, mdtrt: &str, lv: u32, date: &str, yuan: u32) -> pb::Claim {
    remember_person(psn_no);
    pb::Claim {
        msgid: msgid.into(),
        psn_no: psn_no.into(),
        insuplc_admdvs: insured.into(),
        mdtrt_admdvs: mdtrt.into(),
        fixmedins_code: listed_institution(mdtrt, lv),
        hosp_lv: lv,
        med_type: "11".into(),
        setl_time: format!("{date}T10:00:00+08:00"),
        lines: vec![pb::ClaimLine {
            hilist_code: CLASS_A_NO_CAP.into(),
            cnt: "1".into(),
            pric: format!("{yuan}.00"),
            det_item_fee_sumamt: format!("{yuan}.00"),
        }],
        ..Default::default()
    }
}

/// The multi-line claim of examples/claim.json (mixed classes, a price cap, 丙类), for `psn_no`.
pub fn example_claim(msgid: &str, psn_no: &str) -> pb::Claim {
    let text = std::fs::read_to_string(repo_root().join("examples/claim.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    let lines = j["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| pb::ClaimLine {
            hilist_code: l["hilist_code"].as_str().unwrap().into(),
            cnt: l["cnt"].as_str().unwrap().into(),
            pric: l["pric"].as_str().unwrap().into(),
            det_item_fee_sumamt: l["det_item_fee_sumamt"].as_str().unwrap().into(),
        })
        .collect();
    remember_person(psn_no);
    pb::Claim {
        msgid: msgid.into(),
        psn_no: psn_no.into(),
        insuplc_admdvs: "421300".into(),
        mdtrt_admdvs: "360100".into(),
        fixmedins_code: "H36010200001".into(),
        hosp_lv: 1,
        med_type: "11".into(),
        setl_time: "2024-03-10T09:30:00+08:00".into(),
        acct_used_flag: true,
        lines,
        ..Default::default()
    }
}

/// `m` with its account balance set.
pub fn funded(mut m: pb::Member, balance: &str) -> pb::Member {
    m.acct_balc = balance.into();
    m
}

/// The golden visits of one member (a Suizhou member treated in Nanchang), in order: the example, then two single-line claims at the level-3
/// institution of the sample list (H36010000001), the last with the account.
pub fn golden_visits(tag: &str, psn_no: &str) -> Vec<pb::Claim> {
    let mut b = claim(&format!("{tag}-2"), "421300", psn_no, "360100", 3, "2024-03-12", 800);
    b.fixmedins_code = "H36010000001".into();
    let mut c = claim(&format!("{tag}-3"), "421300", psn_no, "360100", 3, "2024-03-15", 3000);
    c.fixmedins_code = "H36010000001".into();
    c.acct_used_flag = true;
    vec![example_claim(&format!("{tag}-1"), psn_no), b, c]
}

/// A wire amount in yuan ("-180.00") as fen.
pub fn fen(s: &str) -> i64 {
    let neg = s.starts_with('-');
    let (y, f) = s.trim_start_matches('-').split_once('.').expect("two decimals");
    let v = y.parse::<i64>().expect("yuan") * 100 + f.parse::<i64>().expect("fen");
    if neg { -v } else { v }
}

/// The field paths of a status's BadRequest details.
pub fn bad_fields(s: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    s.get_details_bad_request().map(|b| b.field_violations.into_iter().map(|v| v.field).collect()).unwrap_or_default()
}

// ---- Redis processes ------------------------------------------------------------------------

/// A free loopback port (bound and released; the caller binds it right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// redis-server and redis-check-aof (the start script's repair) are installed, or a panic that says how.
fn require_redis_server() {
    for tool in ["redis-server", "redis-check-aof"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} not found: install redis-server and redis-tools (scripts/test.sh does it with apt)"
        );
    }
}

/// A `redis-server` of the test's own, on a free loopback port, in a temporary directory, with AOF
/// fsynced on every write. Never the machine's default instance.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Redis {
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments (e.g. `["--appendonly", "no"]`).
    pub fn start_with(extra: &[&str]) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = Redis { child: None, port: 0, dir, extra: extra.iter().map(|s| s.to_string()).collect() };
        // Another process may take the free port first: then another port.
        let up = poll_until(STARTUP_PATIENCE, || {
            r.port = free_port();
            r.launch(Duration::from_secs(10)).then_some(())
        });
        assert!(up.is_some(), "redis-server did not start");
        r
    }

    /// Starts `redis-server` and waits until it answers PING, or until it exits (port taken, bad
    /// arguments: `false`). A server still loading its AOF answers `LOADING`: that is waited for as long
    /// as `patience` allows, so a large AOF after a long soak is replayed, not killed half-way.
    fn launch(&mut self, patience: Duration) -> bool {
        require_redis_server();
        // Through the chart's start script, as production runs it: a crash that cut the AOF inside a
        // write is repaired (and said so in redis-start.log) before Redis loads it.
        let start_log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("redis-start.log")).expect("log");
        let mut cmd = Command::new("sh");
        cmd.arg(repo_root().join("helm/clearinghouse/files/redis-start.sh"))
            .arg(self.dir.path())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg("always")
            // A cut AOF is refused rather than loaded up to the cut (issue 27); the start script repairs it.
            .arg("--aof-load-truncated")
            .arg("no")
            .arg("--save")
            .arg("")
            .arg("--protected-mode")
            .arg("no")
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .args(&self.extra)
            .stdout(start_log.try_clone().expect("log"))
            .stderr(start_log);
        let mut child = cmd.spawn().expect("spawn redis-server");
        let port = self.port.to_string();
        let answered = poll_until(patience, || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false); // port taken, or bad arguments
            }
            let pong = Command::new("redis-cli").args(["-p", &port, "ping"]).output();
            pong.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG")).then_some(true)
        });
        if answered == Some(true) {
            self.child = Some(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`: no shutdown, no final fsync beyond what AOF `always` already did.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and directory (replaying the AOF, which after a long soak takes a
    /// while: up to `AOF_REPLAY_PATIENCE`).
    pub fn restart(&mut self) {
        /// Replaying a gigabyte of AOF on a loaded 2-core machine takes tens of seconds.
        const AOF_REPLAY_PATIENCE: Duration = Duration::from_secs(180);
        assert!(self.child.is_none(), "crash first");
        // The old process's port may take a moment to be released.
        let up = poll_until(STARTUP_PATIENCE, || self.launch(AOF_REPLAY_PATIENCE).then_some(()));
        assert!(up.is_some(), "redis-server did not restart on port {}", self.port);
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli").arg("-p").arg(self.port.to_string()).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Redis {
    /// What Redis logged, after what its start script said (repairs of a cut AOF).
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("== redis-start.log\n{}== redis.log\n{}", read("redis-start.log"), read("redis.log"))
    }

    /// The append-only file Redis is writing now (the last incremental file of the manifest).
    pub fn incr_aof(&self) -> PathBuf {
        let dir = self.dir.path().join("appendonlydir");
        let manifest = std::fs::read_to_string(dir.join("appendonly.aof.manifest")).expect("AOF manifest");
        let name = manifest
            .lines()
            .filter(|l| l.ends_with("type i"))
            .filter_map(|l| l.split_whitespace().nth(1))
            .next_back()
            .expect("an incremental AOF in the manifest");
        dir.join(name)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.crash();
        if std::thread::panicking() {
            keep_log_of_failure(&format!("redis-{}", self.port), &self.log());
        }
    }
}

/// A 3-master Redis Cluster on loopback, built with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<Redis>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                Redis::start_with(&["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
        let ok =
            poll_until(STARTUP_PATIENCE, || nodes.iter().all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok")).then_some(()));
        assert!(ok.is_some(), "cluster did not become ok");
        RedisCluster { nodes }
    }

    /// Seed nodes, comma-separated, as `--redis-url` takes them.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| n.url()).collect::<Vec<_>>().join(",")
    }
}
