//! The validated, in-memory form of rule packs. Everything here has passed `load`'s checks: amounts
//! are non-negative fen within bounds, ratios are basis points within 0..=100%, policy versions of a
//! region are sorted with neither overlaps nor gaps, and every parameter says where it comes from.

use crate::codes::{Admdvs, Level};
use crate::money::RatioBp;
use chrono::NaiveDate;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Where a parameter comes from: an article of a seed document, or an explicit assumption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A seed document and the place in it, e.g. file `003_a9d74b92acd07a75.txt`, place `art. 8`.
    Source { file: Arc<str>, place: Arc<str> },
    /// A value the seeds do not give; the text says why this value was chosen.
    Assumption(Arc<str>),
    /// A value the seed does not give and that the region must replace with its own figure (issue 31):
    /// logged at start, listed in the README, and named "placeholder" wherever it is shown.
    Placeholder(Arc<str>),
}

impl Provenance {
    /// Not from a seed: an assumption or a placeholder.
    pub fn is_assumption(&self) -> bool {
        matches!(self, Provenance::Assumption(_) | Provenance::Placeholder(_))
    }

    pub fn is_placeholder(&self) -> bool {
        matches!(self, Provenance::Placeholder(_))
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Source { file, place } => write!(f, "{place} [{file}]"),
            Provenance::Assumption(why) => write!(f, "assumption: {why}"),
            Provenance::Placeholder(why) => write!(f, "placeholder, to be replaced by the region's own figure: {why}"),
        }
    }
}

/// A rule-pack parameter with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<T> {
    pub value: T,
    pub provenance: Provenance,
}

/// Member category on the visit date (人员类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberClass {
    /// 在职, psn_type `11`.
    InService,
    /// 退休, psn_type `12`.
    Retired,
}

impl MemberClass {
    pub fn label(self) -> &'static str {
        match self {
            MemberClass::InService => "in service",
            MemberClass::Retired => "retired",
        }
    }
}

/// General-outpatient terms (普通门诊统筹) of one member class.
#[derive(Debug, Clone)]
pub struct GeneralTerms {
    /// Yearly deductible (起付标准), fen.
    pub deductible_fen: Param<i64>,
    /// Yearly fund-pay cap (年度最高支付限额), fen.
    pub cap_fen: Param<i64>,
    /// Fund ratio by institution level 1, 2, 3 (支付比例).
    pub ratio_bp: Param<[RatioBp; 3]>,
}

/// One disease of the chronic/special-disease list (门诊慢特病), with its own terms and cap.
#[derive(Debug, Clone)]
pub struct ChronicDisease {
    /// Disease code sent as `dise_code`.
    pub code: String,
    pub name: String,
    pub deductible_fen: Param<i64>,
    pub ratio_bp: Param<RatioBp>,
    pub cap_fen: Param<i64>,
}

/// Where a minimum institution level applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelScope {
    /// Only when the visit is in another province (Tongliao Q5: 跨省 at level 2 or above).
    CrossProvince,
    /// For every visit outside the insured region.
    CrossRegion,
}

/// Conditions for a visit outside the insured region to be paid by the fund.
#[derive(Debug, Clone)]
pub struct CrossRegionTerms {
    /// The member must have a filing (备案) covering the service location (Suizhou art. 10).
    pub filing_required: Param<bool>,
    /// Only institutions networked for direct settlement (Suizhou art. 10, Tongliao Q5). Every claim
    /// that reaches the clearinghouse is a direct settlement, so a networked institution by construction.

    /// Lowest institution level paid outside the region (1 = no restriction).
    pub min_level: Param<Level>,
    pub min_level_scope: Param<LevelScope>,
    /// Ratio cut for unfiled visits when filing is not required (0 when none).
    pub unfiled_ratio_cut_bp: Param<RatioBp>,
}

