//! Pricing + policy for one five-line claim, the unit of work of every settlement.
//! Run: `cargo bench -p region-adapter --bench engine`. Target (issue 2): ≥ 1 million claims/s/core.

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use region_adapter::*;
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;

fn line(code: &'static str, qty: &str, price: &str) -> LineInput<'static> {
    let qty = Decimal::from_str(qty).unwrap();
    let unit_price = Decimal::from_str(price).unwrap();
    LineInput { code, qty, unit_price, amount_fen: money::yuan_to_fen_rounded(qty * unit_price).unwrap() }
}

fn bench(c: &mut Criterion) {
    let rules = bundled::rules().unwrap();
    let suizhou = rules.region(Admdvs::parse("421300").unwrap()).unwrap();
    let nanchang = rules.region(Admdvs::parse("360100").unwrap()).unwrap();
    // A realistic visit: consultation, a 乙 drug over its cap, a 甲 drug, a 乙 exam, a 丙 item.
    let lines = [
        line("001102000010000", "1", "10.00"),
        line("XC10AAA035A0", "28", "2.80"),
        line("XC08CAA017A0", "28", "1.10"),
        line("002103030010000", "1", "180.00"),
        line("003201000010000", "1", "120.00"),
    ];
    let date = NaiveDate::from_ymd_opt(2023, 6, 1).unwrap();
    let filings = [Filing { mdtrt_admdvs: Admdvs::parse("420000").unwrap(), begin: date, end: None, group: None }];
    let member = MemberFacts { psn_type: PsnType::Retired, retire_date: None, pooling_only: false, filings: &filings, in_arrears: false };
    let state = YearState { deductible_used_fen: 12_000, fund_paid_fen: 30_000, visits: 3 };
    let visit = Visit {
        date,
        mdtrt_admdvs: suizhou.admdvs,
        hosp_lv: Level::new(2).unwrap(),
        med_type: MedType::GeneralOutpatient,
        prescribing_lv: None,
        dise_code: None,
        acct_used: true,
        pharmacy_designated: true,
    };
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("price_and_apply_policy_5_lines", |b| {
        b.iter(|| {
            let priced = suizhou.catalogue.price(black_box(date), black_box(&lines)).unwrap();
            let s = nanchang
                .apply_policy(&priced, &member, black_box(state), Some(AccountSource::Own { balance_fen: 50_000 }), &visit)
                .unwrap();
            black_box(s.amounts.hifp_pay)
        })
    });
    // How the cost grows with lines per claim (the national limit is 100).
    for n in [1usize, 20, 100] {
        let many: Vec<LineInput<'static>> = (0..n).map(|i| lines[i % lines.len()]).collect();
        g.bench_function(format!("price_and_apply_policy_{n}_lines"), |b| {
            b.iter(|| {
                let priced = suizhou.catalogue.price(black_box(date), black_box(&many)).unwrap();
                let s = nanchang.apply_policy(&priced, &member, black_box(state), None, &visit).unwrap();
                black_box(s.amounts.hifp_pay)
            })
        });
    }
    g.bench_function("render_explanation", |b| {
        let priced = suizhou.catalogue.price(date, &lines).unwrap();
        let s = nanchang.apply_policy(&priced, &member, state, None, &visit).unwrap();
        b.iter(|| black_box(&s.steps).iter().map(Step::render).map(|t| t.len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
