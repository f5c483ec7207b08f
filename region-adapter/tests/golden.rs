//! Golden cases worked out by hand from the seed articles. Each test's comment shows the arithmetic.
//! Claims are priced with the service location's sample catalogue (就医地目录) and paid under the
//! insured region's policy (参保地政策).

mod common;
use common::*;
use region_adapter::*;

const NANCHANG_FILING: &[Filing] = &[];

fn suizhou_filed<'a>(filings: &'a [Filing], date: &'a str, level: u32, t: PsnType) -> Case<'a> {
    let mut c = Case::new("421300", "360100", date, level, t);
    c.member.filings = filings;
    c
}

fn pays(c: &Case<'_>, yuan: u32) -> Amounts {
    c.settle(&in_scope(yuan)).expect("settles").amounts
}

// ---- Suizhou 随州 421300 (003 art. 8) -------------------------------------------------------

#[test]
fn suizhou_in_service_deductible_500_and_ratios_80_70_60() {
    // 800.00 in scope: deductible 500.00; (800 − 500) × 80% / 70% / 60% = 240.00 / 210.00 / 180.00.
    let f = [filing("360000")];
    for (level, fund) in [(1, "240.00"), (2, "210.00"), (3, "180.00")] {
        let a = pays(&suizhou_filed(&f, "2023-03-10", level, PsnType::InService), 800);
        assert_eq!(a.act_pay_dedc, y("500.00"), "level {level}");
        assert_eq!(a.hifp_pay, y(fund), "level {level}");
        assert_eq!(a.fund_pay_sumamt, y(fund));
        assert_eq!(a.pool_prop_selfpay, y("300.00") - y(fund));
        assert_eq!(a.psn_part_amt, y("800.00") - y(fund));
        assert_eq!(a.psn_cash_pay, a.psn_part_amt);
    }
}

#[test]
fn suizhou_retiree_deductible_is_400_and_ratios_85_75_65() {
    // 800.00: deductible 400.00; 400 × 85% / 75% / 65% = 340.00 / 300.00 / 260.00.
    let f = [filing("360000")];
    for (level, fund) in [(1, "340.00"), (2, "300.00"), (3, "260.00")] {
        let a = pays(&suizhou_filed(&f, "2023-03-10", level, PsnType::Retired), 800);
        assert_eq!(a.act_pay_dedc, y("400.00"));
        assert_eq!(a.hifp_pay, y(fund), "level {level}");
    }
}

#[test]
fn suizhou_cap_1300_reached_across_visits_then_new_year_resets() {
    // 2,000.00 a visit at level 1. Visit 1: deductible 500, 1500 × 80% = 1200. Visit 2: 2000 × 80% =
    // 1600 but only 100 of the 1300 cap is left → 100. Visit 3: nothing left → 0. 2024: all fresh.
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-03-10", 1, PsnType::InService);
    let mut paid = Vec::new();
    for _ in 0..3 {
        let s = c.settle(&in_scope(2000)).unwrap();
        paid.push(s.amounts.hifp_pay);
        c.state.deductible_used_fen += s.delta.deductible_used_fen;
        c.state.fund_paid_fen += s.delta.fund_paid_fen;
        c.state.visits += 1;
    }
    assert_eq!(paid, vec![y("1200.00"), y("100.00"), 0]);
    assert_eq!(c.state.fund_paid_fen, y("1300.00"));
    assert_eq!(c.state.deductible_used_fen, y("500.00"));
    // A new natural year starts with empty accumulators (003 art. 9: 不得结转累加到下一年度).
    let next = suizhou_filed(&f, "2024-01-05", 1, PsnType::InService);
    let s = next.settle(&in_scope(2000)).unwrap();
    assert_eq!(s.year, 2024);
    assert_eq!(s.amounts.act_pay_dedc, y("500.00"));
    assert_eq!(s.amounts.hifp_pay, y("1200.00"));
}