/// How a retired member's monthly account credit is computed, from a date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetiredCredit {
    /// A fixed amount a month, fen (Suizhou art. 14(二): 70 yuan).
    FixedMonthly(i64),
    /// A share of an average pension (the province's or city's, per year given in the pack).
    /// `average_pension` says where the average comes from (a placeholder in most packs: the seeds name
    /// the base, not its amount).
    ShareOfAveragePension { share_bp: RatioBp, average_pension_monthly_fen: i64, average_pension: Provenance },
    /// A share of the member's own pension (the rule before the reform).
    ShareOfOwnPension { share_bp: RatioBp },
    /// The member's own monthly credit of the previous year, kept (Jiangsu 2023: 维持2022年规模不变).
    KeepPreviousYear,
}

/// A dated step of the retired credit rule.
#[derive(Debug, Clone)]
pub struct RetiredCreditStep {
    pub from: NaiveDate,
    pub rule: Param<RetiredCredit>,
}

/// Contributions (缴费).
#[derive(Debug, Clone)]
pub struct ContributionTerms {
    /// The in-service credit is the member's own contribution (个人缴纳的基本医疗保险费计入): none in a
    /// month the member is in arrears. A pack without the key gets `true` as this build's assumption.
    pub no_credit_in_arrears: Param<bool>,
    /// Fees incurred while the member or employer had not paid contributions on time get no fund pay
    /// (Suizhou art. 27(三)); the account and cash still pay.
    pub arrears_no_fund_pay: Param<bool>,
}

/// A retail pharmacy filling an outside prescription (外配处方, med_type 41) has no level of its own.
#[derive(Debug, Clone)]
pub struct PharmacyTerms {
    /// The fill is paid at the prescribing institution's level (Suizhou art. 11; Jiangsu 000 §二(一)).
    pub use_prescribing_level: Param<bool>,
    /// Otherwise, the level whose ratio a fill gets (required when `use_prescribing_level` is false).
    pub level: Option<Param<Level>>,
}

/// Personal-account rules (个人账户).
#[derive(Debug, Clone)]
pub struct AccountTerms {
    /// In-service monthly credit as a share of the contribution base (2% in every seed).
    pub in_service_share_bp: Param<RatioBp>,
    /// Retired credit, in date order; the last step whose `from` ≤ date applies.
    pub retired: Vec<RetiredCreditStep>,
    /// Whether a member's account may pay for spouse, parents, children (家庭共济).
    pub family_mutual_aid: Param<bool>,
    /// Pooling-only members (单建统筹) have no account (Suizhou art. 14(四)).
    pub pooling_only_has_account: Param<bool>,
    /// The account pays nothing for public health, fitness or wellness spending (catalogue items so
    /// marked).
    pub excludes_non_medical: Param<bool>,
    /// At a retail pharmacy the account pays only drugs, medical devices and consumables (药品、医疗器械、
    /// 医用耗材: catalogue list types 101, 102 and 301); a line the catalogue does not know, or a service
    /// item, is left to cash (Suizhou art. 15(二), art. 25's 销售生活日用品).
    pub pharmacy_goods_only: Param<bool>,
    /// A retiree who alternated between 统账结合 and 单建统筹 gets the retired credit pro rata to the
    /// 统账结合 years (Suizhou art. 14(三)); absent = no such rule in the region's seed.
    pub mixed_years_pro_rata: Option<Param<bool>>,
}

/// Seed-given bounds on a chronic-disease list (Nanchang §4(二)2), checked at load.
#[derive(Debug, Clone)]
pub struct ChronicBounds {
    pub disease_count: Param<u32>,
    pub deductible_max_fen: Param<i64>,
    pub ratio_min_bp: Param<RatioBp>,
    pub ratio_max_bp: Param<RatioBp>,
    pub cap_min_fen: Param<i64>,
    pub cap_max_fen: Param<i64>,
}

