//! The designated institutions of each service location (定点医药机构): code, name, hospital or
//! pharmacy, level. A HIS calling through the national gateway does not send its own hospital level;
//! a claim without `hosp_lv` takes it from here.
//!
//! Two layers: the list `clearing` starts with (the bundled sample, or `--institutions FILE` in the same
//! format, loaded and validated like the rule packs: every error names the entry and field), and the
//! entries a region's platform upserts (`Catalogue.UpsertInstitution`), kept in the store so every
//! replica sees them and they survive a restart. An upserted entry wins over the list's.

use crate::limits::{MAX_INSTITUTION_NAME_LEN, MAX_INSTITUTIONS};
use crate::store::{InstitutionRecords, Store};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::Violations;
use region_adapter::Admdvs;
use region_adapter::codes::parse_fixmedins_code;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The bundled sample list (invented institutions of the seed regions).
pub const BUNDLED: &str = include_str!("../../institutions.toml");

/// `fixmedins_type` of a medical institution and of a retail pharmacy (national codes).
pub const MEDICAL_INSTITUTION: &str = "1";
pub const PHARMACY: &str = "2";

/// One institution as listed and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub fixmedins_code: String,
    pub fixmedins_name: String,
    pub fixmedins_type: String,
    #[serde(default)]
    pub hosp_lv: u32,
    /// A retail pharmacy designated for outpatient pooling (only its fills get fund pay).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outpatient_pooling: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFile {
    format_version: u32,
    #[serde(default)]
    institution: Vec<Institution>,
}

/// The service location an institution belongs to: the city of the division in its code.
pub fn service_location(code: &str) -> Option<Admdvs> {
    let (_, adm) = parse_fixmedins_code(code)?;
    Admdvs::parse(&format!("{:06}", adm.as_u32() / 100 * 100))
}

/// Checks one entry; violations name `prefix` + the field.
pub fn check(v: &mut Violations, prefix: &str, i: &Institution) {
    let f = |name: &str| format!("{prefix}{name}");
    match parse_fixmedins_code(&i.fixmedins_code) {
        None => v.add(f("fixmedins_code"), "must be H or P + 6-digit division + 5 digits, e.g. H42130200746"),
        Some((kind, _)) => {
            let pharmacy_code = kind == 'P';
            if (i.fixmedins_type == PHARMACY) != pharmacy_code && matches!(i.fixmedins_type.as_str(), MEDICAL_INSTITUTION | PHARMACY) {
                v.add(f("fixmedins_type"), "an H code is a medical institution (\"1\"), a P code a retail pharmacy (\"2\")");
            }
        }
    }
    if i.fixmedins_name.trim().is_empty() || i.fixmedins_name.chars().count() > MAX_INSTITUTION_NAME_LEN {
        v.add(f("fixmedins_name"), format!("1–{MAX_INSTITUTION_NAME_LEN} characters"));
    }
    match i.fixmedins_type.as_str() {
        MEDICAL_INSTITUTION if !(1..=3).contains(&i.hosp_lv) => v.add(f("hosp_lv"), "a medical institution has level 1, 2 or 3"),
        PHARMACY if i.hosp_lv != 0 => v.add(f("hosp_lv"), "a retail pharmacy has no level: give 0"),
        MEDICAL_INSTITUTION | PHARMACY => {}
        _ => v.add(f("fixmedins_type"), "must be \"1\" (medical institution) or \"2\" (retail pharmacy)"),
    }
    if i.outpatient_pooling && i.fixmedins_type != PHARMACY {
        v.add(f("outpatient_pooling"), "only a retail pharmacy (\"2\") is designated for outpatient pooling");
    }
}

/// What the list says of a claim's institutions: the level to apply, the prescriber's level of a
/// pharmacy fill, and whether a fill's pharmacy is designated for outpatient pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub hosp_lv: u32,
    pub prescribing_hosp_lv: u32,
    pub pharmacy_designated: bool,
}

