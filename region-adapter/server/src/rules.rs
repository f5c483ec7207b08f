//! Where the rule packs come from: a directory given by the operator, or the packs bundled in the
//! binary. Both binaries (`clearing`, `region-adapter`) load them this way.

pub use region_adapter::RuleSet;
use std::path::Path;

/// The rule packs of a directory, or the bundled ones.
pub fn load_rules(dir: Option<&Path>) -> anyhow::Result<region_adapter::RuleSet> {
    let rules = match dir {
        Some(d) => region_adapter::RuleSet::load_dir(d)?,
        None => region_adapter::bundled::rules()?,
    };
    // Values the seeds do not give, in force until the region replaces them: said at every (re)load.
    for (pack, p) in rules.placeholders() {
        tracing::warn!(
            region = %pack.admdvs,
            name = %pack.name_en,
            key = %p.key,
            value = %p.value,
            reason = %p.reason,
            "placeholder in force: the seed does not give this value; replace it with the region's own figure"
        );
    }
    Ok(rules)
}