#[test]
fn suizhou_retiree_terms_start_the_month_after_retirement() {
    // 003 art. 12: retired 2023-05-20 → in-service terms on 2023-05-25, retiree terms from 2023-06-01.
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-05-25", 1, PsnType::Retired);
    c.member.retire_date = Some(date("2023-05-20"));
    let before = c.settle(&in_scope(800)).unwrap();
    assert_eq!(before.member_class, MemberClass::InService);
    assert_eq!(before.amounts.hifp_pay, y("240.00")); // (800 − 500) × 80%
    c.date = "2023-06-01";
    let after = c.settle(&in_scope(800)).unwrap();
    assert_eq!(after.member_class, MemberClass::Retired);
    assert_eq!(after.amounts.hifp_pay, y("340.00")); // (800 − 400) × 85%
}

#[test]
fn suizhou_unfiled_member_treated_elsewhere_gets_no_fund_pay() {
    // 003 art. 10: only filed members are paid outside Suizhou. Unfiled → fund 0, all to the patient.
    let c = suizhou_filed(NANCHANG_FILING, "2023-03-10", 1, PsnType::InService);
    let s = c.settle(&in_scope(800)).unwrap();
    assert!(!s.eligible);
    assert_eq!(s.amounts.hifp_pay, 0);
    assert_eq!(s.amounts.act_pay_dedc, 0);
    assert_eq!(s.delta.deductible_used_fen, 0, "no deductible is consumed by an unpaid visit");
    assert_eq!(s.amounts.pool_prop_selfpay, y("800.00"));
    assert_eq!(s.amounts.psn_cash_pay, y("800.00"));
    assert!(s.steps.iter().any(|st| st.render().contains("art. 10")));
    // A filing for another province, or an expired one, does not help.
    let other = [filing("420000")];
    assert_eq!(suizhou_filed(&other, "2023-03-10", 1, PsnType::InService).settle(&in_scope(800)).unwrap().amounts.hifp_pay, 0);
    let expired = [Filing { mdtrt_admdvs: adm("360100"), begin: date("2022-01-01"), end: Some(date("2022-12-31")), group: None }];
    assert_eq!(suizhou_filed(&expired, "2023-03-10", 1, PsnType::InService).settle(&in_scope(800)).unwrap().amounts.hifp_pay, 0);
    // A filing for the city itself works like one for its province.
    let city = [filing("360100")];
    assert_eq!(suizhou_filed(&city, "2023-03-10", 1, PsnType::InService).settle(&in_scope(800)).unwrap().amounts.hifp_pay, y("240.00"));
}

#[test]
fn pharmacy_filling_a_level2_prescription_uses_level2_ratio() {
    // 003 art. 11: 外配购药 at the prescribing institution's level. Pharmacy registered as level 1,
    // prescription from level 2: (800 − 500) × 70% = 210.00, not 80%.
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-03-10", 1, PsnType::InService);
    c.med_type = MedType::Pharmacy;
    c.prescribing = Some(2);
    let s = c.settle(&in_scope(800)).unwrap();
    assert_eq!(s.level, Level::new(2).unwrap());
    assert_eq!(s.amounts.hifp_pay, y("210.00"));
    assert!(s.steps.iter().any(|st| st.render().contains("prescribing institution")));
    c.prescribing = None;
    assert_eq!(c.settle(&in_scope(800)).unwrap_err(), EngineError::MissingPrescribingLevel);
}

#[test]
fn suizhou_pooling_only_member_has_no_account() {
    // 003 art. 14(四): 单建统筹 members have no account; the whole patient part is cash.
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-03-10", 1, PsnType::InService);
    c.member.pooling_only = true;
    c.account = Some(AccountSource::Own { balance_fen: y("500.00") });
    c.acct_used = true;
    let a = c.settle(&in_scope(800)).unwrap().amounts;
    assert_eq!(a.hifp_pay, y("240.00")); // outpatient benefits still apply (art. 13)
    assert_eq!(a.acct_pay, 0);
    assert_eq!(a.psn_cash_pay, y("560.00"));
}

