//! Property tests: the money identities (ARCHITECTURE.md, Money) hold for arbitrary claims and member states, checked here
//! from outside the engine (the engine checks the same identities on its own path); and a year's
//! fund pay never passes the cap however the year's claims are split.

mod common;
use common::*;
use proptest::prelude::*;
use region_adapter::*;

const REGIONS: [&str; 5] = ["421300", "360100", "150500", "320100", "140100"];

fn codes(adm: &str) -> Vec<&'static str> {
    let pack = rules().region(adm_of(adm)).unwrap();
    let mut v: Vec<&'static str> = pack.catalogue.order.iter().map(|c| &**c).collect();
    v.push("XZ99ZZZ999Z9"); // well-formed, in no catalogue
    v
}

fn adm_of(s: &str) -> Admdvs {
    Admdvs::parse(s).unwrap()
}

prop_compose! {
    fn arb_line(mdtrt: &'static str)(idx in 0usize..60, qty_hundredths in 1u32..5_000, price_fen in 0u32..50_000) -> LineInput<'static> {
        let cs = codes(mdtrt);
        let code = cs[idx % cs.len()];
        let qty = rust_decimal::Decimal::new(qty_hundredths as i64, 2);
        let price = rust_decimal::Decimal::new(price_fen as i64, 2);
        let amount_fen = region_adapter::money::yuan_to_fen_rounded(qty * price).unwrap();
        LineInput { code, qty, unit_price: price, amount_fen }
    }
}

fn arb_claim() -> impl Strategy<Value = (usize, usize, Vec<LineInput<'static>>)> {
    (0..REGIONS.len(), 0..REGIONS.len()).prop_flat_map(|(i, m)| {
        let mdtrt: &'static str = REGIONS[m];
        (Just(i), Just(m), prop::collection::vec(arb_line(mdtrt), 1..8))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_arbitrary_claims_and_states(
        (ins, mdt, lines) in arb_claim(),
        level in 1u32..=3,
        retired in any::<bool>(),
        day in 0i64..1_400,
        used in 0i64..200_000,
        paid in 0i64..700_000,
        balance in prop::option::of(0i64..500_000),
        family in any::<bool>(),
        acct_used in any::<bool>(),
        filed in any::<bool>(),
        pharmacy in any::<bool>(),
    ) {
        let d = (date("2023-01-01") + chrono::Duration::days(day)).format("%Y-%m-%d").to_string();
        let province = format!("{}0000", &REGIONS[mdt][..2]);
        let f = [filing(&province)];
        let mut c = Case::new(REGIONS[ins], REGIONS[mdt], &d, level, if retired { PsnType::Retired } else { PsnType::InService });
        if filed { c.member.filings = &f; }
        if pharmacy { c.med_type = MedType::Pharmacy; c.prescribing = Some(level); }
        c.state = YearState { deductible_used_fen: used, fund_paid_fen: paid, visits: 3 };
        c.account = balance.map(|b| if family { AccountSource::Family { balance_fen: b } } else { AccountSource::Own { balance_fen: b } });
        c.acct_used = acct_used;
        let s = c.settle(&lines).expect("valid claims settle");
        let a = s.amounts;
        let total: i64 = lines.iter().map(|l| l.amount_fen).sum();
        prop_assert_eq!(a.medfee_sumamt, total);
        prop_assert_eq!(a.medfee_sumamt, a.fulamt_ownpay_amt + a.overlmt_selfpay + a.preselfpay_amt + a.inscp_scp_amt);
        prop_assert_eq!(a.medfee_sumamt, a.fund_pay_sumamt + a.acct_pay + a.psn_cash_pay);
        prop_assert_eq!(a.psn_part_amt, a.medfee_sumamt - a.fund_pay_sumamt);
        for part in [a.fulamt_ownpay_amt, a.overlmt_selfpay, a.preselfpay_amt, a.inscp_scp_amt, a.act_pay_dedc, a.hifp_pay, a.pool_prop_selfpay, a.acct_pay, a.acct_mulaid_pay, a.psn_cash_pay, a.balc] {
            prop_assert!(part >= 0);
        }
        prop_assert!(a.hifp_pay <= a.inscp_scp_amt - a.act_pay_dedc);
        prop_assert!(paid + a.hifp_pay <= s.cap_fen.max(paid), "cap passed");
        prop_assert!(a.acct_pay <= balance.unwrap_or(0));
        prop_assert_eq!(a.acct_mulaid_pay > 0, family && a.acct_pay > 0);
        prop_assert_eq!(s.delta.fund_paid_fen, a.hifp_pay);
        prop_assert_eq!(s.delta.deductible_used_fen, a.act_pay_dedc);
        prop_assert_eq!(s.delta.account_debit_fen, a.acct_pay);
    }

    #[test]
    fn a_years_fund_pay_never_passes_the_cap_however_claims_are_split(
        ins in 0..REGIONS.len(),
        retired in any::<bool>(),
        visits in prop::collection::vec((1u32..6_000, 1u32..=3), 1..40),
    ) {
        // Every claim in scope (甲, no cap), same member, same year; the service location is in
        // another province at level ≥ 2 so every seed region pays (Tongliao's Q5 rule).
        let mdtrt = if REGIONS[ins] == "421300" { "360100" } else { "421300" };
        let f = [filing("360000"), filing("420000")];
        let mut state = YearState::default();
        let mut by_ratio_total = 0i64;
        let mut cap = 0;
        for (yuan, lv) in &visits {
            let mut c = Case::new(REGIONS[ins], mdtrt, "2023-06-01", (*lv).max(2), if retired { PsnType::Retired } else { PsnType::InService });
            c.member.filings = &f;
            c.state = state;
            let s = c.settle(&in_scope(*yuan)).unwrap();
            cap = s.cap_fen;
            let policy = rules().region(adm_of(REGIONS[ins])).unwrap().policy_on(date("2023-06-01")).unwrap();
            let deductible_limit = policy.general(s.member_class).deductible_fen.value;
            by_ratio_total += region_adapter::money::apply_ratio(s.amounts.inscp_scp_amt - s.amounts.act_pay_dedc, s.ratio_bp);
            state.deductible_used_fen += s.delta.deductible_used_fen;
            state.fund_paid_fen += s.delta.fund_paid_fen;
            state.visits += 1;
            prop_assert!(state.fund_paid_fen <= cap);
            prop_assert!(state.deductible_used_fen <= deductible_limit);
        }
        // Exactly the cap once the ratio shares add up to more than it; otherwise exactly their sum.
        prop_assert_eq!(state.fund_paid_fen, by_ratio_total.min(cap));
    }
}
