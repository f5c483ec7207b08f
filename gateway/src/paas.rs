//! The callers the gateway knows: one `[[paas]]` table per caller in a TOML file (or a Kubernetes
//! Secret mounted as one), each with its token and the role and region it acts as. Tokens are secrets:
//! they are never logged, never printed, and `Debug` hides them.
//!
//! ```toml
//! [[paas]]
//! paasid = "hubei_platform"
//! token_file = "/run/secrets/hubei_platform.token"   # or: token = "…"
//! next_token_file = "/run/secrets/hubei_platform.next" # optional successor (or: next_token = "…")
//! role = "platform"                                   # platform | institution
//! admdvs = "420000"
//!
//! [[paas]]
//! paasid = "suizhou_central_his"
//! token_file = "/run/secrets/suizhou_central_his.token"
//! role = "institution"                                # acts only as the institutions it names
//! admdvs = "421300"
//! fixmedins_code = "H42130200746"                     # or a list: ["H42130200746", "P42130200001"]
//! ```
//!
//! A `platform` (a provincial or city platform) acts for any listed institution of its region; an
//! `institution` (a hospital's HIS, a pharmacy's system) only as its own: an envelope naming another
//! `fixmedins_code` is refused before anything is forwarded (issue 29).
//!
//! Credentials can be withdrawn without a restart (issue 33): the file (and every token file it names)
//! is read again every `CREDENTIAL_RELOAD_POLL` and on SIGHUP (`watch`). A paasid removed from it is
//! refused from then on; a token with a successor accepts both, so a HIS rotates without downtime
//! (add `next_token`, let the HIS switch, then make it the `token` and drop the old one). A file that
//! fails validation is refused whole and the table in force stays, with one error line naming the
//! problem. Every reload that changes something writes an audit line (paasids added, removed, rotated;
//! never a token).

use clearing_edge::authz::{Role, valid_paasid};
use region_adapter::Admdvs;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Tokens shorter than this are refused at load: a signature is only as strong as its secret.
pub const MIN_TOKEN_LEN: usize = 16;
pub const MAX_TOKEN_LEN: usize = 512;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    paas: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    paasid: String,
    token: Option<String>,
    token_file: Option<String>,
    /// The successor of `token` during a rotation: both are accepted.
    next_token: Option<String>,
    next_token_file: Option<String>,
    role: String,
    admdvs: String,
    /// Role `institution`: the institution code, or a list of them.
    fixmedins_code: Option<Codes>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Codes {
    One(String),
    Many(Vec<String>),
}

/// One known caller.
#[derive(PartialEq, Eq)]
pub struct Paas {
    pub paasid: String,
    /// The tokens a signature may be made with: the token, and its successor during a rotation.
    pub tokens: Vec<Vec<u8>>,
    pub role: Role,
    pub admdvs: Admdvs,
    /// Role `institution`: the institutions it may act as (empty for a platform).
    pub institutions: Vec<String>,
}

impl Paas {
    /// Whether this caller may act as institution `code`: a platform for any (the list decides in
    /// clearing), an institution only as its own.
    pub fn acts_as(&self, code: &str) -> bool {
        self.role != Role::Institution || self.institutions.iter().any(|c| c == code)
    }

    /// The identity forwarded to clearing: `<role>:<admdvs>:<paasid>[:<codes>]`.
    pub fn forwarded(&self) -> String {
        match self.role {
            Role::Institution => format!("{}:{}:{}:{}", self.role.name(), self.admdvs, self.paasid, self.institutions.join(",")),
            _ => format!("{}:{}:{}", self.role.name(), self.admdvs, self.paasid),
        }
    }
}

impl std::fmt::Debug for Paas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paas")
            .field("paasid", &self.paasid)
            .field("role", &self.role)
            .field("admdvs", &self.admdvs)
            .field("institutions", &self.institutions)
            .finish_non_exhaustive()
    }
}

/// The table, by paasid.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PaasTable {
    by_id: HashMap<String, Arc<Paas>>,
}

/// The table in force, swapped whole by a reload.
pub type SharedTable = Arc<RwLock<Arc<PaasTable>>>;

impl PaasTable {
    pub fn get(&self, paasid: &str) -> Option<&Arc<Paas>> {
        self.by_id.get(paasid)
    }

    /// Callers with a successor token (a rotation in progress).
    pub fn rotating(&self) -> usize {
        self.by_id.values().filter(|p| p.tokens.len() > 1).count()
    }