#[test]
fn account_pays_up_to_its_balance_and_family_pay_is_marked() {
    // Patient part 800 − 240 = 560.00. Own balance 300 → account 300, cash 260, balance after 0.
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-03-10", 1, PsnType::InService);
    c.acct_used = true;
    c.account = Some(AccountSource::Own { balance_fen: y("300.00") });
    let a = c.settle(&in_scope(800)).unwrap().amounts;
    assert_eq!((a.acct_pay, a.acct_mulaid_pay, a.psn_cash_pay, a.balc), (y("300.00"), 0, y("260.00"), 0));
    // A family member's account (003 art. 15(二)) with 1000.00 pays all 560.00, marked as mutual aid.
    c.account = Some(AccountSource::Family { balance_fen: y("1000.00") });
    let a = c.settle(&in_scope(800)).unwrap().amounts;
    assert_eq!((a.acct_pay, a.acct_mulaid_pay, a.psn_cash_pay, a.balc), (y("560.00"), y("560.00"), 0, y("440.00")));
    // Not asked to pay → nothing taken, balance reported unchanged.
    c.acct_used = false;
    let s = c.settle(&in_scope(800)).unwrap();
    assert_eq!((s.amounts.acct_pay, s.amounts.balc, s.delta.account_debit_fen), (0, y("1000.00"), 0));
}

#[test]
fn visit_before_any_policy_version_is_refused() {
    // Suizhou's rules start 2022-12-31 (003 art. 33); Tongliao's 2022-10-01 (004 Q1).
    let c = Case::new("421300", "360100", "2022-06-01", 1, PsnType::InService);
    assert!(matches!(c.settle(&in_scope(100)), Err(EngineError::NoPolicyOnDate { .. })));
    let c = Case::new("150500", "421300", "2022-09-30", 2, PsnType::InService);
    assert!(matches!(c.settle(&in_scope(100)), Err(EngineError::NoPolicyOnDate { .. })));
    // After art. 33's two years the renewal version (an assumption) applies with the same terms.
    let f = [filing("360000")];
    assert_eq!(pays(&suizhou_filed(&f, "2026-11-22", 1, PsnType::InService), 800).hifp_pay, y("240.00"));
}

// ---- Nanchang 南昌 360100 (002 §4(二)) ------------------------------------------------------

#[test]
fn nanchang_in_service_600_and_60_55_50_cap_1800() {
    // No filing needed (002 §5(二)). 1,000.00: deductible 600; 400 × 60% / 55% / 50%.
    for (level, fund) in [(1, "240.00"), (2, "220.00"), (3, "200.00")] {
        let a = pays(&Case::new("360100", "421300", "2023-04-01", level, PsnType::InService), 1000);
        assert_eq!(a.act_pay_dedc, y("600.00"));
        assert_eq!(a.hifp_pay, y(fund), "level {level}");
    }
    // Cap 1800: with 1,700 paid already, a large visit gets only 100.
    let mut c = Case::new("360100", "421300", "2023-04-01", 1, PsnType::InService);
    c.state = YearState { deductible_used_fen: y("600.00"), fund_paid_fen: y("1700.00"), visits: 5 };
    assert_eq!(c.settle(&in_scope(5000)).unwrap().amounts.hifp_pay, y("100.00"));
}

#[test]
fn nanchang_retiree_plus_5_points_cap_2000() {
    // 1,000.00: deductible 600; 400 × 65% / 60% / 55% = 260 / 240 / 220. Cap 2000.
    for (level, fund) in [(1, "260.00"), (2, "240.00"), (3, "220.00")] {
        let a = pays(&Case::new("360100", "421300", "2023-04-01", level, PsnType::Retired), 1000);
        assert_eq!(a.hifp_pay, y(fund), "level {level}");
    }
    let mut c = Case::new("360100", "421300", "2023-04-01", 1, PsnType::Retired);
    c.state = YearState { deductible_used_fen: y("600.00"), fund_paid_fen: y("1950.00"), visits: 5 };
    assert_eq!(c.settle(&in_scope(5000)).unwrap().amounts.hifp_pay, y("50.00"));
}

