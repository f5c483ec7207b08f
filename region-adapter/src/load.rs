//! Reading rule packs from TOML and checking them. A rule set is built whole or not at all: every
//! problem found is reported with the file, the key and the reason, and nothing half-loaded escapes.
//!
//! A directory holds three kinds of file, told apart by their top table:
//! `[region]` (one pooling region's policy versions), `[catalogue]` (a service location's catalogue),
//! `[province]` (floors and ceilings a province sets for its cities).

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam<T> {
    value: T,
    source: Option<String>,
    assumption: Option<String>,
    /// A value the seed does not give, to be replaced by the region (see `Provenance::Placeholder`).
    placeholder: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvenance {
    source: Option<String>,
    assumption: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegionFile {
    format_version: u32,
    region: RawRegion,
    #[serde(default)]
    policy: Vec<RawPolicy>,
    supervision: Option<RawSupervision>,
}

/// `[supervision]`: thresholds of the claim flags and of the institutions' early-warning list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSupervision {
    same_day_regions: RawParam<u32>,
    frequent_visits: RawParam<u32>,
    frequent_visits_days: RawParam<u32>,
    high_cost_per_visit: RawParam<String>,
    selfpay_share: RawParam<String>,
    pharmacy_cashout: RawParam<String>,
    price_over_cap_factor: RawParam<String>,
    max_line_quantity: RawParam<String>,
    warn_cost_per_visit: RawParam<String>,
    warn_growth: RawParam<String>,
    warn_selfpay_share: RawParam<String>,
    warn_exam_share: RawParam<String>,
    warn_min_claims: RawParam<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    admdvs: String,
    name: String,
    name_en: String,
    province: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: String,
    effective_from: String,
    effective_to: Option<String>,
    validity: RawProvenance,
    /// Copies every term of an earlier version of the same file; only the dates differ.
    same_as: Option<String>,
    in_service: Option<RawGeneral>,
    retired: Option<RawGeneral>,
    retiree: Option<RawRetiree>,
    cross_region: Option<RawCrossRegion>,
    account: Option<RawAccount>,
    pharmacy: Option<RawPharmacy>,
    contributions: Option<RawContributions>,
    #[serde(default)]
    chronic: Vec<RawChronic>,
    chronic_bounds: Option<RawChronicBounds>,
    average_wage_2021: Option<RawParam<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneral {
    deductible: RawParam<String>,
    cap: RawParam<String>,
    ratio: RawParam<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetiree {
    from_next_month: RawParam<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrossRegion {
    filing_required: RawParam<bool>,
    min_level: RawParam<u32>,
    min_level_scope: RawParam<String>,
    unfiled_ratio_cut: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContributions {
    arrears_no_fund_pay: RawParam<bool>,
    no_credit_in_arrears: Option<RawParam<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPharmacy {
    use_prescribing_level: RawParam<bool>,
    level: Option<RawParam<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    in_service_share: RawParam<String>,
    family_mutual_aid: RawParam<bool>,
    pooling_only_has_account: RawParam<bool>,
    excludes_non_medical: RawParam<bool>,
    pharmacy_goods_only: RawParam<bool>,
    mixed_years_pro_rata: Option<RawParam<bool>>,
    retired: Vec<RawRetiredStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetiredStep {
    from: String,
    fixed_monthly: Option<RawParam<String>>,
    share_of_average_pension: Option<RawParam<String>>,
    average_pension_monthly: Option<RawParam<String>>,
    share_of_own_pension: Option<RawParam<String>>,
    keep_previous_year: Option<RawParam<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChronic {
    code: String,
    name: String,
    deductible: RawParam<String>,
    ratio: RawParam<String>,
    cap: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChronicBounds {
    disease_count: RawParam<u32>,
    deductible_max: RawParam<String>,
    ratio_min: RawParam<String>,
    ratio_max: RawParam<String>,
    cap_min: RawParam<String>,
    cap_max: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogueFile {
    format_version: u32,
    catalogue: RawCatalogueHead,
    #[serde(default)]
    item: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogueHead {
    admdvs: String,
    sample: bool,
    provenance: RawProvenance,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    hilist_code: String,
    hilist_name: String,
    list_type: String,
    chrgitm_lv: String,
    selfpay_prop: Option<String>,
    pric_uplmt_amt: Option<String>,
    begndate: String,
    enddate: Option<String>,
    /// "public_health", "fitness" or "wellness": no personal account pays for it.
    account_excluded: Option<String>,
    /// "examination" or "lab" (supervision's examination share).
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvinceFile {
    format_version: u32,
    province: RawProvinceHead,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvinceHead {
    admdvs: String,
    name: String,
    effective_from: String,
    ratio_min: Option<RawParam<String>>,
    deductible_max_share_of_wage: Option<RawParam<String>>,
    cap_share_of_wage: Option<RawParam<String>>,
    cap_share_tolerance: Option<RawParam<String>>,
    retired_not_below_in_service: Option<RawParam<bool>>,
    higher_at_grassroots: Option<RawParam<bool>>,
}

// ---------------------------------------------------------------------------------------------
// Conversion with checks. `Cx` collects errors; converters return `None` after recording one.

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

    fn region(&mut self, f: &str, raw: &RawRegionFile) -> Option<RegionPack> {
        self.format_version(f, raw.format_version)?;
        let admdvs = self.admdvs(f, "region.admdvs", &raw.region.admdvs)?;
        let province = self.admdvs(f, "region.province", &raw.region.province)?;
        if !province.is_province() || province.province_prefix() != admdvs.province_prefix() {
            self.err(f, "region.province", format!("{province} is not the province of {admdvs}"));
        }
        if raw.policy.is_empty() {
            self.err(f, "policy", "a region needs at least one policy version");
            return None;
        }
        self.placeholders.clear();
        let before = self.errors.len();
        let mut versions: Vec<PolicyVersion> = Vec::new();
        for (i, p) in raw.policy.iter().enumerate() {
            let key = format!("policy[{i}]");
            let version = if let Some(base) = &p.same_as {
                if p.in_service.is_some()
                    || p.retired.is_some()
                    || p.cross_region.is_some()
                    || p.account.is_some()
                    || p.pharmacy.is_some()
                    || p.contributions.is_some()
                    || !p.chronic.is_empty()
                {
                    self.err(f, &key, "`same_as` copies all terms; give only id, dates and validity");
                    continue;
                }
                let Some(b) = versions.iter().find(|v| &v.id == base) else {
                    self.err(f, &format!("{key}.same_as"), format!("no earlier policy version with id {base:?}"));
                    continue;
                };
                let mut v = b.clone();
                v.id = p.id.clone();
                v
            } else {
                match self.policy(f, &key, p) {
                    Some(v) => v,
                    None => continue,
                }
            };
            let (Some(from), to) = (
                self.date(f, &format!("{key}.effective_from"), &p.effective_from),
                p.effective_to.as_ref().map(|s| self.date(f, &format!("{key}.effective_to"), s)),
            ) else {
                continue;
            };
            let Some(validity) = self.provenance(f, &format!("{key}.validity"), &p.validity.source, &p.validity.assumption) else {
                continue;
            };
            let to = match to {
                Some(Some(t)) => Some(t),
                Some(None) => continue,
                None => None,
            };
            if to.is_some_and(|t| t < from) {
                self.err(f, &format!("{key}.effective_to"), "ends before it starts");
                continue;
            }
            versions.push(PolicyVersion { effective_from: from, effective_to: to, validity, ..version });
        }
        if self.errors.len() > before {
            return None;
        }
        versions.sort_by_key(|v| v.effective_from);
        for w in 0..versions.len().saturating_sub(1) {
            let (a, b) = (&versions[w], &versions[w + 1]);
            match a.effective_to {
                None => self.err(
                    f,
                    "policy",
                    format!("version {:?} has no end but {:?} starts {} (overlapping policy versions)", a.id, b.id, b.effective_from),
                ),
                Some(end) if end >= b.effective_from => {
                    self.err(f, "policy", format!("versions {:?} and {:?} overlap on {}", a.id, b.id, b.effective_from))
                }
                Some(end) if end.succ_opt() != Some(b.effective_from) => self.err(
                    f,
                    "policy",
                    format!("gap in validity between {:?} (ends {end}) and {:?} (starts {})", a.id, b.id, b.effective_from),
                ),
                _ => {}
            }
        }
        let supervision = match &raw.supervision {
            Some(sv) => self.supervision(f, sv),
            None => Some(SupervisionTerms::defaults()),
        };
        if self.errors.len() > before {
            return None;
        }
        Some(RegionPack {
            supervision: supervision?,
            admdvs,
            name: raw.region.name.as_str().into(),
            name_en: raw.region.name_en.clone(),
            province,
            policies: versions,
            catalogue: Catalogue {
                sample: true,
                provenance: Provenance::Assumption("none".into()),
                items: HashMap::new(),
                order: Vec::new(),
            },
            files: vec![f.to_string()],
            placeholders: std::mem::take(&mut self.placeholders),
        })
    }

    fn policy(&mut self, f: &str, key: &str, p: &RawPolicy) -> Option<PolicyVersion> {
        let missing = |cx: &mut Cx, what: &str| cx.err(f, &format!("{key}.{what}"), "missing table");
        let (Some(ins), Some(ret), Some(retiree), Some(cr), Some(acct)) =
            (&p.in_service, &p.retired, &p.retiree, &p.cross_region, &p.account)
        else {
            for (present, what) in [
                (p.in_service.is_some(), "in_service"),
                (p.retired.is_some(), "retired"),
                (p.retiree.is_some(), "retiree"),
                (p.cross_region.is_some(), "cross_region"),
                (p.account.is_some(), "account"),
            ] {
                if !present {
                    missing(self, what);
                }
            }
            return None;
        };
        let in_service = self.general(f, &format!("{key}.in_service"), ins);
        let retired = self.general(f, &format!("{key}.retired"), ret);
        let retired_from_next_month = self.param(f, &format!("{key}.retiree.from_next_month"), &retiree.from_next_month, |b| Ok(*b));
        let cross_region = self.cross_region(f, &format!("{key}.cross_region"), cr);
        let account = self.account(f, &format!("{key}.account"), acct);
        let pharmacy = match &p.pharmacy {
            Some(ph) => self.pharmacy(f, &format!("{key}.pharmacy"), ph),
            None => {
                missing(self, "pharmacy");
                None
            }
        };
        let contributions = match &p.contributions {
            Some(c) => {
                let no_fund = self.param(f, &format!("{key}.contributions.arrears_no_fund_pay"), &c.arrears_no_fund_pay, |b| Ok(*b));
                let no_credit = match &c.no_credit_in_arrears {
                    Some(r) => self.param(f, &format!("{key}.contributions.no_credit_in_arrears"), r, |b| Ok(*b)),
                    None => Some(Param {
                        value: true,
                        provenance: Provenance::Assumption(
                            "default of this build (no `no_credit_in_arrears` in the pack): the in-service credit is the member's own \
                             contribution, so none is credited for a month not paid"
                                .into(),
                        ),
                    }),
                };
                match (no_fund, no_credit) {
                    (Some(arrears_no_fund_pay), Some(no_credit_in_arrears)) => {
                        Some(ContributionTerms { arrears_no_fund_pay, no_credit_in_arrears })
                    }
                    _ => None,
                }
            }
            None => {
                missing(self, "contributions");
                None
            }
        };
        let mut chronic = Vec::new();
        for (i, d) in p.chronic.iter().enumerate() {
            let k = format!("{key}.chronic[{i}]");
            if d.code.trim().is_empty() || d.code.len() > 20 {
                self.err(f, &format!("{k}.code"), "disease code must be 1 to 20 characters");
            }
            if chronic.iter().any(|c: &ChronicDisease| c.code == d.code) {
                self.err(f, &format!("{k}.code"), format!("duplicate disease code {:?}", d.code));
            }
            let (a, r, c) = (
                self.amount(f, &format!("{k}.deductible"), &d.deductible),
                self.ratio(f, &format!("{k}.ratio"), &d.ratio),
                self.amount(f, &format!("{k}.cap"), &d.cap),
            );
            if let (Some(deductible_fen), Some(ratio_bp), Some(cap_fen)) = (a, r, c) {
                chronic.push(ChronicDisease { code: d.code.clone(), name: d.name.clone(), deductible_fen, ratio_bp, cap_fen });
            }
        }
        let chronic_bounds = p.chronic_bounds.as_ref().and_then(|b| {
            let k = format!("{key}.chronic_bounds");
            Some(ChronicBounds {
                disease_count: self.param(f, &format!("{k}.disease_count"), &b.disease_count, |n| Ok(*n))?,
                deductible_max_fen: self.amount(f, &format!("{k}.deductible_max"), &b.deductible_max)?,
                ratio_min_bp: self.ratio(f, &format!("{k}.ratio_min"), &b.ratio_min)?,
                ratio_max_bp: self.ratio(f, &format!("{k}.ratio_max"), &b.ratio_max)?,
                cap_min_fen: self.amount(f, &format!("{k}.cap_min"), &b.cap_min)?,
                cap_max_fen: self.amount(f, &format!("{k}.cap_max"), &b.cap_max)?,
            })
        });
        if let Some(b) = &chronic_bounds {
            // The seed's bounds on the list (Nanchang §4(二)2) are checked for every listed disease.
            if chronic.len() as u32 > b.disease_count.value {
                self.err(
                    f,
                    &format!("{key}.chronic"),
                    format!("{} diseases listed; the source allows {}", chronic.len(), b.disease_count.value),
                );
            }
            for (i, d) in chronic.iter().enumerate() {
                let k = format!("{key}.chronic[{i}]");
                if d.deductible_fen.value > b.deductible_max_fen.value {
                    self.err(f, &format!("{k}.deductible"), format!("above the list's bound ({})", b.deductible_max_fen.provenance));
                }
                if d.ratio_bp.value < b.ratio_min_bp.value || d.ratio_bp.value > b.ratio_max_bp.value {
                    self.err(f, &format!("{k}.ratio"), format!("outside the list's range ({})", b.ratio_min_bp.provenance));
                }
                if d.cap_fen.value < b.cap_min_fen.value || d.cap_fen.value > b.cap_max_fen.value {
                    self.err(f, &format!("{k}.cap"), format!("outside the list's range ({})", b.cap_min_fen.provenance));
                }
            }
        }
        let average_wage_2021_fen = match &p.average_wage_2021 {
            Some(w) => Some(self.amount(f, &format!("{key}.average_wage_2021"), w)?),
            None => None,
        };
        Some(PolicyVersion {
            id: p.id.clone(),
            effective_from: NaiveDate::MIN,
            effective_to: None,
            validity: Provenance::Assumption("set by caller".into()),
            in_service: in_service?,
            retired: retired?,
            retired_from_next_month: retired_from_next_month?,
            cross_region: cross_region?,
            account: account?,
            pharmacy: pharmacy?,
            contributions: contributions?,
            chronic,
            chronic_bounds,
            average_wage_2021_fen,
        })
    }

    fn cross_region(&mut self, f: &str, key: &str, cr: &RawCrossRegion) -> Option<CrossRegionTerms> {
        let filing_required = self.param(f, &format!("{key}.filing_required"), &cr.filing_required, |b| Ok(*b));
        let min_level = self.param(f, &format!("{key}.min_level"), &cr.min_level, |n| {
            Level::new(*n).ok_or_else(|| format!("unknown level {n}; levels are 1, 2, 3"))
        });
        let min_level_scope = self.param(f, &format!("{key}.min_level_scope"), &cr.min_level_scope, |s| match s.as_str() {
            "cross_province" => Ok(LevelScope::CrossProvince),
            "cross_region" => Ok(LevelScope::CrossRegion),
            other => Err(format!("{other:?} is not cross_province or cross_region")),
        });
        let unfiled_ratio_cut_bp = self.ratio(f, &format!("{key}.unfiled_ratio_cut"), &cr.unfiled_ratio_cut);
        Some(CrossRegionTerms {
            filing_required: filing_required?,
            min_level: min_level?,
            min_level_scope: min_level_scope?,
            unfiled_ratio_cut_bp: unfiled_ratio_cut_bp?,
        })
    }

    fn supervision(&mut self, f: &str, s: &RawSupervision) -> Option<SupervisionTerms> {
        let k = |name: &str| format!("supervision.{name}");
        let at_least = |min: u32| move |v: &u32| if *v >= min { Ok(*v) } else { Err(format!("must be at least {min}")) };
        let positive_amount = |v: &String| match amount_fen(v)? {
            0 => Err("must be more than 0".to_string()),
            fen => Ok(fen),
        };
        let above = |min: Decimal| {
            move |v: &String| match Decimal::from_str_exact(v) {
                Ok(d) if d > min && d.scale() <= 4 => Ok(d),
                _ => Err(format!("{v:?} must be a decimal above {min} with at most 4 decimals")),
            }
        };
        let same_day_regions = self.param(f, &k("same_day_regions"), &s.same_day_regions, at_least(2));
        let frequent_visits = self.param(f, &k("frequent_visits"), &s.frequent_visits, at_least(2));
        let frequent_visits_days = self.param(f, &k("frequent_visits_days"), &s.frequent_visits_days, |v| {
            if (1..=31).contains(v) { Ok(*v) } else { Err("must be 1 to 31 days".into()) }
        });
        let high_cost_per_visit_fen = self.param(f, &k("high_cost_per_visit"), &s.high_cost_per_visit, positive_amount);
        let selfpay_share_bp = self.ratio(f, &k("selfpay_share"), &s.selfpay_share);
        let pharmacy_cashout_fen = self.param(f, &k("pharmacy_cashout"), &s.pharmacy_cashout, positive_amount);
        let price_over_cap_factor = self.param(f, &k("price_over_cap_factor"), &s.price_over_cap_factor, above(Decimal::ONE));
        let max_line_quantity = self.param(f, &k("max_line_quantity"), &s.max_line_quantity, above(Decimal::ZERO));
        let warn_cost_per_visit_fen = self.param(f, &k("warn_cost_per_visit"), &s.warn_cost_per_visit, positive_amount);
        let warn_growth_bp = self.ratio(f, &k("warn_growth"), &s.warn_growth);
        let warn_selfpay_share_bp = self.ratio(f, &k("warn_selfpay_share"), &s.warn_selfpay_share);
        let warn_exam_share_bp = self.ratio(f, &k("warn_exam_share"), &s.warn_exam_share);
        let warn_min_claims = self.param(f, &k("warn_min_claims"), &s.warn_min_claims, at_least(1));
        Some(SupervisionTerms {
            same_day_regions: same_day_regions?,
            frequent_visits: frequent_visits?,
            frequent_visits_days: frequent_visits_days?,
            high_cost_per_visit_fen: high_cost_per_visit_fen?,
            selfpay_share_bp: selfpay_share_bp?,
            pharmacy_cashout_fen: pharmacy_cashout_fen?,
            price_over_cap_factor: price_over_cap_factor?,
            max_line_quantity: max_line_quantity?,
            warn_cost_per_visit_fen: warn_cost_per_visit_fen?,
            warn_growth_bp: warn_growth_bp?,
            warn_selfpay_share_bp: warn_selfpay_share_bp?,
            warn_exam_share_bp: warn_exam_share_bp?,
            warn_min_claims: warn_min_claims?,
        })
    }

    fn pharmacy(&mut self, f: &str, key: &str, p: &RawPharmacy) -> Option<PharmacyTerms> {
        let use_prescribing_level = self.param(f, &format!("{key}.use_prescribing_level"), &p.use_prescribing_level, |b| Ok(*b))?;
        let level = match &p.level {
            Some(l) => Some(self.param(f, &format!("{key}.level"), l, |n| Level::new(*n).ok_or_else(|| "must be 1, 2 or 3".to_string()))?),
            None => None,
        };
        if !use_prescribing_level.value && level.is_none() {
            self.err(f, &format!("{key}.level"), "needed when a fill does not take the prescribing level");
            return None;
        }
        Some(PharmacyTerms { use_prescribing_level, level })
    }

    fn account(&mut self, f: &str, key: &str, a: &RawAccount) -> Option<AccountTerms> {
        let in_service_share_bp = self.ratio(f, &format!("{key}.in_service_share"), &a.in_service_share);
        let family_mutual_aid = self.param(f, &format!("{key}.family_mutual_aid"), &a.family_mutual_aid, |b| Ok(*b));
        let pooling_only_has_account = self.param(f, &format!("{key}.pooling_only_has_account"), &a.pooling_only_has_account, |b| Ok(*b));
        let excludes_non_medical = self.param(f, &format!("{key}.excludes_non_medical"), &a.excludes_non_medical, |b| Ok(*b));
        let pharmacy_goods_only = self.param(f, &format!("{key}.pharmacy_goods_only"), &a.pharmacy_goods_only, |b| Ok(*b));
        let mixed_years_pro_rata =
            a.mixed_years_pro_rata.as_ref().map(|p| self.param(f, &format!("{key}.mixed_years_pro_rata"), p, |b| Ok(*b)));
        let mut retired = Vec::new();
        for (i, s) in a.retired.iter().enumerate() {
            let k = format!("{key}.retired[{i}]");
            let Some(from) = self.date(f, &format!("{k}.from"), &s.from) else {
                continue;
            };
            let given = [
                s.fixed_monthly.is_some(),
                s.share_of_average_pension.is_some(),
                s.share_of_own_pension.is_some(),
                s.keep_previous_year.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                self.err(f, &k, "give exactly one of fixed_monthly, share_of_average_pension (+ average_pension_monthly), share_of_own_pension, keep_previous_year");
                continue;
            }
            let rule = if let Some(p) = &s.fixed_monthly {
                self.amount(f, &format!("{k}.fixed_monthly"), p)
                    .map(|p| Param { value: RetiredCredit::FixedMonthly(p.value), provenance: p.provenance })
            } else if let Some(p) = &s.share_of_average_pension {
                let share = self.ratio(f, &format!("{k}.share_of_average_pension"), p);
                let avg = match &s.average_pension_monthly {
                    Some(a) => self.amount(f, &format!("{k}.average_pension_monthly"), a),
                    None => {
                        self.err(f, &format!("{k}.average_pension_monthly"), "needed with share_of_average_pension");
                        None
                    }
                };
                match (share, avg) {
                    (Some(share), Some(avg)) => Some(Param {
                        value: RetiredCredit::ShareOfAveragePension {
                            share_bp: share.value,
                            average_pension_monthly_fen: avg.value,
                            average_pension: avg.provenance,
                        },
                        provenance: share.provenance,
                    }),
                    _ => None,
                }
            } else if let Some(p) = &s.share_of_own_pension {
                self.ratio(f, &format!("{k}.share_of_own_pension"), p)
                    .map(|p| Param { value: RetiredCredit::ShareOfOwnPension { share_bp: p.value }, provenance: p.provenance })
            } else {
                let p = s.keep_previous_year.as_ref()?;
                self.param(f, &format!("{k}.keep_previous_year"), p, |b| {
                    if *b { Ok(RetiredCredit::KeepPreviousYear) } else { Err("only `true` makes sense here".into()) }
                })
            };
            if let Some(rule) = rule {
                retired.push(RetiredCreditStep { from, rule });
            }
        }
        if retired.is_empty() {
            self.err(f, &format!("{key}.retired"), "needs at least one step");
        }
        if retired.windows(2).any(|w| w[0].from >= w[1].from) {
            self.err(f, &format!("{key}.retired"), "steps must be in increasing date order");
        }
        Some(AccountTerms {
            in_service_share_bp: in_service_share_bp?,
            retired,
            family_mutual_aid: family_mutual_aid?,
            pooling_only_has_account: pooling_only_has_account?,
            excludes_non_medical: excludes_non_medical?,
            pharmacy_goods_only: pharmacy_goods_only?,
            mixed_years_pro_rata: match mixed_years_pro_rata {
                None => None,
                Some(p) => Some(p?),
            },
        })
    }

    fn catalogue(&mut self, f: &str, raw: &RawCatalogueFile) -> Option<(Admdvs, Catalogue)> {
        self.format_version(f, raw.format_version)?;
        let adm = self.admdvs(f, "catalogue.admdvs", &raw.catalogue.admdvs)?;
        let provenance =
            self.provenance(f, "catalogue.provenance", &raw.catalogue.provenance.source, &raw.catalogue.provenance.assumption)?;
        if raw.catalogue.sample && !provenance.is_assumption() {
            self.err(f, "catalogue.provenance", "a sample catalogue must say so as an `assumption`");
        }
        let before = self.errors.len();
        let mut items: HashMap<Box<str>, Vec<CatalogueItem>> = HashMap::new();
        let mut order = Vec::new();
        for (i, it) in raw.item.iter().enumerate() {
            let k = format!("item[{i}]");
            if code_kind(&it.hilist_code).is_none() {
                self.err(
                    f,
                    &format!("{k}.hilist_code"),
                    format!("{:?} is not a national-style code (drug X/Z+11, service 15 digits, consumable C+26 digits)", it.hilist_code),
                );
            }
            if it.hilist_name.trim().is_empty() {
                self.err(f, &format!("{k}.hilist_name"), "empty");
            }
            if !matches!(it.list_type.as_str(), "101" | "102" | "201" | "301") {
                self.err(f, &format!("{k}.list_type"), format!("{:?} is not 101, 102, 201 or 301", it.list_type));
            }
            let class = match it.chrgitm_lv.as_str() {
                "01" => ItemClass::A,
                "02" => ItemClass::B,
                "03" => ItemClass::C,
                other => {
                    self.err(f, &format!("{k}.chrgitm_lv"), format!("{other:?} is not 01 (甲), 02 (乙) or 03 (丙)"));
                    continue;
                }
            };
            let selfpay_prop_bp = match (&it.selfpay_prop, class) {
                (None, ItemClass::B) => {
                    self.err(f, &format!("{k}.selfpay_prop"), "a 乙类 (02) item needs selfpay_prop");
                    continue;
                }
                (Some(_), ItemClass::A | ItemClass::C) => {
                    self.err(f, &format!("{k}.selfpay_prop"), "only 乙类 (02) items have selfpay_prop");
                    continue;
                }
                (Some(s), ItemClass::B) => match ratio_bp(s) {
                    Ok(bp) => Some(bp),
                    Err(e) => {
                        self.err(f, &format!("{k}.selfpay_prop"), e);
                        continue;
                    }
                },
                (None, _) => None,
            };
            let price_cap = match &it.pric_uplmt_amt {
                None => None,
                Some(s) => match Decimal::from_str_exact(s) {
                    Ok(d) if d > Decimal::ZERO && d.scale() <= 6 && yuan_to_fen_exact(d.round_dp(2)).is_some() => Some(d),
                    _ => {
                        self.err(f, &format!("{k}.pric_uplmt_amt"), format!("{s:?} is not a positive price with at most 6 decimals"));
                        continue;
                    }
                },
            };
            let (Some(begin), end) = (
                self.date(f, &format!("{k}.begndate"), &it.begndate),
                it.enddate.as_ref().map(|e| self.date(f, &format!("{k}.enddate"), e)),
            ) else {
                continue;
            };
            let end = match end {
                Some(Some(e)) => Some(e),
                Some(None) => continue,
                None => None,
            };
            let account_excluded = match it.account_excluded.as_deref() {
                None => None,
                Some(x) => match ExcludedUse::parse(x) {
                    Some(e) => Some(e),
                    None => {
                        self.err(f, &format!("{k}.account_excluded"), "must be public_health, fitness or wellness");
                        continue;
                    }
                },
            };
            // Public health, fitness and wellness are outside the fund's scope: an item the fund pays
            // (甲 or 乙) cannot be one, or the fund would pay for what the account may not.
            if account_excluded.is_some() && class != ItemClass::C {
                self.err(
                    f,
                    &format!("{k}.account_excluded"),
                    "only a 丙类 (03) item can be public health, fitness or wellness spending: a 甲 or 乙 item is fund-paid",
                );
                continue;
            }
            let category = match it.category.as_deref() {
                None => None,
                Some(x) => match ItemCategory::parse(x) {
                    Some(c) => Some(c),
                    None => {
                        self.err(f, &format!("{k}.category"), "must be examination or lab");
                        continue;
                    }
                },
            };
            let item = CatalogueItem {
                account_excluded,
                category,
                code: it.hilist_code.as_str().into(),
                name: it.hilist_name.as_str().into(),
                list_type: it.list_type.as_str().into(),
                class,
                selfpay_prop_bp,
                price_cap,
                begin,
                end,
            };
            let versions = items.entry(item.code.clone()).or_default();
            if versions.is_empty() {
                order.push(item.code.clone());
            }
            let overlaps = versions
                .iter()
                .any(|v: &CatalogueItem| v.begin <= item.end.unwrap_or(NaiveDate::MAX) && item.begin <= v.end.unwrap_or(NaiveDate::MAX));
            if overlaps {
                self.err(f, &format!("{k}.hilist_code"), format!("duplicate item code {} with overlapping validity", item.code));
                continue;
            }
            versions.push(item);
            versions.sort_by_key(|v| v.begin);
        }
        if self.errors.len() > before {
            return None;
        }
        Some((adm, Catalogue { sample: raw.catalogue.sample, provenance, items, order }))
    }

    fn province(&mut self, f: &str, raw: &RawProvinceFile) -> Option<ProvincialRule> {
        self.format_version(f, raw.format_version)?;
        let p = &raw.province;
        let admdvs = self.admdvs(f, "province.admdvs", &p.admdvs)?;
        if !admdvs.is_province() {
            self.err(f, "province.admdvs", format!("{admdvs} is not a province code (xx0000)"));
        }
        let effective_from = self.date(f, "province.effective_from", &p.effective_from)?;
        let ratio = |cx: &mut Cx, key: &str, r: &Option<RawParam<String>>| r.as_ref().and_then(|r| cx.ratio(f, key, r));
        Some(ProvincialRule {
            admdvs,
            name: p.name.clone(),
            effective_from,
            ratio_min_bp: ratio(self, "province.ratio_min", &p.ratio_min),
            deductible_max_share_of_wage_bp: ratio(self, "province.deductible_max_share_of_wage", &p.deductible_max_share_of_wage),
            cap_share_of_wage_bp: ratio(self, "province.cap_share_of_wage", &p.cap_share_of_wage),
            cap_share_tolerance_bp: ratio(self, "province.cap_share_tolerance", &p.cap_share_tolerance),
            retired_not_below_in_service: p
                .retired_not_below_in_service
                .as_ref()
                .and_then(|r| self.param(f, "province.retired_not_below_in_service", r, |b| Ok(*b))),
            higher_at_grassroots: p
                .higher_at_grassroots
                .as_ref()
                .and_then(|r| self.param(f, "province.higher_at_grassroots", r, |b| Ok(*b))),
            file: f.to_string(),
        })
    }
}

/// Checks a city's policy versions in force on or after the provincial rule's start against it.
/// A breach refuses the pack with an error citing the provincial document.
fn check_against_province(cx: &mut Cx, f: &str, pack: &RegionPack, rule: &ProvincialRule) {
    if pack.province != rule.admdvs {
        return;
    }
    for (i, v) in pack.policies.iter().enumerate() {
        if v.effective_to.is_some_and(|to| to < rule.effective_from) {
            continue;
        }
        let key = format!("policy[{i}]");
        for (class, terms) in [(MemberClass::InService, &v.in_service), (MemberClass::Retired, &v.retired)] {
            let k = format!("{key}.{}", if class == MemberClass::InService { "in_service" } else { "retired" });
            if let Some(min) = &rule.ratio_min_bp
                && let Some(bad) = terms.ratio_bp.value.iter().find(|r| **r < min.value)
            {
                cx.err(
                    f,
                    &format!("{k}.ratio"),
                    format!(
                        "{} is below {}'s floor of {} ({})",
                        crate::money::fmt_percent(*bad),
                        rule.name,
                        crate::money::fmt_percent(min.value),
                        min.provenance
                    ),
                );
            }
            let wage = v.average_wage_2021_fen.as_ref().map(|w| w.value);
            if let Some(share) = &rule.deductible_max_share_of_wage_bp {
                match wage {
                    None => cx.err(
                        f,
                        &format!("{key}.average_wage_2021"),
                        format!(
                            "{} sets the deductible as a share of the 2021 average wage ({}); the pack must give that wage",
                            rule.name, share.provenance
                        ),
                    ),
                    Some(w) => {
                        let max = crate::money::apply_ratio(w, share.value);
                        if terms.deductible_fen.value > max {
                            cx.err(
                                f,
                                &format!("{k}.deductible"),
                                format!(
                                    "{} is above {}'s ceiling of {} of the 2021 average wage = {} ({})",
                                    crate::money::fmt_yuan(terms.deductible_fen.value),
                                    rule.name,
                                    crate::money::fmt_percent(share.value),
                                    crate::money::fmt_yuan(max),
                                    share.provenance
                                ),
                            );
                        }
                    }
                }
            }
            if let (Some(share), Some(w)) = (&rule.cap_share_of_wage_bp, wage) {
                let tol = rule.cap_share_tolerance_bp.as_ref().map_or(0, |t| t.value);
                let lo = crate::money::apply_ratio(w, share.value.saturating_sub(tol));
                let hi = crate::money::apply_ratio(w, share.value + tol);
                if terms.cap_fen.value < lo || terms.cap_fen.value > hi {
                    cx.err(
                        f,
                        &format!("{k}.cap"),
                        format!(
                            "{} is not about {} of the 2021 average wage ({}–{}) ({})",
                            crate::money::fmt_yuan(terms.cap_fen.value),
                            crate::money::fmt_percent(share.value),
                            crate::money::fmt_yuan(lo),
                            crate::money::fmt_yuan(hi),
                            share.provenance
                        ),
                    );
                }
            }
        }
        if let Some(p) = &rule.higher_at_grassroots
            && p.value
        {
            // Level 1 is the grassroots: its ratio may not be below a higher level's, and the seed asks for
            // it to be raised (适当提高基层医疗机构支付比例): strictly above the top level's.
            for (who, t) in [("in_service", &v.in_service), ("retired", &v.retired)] {
                let r = t.ratio_bp.value;
                if r[0] < r[1] || r[1] < r[2] || r[0] <= r[2] {
                    cx.err(
                        f,
                        &format!("{key}.{who}.ratio"),
                        format!(
                            "the grassroots (level 1) ratio must be above the level-3 ratio and no level's below a higher level's, \
                             as {}'s rule raises it ({})",
                            rule.name, p.provenance
                        ),
                    );
                }
            }
        }
        if let Some(p) = &rule.retired_not_below_in_service
            && p.value
        {
            // 待遇支付适当向退休人员倾斜: retirees' terms no worse anywhere, and better somewhere (equal terms
            // are no tilt).
            let (ret, ins) = (&v.retired, &v.in_service);
            let below = (0..3).any(|l| ret.ratio_bp.value[l] < ins.ratio_bp.value[l])
                || ret.cap_fen.value < ins.cap_fen.value
                || ret.deductible_fen.value > ins.deductible_fen.value;
            let better = (0..3).any(|l| ret.ratio_bp.value[l] > ins.ratio_bp.value[l])
                || ret.cap_fen.value > ins.cap_fen.value
                || ret.deductible_fen.value < ins.deductible_fen.value;
            if below || !better {
                cx.err(
                    f,
                    &format!("{key}.retired"),
                    format!(
                        "retirees' terms must be tilted to them: no ratio, cap or deductible worse than in-service terms and at least one \
                         better, as {}'s rule asks ({})",
                        rule.name, p.provenance
                    ),
                );
            }
        }
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