/// The list is authoritative: a claim's institution must be listed (or upserted) for its service
/// location, a level it sends must be the listed one, and a pharmacy fill names its prescriber by code
/// (whose listed level applies). `None` when the code is malformed (the claim's validation says so).
pub async fn resolve<S: Store>(
    store: &S,
    list: &InstitutionList,
    claim: &crate::claim::ClaimDraft,
) -> Result<Option<Listed>, ServiceError> {
    let code = &claim.fixmedins_code;
    // A malformed code, or one of another service location: the claim's validation names it.
    if service_location(code).is_none_or(|l| l.to_string() != claim.mdtrt_admdvs) {
        return Ok(None);
    }
    let unlisted = |field: &str, code: &str| {
        ServiceError::field(
            field,
            format!(
                "{code} is on no institution list of its service location: the region's platform upserts it (Catalogue.UpsertInstitution)"
            ),
        )
    };
    let Some(Found { institution: i, .. }) = find(store, list, code).await? else {
        return Err(unlisted("fixmedins_code", code));
    };
    if claim.med_type != "41" {
        if i.fixmedins_type == PHARMACY {
            return Err(ServiceError::field("med_type", format!("{code} is a retail pharmacy: it settles pharmacy fills (41) only")));
        }
        if claim.hosp_lv != 0 && claim.hosp_lv != i.hosp_lv {
            return Err(ServiceError::field("hosp_lv", format!("{} is not {code}'s listed level {}", claim.hosp_lv, i.hosp_lv)));
        }
        return Ok(Some(Listed { hosp_lv: i.hosp_lv, prescribing_hosp_lv: 0, pharmacy_designated: false }));
    }
    let p = &claim.prescribing_fixmedins_code;
    if p.is_empty() {
        return Err(ServiceError::field(
            "prescribing_fixmedins_code",
            "required for a pharmacy fill (41): the prescribing institution's code",
        ));
    }
    if parse_fixmedins_code(p).is_none() {
        return Err(ServiceError::field("prescribing_fixmedins_code", "must be H + 6-digit division + 5 digits, e.g. H42130200746"));
    }
    let Some(Found { institution: presc, .. }) = find(store, list, p).await? else {
        return Err(unlisted("prescribing_fixmedins_code", p));
    };
    if presc.fixmedins_type != MEDICAL_INSTITUTION {
        return Err(ServiceError::field("prescribing_fixmedins_code", format!("{p} is not a medical institution")));
    }
    if claim.prescribing_hosp_lv != 0 && claim.prescribing_hosp_lv != presc.hosp_lv {
        return Err(ServiceError::field(
            "prescribing_hosp_lv",
            format!("{} is not {p}'s listed level {}", claim.prescribing_hosp_lv, presc.hosp_lv),
        ));
    }
    Ok(Some(Listed {
        hosp_lv: 0,
        prescribing_hosp_lv: presc.hosp_lv,
        pharmacy_designated: i.fixmedins_type == PHARMACY && i.outpatient_pooling,
    }))
}

/// The list `clearing` started with.
#[derive(Debug, Default)]
pub struct InstitutionList {
    by_code: HashMap<String, Institution>,
}

impl InstitutionList {
    /// Parses and validates a list file; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> anyhow::Result<InstitutionList> {
        let file: ListFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        if file.format_version != 1 {
            anyhow::bail!("{name}: format_version {} is not supported (this build reads 1)", file.format_version);
        }
        if file.institution.len() > MAX_INSTITUTIONS {
            anyhow::bail!("{name}: {} institutions; at most {MAX_INSTITUTIONS}", file.institution.len());
        }
        let mut v = Violations::default();
        let mut by_code = HashMap::with_capacity(file.institution.len());
        for (n, i) in file.institution.into_iter().enumerate() {
            check(&mut v, &format!("institution[{n}]."), &i);
            if by_code.contains_key(&i.fixmedins_code) {
                v.add(format!("institution[{n}].fixmedins_code"), format!("{} is listed twice", i.fixmedins_code));
            }
            by_code.insert(i.fixmedins_code.clone(), i);
        }
        if !v.0.is_empty() {
            let lines: Vec<String> = v.0.iter().map(|f| format!("  {name}: {}: {}", f.field, f.description)).collect();
            anyhow::bail!("institution list refused:\n{}", lines.join("\n"));
        }
        Ok(InstitutionList { by_code })
    }

    /// The bundled sample, or the file given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<InstitutionList> {
        match path {
            None => InstitutionList::parse("bundled institutions.toml", BUNDLED),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("institutions {}: {e}", p.display()))?;
                InstitutionList::parse(&p.display().to_string(), &text)
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }
}

/// An institution with where it comes from: `"upserted"` (the store) or `"list"` (the start list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub institution: Institution,
    pub origin: &'static str,
}

/// The institution `code` with where it comes from: upserted (the store) first, then the list.
pub async fn find<S: Store>(store: &S, list: &InstitutionList, code: &str) -> Result<Option<Found>, ServiceError> {
    let Some(mdtrt) = service_location(code) else {
        return Ok(None);
    };
    if let Some(json) = store.institution(&mdtrt.to_string(), code).await? {
        let i: Institution =
            serde_json::from_str(&json).map_err(|e| ServiceError::Internal(format!("stored institution {code} unreadable: {e}")))?;
        return Ok(Some(Found { institution: i, origin: "upserted" }));
    }
    Ok(list.by_code.get(code).map(|i| Found { institution: i.clone(), origin: "list" }))
}

/// Validates and stores an upserted institution.
pub async fn upsert<S: Store>(store: &S, i: Institution) -> Result<Found, ServiceError> {
    let mut v = Violations::default();
    check(&mut v, "", &i);
    v.into_result(())?;
    let mdtrt = service_location(&i.fixmedins_code).expect("checked");
    let json = serde_json::to_string(&i).map_err(|e| ServiceError::Internal(e.to_string()))?;
    store.put_institution(&mdtrt.to_string(), &i.fixmedins_code, &json).await?;
    Ok(Found { institution: i, origin: "upserted" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_list_loads_and_bad_entries_are_named() {
        let list = InstitutionList::load(None).unwrap();
        assert!(list.len() >= 20);
        let bad = "format_version = 1\n[[institution]]\nfixmedins_code = \"H42130200001\"\nfixmedins_name = \"x\"\nfixmedins_type = \"1\"\nhosp_lv = 4\n\
                   [[institution]]\nfixmedins_code = \"P42130200001\"\nfixmedins_name = \"y\"\nfixmedins_type = \"1\"\nhosp_lv = 1\n";
        let e = InstitutionList::parse("t.toml", bad).unwrap_err().to_string();
        assert!(e.contains("institution[0].hosp_lv") && e.contains("institution[1].fixmedins_type"), "{e}");
        assert_eq!(service_location("H42130200746").unwrap().to_string(), "421300");
    }
}