/// One dated version of a region's policy.
#[derive(Debug, Clone)]
pub struct PolicyVersion {
    pub id: String,
    pub effective_from: NaiveDate,
    /// Inclusive; `None` = in force until replaced.
    pub effective_to: Option<NaiveDate>,
    /// Where the validity period comes from.
    pub validity: Provenance,
    pub in_service: GeneralTerms,
    pub retired: GeneralTerms,
    /// Retiree terms start from the month after retirement (Suizhou art. 12) rather than the day.
    pub retired_from_next_month: Param<bool>,
    pub cross_region: CrossRegionTerms,
    pub account: AccountTerms,
    pub pharmacy: PharmacyTerms,
    pub contributions: ContributionTerms,
    pub chronic: Vec<ChronicDisease>,
    pub chronic_bounds: Option<ChronicBounds>,
    /// The city's 2021 average wage (城镇单位就业人员年平均工资), fen a year, where a provincial
    /// rule expresses bounds as shares of it (Jiangsu).
    pub average_wage_2021_fen: Option<Param<i64>>,
}

impl PolicyVersion {
    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.effective_from && self.effective_to.is_none_or(|to| date <= to)
    }
    pub fn general(&self, class: MemberClass) -> &GeneralTerms {
        match class {
            MemberClass::InService => &self.in_service,
            MemberClass::Retired => &self.retired,
        }
    }
    pub fn chronic_disease(&self, code: &str) -> Option<&ChronicDisease> {
        self.chronic.iter().find(|d| d.code == code)
    }
}

/// Catalogue class (`chrgitm_lv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemClass {
    /// `01` 甲类: fully in scope.
    A,
    /// `02` 乙类: in scope after the self-pay-first share.
    B,
    /// `03` 丙类: not covered.
    C,
}

impl ItemClass {
    pub fn code(self) -> &'static str {
        match self {
            ItemClass::A => "01",
            ItemClass::B => "02",
            ItemClass::C => "03",
        }
    }
}

/// One dated version of a catalogue item.
#[derive(Debug, Clone)]
pub struct CatalogueItem {
    pub code: Box<str>,
    pub name: Box<str>,
    /// National list type: `101` drug, `102` Chinese herbal, `201` service item, `301` consumable.
    pub list_type: Box<str>,
    pub class: ItemClass,
    /// Self-pay-first share of a 乙类 item (先行自付比例); `None` for 甲/丙.
    pub selfpay_prop_bp: Option<RatioBp>,
    /// Unit price cap (`pric_uplmt_amt`), yuan; `None` when the item has none.
    pub price_cap: Option<rust_decimal::Decimal>,
    pub begin: NaiveDate,
    pub end: Option<NaiveDate>,
    /// Spending no personal account may pay (public health, fitness, wellness), `None` otherwise.
    pub account_excluded: Option<ExcludedUse>,
    /// Examination or laboratory test, for the supervision indicators; `None` for anything else.
    pub category: Option<ItemCategory>,
    /// 医疗收费项目类别 (`med_chrgitm_type`, `01`–`14`), when the catalogue gives it.
    pub chrgitm_type: Option<Box<str>>,
    /// 限制使用标志 (`lmt_used_flag` 1): the list limits the item's payment to stated conditions.
    pub restricted: bool,
}

/// What supervision counts separately (Nanchang 002 §4(五): the share of examinations, 检查费用占比).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemCategory {
    /// 检查: imaging, ECG, ultrasound, endoscopy.
    Examination,
    /// 化验: laboratory tests (counted apart; the seeds name 化验 and 检查 as two things, 004 Q2).
    Lab,
}

impl ItemCategory {
    pub fn parse(s: &str) -> Option<ItemCategory> {
        Some(match s {
            "examination" => ItemCategory::Examination,
            "lab" => ItemCategory::Lab,
            _ => return None,
        })
    }
    pub fn code(self) -> &'static str {
        match self {
            ItemCategory::Examination => "examination",
            ItemCategory::Lab => "lab",
        }
    }
}

/// What a personal account may never pay for (Suizhou art. 16; Jiangsu 000 §二(四); Shanxi 001 §二(四)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExcludedUse {
    /// 公共卫生费用.
    PublicHealth,
    /// 体育健身.
    Fitness,
    /// 养生保健消费.
    Wellness,
}