#[test]
fn nanchang_chronic_disease_zero_deductible_own_cap() {
    // 002 §4(二)2: zero deductible. Hypertension (assumed 80%, cap 4,000): 1,000.00 → 800.00.
    let mut c = Case::new("360100", "421300", "2023-04-01", 3, PsnType::InService);
    c.med_type = MedType::ChronicDisease;
    c.dise_code = Some("M03900");
    let s = c.settle(&in_scope(1000)).unwrap();
    assert_eq!(s.benefit, Benefit::Chronic("M03900".into()));
    assert_eq!(s.benefit.key(), "chronic:M03900");
    assert_eq!((s.amounts.act_pay_dedc, s.amounts.hifp_pay), (0, y("800.00")));
    c.state.fund_paid_fen = y("3900.00");
    assert_eq!(c.settle(&in_scope(1000)).unwrap().amounts.hifp_pay, y("100.00"));
    c.dise_code = Some("X00000");
    assert!(matches!(c.settle(&in_scope(1000)), Err(EngineError::UnknownDisease { .. })));
    c.dise_code = None;
    assert_eq!(c.settle(&in_scope(1000)).unwrap_err(), EngineError::MissingDiseaseCode);
    // Suizhou's seed has no chronic list: such a claim for a Suizhou member is refused.
    let mut s = Case::new("421300", "360100", "2023-04-01", 1, PsnType::InService);
    s.med_type = MedType::ChronicDisease;
    s.dise_code = Some("M03900");
    assert!(matches!(s.settle(&in_scope(1000)), Err(EngineError::UnknownDisease { .. })));
}

// ---- Tongliao 通辽 150500 (004 Q5, Q8) --------------------------------------------------------

#[test]
fn tongliao_ratios_60_50_and_65_55_caps_4000_5000() {
    // Deductible: an assumption of 0 (seed silent). In service 1,000.00 at level 2: 600.00; level 3:
    // 500.00. Retired: 650.00 / 550.00.
    for (t, level, fund) in [
        (PsnType::InService, 2, "600.00"),
        (PsnType::InService, 3, "500.00"),
        (PsnType::Retired, 2, "650.00"),
        (PsnType::Retired, 3, "550.00"),
    ] {
        assert_eq!(pays(&Case::new("150500", "421300", "2023-04-01", level, t), 1000).hifp_pay, y(fund));
    }
    let mut c = Case::new("150500", "421300", "2023-04-01", 2, PsnType::InService);
    c.state.fund_paid_fen = y("3800.00");
    assert_eq!(c.settle(&in_scope(1000)).unwrap().amounts.hifp_pay, y("200.00"));
    let mut r = Case::new("150500", "421300", "2023-04-01", 2, PsnType::Retired);
    r.state.fund_paid_fen = y("4800.00");
    assert_eq!(r.settle(&in_scope(1000)).unwrap().amounts.hifp_pay, y("200.00"));
}

#[test]
fn tongliao_member_at_level1_institution_in_another_province_gets_no_fund_pay() {
    // 004 Q5: cross-province only at level 2 or above; no filing needed.
    let s = Case::new("150500", "421300", "2023-04-01", 1, PsnType::InService).settle(&in_scope(1000)).unwrap();
    assert!(!s.eligible);
    assert_eq!(s.amounts.hifp_pay, 0);
    assert!(s.steps.iter().any(|st| st.render().contains("Q5")));
}

// ---- Jiangsu city (Nanjing 320100) and Shanxi city (Taiyuan 140100): assumed numbers ----------