    /// What changed from `self` to `new`: paasids added, removed, rotated (tokens changed) and changed
    /// (role, region or institutions), each sorted. Never a token.
    pub fn changes<'a>(&'a self, new: &'a PaasTable) -> [Vec<&'a str>; 4] {
        let mut out: [Vec<&'a str>; 4] = Default::default();
        for (id, p) in &new.by_id {
            match self.by_id.get(id) {
                None => out[0].push(id),
                Some(old) if old.tokens != p.tokens => out[2].push(id),
                Some(old) if (old.role, old.admdvs, &old.institutions) != (p.role, p.admdvs, &p.institutions) => out[3].push(id),
                Some(_) => {}
            }
        }
        out[1] = self.by_id.keys().filter(|id| !new.by_id.contains_key(*id)).map(String::as_str).collect();
        for v in &mut out {
            v.sort_unstable();
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Reads and validates the file; every problem is reported with the entry's position and field
    /// (never a token). Relative `token_file` paths are relative to the file.
    pub fn load(path: &Path) -> anyhow::Result<PaasTable> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("paas file {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&path.display().to_string(), &text, base)
    }

    pub fn parse(name: &str, text: &str, base: &Path) -> anyhow::Result<PaasTable> {
        // The parser's message and position only: its full text quotes the offending line, which may
        // hold a token.
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            anyhow::anyhow!("paas file {name}{}: {}", line.map(|l| format!(", line {l}")).unwrap_or_default(), e.message())
        })?;
        let mut problems = Vec::new();
        let mut by_id = HashMap::new();
        for (i, e) in file.paas.into_iter().enumerate() {
            let at = |field: &str, why: String| format!("{name}: paas[{i}].{field}: {why}");
            if !valid_paasid(&e.paasid) {
                problems.push(at("paasid", "1–64 characters [A-Za-z0-9_.-]".into()));
            }
            let mut read_token = |inline: &Option<String>, file: &Option<String>, field: &str, required: bool| -> Option<Vec<u8>> {
                let t = match (inline, file) {
                    (Some(t), None) => t.trim().as_bytes().to_vec(),
                    (None, Some(f)) => {
                        let p = base.join(f);
                        match std::fs::read_to_string(&p) {
                            Ok(t) => t.trim().as_bytes().to_vec(),
                            Err(err) => {
                                problems.push(at(&format!("{field}_file"), format!("{}: {err}", p.display())));
                                return None;
                            }
                        }
                    }
                    (None, None) if !required => return None,
                    _ => {
                        problems.push(at(field, format!("give exactly one of {field} and {field}_file")));
                        return None;
                    }
                };
                if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&t.len()) {
                    problems.push(at(field, format!("must be {MIN_TOKEN_LEN}–{MAX_TOKEN_LEN} bytes")));
                    return None;
                }
                Some(t)
            };
            let token = read_token(&e.token, &e.token_file, "token", true);
            let next = read_token(&e.next_token, &e.next_token_file, "next_token", false);
            if let (Some(t), Some(n)) = (&token, &next)
                && t == n
            {
                problems.push(at("next_token", "is the same as token: a successor must differ".into()));
            }
            // A token is a shared secret: it may act for a region's platform or for named institutions,
            // never as the national or operator role (those act only with their own certificates).
            let role = Role::parse(&e.role).filter(|r| matches!(r, Role::Institution | Role::Platform));
            if role.is_none() {
                problems.push(at(
                    "role",
                    format!("{:?}: must be platform or institution (national and operator act only with their own certificates)", e.role),
                ));
            }
            let admdvs = Admdvs::parse(&e.admdvs);
            if admdvs.is_none() {
                problems.push(at("admdvs", format!("{:?} is not a 6-digit division code", e.admdvs)));
            }
            let codes = match e.fixmedins_code {
                None => Vec::new(),
                Some(Codes::One(c)) => vec![c],
                Some(Codes::Many(l)) => l,
            };
            let mut institutions = Vec::new();
            match (role, admdvs) {
                (Some(Role::Institution), _) if codes.is_empty() => {
                    problems.push(at("fixmedins_code", "role institution names its institution code (or a list of them)".into()))
                }
                (Some(Role::Institution), Some(region)) => match clearing_edge::authz::parse_institutions(region, &codes.join(",")) {
                    Ok(list) => institutions = list,
                    Err(why) => problems.push(at("fixmedins_code", why)),
                },
                (Some(_), _) if !codes.is_empty() => problems.push(at(
                    "fixmedins_code",
                    "only role institution names institutions; a platform acts for its region's listed ones".into(),
                )),
                _ => {}
            }
            if by_id.contains_key(&e.paasid) {
                problems.push(at("paasid", format!("{} is listed twice", e.paasid)));
            }
            if let (Some(token), Some(role), Some(admdvs)) = (token, role, admdvs) {
                let tokens = std::iter::once(token).chain(next).collect();
                by_id.insert(e.paasid.clone(), Arc::new(Paas { paasid: e.paasid, tokens, role, admdvs, institutions }));
            }
        }
        if by_id.is_empty() && problems.is_empty() {
            problems.push(format!("{name}: no [[paas]] callers"));
        }
        if !problems.is_empty() {
            anyhow::bail!("paas file refused:\n  {}", problems.join("\n  "));
        }
        Ok(PaasTable { by_id })
    }
}

