//! Netting at national scale: 400 regions, a window of 10 M settlements aggregated into per-pair
//! totals (what the stores hand to netting), then obligations → positions → instructions → report
//! with its digest. Also the aggregation itself (10 M settlements summed into pair totals), and how
//! netting grows with the number of regions.
//!
//! `cargo bench -p clearing --bench netting`

use clearing_service::store::{PairTotals, WindowTotals};
use clearing_service::windows::netting::net;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

fn rng(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn regions(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{}{:02}00", 11 + i % 60, 1 + i / 60)).collect()
}

/// `settlements` settlements between random pairs of `n` regions, aggregated into pair totals.
fn window(n: usize, settlements: u64) -> WindowTotals {
    let codes = regions(n);
    let mut pairs: HashMap<(u16, u16), PairTotals> = HashMap::new();
    let mut s = 42u64;
    for _ in 0..settlements {
        let a = (rng(&mut s) % n as u64) as u16;
        let mut b = (rng(&mut s) % n as u64) as u16;
        if a == b {
            b = (b + 1) % n as u16;
        }
        let fee = 5_000 + (rng(&mut s) % 200_000) as i64;
        let t = pairs.entry((a, b)).or_default();
        t.count += 1;
        t.entries += 1;
        t.medfee_fen += fee;
        t.fund_fen += fee * 6 / 10;
        t.acct_fen += fee / 10;
    }
    let mut rows: Vec<_> = pairs.into_iter().map(|((a, b), t)| ((codes[a as usize].clone(), codes[b as usize].clone()), t)).collect();
    rows.sort_by(|x, y| x.0.cmp(&y.0));
    WindowTotals::from_pairs(rows)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("netting");
    g.sample_size(10);
    let ten_million = window(400, 10_000_000);
    let advances: BTreeMap<String, i64> = regions(400).into_iter().map(|r| (r, 50_000_000_000)).collect();
    eprintln!("400 regions, 10 M settlements: {} region pairs", ten_million.pairs.len());
    g.bench_function("net 400 regions, 10M settlements aggregated", |b| {
        b.iter(|| black_box(net("2026-11-21", &ten_million, &ten_million.all, &advances).expect("nets")))
    });
    for n in [50usize, 100, 200, 400] {
        let w = window(n, 2_000_000);
        g.bench_function(format!("net {n} regions, 2M settlements"), |b| {
            b.iter(|| black_box(net("2026-11-21", &w, &w.all, &advances).expect("nets")))
        });
    }
    g.bench_function("aggregate 1M settlements into pair totals (400 regions)", |b| {
        b.iter_batched(|| (), |_| black_box(window(400, 1_000_000)), BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(netting, benches);
criterion_main!(netting);
