//! A province file, and the check of each of its cities' packs against it.

use super::*;

impl Cx {
    pub(crate) fn province(&mut self, f: &str, raw: &RawProvinceFile) -> Option<ProvincialRule> {
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
pub(crate) fn check_against_province(cx: &mut Cx, f: &str, pack: &RegionPack, rule: &ProvincialRule) {
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
