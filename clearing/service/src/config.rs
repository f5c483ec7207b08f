//! Configuration of `clearing serve`: defaults that work on a laptop, a TOML file, `CLEARING_*`
//! environment variables and flags, in rising precedence. Validated once, at load, with errors that
//! name the file and key.

use crate::routing::router::RouteSpec;
use clearing_edge::telemetry::LogFormat;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config-file format this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Which store keeps the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One redb file under the data directory (the default; no server needed).
    #[default]
    Embedded,
    /// Redis or Redis Cluster, shared by several replicas.
    Redis,
}

/// The settings as given by flags or environment (clap fills these; flags win over env).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "CLEARING_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded database [default: ./data].
    #[arg(long, env = "CLEARING_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Directory of rule packs (*.toml) replacing the bundled ones.
    #[arg(long, env = "CLEARING_RULES")]
    pub rules: Option<PathBuf>,
    /// List of designated institutions (TOML, the format of the bundled sample) replacing the bundled one.
    #[arg(long, env = "CLEARING_INSTITUTIONS")]
    pub institutions: Option<PathBuf>,
    /// How long a registered visit may stay open without being settled, seconds [default: 259200, 72 h].
    #[arg(long, env = "CLEARING_VISIT_TTL_SECS")]
    pub visit_ttl_secs: Option<u64>,
    /// How often expired visits are swept, seconds [default: 60].
    #[arg(long, env = "CLEARING_VISIT_SWEEP_SECS")]
    pub visit_sweep_secs: Option<u64>,
    /// Supervision's flags on settlements and monthly indicators: on or off [default: on].
    #[arg(long, env = "CLEARING_SUPERVISION", value_parser = ["on", "off"])]
    pub supervision: Option<String>,
    /// TOML config file (settings below flags and environment).
    #[arg(long, env = "CLEARING_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "CLEARING_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Store [default: embedded].
    #[arg(long, env = "CLEARING_STORE", value_enum)]
    pub store: Option<StoreKind>,
    /// Redis URL; repeat the flag or separate with commas to give several cluster seed nodes.
    #[arg(long = "redis-url", env = "CLEARING_REDIS_URL", value_delimiter = ',')]
    pub redis_url: Vec<String>,
    /// Start even when Redis does not fsync every write (appendfsync always). Logged loudly.
    #[arg(long, env = "CLEARING_REDIS_ALLOW_VOLATILE")]
    pub redis_allow_volatile: bool,
    /// Members the store keeps decoded in memory so a settlement starts without a read (on Redis the
    /// commit checks each one's version; the embedded store caches what its writer committed; 0 turns
    /// the cache off) [default: 100000].
    #[arg(long, env = "CLEARING_MEMBER_CACHE")]
    pub member_cache: Option<usize>,
    /// How often the Redis store folds the shards' pending window totals and supervision indicators
    /// into the window-wide and month-wide sums, seconds (reads fold first, so this only bounds how
    /// much a read has left to fold) [default: 2].
    #[arg(long, env = "CLEARING_FOLD_INTERVAL_SECS")]
    pub fold_interval_secs: Option<u64>,
    /// A route of the routing table, ADMDVS=local or ADMDVS=http://host:port (a region such as 421300
    /// or a province such as 420000; the longest match wins; unmatched regions are local). Repeat the
    /// flag or separate with commas; given here, it replaces the config file's `[routes]`.
    #[arg(long = "route", env = "CLEARING_ROUTES", value_delimiter = ',')]
    pub route: Vec<String>,
    #[command(flatten)]
    pub tls: clearing_edge::tls::TlsArgs,
    /// CA of remote region adapters' server certificates (for `https://` routes).
    #[arg(long, env = "CLEARING_ADAPTER_TLS_CA")]
    pub adapter_tls_ca: Option<PathBuf>,
    /// This service's client certificate towards region adapters (role `clearing`).
    #[arg(long, env = "CLEARING_ADAPTER_TLS_CERT")]
    pub adapter_tls_cert: Option<PathBuf>,
    #[arg(long, env = "CLEARING_ADAPTER_TLS_KEY")]
    pub adapter_tls_key: Option<PathBuf>,
    /// CRLs of the adapters' CA (PEM or DER): an adapter whose certificate is revoked is not called.
    /// Re-read when the file changes, or on SIGHUP.
    #[arg(long, env = "CLEARING_ADAPTER_TLS_CRL")]
    pub adapter_tls_crl: Option<PathBuf>,
}

