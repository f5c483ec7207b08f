//! The rule packs shipped in the binary (the files of `region-adapter/rules/`), so that
//! `clearing serve` works with no files beside it. A directory given by flag or config replaces them.
//! A test checks this list matches the directory, so a new pack cannot be forgotten here.

use crate::load::LoadErrors;
use crate::model::RuleSet;

/// `(file name, contents)` of every bundled rule file.
pub const FILES: &[(&str, &str)] = &[
    ("140000-shanxi.province.toml", include_str!("../rules/140000-shanxi.province.toml")),
    ("140100-taiyuan.catalogue.toml", include_str!("../rules/140100-taiyuan.catalogue.toml")),
    ("140100-taiyuan.toml", include_str!("../rules/140100-taiyuan.toml")),
    ("150500-tongliao.catalogue.toml", include_str!("../rules/150500-tongliao.catalogue.toml")),
    ("150500-tongliao.toml", include_str!("../rules/150500-tongliao.toml")),
    ("320000-jiangsu.province.toml", include_str!("../rules/320000-jiangsu.province.toml")),
    ("320100-nanjing.catalogue.toml", include_str!("../rules/320100-nanjing.catalogue.toml")),
    ("320100-nanjing.toml", include_str!("../rules/320100-nanjing.toml")),
    ("360100-nanchang.catalogue.toml", include_str!("../rules/360100-nanchang.catalogue.toml")),
    ("360100-nanchang.toml", include_str!("../rules/360100-nanchang.toml")),
    ("421300-suizhou.catalogue.toml", include_str!("../rules/421300-suizhou.catalogue.toml")),
    ("421300-suizhou.toml", include_str!("../rules/421300-suizhou.toml")),
];

/// The bundled rule set. The files are checked by the test suite, so this cannot fail in a release.
pub fn rules() -> Result<RuleSet, LoadErrors> {
    let files: Vec<(String, String)> = FILES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    RuleSet::load_texts(&files)
}
