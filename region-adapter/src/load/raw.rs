//! The files as written: serde structures of the three kinds of file, checked by the loader.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawParam<T> {
    pub(crate) value: T,
    pub(crate) source: Option<String>,
    pub(crate) assumption: Option<String>,
    /// A value the seed does not give, to be replaced by the region (see `Provenance::Placeholder`).
    pub(crate) placeholder: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvenance {
    pub(crate) source: Option<String>,
    pub(crate) assumption: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegionFile {
    pub(crate) format_version: u32,
    pub(crate) region: RawRegion,
    #[serde(default)]
    pub(crate) policy: Vec<RawPolicy>,
    pub(crate) supervision: Option<RawSupervision>,
}

/// `[supervision]`: thresholds of the claim flags and of the institutions' early-warning list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSupervision {
    pub(crate) same_day_regions: RawParam<u32>,
    pub(crate) frequent_visits: RawParam<u32>,
    pub(crate) frequent_visits_days: RawParam<u32>,
    pub(crate) high_cost_per_visit: RawParam<String>,
    pub(crate) selfpay_share: RawParam<String>,
    pub(crate) pharmacy_cashout: RawParam<String>,
    pub(crate) price_over_cap_factor: RawParam<String>,
    pub(crate) max_line_quantity: RawParam<String>,
    pub(crate) warn_cost_per_visit: RawParam<String>,
    pub(crate) warn_growth: RawParam<String>,
    pub(crate) warn_selfpay_share: RawParam<String>,
    pub(crate) warn_exam_share: RawParam<String>,
    pub(crate) warn_min_claims: RawParam<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegion {
    pub(crate) admdvs: String,
    pub(crate) name: String,
    pub(crate) name_en: String,
    pub(crate) province: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub(crate) id: String,
    pub(crate) effective_from: String,
    pub(crate) effective_to: Option<String>,
    pub(crate) validity: RawProvenance,
    /// Copies every term of an earlier version of the same file; only the dates differ.
    pub(crate) same_as: Option<String>,
    pub(crate) in_service: Option<RawGeneral>,
    pub(crate) retired: Option<RawGeneral>,
    pub(crate) retiree: Option<RawRetiree>,
    pub(crate) cross_region: Option<RawCrossRegion>,
    pub(crate) account: Option<RawAccount>,
    pub(crate) pharmacy: Option<RawPharmacy>,
    pub(crate) contributions: Option<RawContributions>,
    #[serde(default)]
    pub(crate) chronic: Vec<RawChronic>,
    pub(crate) chronic_bounds: Option<RawChronicBounds>,
    pub(crate) average_wage_2021: Option<RawParam<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGeneral {
    pub(crate) deductible: RawParam<String>,
    pub(crate) cap: RawParam<String>,
    pub(crate) ratio: RawParam<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetiree {
    pub(crate) from_next_month: RawParam<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCrossRegion {
    pub(crate) filing_required: RawParam<bool>,
    pub(crate) min_level: RawParam<u32>,
    pub(crate) min_level_scope: RawParam<String>,
    pub(crate) unfiled_ratio_cut: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContributions {
    pub(crate) arrears_no_fund_pay: RawParam<bool>,
    pub(crate) no_credit_in_arrears: Option<RawParam<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPharmacy {
    pub(crate) use_prescribing_level: RawParam<bool>,
    pub(crate) level: Option<RawParam<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub(crate) in_service_share: RawParam<String>,
    pub(crate) family_mutual_aid: RawParam<bool>,
    pub(crate) pooling_only_has_account: RawParam<bool>,
    pub(crate) excludes_non_medical: RawParam<bool>,
    pub(crate) pharmacy_goods_only: RawParam<bool>,
    pub(crate) mixed_years_pro_rata: Option<RawParam<bool>>,
    pub(crate) retired: Vec<RawRetiredStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetiredStep {
    pub(crate) from: String,
    pub(crate) fixed_monthly: Option<RawParam<String>>,
    pub(crate) share_of_average_pension: Option<RawParam<String>>,
    pub(crate) average_pension_monthly: Option<RawParam<String>>,
    pub(crate) share_of_own_pension: Option<RawParam<String>>,
    pub(crate) keep_previous_year: Option<RawParam<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChronic {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) deductible: RawParam<String>,
    pub(crate) ratio: RawParam<String>,
    pub(crate) cap: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChronicBounds {
    pub(crate) disease_count: RawParam<u32>,
    pub(crate) deductible_max: RawParam<String>,
    pub(crate) ratio_min: RawParam<String>,
    pub(crate) ratio_max: RawParam<String>,
    pub(crate) cap_min: RawParam<String>,
    pub(crate) cap_max: RawParam<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalogueFile {
    pub(crate) format_version: u32,
    pub(crate) catalogue: RawCatalogueHead,
    #[serde(default)]
    pub(crate) item: Vec<RawItem>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCatalogueHead {
    pub(crate) admdvs: String,
    pub(crate) sample: bool,
    pub(crate) provenance: RawProvenance,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawItem {
    pub(crate) hilist_code: String,
    pub(crate) hilist_name: String,
    pub(crate) list_type: String,
    pub(crate) chrgitm_lv: String,
    pub(crate) selfpay_prop: Option<String>,
    pub(crate) pric_uplmt_amt: Option<String>,
    pub(crate) begndate: String,
    pub(crate) enddate: Option<String>,
    /// "public_health", "fitness" or "wellness": no personal account pays for it.
    pub(crate) account_excluded: Option<String>,
    /// "examination" or "lab" (supervision's examination share).
    pub(crate) category: Option<String>,
    /// 医疗收费项目类别, two digits of the national dictionary (01 床位费 … 14 其他费).
    pub(crate) med_chrgitm_type: Option<String>,
    /// 限制使用标志: "1" when the list limits the item's payment to stated conditions, else "0".
    pub(crate) lmt_used_flag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvinceFile {
    pub(crate) format_version: u32,
    pub(crate) province: RawProvinceHead,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvinceHead {
    pub(crate) admdvs: String,
    pub(crate) name: String,
    pub(crate) effective_from: String,
    pub(crate) ratio_min: Option<RawParam<String>>,
    pub(crate) deductible_max_share_of_wage: Option<RawParam<String>>,
    pub(crate) cap_share_of_wage: Option<RawParam<String>>,
    pub(crate) cap_share_tolerance: Option<RawParam<String>>,
    pub(crate) retired_not_below_in_service: Option<RawParam<bool>>,
    pub(crate) higher_at_grassroots: Option<RawParam<bool>>,
}

// ---------------------------------------------------------------------------------------------
// Conversion with checks. `Cx` collects errors; converters return `None` after recording one.