/// `redis_url = "redis://…"` or a list of seed nodes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    version: Option<u32>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    rules: Option<PathBuf>,
    institutions: Option<PathBuf>,
    visit_ttl_secs: Option<u64>,
    visit_sweep_secs: Option<u64>,
    supervision: Option<bool>,
    log_format: Option<LogFormat>,
    store: Option<StoreKind>,
    redis_url: Option<OneOrMany>,
    redis_allow_volatile: Option<bool>,
    member_cache: Option<usize>,
    fold_interval_secs: Option<u64>,
    /// `"420000" = "http://hubei-adapter:50061"`, `"421300" = "local"`.
    routes: Option<std::collections::BTreeMap<String, String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    tls_crl: Option<PathBuf>,
    plaintext: Option<bool>,
    adapter_tls_ca: Option<PathBuf>,
    adapter_tls_cert: Option<PathBuf>,
    adapter_tls_key: Option<PathBuf>,
    adapter_tls_crl: Option<PathBuf>,
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `None` = the bundled rule packs.
    pub rules: Option<PathBuf>,
    /// `None` = the bundled sample list of institutions.
    pub institutions: Option<PathBuf>,
    pub visit_ttl: std::time::Duration,
    pub visit_sweep: std::time::Duration,
    /// Flags and indicators are kept.
    pub supervision: bool,
    pub log_format: LogFormat,
    pub store: StoreKind,
    pub redis_urls: Vec<String>,
    pub redis_allow_volatile: bool,
    /// Members the store caches (0 = none).
    pub member_cache: usize,
    /// Between background folds (Redis).
    pub fold_interval: std::time::Duration,
    /// The routing table (empty = every region local). Reloaded from the config file on SIGHUP.
    pub routes: Vec<RouteSpec>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    /// CRLs of the client CA, watched while the service runs.
    pub tls_crl: Option<PathBuf>,
    pub plaintext: bool,
    pub adapter_tls_ca: Option<PathBuf>,
    pub adapter_tls_cert: Option<PathBuf>,
    pub adapter_tls_key: Option<PathBuf>,
    pub adapter_tls_crl: Option<PathBuf>,
}

impl Config {
    /// The listener's TLS settings as `clearing_edge::tls::listener_security` takes them.
    pub fn listener_tls(&self) -> clearing_edge::tls::TlsArgs {
        clearing_edge::tls::TlsArgs {
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            tls_crl: self.tls_crl.clone(),
            plaintext: self.plaintext,
        }
    }

