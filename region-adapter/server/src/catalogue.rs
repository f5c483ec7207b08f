//! The catalogue and policy views of a rule set (`ListRegions`, `GetPolicy`, `ListCatalogueItems`),
//! shared by the clearing service (for locally served regions) and `region-adapter serve`.

use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as wire, Violations};
use clearing_edge::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_NUM, MAX_PAGE_SIZE};
use proto::v1 as pb;
use region_adapter::model::{Param, Provenance, RetiredCredit};
use region_adapter::money::{fmt_ratio, fmt_yuan};
use region_adapter::{RegionPack, RuleSet};

fn param<T>(key: impl Into<String>, p: &Param<T>, value: String) -> pb::PolicyParameter {
    let (source, assumption) = provenance(&p.provenance);
    pb::PolicyParameter { key: key.into(), value, source, assumption, placeholder: p.provenance.is_placeholder() }
}

fn provenance(p: &Provenance) -> (String, String) {
    match p {
        Provenance::Source { file, place } => (format!("{file} {place}"), String::new()),
        Provenance::Assumption(a) => (String::new(), a.to_string()),
        Provenance::Placeholder(_) => (String::new(), p.to_string()),
    }
}

pub fn region_pb(pack: &RegionPack, route: String) -> pb::Region {
    pb::Region {
        admdvs: pack.admdvs.to_string(),
        name: pack.name.to_string(),
        name_en: pack.name_en.clone(),
        province: pack.province.to_string(),
        route,
        policy_versions: pack
            .policies
            .iter()
            .map(|p| pb::PolicyVersionInfo {
                id: p.id.clone(),
                effective_from: p.effective_from.to_string(),
                effective_to: p.effective_to.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
        catalogue_sample: pack.catalogue.sample,
        catalogue_items: pack.catalogue.order.len() as u32,
    }
}

fn known_pack<'r>(rules: &'r RuleSet, field: &str, s: &str) -> Result<&'r RegionPack, ServiceError> {
    let mut v = Violations::default();
    let a = wire::check_region(&mut v, field, s, &|a| rules.region(a).is_some());
    v.into_result(())?;
    Ok(rules.region(a.expect("checked")).expect("known"))
}

/// The policy of a region in force on a date, every parameter with its source or assumption.
pub fn get_policy(rules: &RuleSet, q: &pb::GetPolicyRequest) -> Result<pb::Policy, ServiceError> {
    let pack = known_pack(rules, "admdvs", &q.admdvs)?;
    let mut v = Violations::default();
    let date = wire::parse_date(&mut v, "date", &q.date);
    v.into_result(())?;
    let date = date.expect("checked");
    let p =
        pack.policy_on(date).ok_or_else(|| ServiceError::field("date", format!("no policy of {} is in force on {date}", pack.admdvs)))?;
    let mut params = Vec::new();
    for (class, t) in [("in_service", &p.in_service), ("retired", &p.retired)] {
        params.push(param(format!("{class}.deductible"), &t.deductible_fen, fmt_yuan(t.deductible_fen.value)));
        params.push(param(format!("{class}.cap"), &t.cap_fen, fmt_yuan(t.cap_fen.value)));
        for (i, r) in t.ratio_bp.value.iter().enumerate() {
            params.push(param(format!("{class}.ratio.level{}", i + 1), &t.ratio_bp, fmt_ratio(*r)));
        }
    }
    params.push(param("retiree.from_next_month", &p.retired_from_next_month, p.retired_from_next_month.value.to_string()));
    let cr = &p.cross_region;
    params.push(param("cross_region.filing_required", &cr.filing_required, cr.filing_required.value.to_string()));
    params.push(param("cross_region.min_level", &cr.min_level, cr.min_level.value.get().to_string()));
    params.push(param("cross_region.min_level_scope", &cr.min_level_scope, format!("{:?}", cr.min_level_scope.value)));
    params.push(param("cross_region.unfiled_ratio_cut", &cr.unfiled_ratio_cut_bp, fmt_ratio(cr.unfiled_ratio_cut_bp.value)));
    params.push(param(
        "pharmacy.use_prescribing_level",
        &p.pharmacy.use_prescribing_level,
        p.pharmacy.use_prescribing_level.value.to_string(),
    ));
    if let Some(l) = &p.pharmacy.level {
        params.push(param("pharmacy.level", l, l.value.get().to_string()));
    }
    let a = &p.account;
    params.push(param("account.in_service_share", &a.in_service_share_bp, fmt_ratio(a.in_service_share_bp.value)));
    params.push(param("account.family_mutual_aid", &a.family_mutual_aid, a.family_mutual_aid.value.to_string()));
    params.push(param("account.pooling_only_has_account", &a.pooling_only_has_account, a.pooling_only_has_account.value.to_string()));
    params.push(param("account.excludes_non_medical", &a.excludes_non_medical, a.excludes_non_medical.value.to_string()));
    params.push(param("account.pharmacy_goods_only", &a.pharmacy_goods_only, a.pharmacy_goods_only.value.to_string()));
    let c = &p.contributions;
    params.push(param("contributions.arrears_no_fund_pay", &c.arrears_no_fund_pay, c.arrears_no_fund_pay.value.to_string()));
    params.push(param("contributions.no_credit_in_arrears", &c.no_credit_in_arrears, c.no_credit_in_arrears.value.to_string()));
    if let Some(m) = &a.mixed_years_pro_rata {
        params.push(param("account.mixed_years_pro_rata", m, m.value.to_string()));
    }
    for s in &a.retired {
        let key = format!("account.retired.from.{}", s.from);
        let value = match &s.rule.value {
            RetiredCredit::FixedMonthly(f) => format!("fixed {} a month", fmt_yuan(*f)),
            RetiredCredit::ShareOfAveragePension { share_bp, average_pension_monthly_fen, average_pension } => {
                // The average pension has a provenance of its own (often a placeholder).
                let (source, assumption) = provenance(average_pension);
                params.push(pb::PolicyParameter {
                    key: format!("{key}.average_pension_monthly"),
                    value: fmt_yuan(*average_pension_monthly_fen),
                    source,
                    assumption,
                    placeholder: average_pension.is_placeholder(),
                });
                format!("{} of the average pension", fmt_ratio(*share_bp))
            }
            RetiredCredit::ShareOfOwnPension { share_bp } => format!("{} of the own pension", fmt_ratio(*share_bp)),
            RetiredCredit::KeepPreviousYear => "last year's monthly credit, kept".into(),
        };
        params.push(param(key, &s.rule, value));
    }
    if let Some(w) = &p.average_wage_2021_fen {
        params.push(param("average_wage_2021", w, fmt_yuan(w.value)));
    }
    for d in &p.chronic {
        params.push(param(format!("chronic.{}.deductible", d.code), &d.deductible_fen, fmt_yuan(d.deductible_fen.value)));
        params.push(param(format!("chronic.{}.ratio", d.code), &d.ratio_bp, fmt_ratio(d.ratio_bp.value)));
        params.push(param(format!("chronic.{}.cap", d.code), &d.cap_fen, fmt_yuan(d.cap_fen.value)));
    }
    let (vs, va) = provenance(&p.validity);
    Ok(pb::Policy {
        admdvs: pack.admdvs.to_string(),
        name: pack.name.to_string(),
        version_id: p.id.clone(),
        effective_from: p.effective_from.to_string(),
        effective_to: p.effective_to.map(|d| d.to_string()).unwrap_or_default(),
        validity: Some(pb::PolicyParameter {
            key: "validity".into(),
            value: format!("{} – {}", p.effective_from, p.effective_to.map(|d| d.to_string()).unwrap_or_else(|| "open".into())),
            source: vs,
            assumption: va,
            placeholder: p.validity.is_placeholder(),
        }),
        parameters: params,
    })
}