#[test]
fn nanjing_and_taiyuan_apply_their_packs() {
    // Nanjing (assumed): 1,500.00, deductible 1000, 500 × 75% = 375.00; retired 800, 700 × 80% = 560.00.
    assert_eq!(pays(&Case::new("320100", "421300", "2023-04-01", 1, PsnType::InService), 1500).hifp_pay, y("375.00"));
    assert_eq!(pays(&Case::new("320100", "421300", "2023-04-01", 1, PsnType::Retired), 1500).hifp_pay, y("560.00"));
    // Taiyuan (assumed): 1,000.00, deductible 200, 800 × 60% / 55% / 50%; retired 65%.
    for (level, fund) in [(1, "480.00"), (2, "440.00"), (3, "400.00")] {
        assert_eq!(pays(&Case::new("140100", "421300", "2023-04-01", level, PsnType::InService), 1000).hifp_pay, y(fund));
    }
    assert_eq!(pays(&Case::new("140100", "421300", "2023-04-01", 1, PsnType::Retired), 1000).hifp_pay, y("520.00"));
}

// ---- Pricing with the service location's catalogue (DOMAIN step 1) ----------------------------

#[test]
fn pricing_splits_each_line_by_class_cap_and_selfpay_share() {
    let cat = &rules().region(adm("421300")).unwrap().catalogue;
    let d = date("2023-03-10");
    // 乙类 atorvastatin, cap 2.50, self-pay-first 10%: 30 × 2.00 = 60.00 → 6.00 first, 54.00 in scope.
    let p = cat.price(d, &[line("XC10AAA035A0", "30", "2.00")]).unwrap();
    assert_eq!((p.totals.preselfpay_fen, p.totals.inscp_fen, p.totals.overlmt_selfpay_fen), (y("6.00"), y("54.00"), 0));
    // Over the cap: 30 × 3.00 = 90.00; (3.00 − 2.50) × 30 = 15.00 over; 75.00 × 10% = 7.50 first.
    let p = cat.price(d, &[line("XC10AAA035A0", "30", "3.00")]).unwrap();
    assert_eq!((p.totals.overlmt_selfpay_fen, p.totals.preselfpay_fen, p.totals.inscp_fen), (y("15.00"), y("7.50"), y("67.50")));
    // 丙类 health check and an unknown (well-formed) code: all full self-pay.
    let p = cat.price(d, &[line("003201000010000", "1", "100.00"), line("XZ99ZZZ999Z9", "2", "5.00")]).unwrap();
    assert_eq!((p.totals.fulamt_ownpay_fen, p.totals.inscp_fen), (y("110.00"), 0));
    assert_eq!(p.lines[0].class, Some(region_adapter::model::ItemClass::C));
    assert_eq!(p.lines[1].class, None);
    // The insulin's cap changed on 2024-01-01 (122.50 → 98.00): 110.00 is within it in 2023, not 2024.
    let ins = [line("XA10AEG052B0", "1", "110.00")];
    assert_eq!(cat.price(date("2023-12-31"), &ins).unwrap().totals.overlmt_selfpay_fen, 0);
    assert_eq!(cat.price(date("2024-01-01"), &ins).unwrap().totals.overlmt_selfpay_fen, y("12.00"));
    // Half-away-from-zero per line: 乙 5% of 1.10 = 0.055 → 0.06.
    let p = cat.price(d, &[line("XA02BCA210A0", "1", "1.10")]).unwrap();
    assert_eq!(p.totals.preselfpay_fen, 6);
}

