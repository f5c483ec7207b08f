//! Rule packs are refused whole, with the file, the key and the reason, for every kind of mistake an
//! operator can make; and the shipped packs all load and say where every number comes from.

use region_adapter::bundled::FILES;
use region_adapter::model::Provenance;
use region_adapter::*;

/// The bundled files with `file`'s text changed by replacing `from` with `to` (which must occur).
fn with_edit(file: &str, from: &str, to: &str) -> Vec<(String, String)> {
    FILES
        .iter()
        .map(|(n, t)| {
            let t = if *n == file {
                assert!(t.contains(from), "{file} does not contain {from:?}");
                t.replacen(from, to, 1)
            } else {
                t.to_string()
            };
            (n.to_string(), t)
        })
        .collect()
}

fn refused(files: Vec<(String, String)>) -> Vec<LoadError> {
    RuleSet::load_texts(&files).expect_err("should be refused").0
}

fn assert_refused(file: &str, from: &str, to: &str, key: &str, reason: &str) {
    let errs = refused(with_edit(file, from, to));
    assert!(
        errs.iter().any(|e| e.file == file && e.key.contains(key) && e.reason.contains(reason)),
        "expected {file}: {key}: …{reason}…, got {errs:#?}"
    );
}

const SZ: &str = "421300-suizhou.toml";
const SZ_CAT: &str = "421300-suizhou.catalogue.toml";

#[test]
fn shipped_packs_load_and_cover_every_seed_region() {
    let r = region_adapter::bundled::rules().unwrap();
    for adm in ["421300", "360100", "150500", "320100", "140100"] {
        let pack = r.region(Admdvs::parse(adm).unwrap()).unwrap_or_else(|| panic!("{adm} missing"));
        assert!(pack.catalogue.sample);
        assert!(pack.catalogue.order.len() >= 40, "{adm} has {} items", pack.catalogue.order.len());
        let classes: std::collections::HashSet<_> = pack.catalogue.items.values().flatten().map(|i| i.class.code()).collect();
        assert_eq!(classes.len(), 3, "{adm} covers every class");
        assert!(pack.catalogue.items.values().flatten().any(|i| i.price_cap.is_some()));
        assert!(pack.catalogue.items.values().flatten().any(|i| i.price_cap.is_none()));
    }
    assert_eq!(r.provinces.len(), 2);
    let nanchang = r.region(Admdvs::parse("360100").unwrap()).unwrap();
    assert!(nanchang.policies[0].chronic.len() >= 8);
}

#[test]
fn shipped_sources_name_existing_seed_files() {
    // Every `source` names one of the five seed documents (region-adapter/seeds), so a citation can be followed.
    let seeds = [
        "000_6c14e1c59d0c0e48.txt",
        "001_b9ef1092aa323989.txt",
        "002_f44a2f3b4bfa0ef1.txt",
        "003_a9d74b92acd07a75.txt",
        "004_1538c64fd470d9a8.txt",
    ];
    for (name, text) in FILES {
        for (i, _) in text.match_indices("source = \"") {
            let cited = &text[i + 10..i + 34];
            assert!(seeds.contains(&cited), "{name} cites {cited:?}");
        }
    }
    let r = region_adapter::bundled::rules().unwrap();
    let sz = r.region(Admdvs::parse("421300").unwrap()).unwrap();
    assert_eq!(
        sz.policies[0].in_service.cap_fen.provenance,
        Provenance::Source { file: "003_a9d74b92acd07a75.txt".into(), place: "art. 8".into() }
    );
    assert!(sz.policies[1].validity.is_assumption());
}

#[test]
fn bundled_list_matches_the_rules_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let bundled: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, bundled, "regenerate src/bundled.rs after adding or removing a rule file");
    assert_eq!(RuleSet::load_dir(&dir).unwrap().regions.len(), 5);
}

