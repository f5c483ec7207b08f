//! Whether Redis keeps what it acknowledges: every node checked at connect and again every few
//! seconds, and writes refused while any node is unsafe.

use super::*;

/// What `recheck_durability` needs: where to find the nodes, and whether an unsafe one only warns.
pub(crate) struct Durability {
    pub(crate) seeds: Vec<String>,
    pub(crate) allow_volatile: bool,
    pub(crate) gate: DurabilityGate,
}

impl RedisStore {
    /// Checks every node's durability again (run every few seconds by `clearing serve`): a node that came
    /// back from a restart, or joined the cluster, with an unsafe configuration stops writes (UNAVAILABLE,
    /// logged with what to set) until it is fixed; with `--redis-allow-volatile` it is only logged. A node
    /// that does not answer keeps its previous verdict. Returns the unsafe nodes found now.
    pub async fn recheck_durability(&self) -> Result<usize, StoreError> {
        let d = &self.durability;
        let (_, nodes) = discover_nodes(&d.seeds).await?;
        let mut found = BTreeMap::new();
        let mut answered = Vec::new();
        for url in nodes.iter().cloned() {
            match durability_problem(&url).await {
                Ok(Some(why)) => {
                    found.insert(url.clone(), why);
                    answered.push(url);
                }
                Ok(None) => answered.push(url),
                Err(e) => tracing::debug!(node = %url, error = %e, "durability check: node did not answer"),
            }
        }
        if d.allow_volatile {
            for why in found.values() {
                tracing::error!("!!! {why} (allowed by --redis-allow-volatile) !!!");
            }
            return Ok(found.len());
        }
        let mut gate = d.gate.unsafe_nodes.lock().expect("durability gate");
        for url in &answered {
            match (found.get(url), gate.contains_key(url)) {
                (Some(why), false) => tracing::error!("{why}: writes refused until it is fixed"),
                (None, true) => tracing::info!(node = %url, "redis node configured safely again: writes resume"),
                _ => {}
            }
        }
        // A node gone from the cluster (replaced, moved) no longer holds writes back.
        gate.retain(|url, _| nodes.contains(url) && !answered.contains(url));
        gate.extend(found);
        Ok(gate.len())
    }
}

/// What a node's configuration lacks for money, or `None` when it keeps every acknowledged write and can
/// never bring back half of a commit after a crash:
/// - `appendonly yes` + `appendfsync always`: an answer goes out only after the write is on disk;
/// - `aof-load-truncated no`: a crash during the AOF `write()` of a script's `MULTI … EXEC` can leave the
///   file ending inside it; with `yes` Redis loads it up to the last whole command, inside the MULTI, and
///   the next restart replays half of an unacknowledged commit (a visit, fund pay, a balance debit that
///   no answer carried). With `no` Redis refuses the cut file, and its start script repairs it with
///   `redis-check-aof --fix`, which cuts back to before the MULTI (helm/clearinghouse/files/redis-start.sh).
pub(crate) async fn durability_problem(url: &str) -> Result<Option<String>, StoreError> {
    let client = ::redis::Client::open(url).map_err(err)?;
    let mut c = client.get_multiplexed_async_connection().await.map_err(|e| StoreError::Unavailable(format!("cannot reach {url}: {e}")))?;
    let mut pipe = ::redis::pipe();
    for p in ["appendonly", "appendfsync", "aof-load-truncated"] {
        pipe.cmd("CONFIG").arg("GET").arg(p);
    }
    let got: Vec<Vec<String>> = pipe.query_async(&mut c).await.map_err(err)?;
    let value = |i: usize| got.get(i).and_then(|v| v.get(1)).cloned().unwrap_or_default();
    let (aof, fsync, truncated) = (value(0), value(1), value(2));
    let mut problems = Vec::new();
    if aof != "yes" || fsync != "always" {
        problems.push(format!(
            "does not keep every acknowledged write (appendonly={aof}, appendfsync={fsync}; need appendonly=yes, appendfsync=always)"
        ));
    }
    if truncated != "no" {
        problems.push(format!(
            "would load an append-only file that a crash cut inside a transaction up to the cut, bringing back half of an \
             unacknowledged commit (aof-load-truncated={truncated}; need aof-load-truncated=no, with a start script that repairs a \
             cut file by `redis-check-aof --fix` before Redis starts, as helm/clearinghouse/files/redis-start.sh does)"
        ));
    }
    Ok((!problems.is_empty()).then(|| format!("redis at {url} {}", problems.join(", and "))))
}

/// Checks every node at start: an unsafe one refuses the start (or, with `allow_volatile`, is logged
/// loudly).
pub(crate) async fn check_durability(nodes: &[String], allow_volatile: bool) -> Result<(), StoreError> {
    for url in nodes {
        let Some(msg) = durability_problem(url).await? else { continue };
        if allow_volatile {
            tracing::error!(
                "!!! {msg}: starting anyway because --redis-allow-volatile was given; a Redis crash can lose acknowledged settlements \
                 or bring back half of one !!!"
            );
        } else {
            return Err(StoreError::Unavailable(format!(
                "{msg}. Refusing to start; configure Redis so, or pass --redis-allow-volatile for a throwaway setup"
            )));
        }
    }
    Ok(())
}

/// The nodes to check: the one Redis, or every node of the cluster that is not failing (masters and
/// replicas: a replica becomes a master at a failover), as `redis://host:port`. Asks the seeds in turn.
pub(crate) async fn discover_nodes(seeds: &[String]) -> Result<(bool, Vec<String>), StoreError> {
    let mut last = StoreError::Unavailable("no --redis-url given".into());
    for seed in seeds {
        match nodes_seen_by(seed).await {
            Ok(found) => return Ok(found),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub(crate) async fn nodes_seen_by(seed: &str) -> Result<(bool, Vec<String>), StoreError> {
    let probe = ::redis::Client::open(seed).map_err(err)?;
    let mut pc = probe
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot reach redis at {seed}: {e}")))?;
    let info: String = ::redis::cmd("INFO").arg("cluster").query_async(&mut pc).await.map_err(err)?;
    if !info.lines().any(|l| l.trim() == "cluster_enabled:1") {
        return Ok((false, vec![seed.to_string()]));
    }
    let nodes: String = ::redis::cmd("CLUSTER").arg("NODES").query_async(&mut pc).await.map_err(err)?;
    let scheme = if seed.starts_with("rediss://") { "rediss" } else { "redis" };
    let found = nodes
        .lines()
        .filter(|l| l.split_whitespace().nth(2).is_some_and(|f| !f.contains("fail") && !f.contains("noaddr") && !f.contains("handshake")))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|a| format!("{scheme}://{}", a.split(['@', ',']).next().unwrap_or(a)))
        .collect();
    Ok((true, found))
}

/// The nodes found unsafe since the last check, with why. While any is, the store refuses writes
/// (UNAVAILABLE, the reason logged): a node restarted or added with an unsafe configuration must not take
/// commits.
#[derive(Default)]
pub(crate) struct DurabilityGate {
    pub(crate) unsafe_nodes: std::sync::Mutex<BTreeMap<String, String>>,
}

impl DurabilityGate {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        let nodes = self.unsafe_nodes.lock().expect("durability gate");
        if nodes.is_empty() {
            return Ok(());
        }
        // The node and its settings are in the service log (logged when found), not in the answer.
        Err(StoreError::Refused(format!(
            "writes are refused while {} Redis node(s) are configured unsafely (see the service log)",
            nodes.len()
        )))
    }
}