#[test]
fn bad_lines_are_refused_with_their_field() {
    let cat = &rules().region(adm("421300")).unwrap().catalogue;
    let d = date("2023-03-10");
    let mut bad = line(CLASS_A_NO_CAP, "2", "10.00");
    bad.amount_fen = y("19.99");
    let e = cat.price(d, &[line(CLASS_A_NO_CAP, "1", "1"), bad]).unwrap_err();
    assert_eq!(e, EngineError::LineAmountMismatch { line: 1 });
    assert_eq!(e.field(), "lines[1].det_item_fee_sumamt");
    assert_eq!(cat.price(d, &[line("not-a-code", "1", "1")]).unwrap_err().field(), "lines[0].hilist_code");
    assert_eq!(cat.price(d, &[line(CLASS_A_NO_CAP, "-1", "1")]).unwrap_err().field(), "lines[0].cnt");
    assert_eq!(cat.price(d, &[line(CLASS_A_NO_CAP, "1", "-1")]).unwrap_err().field(), "lines[0].pric");
    assert_eq!(cat.price(d, &[]).unwrap_err(), EngineError::NoLines);
    let many: Vec<_> = (0..101).map(|_| line(CLASS_A_NO_CAP, "1", "1")).collect();
    assert!(matches!(cat.price(d, &many), Err(EngineError::TooManyLines { got: 101, max: 100 })));
}

#[test]
fn explanation_names_rule_and_source() {
    let f = [filing("360000")];
    let mut c = suizhou_filed(&f, "2023-03-10", 1, PsnType::InService);
    c.state.deductible_used_fen = y("180.00");
    let s = c.settle(&in_scope(800)).unwrap();
    let text: Vec<String> = s.steps.iter().map(Step::render).collect();
    assert!(
        text.contains(&"deductible 500.00 left 320.00 → applied 320.00 (随州市 art. 8 [003_a9d74b92acd07a75.txt], in service)".to_string()),
        "{text:#?}"
    );
    assert!(text.iter().any(|t| t.starts_with("480.00 × 80% at level 1 = 384.00 (随州市 art. 8")), "{text:#?}");
}

// ---- Personal-account credits (个人账户计入), with dated transitions -------------------------

#[test]
fn account_credits_follow_each_regions_rule_and_jiangsus_transition() {
    use region_adapter::account::{CreditBasis, monthly_credit_fen};
    let basis = CreditBasis {
        contribution_base_fen: y("6000.00"),
        own_pension_fen: y("4000.00"),
        previous_year_credit_fen: y("150.00"),
        combined_years: 0,
        insured_years: 0,
        in_arrears: false,
        reached_required_years: None,
    };
    let credit = |adm: &str, class: MemberClass, d: &str| {
        let pack = rules().region(adm_of(adm)).unwrap();
        let p = pack.policy_on(date(d)).unwrap();
        monthly_credit_fen(p, class, date(d), basis).map(|(f, _)| f)
    };
    // In service everywhere: 2% of the contribution base (003 art. 14(一), 002 §4(三)1, 004 Q6).
    for adm in ["421300", "360100", "150500", "320100", "140100"] {
        assert_eq!(credit(adm, MemberClass::InService, "2024-06-01"), Some(y("120.00")), "{adm}");
    }
    // Suizhou retired: a fixed 70 yuan (003 art. 14(二)).
    assert_eq!(credit("421300", MemberClass::Retired, "2024-06-01"), Some(y("70.00")));
    // Tongliao retired: 2% of the (assumed) 3000 average pension = 60 (004 Q6).
    assert_eq!(credit("150500", MemberClass::Retired, "2024-06-01"), Some(y("60.00")));
    // Jiangsu (000 §三 Q5): 2023 keeps the member's 2022 amount; from 2024, 2.5% of the average pension.
    assert_eq!(credit("320100", MemberClass::Retired, "2023-06-01"), Some(y("150.00")));
    assert_eq!(credit("320100", MemberClass::Retired, "2024-01-01"), Some(y("90.00"))); // 3600 × 2.5%
}