/// A page of a region's catalogue items valid on a date.
/// One catalogue item as the API lists it.
fn catalogue_item(it: &region_adapter::model::CatalogueItem) -> pb::CatalogueItem {
    pb::CatalogueItem {
        hilist_code: it.code.to_string(),
        hilist_name: it.name.to_string(),
        chrgitm_lv: it.class.code().into(),
        selfpay_prop: it.selfpay_prop_bp.map(fmt_ratio).unwrap_or_default(),
        pric_uplmt_amt: it.price_cap.map(|c| c.to_string()).unwrap_or_default(),
        list_type: it.list_type.to_string(),
        begndate: it.begin.to_string(),
        enddate: it.end.map(|d| d.to_string()).unwrap_or_default(),
        account_excluded: it.account_excluded.map(|e| e.code().to_string()).unwrap_or_default(),
        category: it.category.map(|c| c.code().to_string()).unwrap_or_default(),
        med_chrgitm_type: it.chrgitm_type.as_deref().unwrap_or_default().to_string(),
        lmt_used_flag: if it.restricted { "1" } else { "0" }.into(),
    }
}

pub fn list_catalogue_items(rules: &RuleSet, q: &pb::ListCatalogueItemsRequest) -> Result<pb::ListCatalogueItemsResponse, ServiceError> {
    let pack = known_pack(rules, "admdvs", &q.admdvs)?;
    let mut v = Violations::default();
    let date = wire::parse_date(&mut v, "date", &q.date);
    let size = match q.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n if n > MAX_PAGE_SIZE => {
            v.add("page_size", format!("at most {MAX_PAGE_SIZE}"));
            0
        }
        n => n,
    } as usize;
    let start = if q.page_token.is_empty() {
        0
    } else {
        match q.page_token.parse::<usize>() {
            Ok(n) if n <= pack.catalogue.order.len() => n,
            _ => {
                v.add("page_token", "not a token from a previous page");
                0
            }
        }
    };
    if q.page_num > 0 && !q.page_token.is_empty() {
        v.add("page_num", "give page_num or page_token, not both");
    }
    if q.page_num > MAX_PAGE_NUM {
        v.add("page_num", format!("at most {MAX_PAGE_NUM}"));
    }
    if q.hilist_code.len() > 64 {
        v.add("hilist_code", "at most 64 characters");
    }
    v.into_result(())?;
    let date = date.expect("checked");
    let cat = &pack.catalogue;
    if !q.hilist_code.is_empty() {
        let items = cat.lookup(&q.hilist_code, date).map(catalogue_item).into_iter().collect();
        return Ok(pb::ListCatalogueItemsResponse { items, next_page_token: String::new(), sample: cat.sample });
    }
    let mut items = Vec::with_capacity(size);
    let mut pos = start;
    // A page number skips the valid items of the pages before it.
    let mut skip = (q.page_num.saturating_sub(1) as usize).saturating_mul(size);
    while skip > 0 && pos < cat.order.len() {
        if cat.lookup(&cat.order[pos], date).is_some() {
            skip -= 1;
        }
        pos += 1;
    }
    while pos < cat.order.len() && items.len() < size {
        if let Some(it) = cat.lookup(&cat.order[pos], date) {
            items.push(catalogue_item(it));
        }
        pos += 1;
    }
    let next_page_token = if pos < cat.order.len() { pos.to_string() } else { String::new() };
    Ok(pb::ListCatalogueItemsResponse { items, next_page_token, sample: cat.sample })
}
