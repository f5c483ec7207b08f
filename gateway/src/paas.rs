//! The callers the gateway knows: one `[[paas]]` table per caller in a TOML file (or a Kubernetes
//! Secret mounted as one), each with its token and the role and region it acts as. Tokens are secrets:
//! they are never logged, never printed, and `Debug` hides them.
//!
//! ```toml
//! [[paas]]
//! paasid = "hubei_platform"
//! token_file = "/run/secrets/hubei_platform.token"   # or: token = "…"
//! role = "platform"                                   # mdtrt | insured | platform | national | operator
//! admdvs = "420000"
//! ```

use clearing_edge::authz::{Role, valid_paasid};
use region_adapter::Admdvs;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

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
    role: String,
    admdvs: String,
}

/// One known caller.
pub struct Paas {
    pub paasid: String,
    pub token: Vec<u8>,
    pub role: Role,
    pub admdvs: Admdvs,
}

impl std::fmt::Debug for Paas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paas").field("paasid", &self.paasid).field("role", &self.role).field("admdvs", &self.admdvs).finish_non_exhaustive()
    }
}

/// The table, by paasid.
#[derive(Debug, Default)]
pub struct PaasTable {
    by_id: HashMap<String, Paas>,
}

impl PaasTable {
    pub fn get(&self, paasid: &str) -> Option<&Paas> {
        self.by_id.get(paasid)
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
        let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("paas file {name}: {e}"))?;
        let mut problems = Vec::new();
        let mut by_id = HashMap::new();
        for (i, e) in file.paas.into_iter().enumerate() {
            let at = |field: &str, why: String| format!("{name}: paas[{i}].{field}: {why}");
            if !valid_paasid(&e.paasid) {
                problems.push(at("paasid", "1–64 characters [A-Za-z0-9_.-]".into()));
            }
            let token = match (&e.token, &e.token_file) {
                (Some(t), None) => Some(t.trim().as_bytes().to_vec()),
                (None, Some(f)) => {
                    let p = base.join(f);
                    match std::fs::read_to_string(&p) {
                        Ok(t) => Some(t.trim().as_bytes().to_vec()),
                        Err(err) => {
                            problems.push(at("token_file", format!("{}: {err}", p.display())));
                            None
                        }
                    }
                }
                _ => {
                    problems.push(at("token", "give exactly one of token and token_file".into()));
                    None
                }
            };
            if let Some(t) = &token
                && !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&t.len())
            {
                problems.push(at("token", format!("must be {MIN_TOKEN_LEN}–{MAX_TOKEN_LEN} bytes")));
            }
            let role = Role::parse(&e.role).filter(|r| !matches!(r, Role::Gateway | Role::Clearing));
            if role.is_none() {
                problems.push(at("role", format!("{:?}: must be mdtrt, insured, platform, national or operator", e.role)));
            }
            let admdvs = Admdvs::parse(&e.admdvs);
            if admdvs.is_none() {
                problems.push(at("admdvs", format!("{:?} is not a 6-digit division code", e.admdvs)));
            }
            if by_id.contains_key(&e.paasid) {
                problems.push(at("paasid", format!("{} is listed twice", e.paasid)));
            }
            if let (Some(token), Some(role), Some(admdvs)) = (token, role, admdvs) {
                by_id.insert(e.paasid.clone(), Paas { paasid: e.paasid, token, role, admdvs });
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("paas file refused:\n  {}", problems.join("\n  "));
        }
        Ok(PaasTable { by_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_loads_and_every_problem_is_named_without_the_token() {
        let good = "[[paas]]\npaasid = \"his_1\"\ntoken = \"0123456789abcdef0123\"\nrole = \"mdtrt\"\nadmdvs = \"421300\"\n";
        let t = PaasTable::parse("p.toml", good, Path::new(".")).unwrap();
        assert_eq!(t.get("his_1").unwrap().role, Role::Mdtrt);
        assert!(!format!("{:?}", t).contains("0123456789abcdef"));
        let bad = "[[paas]]\npaasid = \"a b\"\ntoken = \"short-secret\"\nrole = \"gateway\"\nadmdvs = \"4213\"\n\
                   [[paas]]\npaasid = \"x\"\nrole = \"mdtrt\"\nadmdvs = \"421300\"\n";
        let e = PaasTable::parse("p.toml", bad, Path::new(".")).unwrap_err().to_string();
        for want in ["paas[0].paasid", "paas[0].token", "paas[0].role", "paas[0].admdvs", "paas[1].token"] {
            assert!(e.contains(want), "{want} missing in {e}");
        }
        assert!(!e.contains("short-secret"), "{e}");
    }
}