#[test]
fn jiangsu_2023_keeps_the_members_own_2022_credit_and_never_guesses_it() {
    use region_adapter::account::{CreditBasis, MemberCredit, member_credit};
    // 000 §三 Q5: "2023年…按照2022年本人个人账户划拨规模按月定额划入". A retiree whose 2022 monthly credit
    // was 137.45 (a registry fact from the insured platform) gets 137.45 in every month of 2023.
    let p = rules().region(adm_of("320100")).unwrap().policy_on(date("2023-06-01")).unwrap();
    let with = CreditBasis { previous_year_credit_fen: y("137.45"), own_pension_fen: y("4000.00"), ..Default::default() };
    match member_credit(p, MemberClass::Retired, false, date("2023-06-01"), with) {
        MemberCredit::Credit { fen, explanation, .. } => {
            assert_eq!(fen, y("137.45"));
            assert!(explanation.contains("§三 Q5 [000_6c14e1c59d0c0e48.txt]"), "{explanation}");
        }
        other => panic!("{other:?}"),
    }
    // Without it: skipped with that reason, whatever the own pension (no 4% or other guess).
    let without = CreditBasis { previous_year_credit_fen: 0, ..with };
    match member_credit(p, MemberClass::Retired, false, date("2023-06-01"), without) {
        MemberCredit::Nothing { reason } => {
            assert!(reason.contains("monthly_credit_2022") && reason.contains("not on record") && reason.contains("Q5"), "{reason}")
        }
        other => panic!("a guess was credited: {other:?}"),
    }
    // 2024 no longer needs it: 2.5% × 3600.00 = 90.00.
    let p24 = rules().region(adm_of("320100")).unwrap().policy_on(date("2024-03-01")).unwrap();
    assert!(
        matches!(member_credit(p24, MemberClass::Retired, false, date("2024-03-01"), without), MemberCredit::Credit { fen, .. } if fen == y("90.00"))
    );
}

#[test]
fn suizhou_pro_rata_only_for_retirees_who_reached_the_required_years() {
    use region_adapter::account::{CreditBasis, MemberCredit, member_credit};
    // 003 art. 14(三): "…交替参保的，退休后达到缴费年限的，按统账结合缴费年限占比，确定月划入额度".
    // 70.00 (art. 14(二)) × 12 of 25 years under 统账结合 = 33.60.
    let p = rules().region(adm_of("421300")).unwrap().policy_on(date("2024-03-01")).unwrap();
    let credit = |reached: Option<bool>, combined: u32| {
        let b = CreditBasis { combined_years: combined, insured_years: 25, reached_required_years: reached, ..Default::default() };
        member_credit(p, MemberClass::Retired, false, date("2024-03-01"), b)
    };
    match credit(Some(true), 12) {
        MemberCredit::Credit { fen, explanation, .. } => {
            assert_eq!(fen, y("33.60"));
            assert!(explanation.contains("12/25") && explanation.contains("art. 14(三)"), "{explanation}");
        }
        other => panic!("{other:?}"),
    }
    // 70.00 × 7/25 = 19.60 exactly; 70.00 × 1/3 = 23.333… → 23.33 (half away from zero at the fen).
    assert!(matches!(credit(Some(true), 7), MemberCredit::Credit { fen, .. } if fen == y("19.60")));
    let third = CreditBasis { combined_years: 1, insured_years: 3, reached_required_years: Some(true), ..Default::default() };
    assert!(
        matches!(member_credit(p, MemberClass::Retired, false, date("2024-03-01"), third), MemberCredit::Credit { fen, .. } if fen == y("23.33"))
    );
    // Did not reach the years: the article credits no one else, so nothing (not a pro-rated amount).
    assert!(matches!(credit(Some(false), 12), MemberCredit::Nothing { reason } if reason.contains("without reaching")));
    // Not on record: skipped, named, creditable once the fact arrives.
    assert!(matches!(credit(None, 12), MemberCredit::Nothing { reason } if reason.contains("reached_required_years")));
    // Never alternated (all 25 years under 统账结合): the whole 70.00, the fact is not needed.
    assert!(matches!(credit(None, 25), MemberCredit::Credit { fen, .. } if fen == y("70.00")));
}

/// A Suizhou in-service member filed for Jiangxi (`f`) fills a level-1 prescription at a pharmacy in
/// Nanchang on 2023-03-10, with the account (own, 1,000.00).
fn suizhou_pharmacy_fill(f: &[Filing]) -> Case<'_> {
    let mut c = suizhou_filed(f, "2023-03-10", 1, PsnType::InService);
    c.med_type = MedType::Pharmacy;
    c.prescribing = Some(1);
    c.acct_used = true;
    c.account = Some(AccountSource::Own { balance_fen: y("1000.00") });
    c
}

