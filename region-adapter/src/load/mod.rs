//! Reading rule packs from TOML and checking them. A rule set is built whole or not at all: every
//! problem found is reported with the file, the key and the reason, and nothing half-loaded escapes.
//!
//! A directory holds three kinds of file, told apart by their top table:
//! `[region]` (one pooling region's policy versions), `[catalogue]` (a service location's catalogue),
//! `[province]` (floors and ceilings a province sets for its cities).

mod catalogue;
mod province;
mod raw;
mod region;

use province::check_against_province;
use raw::*;

use crate::codes::{Admdvs, Level, code_kind};
use crate::model::*;
use crate::money::{MAX_AMOUNT_FEN, RatioBp, ratio_to_bp, yuan_to_fen_exact};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The rule-pack format this code reads.
pub const FORMAT_VERSION: u32 = 1;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.reason)
    }
}

/// Every problem found while loading a rule set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rule packs refused ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl RuleSet {
    /// Loads every `*.toml` file of `dir` (not recursive).
    pub fn load_dir(dir: &Path) -> Result<RuleSet, LoadErrors> {
        let read = std::fs::read_dir(dir).map_err(|e| one(dir.display().to_string(), "", format!("cannot read directory: {e}")))?;
        let mut files = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| one(dir.display().to_string(), "", e.to_string()))?;
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| one(path.display().to_string(), "", format!("cannot read: {e}")))?;
                files.push((path.file_name().unwrap_or_default().to_string_lossy().into_owned(), text));
            }
        }
        files.sort();
        RuleSet::load_texts(&files)
    }

    /// Loads rule packs from `(file name, text)` pairs.
    pub fn load_texts(files: &[(String, String)]) -> Result<RuleSet, LoadErrors> {
        let mut cx = Cx::default();
        let mut regions: Vec<(String, RawRegionFile)> = Vec::new();
        let mut catalogues: Vec<(String, RawCatalogueFile)> = Vec::new();
        let mut provinces = Vec::new();
        for (name, text) in files {
            let table: toml::Table = match toml::from_str(text) {
                Ok(t) => t,
                Err(e) => {
                    cx.err(name, "", format!("not valid TOML: {}", e.message()));
                    continue;
                }
            };
            let kind = ["region", "catalogue", "province"].into_iter().find(|k| table.contains_key(*k));
            match kind {
                Some("region") => {
                    if let Some(r) = cx.parse(name, text) {
                        regions.push((name.clone(), r));
                    }
                }
                Some("catalogue") => {
                    if let Some(c) = cx.parse(name, text) {
                        catalogues.push((name.clone(), c));
                    }
                }
                Some("province") => {
                    if let Some(p) = cx.parse::<RawProvinceFile>(name, text) {
                        provinces.push((name.clone(), p));
                    }
                }
                _ => cx.err(name, "", "expected a [region], [catalogue] or [province] table"),
            }
        }

        let provinces: Vec<ProvincialRule> = provinces.iter().filter_map(|(f, p)| cx.province(f, p)).collect();
        let mut cats: HashMap<Admdvs, (String, Catalogue)> = HashMap::new();
        for (f, c) in &catalogues {
            if let Some((adm, cat)) = cx.catalogue(f, c) {
                if let Some((other, _)) = cats.get(&adm) {
                    cx.err(f, "catalogue.admdvs", format!("{adm} already has a catalogue in {other}"));
                } else {
                    cats.insert(adm, (f.clone(), cat));
                }
            }
        }
        let mut out = BTreeMap::new();
        for (f, r) in &regions {
            let Some(mut pack) = cx.region(f, r) else {
                continue;
            };
            if out.contains_key(&pack.admdvs) {
                cx.err(f, "region.admdvs", format!("{} is defined twice", pack.admdvs));
                continue;
            }
            match cats.remove(&pack.admdvs) {
                Some((cf, cat)) => {
                    pack.files.push(cf);
                    pack.catalogue = cat;
                }
                None => cx.err(f, "region.admdvs", format!("no catalogue file with admdvs = \"{}\"", pack.admdvs)),
            }
            for p in &provinces {
                check_against_province(&mut cx, f, &pack, p);
            }
            out.insert(pack.admdvs, pack);
        }
        for (adm, (cf, _)) in cats {
            cx.err(&cf, "catalogue.admdvs", format!("no region file for {adm}"));
        }
        if cx.errors.is_empty() { Ok(RuleSet { regions: out, provinces }) } else { Err(LoadErrors(cx.errors)) }
    }
}

fn one(file: String, key: &str, reason: String) -> LoadErrors {
    LoadErrors(vec![LoadError { file, key: key.into(), reason }])
}

// ---------------------------------------------------------------------------------------------
// Raw file shapes. Amounts and ratios are strings so that no float ever touches them.

#[derive(Default)]
struct Cx {
    errors: Vec<LoadError>,
    /// Placeholders met while reading the current region file.
    placeholders: Vec<Placeholder>,
}

impl Cx {
    fn err(&mut self, file: &str, key: &str, reason: impl Into<String>) {
        self.errors.push(LoadError { file: file.into(), key: key.into(), reason: reason.into() });
    }