#[test]
fn parameter_without_source_or_assumption_is_refused() {
    assert_refused(
        SZ,
        r#"cap = { value = "1300.00", source = "003_a9d74b92acd07a75.txt art. 8" }"#,
        r#"cap = { value = "1300.00" }"#,
        "policy[0].in_service.cap",
        "needs a `source`",
    );
    assert_refused(
        SZ,
        "source = \"003_a9d74b92acd07a75.txt art. 8\" }\nratio",
        "source = \"somewhere\" }\nratio",
        "in_service.cap",
        "must be \"<seed file> <article>\"",
    );
}

#[test]
fn ratio_outside_0_to_1_is_refused() {
    assert_refused(SZ, r#"["0.80", "0.70", "0.60"]"#, r#"["1.80", "0.70", "0.60"]"#, "policy[0].in_service.ratio", "outside 0–1");
}

#[test]
fn unknown_levels_are_refused() {
    assert_refused(SZ, r#"["0.80", "0.70", "0.60"]"#, r#"["0.80", "0.70", "0.60", "0.50"]"#, "in_service.ratio", "unknown levels");
    assert_refused(SZ, "min_level = { value = 1,", "min_level = { value = 4,", "cross_region.min_level", "unknown level 4");
}

#[test]
fn negative_amount_is_refused() {
    assert_refused(SZ, r#"deductible = { value = "500.00""#, r#"deductible = { value = "-500.00""#, "in_service.deductible", "negative");
}

#[test]
fn float_amount_is_refused() {
    // Amounts are strings so no float ever touches money.
    let errs = refused(with_edit(SZ, r#"deductible = { value = "500.00""#, r#"deductible = { value = 500.0"#));
    assert!(errs.iter().any(|e| e.file == SZ), "{errs:#?}");
}

#[test]
fn overlapping_policy_versions_are_refused() {
    assert_refused(SZ, r#"effective_from = "2024-12-31""#, r#"effective_from = "2024-06-01""#, "policy", "overlap");
}

#[test]
fn gap_between_policy_versions_is_refused() {
    assert_refused(SZ, r#"effective_from = "2024-12-31""#, r#"effective_from = "2025-02-01""#, "policy", "gap in validity");
}

#[test]
fn duplicate_item_codes_are_refused() {
    assert_refused(SZ_CAT, r#"hilist_code = "XA10BAE056A0""#, r#"hilist_code = "XC08CAA017A0""#, "hilist_code", "duplicate item code");
}

#[test]
fn class_b_item_without_selfpay_prop_is_refused() {
    assert_refused(SZ_CAT, "chrgitm_lv = \"02\"\nselfpay_prop = \"0.10\"\n", "chrgitm_lv = \"02\"\n", "selfpay_prop", "needs selfpay_prop");
}

#[test]
fn malformed_item_code_is_refused() {
    assert_refused(
        SZ_CAT,
        r#"hilist_code = "XA10BAE056A0""#,
        r#"hilist_code = "XA10BAE056""#,
        "item[1].hilist_code",
        "not a national-style code",
    );
}

#[test]
fn jiangsu_city_below_the_provincial_floor_is_refused_citing_000() {
    // 000 §三 Q3: ratio ≥ 60%, deductible ≤ 1% and cap ≈ 8% of the city's 2021 average wage.
    assert_refused(
        "320100-nanjing.toml",
        r#"["0.75", "0.70", "0.60"]"#,
        r#"["0.75", "0.70", "0.55"]"#,
        "in_service.ratio",
        "000_6c14e1c59d0c0e48.txt",
    );
    assert_refused(
        "320100-nanjing.toml",
        r#"deductible = { value = "1000.00""#,
        r#"deductible = { value = "1500.00""#,
        "in_service.deductible",
        "1% of the 2021 average wage",
    );
    assert_refused(
        "320100-nanjing.toml",
        r#"cap = { value = "9440.00", assumption = "city figure not in the seeds; 8%"#,
        r#"cap = { value = "3000.00", assumption = "city figure not in the seeds; 8%"#,
        "in_service.cap",
        "is not about 8%",
    );
}

#[test]
fn shanxi_city_with_retirees_below_in_service_is_refused_citing_001() {
    // 001 §二(一): ratio ≥ 50%, tilted to retirees.
    assert_refused(
        "140100-taiyuan.toml",
        r#"["0.65", "0.60", "0.55"]"#,
        r#"["0.55", "0.60", "0.55"]"#,
        "policy[0].retired",
        "001_b9ef1092aa323989.txt",
    );
    assert_refused(
        "140100-taiyuan.toml",
        r#"["0.60", "0.55", "0.50"]"#,
        r#"["0.60", "0.55", "0.45"]"#,
        "in_service.ratio",
        "below 山西省's floor of 50%",
    );
}

/// Issue 31: 001 §二(一) asks for higher terms, not equal ones: retirees on exactly the in-service terms,
/// or a grassroots ratio no higher than level 3's, are refused citing the article.
#[test]
fn shanxi_city_with_equal_terms_is_refused_citing_001() {
    let ty = "140100-taiyuan.toml";
    let files = with_edit(ty, r#"["0.65", "0.60", "0.55"]"#, r#"["0.60", "0.55", "0.50"]"#)
        .into_iter()
        .map(|(n, t)| if n == ty { (n, t.replacen(r#"value = "2500.00""#, r#"value = "2000.00""#, 1)) } else { (n, t) })
        .collect();
    let errs = refused(files);
    assert!(
        errs.iter().any(|e| e.file == ty && e.key.contains("retired") && e.reason.contains("at least one") && e.reason.contains("§二(一)")),
        "{errs:#?}"
    );
    assert_refused(ty, r#"["0.60", "0.55", "0.50"]"#, r#"["0.55", "0.55", "0.55"]"#, "in_service.ratio", "grassroots");
}

#[test]
fn nanchang_chronic_disease_outside_the_seed_range_is_refused() {
    // 002 §4(二)2: zero deductible, 80–98%, caps 4,000–600,000.
    assert_refused(
        "360100-nanchang.toml",
        r#"ratio = { value = "0.98""#,
        r#"ratio = { value = "0.99""#,
        "chronic[6].ratio",
        "outside the list's range",
    );
    assert_refused(
        "360100-nanchang.toml",
        r#"cap = { value = "4000.00", assumption"#,
        r#"cap = { value = "3000.00", assumption"#,
        "chronic[0].cap",
        "outside the list's range",
    );
}

#[test]
fn a_broken_file_refuses_the_whole_set_and_reports_every_problem() {
    let mut files = with_edit(SZ, r#"["0.80", "0.70", "0.60"]"#, r#"["1.80", "0.70", "0.60"]"#);
    let cat = files.iter_mut().find(|(n, _)| n == SZ_CAT).unwrap();
    cat.1 = cat.1.replacen("chrgitm_lv = \"02\"\nselfpay_prop = \"0.10\"\n", "chrgitm_lv = \"02\"\n", 1);
    let errs = RuleSet::load_texts(&files).unwrap_err();
    assert!(errs.0.len() >= 2, "{errs}");
    assert!(errs.to_string().contains(SZ) && errs.to_string().contains(SZ_CAT));
}

#[test]
fn unknown_keys_and_missing_catalogue_are_refused() {
    assert_refused(
        SZ,
        "[policy.retiree]",
        "[policy.retiree]\nfrom_next_year = { value = true, source = \"003_a9d74b92acd07a75.txt art. 12\" }",
        "line",
        "unknown field",
    );
    let files: Vec<(String, String)> = FILES.iter().filter(|(n, _)| *n != SZ_CAT).map(|(n, t)| (n.to_string(), t.to_string())).collect();
    assert!(refused(files).iter().any(|e| e.file == SZ && e.reason.contains("no catalogue")));
}

#[test]
fn a_pharmacy_rule_names_its_level_and_where_it_comes_from() {
    // Suizhou art. 11: fills take the prescriber's level, sourced; another rule must say which level.
    let from = r#"use_prescribing_level = { value = true, source = "003_a9d74b92acd07a75.txt art. 11" }"#;
    assert_refused(SZ, from, r#"use_prescribing_level = { value = false, assumption = "test" }"#, "pharmacy.level", "needed when");
    assert_refused(
        SZ,
        "[policy.pharmacy]\n",
        "[policy.pharmacy]\nlevel = { value = 4, assumption = \"test\" }\n",
        "pharmacy.level",
        "1, 2 or 3",
    );
    assert_refused(SZ, from, "", "line", "missing field `use_prescribing_level`");
    let rules = RuleSet::load_texts(&with_edit(
        SZ,
        from,
        r#"use_prescribing_level = { value = false, assumption = "test" }
level = { value = 1, assumption = "test: fills at the grassroots ratio" }"#,
    ))
    .expect("a fixed pharmacy level loads");
    let p =
        rules.region(Admdvs::parse("421300").unwrap()).unwrap().policy_on(chrono::NaiveDate::from_ymd_opt(2024, 6, 1).unwrap()).unwrap();
    assert!(!p.pharmacy.use_prescribing_level.value && p.pharmacy.level.as_ref().unwrap().value == Level::new(1).unwrap());
    // The shipped packs: sourced where the seed says it (Suizhou, Nanjing), an assumption elsewhere.
    let shipped = bundled::rules().unwrap();
    for (adm, sourced) in [("421300", true), ("320100", true), ("360100", false), ("150500", false), ("140100", false)] {
        let pack = shipped.region(Admdvs::parse(adm).unwrap()).unwrap();
        let rule = &pack.policies[0].pharmacy.use_prescribing_level;
        assert_eq!(matches!(rule.provenance, Provenance::Source { .. }), sourced, "{adm}");
    }
}

#[test]
fn provenance_says_what_the_seed_says() {
    let rules = bundled::rules().unwrap();
    let policy = |adm: &str| &rules.region(Admdvs::parse(adm).unwrap()).unwrap().policies[0];
    let assumed = |p: &Provenance| matches!(p, Provenance::Assumption(_));
    // Nanchang 002 §5(二) names neither a filing nor institution levels for visits outside the city.
    let nc = &policy("360100").cross_region;
    assert!(assumed(&nc.filing_required.provenance) && assumed(&nc.min_level.provenance) && assumed(&nc.min_level_scope.provenance));
    // Tongliao Q5: level 2 or above for every visit elsewhere (异地), not only across provinces.
    let tl = &policy("150500").cross_region;
    assert_eq!(tl.min_level_scope.value, model::LevelScope::CrossRegion);
    assert!(matches!(&tl.min_level_scope.provenance, Provenance::Source { place, .. } if &**place == "Q5"));
    // Suizhou art. 10: that unfiled members get nothing elsewhere is our reading, and says so.
    let sz = &policy("421300").cross_region;
    assert!(matches!(&sz.filing_required.provenance, Provenance::Assumption(why) if why.contains("our reading")));
    // `networked_only` is gone (nothing could read it: every claim here is a direct settlement).
    assert_refused(
        SZ,
        "[policy.cross_region]\n",
        "[policy.cross_region]\nnetworked_only = { value = true, assumption = \"x\" }\n",
        "line",
        "unknown field `networked_only`",
    );
    // Shanxi 001 §二(一): higher ratios at grassroots; a Taiyuan pack the other way round is refused.
    assert_refused(
        "140100-taiyuan.toml",
        r#"ratio = { value = ["0.60", "0.55", "0.50"]"#,
        r#"ratio = { value = ["0.50", "0.55", "0.60"]"#,
        "in_service.ratio",
        "grassroots (level 1) ratio must be above",
    );
}

#[test]
fn supervision_thresholds_are_checked_and_say_where_they_come_from() {
    assert_refused(
        SZ,
        r#"selfpay_share = { value = "0.50""#,
        r#"selfpay_share = { value = "1.50""#,
        "supervision.selfpay_share",
        "outside 0–1",
    );
    assert_refused(
        SZ,
        r#"price_over_cap_factor = { value = "2""#,
        r#"price_over_cap_factor = { value = "1""#,
        "supervision.price_over_cap_factor",
        "above 1",
    );
    assert_refused(
        SZ,
        "frequent_visits_days = { value = 7,",
        "frequent_visits_days = { value = 40,",
        "supervision.frequent_visits_days",
        "1 to 31",
    );
    assert_refused(SZ, "same_day_regions = { value = 2,", "same_day_regions = { value = 1,", "supervision.same_day_regions", "at least 2");
    assert_refused(
        SZ,
        r#"high_cost_per_visit = { value = "2000.00""#,
        r#"high_cost_per_visit = { value = "0.00""#,
        "supervision.high_cost_per_visit",
        "more than 0",
    );
    assert_refused(
        SZ,
        r#"warn_min_claims = { value = 5, assumption = "fewer claims in a month say little about an institution" }"#,
        "warn_min_claims = { value = 5 }",
        "supervision.warn_min_claims",
        "`source`",
    );
    assert_refused(SZ_CAT, r#"category = "examination""#, r#"category = "imaging""#, "category", "examination or lab");
    // Every shipped threshold is an assumption (no seed gives a number), and says why.
    let rules = bundled::rules().unwrap();
    for (adm, pack) in &rules.regions {
        let s = &pack.supervision;
        for p in [&s.high_cost_per_visit_fen.provenance, &s.pharmacy_cashout_fen.provenance, &s.warn_cost_per_visit_fen.provenance] {
            assert!(matches!(p, Provenance::Assumption(a) if a.len() > 10), "{adm}: {p:?}");
        }
    }
    // A pack without [supervision] gets the defaults, each an assumption that says it is one.
    let without = with_edit(SZ, "[supervision]\n", "[unused_by_test]\n");
    let cut: Vec<(String, String)> = without
        .into_iter()
        .map(|(n, t)| if n == SZ { (n, t[..t.find("[unused_by_test]").unwrap()].to_string()) } else { (n, t) })
        .collect();
    let rules = RuleSet::load_texts(&cut).unwrap();
    let d = &rules.region(Admdvs::parse("421300").unwrap()).unwrap().supervision;
    assert_eq!(d.same_day_regions.value, 2);
    assert!(matches!(&d.warn_growth_bp.provenance, Provenance::Assumption(a) if a.contains("default of this build")));
}

/// Issue 31: every `source` of every pack cites a place that occurs in the seed it names (the seeds are
/// in `region-adapter/seeds/`): `art. 14(三)` → 第十四条 and (三); `§二(一)三是` → 二、, (一), 三是;
/// `§4(三)1` → 四、, (三), 1、; `§三 Q5` → 5、 (Jiangsu's 政策十问); `Q8` → 问题8 (Tongliao's questions).
#[test]
fn every_source_cites_a_place_that_occurs_in_its_seed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut checked = 0;
    for (name, text) in FILES {
        for (i, _) in text.match_indices("source = \"") {
            let cited = &text[i + 10..];
            let cited = &cited[..cited.find('"').unwrap()];
            let (file, place) = cited.split_once(' ').unwrap();
            let seed = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{name}: {file}: {e}"));
            // Full-width brackets and spaces inside the seeds' lines are normalised away.
            let seed: String = seed
                .chars()
                .filter(|c| !c.is_whitespace())
                .map(|c| match c {
                    '（' => '(',
                    '）' => ')',
                    c => c,
                })
                .collect();
            for marker in markers(file, place) {
                assert!(seed.contains(&marker), "{name}: source {cited:?}: {marker:?} does not occur in {file}");
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} sources checked");
}

/// The texts a cited place must occur as in its seed.
fn markers(file: &str, place: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = place.trim();
    if let Some(a) = rest.strip_prefix("art. ") {
        let n: String = a.chars().take_while(char::is_ascii_digit).collect();
        out.push(format!("第{}条", chinese(n.parse().unwrap())));
        rest = &a[n.len()..];
    } else if let Some(q) = rest.strip_prefix('Q') {
        assert!(file.starts_with("004"), "{file} {place}: questions are numbered Q only in 004");
        out.push(format!("问题{}", q.trim()));
        return out;
    } else if let Some(s) = rest.strip_prefix('§') {
        let section: String = s.chars().take_while(|c| !matches!(c, '(' | ' ')).collect();
        let numeral = match section.parse::<u32>() {
            Ok(n) => chinese(n),
            Err(_) => section.clone(),
        };
        out.push(format!("{numeral}、"));
        rest = &s[section.len()..];
    } else {
        panic!("{file}: unreadable place {place:?}");
    }
    if let Some(inner) = rest.strip_prefix('(') {
        let (sub, after) = inner.split_once(')').expect("a closing bracket");
        out.push(format!("({sub})"));
        rest = after;
    }
    let rest = rest.trim();
    if let Some(q) = rest.strip_prefix("Q") {
        let (n, tail) = q.split_once(' ').unwrap_or((q, ""));
        out.push(format!("{n}、"));
        if !tail.is_empty() {
            out.push(tail.to_string());
        }
    } else if let Some(d) = rest.chars().next().filter(char::is_ascii_digit) {
        out.push(format!("{d}、"));
    } else if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// 1–99 in Chinese numerals, as article numbers are written (第十四条, 第二十七条).
fn chinese(n: u32) -> String {
    const D: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        1..=9 => D[n as usize].into(),
        10 => "十".into(),
        11..=19 => format!("十{}", D[(n % 10) as usize]),
        20..=99 => format!("{}十{}", D[(n / 10) as usize], D[(n % 10) as usize]),
        _ => panic!("article {n}"),
    }
}

/// Issue 31: every placeholder in force in the bundled packs is listed in the README, with its value, so an
/// operator who has to replace them finds them all in one place.
#[test]
fn the_readme_lists_every_placeholder() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let rules = region_adapter::bundled::rules().unwrap();
    let mut n = 0;
    for (pack, p) in rules.placeholders() {
        let row = format!("| {} {} | `{}` | {} |", pack.name_en, pack.admdvs, p.key, p.value);
        assert!(readme.contains(&row), "README lacks the placeholder row starting {row:?}");
        n += 1;
    }
    assert_eq!(readme.matches("| `policy[").count(), n, "the README lists a placeholder the packs no longer have");
    let tongliao = rules.region(Admdvs::parse("150500").unwrap()).unwrap();
    assert!(tongliao.policies[0].in_service.deductible_fen.provenance.is_placeholder());
    assert!(tongliao.policies[0].in_service.deductible_fen.provenance.to_string().contains("most generous"));
}

#[test]
fn a_fund_paid_item_cannot_be_marked_account_excluded() {
    // Public health, fitness and wellness are outside the fund's scope: a 甲 or 乙 item so marked would be
    // fund-paid while the account may not pay it.
    let a = "chrgitm_lv = \"01\"\npric_uplmt_amt = \"1.20\"";
    assert_refused(SZ_CAT, a, &format!("{a}\naccount_excluded = \"wellness\""), "item[0].account_excluded", "丙类");
    let b = "chrgitm_lv = \"02\"\nselfpay_prop = \"0.10\"";
    assert_refused(SZ_CAT, b, &format!("{b}\naccount_excluded = \"fitness\""), "account_excluded", "丙类");
}

#[test]
fn an_item_s_charge_type_and_restriction_flag_are_national_codes() {
    // 医疗收费项目类别 is 01–14 of the national dictionary; 限制使用标志 is 0 or 1.
    let t = "med_chrgitm_type = \"09\"";
    assert_refused(SZ_CAT, t, "med_chrgitm_type = \"15\"", "item[0].med_chrgitm_type", "01 to 14");
    assert_refused(SZ_CAT, t, "med_chrgitm_type = \"9\"", "item[0].med_chrgitm_type", "01 to 14");
    assert_refused(SZ_CAT, t, "med_chrgitm_type = \"+9\"", "item[0].med_chrgitm_type", "01 to 14");
    assert_refused(SZ_CAT, t, &format!("{t}\nlmt_used_flag = \"Y\""), "item[0].lmt_used_flag", "0 or 1");
}