#[test]
fn at_a_pharmacy_the_account_pays_only_drugs_devices_and_consumables() {
    // 003 art. 15(二): the account pays "在定点零售药店购买药品、医疗器械、医用耗材发生的由个人负担的费用";
    // art. 25 names 销售生活日用品 at pharmacies as abuse. A Suizhou member fills a level-1 prescription in
    // Nanchang: line 0 a drug (苯磺酸氨氯地平片, 甲, 100 × 1.00 = 100.00, under its 1.20 cap), line 1 a
    // service item (肌肉注射, 50.00), line 2 a code the catalogue does not know (30.00, all self-paid).
    // medfee 180.00, in scope 150.00, all under the 500.00 deductible: fund 0, patient 180.00.
    // The account (balance 1,000.00) may pay the drug only: 100.00; cash 80.00.
    let f = [filing("360000")];
    let mut c = suizhou_pharmacy_fill(&f);
    let lines = [line("XC08CAA017A0", "100", "1.00"), line(CLASS_A_NO_CAP, "1", "50"), line("XZ99ZZZ999Z9", "1", "30")];
    let s = c.settle(&lines).unwrap();
    let a = s.amounts;
    assert_eq!((a.medfee_sumamt, a.inscp_scp_amt, a.hifp_pay), (y("180.00"), y("150.00"), 0));
    assert_eq!((a.acct_pay, a.psn_cash_pay, a.balc), (y("100.00"), y("80.00"), y("900.00")));
    let text: Vec<String> = s.steps.iter().map(Step::render).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("lines[1], lines[2]") && t.contains("only drugs") && t.contains("80.00") && t.contains("art. 15(二)")),
        "{text:#?}"
    );
    // The same lines at a hospital: the account may pay all of the patient's 180.00.
    c.med_type = MedType::GeneralOutpatient;
    c.prescribing = None;
    let a = c.settle(&lines).unwrap().amounts;
    assert_eq!((a.acct_pay, a.psn_cash_pay), (y("180.00"), 0));
}

fn adm_of(s: &str) -> Admdvs {
    Admdvs::parse(s).unwrap()
}

#[test]
fn a_fill_at_a_pharmacy_not_designated_for_pooling_gets_no_fund_pay() {
    // Suizhou 003 art. 20–21 ("定点零售药店由医保部门另行指定"), Shanxi 001 §二(二), Tongliao 004 Q4: outpatient
    // pooling pays fills at designated pharmacies. The same fill of 800.00 (level-1 prescription,
    // deductible 500.00): designated → (800 − 500) × 80% = 240.00, the account the other 560.00; not
    // designated → the fund 0 and no deductible used, the account (balance 1,000.00) all 800.00 (a drug,
    // which the account may pay at a pharmacy).
    let f = [filing("360000")];
    let mut c = suizhou_pharmacy_fill(&f);
    let drug = [line("XC08CAA017A0", "800", "1.00")]; // 苯磺酸氨氯地平片 甲类, 1.00 under the 1.20 cap
    let a = c.settle(&drug).unwrap().amounts;
    assert_eq!((a.hifp_pay, a.acct_pay, a.psn_cash_pay), (y("240.00"), y("560.00"), 0));
    c.pharmacy_designated = false;
    let s = c.settle(&drug).unwrap();
    assert_eq!((s.amounts.hifp_pay, s.amounts.act_pay_dedc, s.amounts.acct_pay, s.amounts.psn_cash_pay), (0, 0, y("800.00"), 0));
    assert_eq!(s.delta.deductible_used_fen, 0, "an unpaid fill uses no deductible");
    assert!(s.steps.iter().any(|st| st.render().contains("not designated for outpatient pooling")), "{:?}", s.steps);
}
