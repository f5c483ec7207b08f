//! Where the rule packs come from: a directory given by the operator, or the packs bundled in the
//! binary. Both binaries (`clearing`, `region-adapter`) load them this way.

pub use region_adapter::RuleSet;
use std::path::Path;

/// The rule packs of a directory, or the bundled ones.
pub fn load_rules(dir: Option<&Path>) -> anyhow::Result<region_adapter::RuleSet> {
    Ok(match dir {
        Some(d) => region_adapter::RuleSet::load_dir(d)?,
        None => region_adapter::bundled::rules()?,
    })
}