    /// Client TLS towards `https://` region adapters, when configured.
    pub fn adapter_tls(&self) -> anyhow::Result<Option<clearing_edge::tls::ClientTls>> {
        match (&self.adapter_tls_ca, &self.adapter_tls_cert, &self.adapter_tls_key) {
            (Some(ca), Some(c), Some(k)) => Ok(Some(clearing_edge::tls::ClientTls::new(ca, c, k, self.adapter_tls_crl.as_deref())?)),
            (None, None, None) if self.adapter_tls_crl.is_some() => {
                anyhow::bail!("--adapter-tls-crl given without --adapter-tls-ca, --adapter-tls-cert and --adapter-tls-key")
            }
            (None, None, None) => Ok(None),
            _ => anyhow::bail!("TLS towards region adapters needs all of --adapter-tls-ca, --adapter-tls-cert and --adapter-tls-key"),
        }
    }

    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let file_listen = match &file.listen {
            Some(s) => Some(s.parse::<SocketAddr>().map_err(|e| {
                anyhow::anyhow!("{}: listen: {s:?} is not an address: {e}", args.config.as_deref().unwrap_or(Path::new("?")).display())
            })?),
            None => None,
        };
        // Relative paths in the file are relative to the file.
        let base = args.config.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Config {
            listen: args.listen.or(file_listen).unwrap_or_else(|| "127.0.0.1:50051".parse().expect("default address")),
            data_dir: args.data_dir.clone().or(file.data_dir.map(rel)).unwrap_or_else(|| PathBuf::from("data")),
            rules: args.rules.clone().or(file.rules.map(rel)),
            institutions: args.institutions.clone().or(file.institutions.map(rel)),
            visit_ttl: std::time::Duration::from_secs(
                args.visit_ttl_secs.or(file.visit_ttl_secs).unwrap_or(crate::limits::DEFAULT_VISIT_TTL.as_secs()).max(1),
            ),
            visit_sweep: std::time::Duration::from_secs(args.visit_sweep_secs.or(file.visit_sweep_secs).unwrap_or(60).max(1)),
            supervision: args.supervision.as_deref().map(|s| s == "on").or(file.supervision).unwrap_or(true),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            store: args.store.or(file.store).unwrap_or_default(),
            redis_urls: if args.redis_url.is_empty() {
                match file.redis_url {
                    Some(OneOrMany::One(u)) => vec![u],
                    Some(OneOrMany::Many(v)) => v,
                    None => Vec::new(),
                }
            } else {
                args.redis_url.clone()
            },
            redis_allow_volatile: args.redis_allow_volatile || file.redis_allow_volatile.unwrap_or(false),
            member_cache: args.member_cache.or(file.member_cache).unwrap_or(crate::store::redis::DEFAULT_MEMBER_CACHE),
            fold_interval: std::time::Duration::from_secs(args.fold_interval_secs.or(file.fold_interval_secs).unwrap_or(2).max(1)),
            tls_cert: args.tls.tls_cert.clone().or(file.tls_cert.map(rel)),
            tls_key: args.tls.tls_key.clone().or(file.tls_key.map(rel)),
            tls_client_ca: args.tls.tls_client_ca.clone().or(file.tls_client_ca.map(rel)),
            tls_crl: args.tls.tls_crl.clone().or(file.tls_crl.map(rel)),
            plaintext: args.tls.plaintext || file.plaintext.unwrap_or(false),
            adapter_tls_ca: args.adapter_tls_ca.clone().or(file.adapter_tls_ca.map(rel)),
            adapter_tls_cert: args.adapter_tls_cert.clone().or(file.adapter_tls_cert.map(rel)),
            adapter_tls_key: args.adapter_tls_key.clone().or(file.adapter_tls_key.map(rel)),
            adapter_tls_crl: args.adapter_tls_crl.clone().or(file.adapter_tls_crl.map(rel)),
            routes: if args.route.is_empty() {
                file.routes.unwrap_or_default().into_iter().map(|(admdvs, target)| RouteSpec { admdvs, target }).collect()
            } else {
                args.route.iter().map(|r| RouteSpec::parse_flag(r)).collect::<Result<_, _>>().map_err(anyhow::Error::msg)?
            },
        })
        .and_then(|c: Config| {
            if c.store == StoreKind::Redis && c.redis_urls.is_empty() {
                anyhow::bail!("store = redis needs --redis-url (or redis_url in the config file)");
            }
            Ok(c)
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let cfg: FileConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
    match cfg.version {
        Some(CONFIG_VERSION) => Ok(cfg),
        Some(v) => anyhow::bail!("{}: version: is {v}; this build reads {CONFIG_VERSION}", path.display()),
        None => anyhow::bail!("{}: version: missing (write `version = {CONFIG_VERSION}`)", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "version = 1\nlisten = \"127.0.0.1:6000\"\ndata_dir = \"d\"\n").unwrap();
        let args = ServeArgs { config: Some(path.clone()), ..Default::default() };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.data_dir, dir.path().join("d"));
        let args = ServeArgs { config: Some(path), listen: Some("127.0.0.1:7000".parse().unwrap()), ..Default::default() };
        assert_eq!(Config::resolve(&args).unwrap().listen.port(), 7000);
        assert_eq!(Config::resolve(&ServeArgs::default()).unwrap().listen.port(), 50051);
    }

    #[test]
    fn bad_files_are_refused_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "version = 1\nlisten = \"nowhere\"\n").unwrap();
        let e = Config::resolve(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("listen"), "{e}");
        std::fs::write(&path, "version = 1\nlisen = \"x\"\n").unwrap();
        let e = Config::resolve(&ServeArgs { config: Some(path), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
    }

    #[test]
    fn routes_come_from_the_file_unless_flags_give_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "version = 1\n[routes]\n420000 = \"http://h:1\"\n360100 = \"local\"\n").unwrap();
        let c = Config::resolve(&ServeArgs { config: Some(path.clone()), ..Default::default() }).unwrap();
        assert_eq!(
            c.routes,
            vec![
                RouteSpec { admdvs: "360100".into(), target: "local".into() },
                RouteSpec { admdvs: "420000".into(), target: "http://h:1".into() }
            ]
        );
        let args = ServeArgs { config: Some(path), route: vec!["320000=http://j:2".into()], ..Default::default() };
        assert_eq!(Config::resolve(&args).unwrap().routes, vec![RouteSpec { admdvs: "320000".into(), target: "http://j:2".into() }]);
        let args = ServeArgs { route: vec!["320000".into()], ..Default::default() };
        assert!(Config::resolve(&args).unwrap_err().to_string().contains("ADMDVS=local"));
    }
}