/// Loads the table and watches the file from now on (see the module doc).
pub fn load_and_watch(path: &Path) -> anyhow::Result<SharedTable> {
    let table = PaasTable::load(path)?;
    note_in_force(&table);
    let shared: SharedTable = Arc::new(RwLock::new(Arc::new(table)));
    let (watched, path) = (shared.clone(), path.to_path_buf());
    let mut last_error: Option<String> = None;
    clearing_edge::reload::every_tick_or_hangup(clearing_edge::limits::CREDENTIAL_RELOAD_POLL, move || match PaasTable::load(&path) {
        Ok(new) => {
            last_error = None;
            let old = watched.read().expect("paas lock").clone();
            if *old == new {
                return;
            }
            let [added, removed, rotated, changed] = old.changes(&new);
            tracing::info!(
                target: "audit",
                file = %path.display(),
                callers = new.len(),
                ?added,
                ?removed,
                ?rotated,
                ?changed,
                "paas file reloaded"
            );
            note_in_force(&new);
            *watched.write().expect("paas lock") = Arc::new(new);
        }
        Err(e) => {
            let msg = format!("{e:#}");
            if last_error.as_deref() != Some(msg.as_str()) {
                tracing::error!(error = %msg, "paas file refused; the callers in force stay");
                last_error = Some(msg);
            }
        }
    });
    Ok(shared)
}

fn note_in_force(t: &PaasTable) {
    clearing_edge::rpc_metrics::credentials_in_force("paas", t.len());
    clearing_edge::rpc_metrics::credentials_in_force("paas_successor_tokens", t.rotating());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_loads_and_every_problem_is_named_without_the_token() {
        let good = "[[paas]]\npaasid = \"his_1\"\ntoken = \"0123456789abcdef0123\"\nrole = \"institution\"\nadmdvs = \"421300\"\nfixmedins_code = \"H42130200746\"\n";
        let t = PaasTable::parse("p.toml", good, Path::new(".")).unwrap();
        assert_eq!(t.get("his_1").unwrap().role, Role::Institution);
        assert_eq!(t.get("his_1").unwrap().forwarded(), "institution:421300:his_1:H42130200746");
        assert!(t.get("his_1").unwrap().acts_as("H42130200746") && !t.get("his_1").unwrap().acts_as("H42130200747"));
        assert_eq!(t.get("his_1").unwrap().tokens.len(), 1);
        assert!(!format!("{:?}", t).contains("0123456789abcdef"));
        let bad = "[[paas]]\npaasid = \"a b\"\ntoken = \"short-secret\"\nrole = \"gateway\"\nadmdvs = \"4213\"\n\
                   [[paas]]\npaasid = \"x\"\nrole = \"platform\"\nadmdvs = \"421300\"\n";
        let e = PaasTable::parse("p.toml", bad, Path::new(".")).unwrap_err().to_string();
        for want in ["paas[0].paasid", "paas[0].token", "paas[0].role", "paas[0].admdvs", "paas[1].token"] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
        // A token carries only the institution and platform roles.
        for role in ["national", "operator", "mdtrt", "insured"] {
            let e = PaasTable::parse("p.toml", &good.replace("\"institution\"", &format!("\"{role}\"")), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.contains("paas[0].role") && e.contains("their own certificates"), "{e}");
        }
        // An institution names codes of its own region; a platform names none.
        for (text, want) in [
            (good.replace("fixmedins_code = \"H42130200746\"\n", ""), "paas[0].fixmedins_code"),
            (good.replace("H42130200746", "H36010000001"), "not in region 421300"),
            (good.replace("\"H42130200746\"", "[\"H42130200746\", \"H4213\"]"), "not an institution code"),
            (good.replace("\"institution\"", "\"platform\""), "only role institution"),
        ] {
            let e = PaasTable::parse("p.toml", &text, Path::new(".")).unwrap_err().to_string();
            assert!(e.contains(want), "{want} missing in {e}");
        }
        let two = good.replace("\"H42130200746\"", "[\"H42130200746\", \"P42130200001\"]");
        let t3 = PaasTable::parse("p.toml", &two, Path::new(".")).unwrap();
        assert_eq!(t3.get("his_1").unwrap().forwarded(), "institution:421300:his_1:H42130200746,P42130200001");
        assert_eq!(t.changes(&t3), [vec![], vec![], vec![], vec!["his_1"]]);
        assert!(!e.contains("short-secret"), "{e}");
        // A syntax error or a misspelt key on a token's line names the line, never the token.
        for broken in
            ["[[paas]]\npaasid = \"his_1\"\nnext-token = \"0123456789abcdef0123\"\n", "[[paas]]\ntoken = \"0123456789abcdef0123\n"]
        {
            let e = PaasTable::parse("p.toml", broken, Path::new(".")).unwrap_err().to_string();
            assert!(!e.contains("0123456789abcdef") && e.contains("line"), "{e}");
        }
        // A successor token: both in force; the same token twice is refused.
        let rotating = format!("{good}next_token = \"fedcba9876543210fedc\"\n");
        let t2 = PaasTable::parse("p.toml", &rotating, Path::new(".")).unwrap();
        assert_eq!(t2.get("his_1").unwrap().tokens.len(), 2);
        assert_eq!(t.changes(&t2), [vec![], vec![], vec!["his_1"], vec![]]);
        let same = format!("{good}next_token = \"0123456789abcdef0123\"\n");
        assert!(PaasTable::parse("p.toml", &same, Path::new(".")).unwrap_err().to_string().contains("paas[0].next_token"));
    }
}