impl ExcludedUse {
    pub fn parse(s: &str) -> Option<ExcludedUse> {
        Some(match s {
            "public_health" => ExcludedUse::PublicHealth,
            "fitness" => ExcludedUse::Fitness,
            "wellness" => ExcludedUse::Wellness,
            _ => return None,
        })
    }
    pub fn code(self) -> &'static str {
        match self {
            ExcludedUse::PublicHealth => "public_health",
            ExcludedUse::Fitness => "fitness",
            ExcludedUse::Wellness => "wellness",
        }
    }
}

impl CatalogueItem {
    pub fn contains(&self, date: NaiveDate) -> bool {
        date >= self.begin && self.end.is_none_or(|end| date <= end)
    }
}

/// A service location's catalogue (就医地目录).
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// True for the sample catalogues shipped with the project: realistic codes, invented prices.
    pub sample: bool,
    pub provenance: Provenance,
    /// Versions of each code, sorted by `begin`, non-overlapping.
    pub items: HashMap<Box<str>, Vec<CatalogueItem>>,
    /// Codes in file order, for stable listing and paging.
    pub order: Vec<Box<str>>,
}

impl Catalogue {
    /// The version of `code` valid on `date`.
    pub fn lookup(&self, code: &str, date: NaiveDate) -> Option<&CatalogueItem> {
        self.items.get(code)?.iter().find(|it| it.contains(date))
    }
}

/// Everything known about one pooling region: its policy (insured side) and catalogue (service side).
#[derive(Debug, Clone)]
pub struct RegionPack {
    pub admdvs: Admdvs,
    /// Chinese name, used in explanations (随州市); shared so explanation steps can hold it cheaply.
    pub name: Arc<str>,
    pub name_en: String,
    pub province: Admdvs,
    /// Sorted by `effective_from`; contiguous.
    pub policies: Vec<PolicyVersion>,
    pub catalogue: Catalogue,
    /// The files this pack was read from, for operators.
    pub files: Vec<String>,
    /// Supervision thresholds (the pack's `[supervision]`, or this build's defaults when it has none).
    pub supervision: SupervisionTerms,
    /// Parameters of this pack marked `placeholder`: values the seed does not give that the region must
    /// replace (`clearing serve` logs each at start).
    pub placeholders: Vec<Placeholder>,
}

/// One parameter marked `placeholder` in a pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Where it is in the pack file (`policy[0].in_service.deductible`).
    pub key: String,
    /// The value in force, as written in the pack.
    pub value: String,
    pub reason: Arc<str>,
}

/// Thresholds of supervision. Claim flags use the insured region's (its fund pays, its supervisor
/// reviews); the early-warning list of institutions uses the service location's (its institutions).
/// A flag or a warning is information for review, never a refusal.
#[derive(Debug, Clone)]
pub struct SupervisionTerms {
    /// Distinct service regions on one day that flag a member (`multi_region_day`).
    pub same_day_regions: Param<u32>,
    /// Visits within `frequent_visits_days` days (this one included) that flag a member (`frequent_visits`).
    pub frequent_visits: Param<u32>,
    pub frequent_visits_days: Param<u32>,
    /// A claim's medical cost above this is flagged (`high_cost`), fen.
    pub high_cost_per_visit_fen: Param<i64>,
    /// Self-paid share (全自费 + 超限价自费 over the total) above this is flagged (`high_selfpay`).
    pub selfpay_share_bp: Param<RatioBp>,
    /// A pharmacy claim (41) the account pays whole (no cash) at or above this is flagged (`pharmacy_cashout`), fen.
    pub pharmacy_cashout_fen: Param<i64>,
    /// A line's unit price above the catalogue cap times this is flagged (`price_over_cap`).
    pub price_over_cap_factor: Param<rust_decimal::Decimal>,
    /// A line's quantity above this is flagged (`implausible_quantity`).
    pub max_line_quantity: Param<rust_decimal::Decimal>,
    /// Early warning of an institution: cost per visit above this, fen.
    pub warn_cost_per_visit_fen: Param<i64>,
    /// … cost per visit grown on the previous month by more than this share.
    pub warn_growth_bp: Param<RatioBp>,
    /// … self-paid share above this.
    pub warn_selfpay_share_bp: Param<RatioBp>,
    /// … examinations' share of the cost above this.
    pub warn_exam_share_bp: Param<RatioBp>,
    /// Institutions with fewer claims in the month are not judged (too few to mean anything).
    pub warn_min_claims: Param<u32>,
}

