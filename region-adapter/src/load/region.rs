//! A region file: the region, its policy versions (terms, cross-region, contributions, pharmacy,
//! account, chronic diseases) and supervision thresholds.

use super::*;

impl Cx {
    pub(crate) fn region(&mut self, f: &str, raw: &RawRegionFile) -> Option<RegionPack> {
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

    pub(crate) fn policy(&mut self, f: &str, key: &str, p: &RawPolicy) -> Option<PolicyVersion> {
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

    pub(crate) fn cross_region(&mut self, f: &str, key: &str, cr: &RawCrossRegion) -> Option<CrossRegionTerms> {
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

    pub(crate) fn supervision(&mut self, f: &str, s: &RawSupervision) -> Option<SupervisionTerms> {
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

    pub(crate) fn pharmacy(&mut self, f: &str, key: &str, p: &RawPharmacy) -> Option<PharmacyTerms> {
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

    pub(crate) fn account(&mut self, f: &str, key: &str, a: &RawAccount) -> Option<AccountTerms> {
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
}
