//! A catalogue file: items with class, self-pay share, price cap, dates and categories.

use super::*;

impl Cx {
    pub(crate) fn catalogue(&mut self, f: &str, raw: &RawCatalogueFile) -> Option<(Admdvs, Catalogue)> {
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
            let chrgitm_type = it.med_chrgitm_type.as_deref().map(|t| t.trim());
            if chrgitm_type.is_some_and(|t| !crate::codes::is_charge_type(t)) {
                self.err(f, &format!("{k}.med_chrgitm_type"), "must be a national 医疗收费项目类别, 01 to 14");
                continue;
            }
            let restricted = match it.lmt_used_flag.as_deref() {
                None | Some("0") => false,
                Some("1") => true,
                Some(_) => {
                    self.err(f, &format!("{k}.lmt_used_flag"), "must be 0 or 1");
                    continue;
                }
            };
            let item = CatalogueItem {
                account_excluded,
                category,
                chrgitm_type: chrgitm_type.map(Into::into),
                restricted,
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
}