impl SupervisionTerms {
    /// This build's thresholds for a region whose pack has no `[supervision]` (and for regions served by
    /// a remote adapter). No seed gives a number for any of them: each is an assumption, said here.
    pub fn defaults() -> SupervisionTerms {
        let a = |why: &str| Provenance::Assumption(format!("default of this build (no [supervision] in the pack): {why}").into());
        let p = |v, why: &str| Param { value: v, provenance: a(why) };
        SupervisionTerms {
            same_day_regions: p(2, "one member settling in two service regions on one day is rare enough to review"),
            frequent_visits: p(8, "more than a visit a day for a week"),
            frequent_visits_days: p(7, "a week"),
            high_cost_per_visit_fen: Param { value: 200_000, provenance: a("2,000 yuan, several times a typical outpatient visit") },
            selfpay_share_bp: Param { value: 5_000, provenance: a("half the claim outside the catalogue or over its caps") },
            pharmacy_cashout_fen: Param { value: 50_000, provenance: a("500 yuan from the account for a whole pharmacy bill") },
            price_over_cap_factor: Param { value: rust_decimal::Decimal::TWO, provenance: a("twice the catalogue's price cap") },
            max_line_quantity: Param {
                value: rust_decimal::Decimal::from(300),
                provenance: a("300 units on one line, about three months of a daily tablet"),
            },
            warn_cost_per_visit_fen: Param { value: 100_000, provenance: a("1,000 yuan per visit on average") },
            warn_growth_bp: Param { value: 3_000, provenance: a("30% more per visit than the month before") },
            warn_selfpay_share_bp: Param { value: 3_000, provenance: a("30% of the cost self-paid") },
            warn_exam_share_bp: Param { value: 4_000, provenance: a("40% of the cost on examinations") },
            warn_min_claims: Param { value: 5, provenance: a("fewer claims than this say little about an institution") },
        }
    }
}

impl RegionPack {
    /// The policy version in force on `date`.
    pub fn policy_on(&self, date: NaiveDate) -> Option<&PolicyVersion> {
        self.policies.iter().rev().find(|p| p.contains(date))
    }
}

/// A province's floors and ceilings for its cities' packs (Jiangsu 000, Shanxi 001).
#[derive(Debug, Clone)]
pub struct ProvincialRule {
    pub admdvs: Admdvs,
    pub name: String,
    pub effective_from: NaiveDate,
    pub ratio_min_bp: Option<Param<RatioBp>>,
    pub deductible_max_share_of_wage_bp: Option<Param<RatioBp>>,
    pub cap_share_of_wage_bp: Option<Param<RatioBp>>,
    /// How far from `cap_share_of_wage_bp` a cap may be ("8%左右").
    pub cap_share_tolerance_bp: Option<Param<RatioBp>>,
    pub retired_not_below_in_service: Option<Param<bool>>,
    /// Ratios higher at grassroots (lower-level) institutions (Shanxi 001 §二(一)).
    pub higher_at_grassroots: Option<Param<bool>>,
    pub file: String,
}

/// All loaded packs, immutable once built; shared behind an `Arc` and swapped whole on reload.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub regions: std::collections::BTreeMap<Admdvs, RegionPack>,
    pub provinces: Vec<ProvincialRule>,
}

impl RuleSet {
    pub fn region(&self, admdvs: Admdvs) -> Option<&RegionPack> {
        self.regions.get(&admdvs)
    }

    /// Every placeholder in force, by region.
    pub fn placeholders(&self) -> impl Iterator<Item = (&RegionPack, &Placeholder)> {
        self.regions.values().flat_map(|r| r.placeholders.iter().map(move |p| (r, p)))
    }
}