    fn parse<T: for<'de> Deserialize<'de>>(&mut self, file: &str, text: &str) -> Option<T> {
        match toml::from_str::<T>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                let line = e.span().map(|s| text[..s.start].lines().count()).unwrap_or(0);
                self.err(file, &format!("line {line}"), e.message().to_string());
                None
            }
        }
    }

    fn format_version(&mut self, file: &str, v: u32) -> Option<()> {
        if v == FORMAT_VERSION {
            Some(())
        } else {
            self.err(file, "format_version", format!("is {v}; this build reads {FORMAT_VERSION}"));
            None
        }
    }

    fn provenance(&mut self, file: &str, key: &str, source: &Option<String>, assumption: &Option<String>) -> Option<Provenance> {
        match (source, assumption) {
            (Some(s), None) => {
                // A source names a seed document and a place in it: `003_a9d74b92acd07a75.txt art. 8`.
                let (doc, place) = s.split_once(' ').unwrap_or((s.as_str(), ""));
                let well_formed = doc.len() == 24
                    && doc.ends_with(".txt")
                    && doc.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && doc.as_bytes()[3] == b'_'
                    && doc[4..20].bytes().all(|b| b.is_ascii_hexdigit());
                if !well_formed || place.trim().is_empty() {
                    self.err(
                        file,
                        key,
                        format!("source {s:?} must be \"<seed file> <article>\", e.g. \"003_a9d74b92acd07a75.txt art. 8\""),
                    );
                    return None;
                }
                Some(Provenance::Source { file: doc.into(), place: place.trim().into() })
            }
            (None, Some(a)) if !a.trim().is_empty() => Some(Provenance::Assumption(a.trim().into())),
            (Some(_), Some(_)) => {
                self.err(file, key, "give either `source` or `assumption`, not both");
                None
            }
            _ => {
                self.err(file, key, "every parameter needs a `source` (seed file + article) or an `assumption` with a reason");
                None
            }
        }
    }

    fn param<T: std::fmt::Debug, U>(
        &mut self,
        file: &str,
        key: &str,
        raw: &RawParam<T>,
        conv: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<Param<U>> {
        let provenance = match (&raw.placeholder, &raw.source, &raw.assumption) {
            (Some(why), None, None) if !why.trim().is_empty() => {
                let reason: std::sync::Arc<str> = why.trim().into();
                let value = format!("{:?}", raw.value).replace('"', "");
                self.placeholders.push(Placeholder { key: key.to_string(), value, reason: reason.clone() });
                Some(Provenance::Placeholder(reason))
            }
            (Some(_), _, _) => {
                self.err(file, key, "a `placeholder` (with its reason) stands alone: no `source` or `assumption` beside it");
                None
            }
            (None, source, assumption) => self.provenance(file, key, source, assumption),
        };
        let value = match conv(&raw.value) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.err(file, key, reason);
                None
            }
        };
        Some(Param { value: value?, provenance: provenance? })
    }

    fn amount(&mut self, file: &str, key: &str, raw: &RawParam<String>) -> Option<Param<i64>> {
        self.param(file, key, raw, |s| amount_fen(s))
    }

    fn ratio(&mut self, file: &str, key: &str, raw: &RawParam<String>) -> Option<Param<RatioBp>> {
        self.param(file, key, raw, |s| ratio_bp(s))
    }

    fn date(&mut self, file: &str, key: &str, s: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                self.err(file, key, format!("{s:?} is not a date YYYY-MM-DD"));
                None
            }
        }
    }

    fn admdvs(&mut self, file: &str, key: &str, s: &str) -> Option<Admdvs> {
        let a = Admdvs::parse(s);
        if a.is_none() {
            self.err(file, key, format!("{s:?} is not a 6-digit division code"));
        }
        a
    }

    fn general(&mut self, file: &str, key: &str, raw: &RawGeneral) -> Option<GeneralTerms> {
        let deductible_fen = self.amount(file, &format!("{key}.deductible"), &raw.deductible);
        let cap_fen = self.amount(file, &format!("{key}.cap"), &raw.cap);
        let ratio_bp = self.param(file, &format!("{key}.ratio"), &raw.ratio, |v| {
            if v.len() != 3 {
                return Err(format!("needs one ratio per institution level 1, 2, 3; got {} (unknown levels)", v.len()));
            }
            let mut out = [0; 3];
            for (i, s) in v.iter().enumerate() {
                out[i] = ratio_bp(s)?;
            }
            Ok(out)
        });
        Some(GeneralTerms { deductible_fen: deductible_fen?, cap_fen: cap_fen?, ratio_bp: ratio_bp? })
    }
}

fn amount_fen(s: &str) -> Result<i64, String> {
    let d = Decimal::from_str(s).map_err(|_| format!("{s:?} is not a decimal amount (write amounts as strings, e.g. \"500.00\")"))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("{s} is negative"));
    }
    yuan_to_fen_exact(d).ok_or_else(|| format!("{s} is not a whole number of fen within {}", crate::money::fmt_yuan(MAX_AMOUNT_FEN)))
}

fn ratio_bp(s: &str) -> Result<RatioBp, String> {
    let d = Decimal::from_str(s).map_err(|_| format!("{s:?} is not a decimal ratio (write ratios as strings, e.g. \"0.80\")"))?;
    ratio_to_bp(d).ok_or_else(|| format!("ratio {s} is outside 0–1 or finer than 0.0001"))
}
