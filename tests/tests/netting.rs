//! Issue 5 end to end, on both stores: settle across the five seed regions, close, net, check every
//! position against the settlements; reversals after close; advances; acknowledgements;
//! reconciliation with planted differences; the `clearing net` files; settlement racing with close.

use proto::v1 as pb;
use proto::v1::netting_client::NettingClient;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tests::*;
use tonic::Code;

const REGIONS: [&str; 5] = ["421300", "360100", "150500", "320100", "140100"];

/// Starts `clearing` on the named store; the Redis (if any) lives as long as the returned guard.
fn start(store: &str) -> (Clearing, Option<Redis>) {
    match store {
        "embedded" => (Clearing::start(), None),
        _ => {
            let r = Redis::start();
            (Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]), Some(r))
        }
    }
}

async fn members(c: &Clearing) {
    let mut reg = c.registry().await;
    for ins in REGIONS {
        for k in 0..3 {
            let mut m =
                member(ins, &format!("N{ins}{k}"), if k == 2 { "12" } else { "11" }, &["420000", "360000", "150000", "320000", "140000"]);
            m.acct_balc = "500.00".into();
            reg.upsert_member(m).await.unwrap();
        }
    }
}

/// Positions expected from settlement answers: insured owes service location fund + account pay.
fn expected_positions(answers: &[pb::Settlement]) -> BTreeMap<String, (i64, i64)> {
    let mut owed: BTreeMap<(String, String), i64> = BTreeMap::new();
    for s in answers {
        *owed.entry((s.insuplc_admdvs.clone(), s.mdtrt_admdvs.clone())).or_default() += fen(&s.fund_pay_sumamt) + fen(&s.acct_pay);
    }
    let mut pos: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for ((a, b), v) in owed {
        let (from, to, v) = if v >= 0 { (a, b, v) } else { (b, a, -v) };
        if v == 0 {
            continue;
        }
        pos.entry(from).or_default().0 += v;
        pos.entry(to).or_default().1 += v;
    }
    pos
}

async fn netting_across_seed_regions(store: &str) {
    let (c, _redis) = start(store);
    members(&c).await;
    let mut cl = c.clearing().await;
    let mut n = NettingClient::new(c.channel().await);
    let today = clearing_service::calendar::today().to_string();
    let tomorrow = clearing_service::calendar::today().succ_opt().unwrap().to_string();
    let mut answers = Vec::new();
    let mut k = 0;
    for ins in REGIONS {
        for mdtrt in REGIONS.iter().filter(|m| **m != ins) {
            for j in 0..3u32 {
                k += 1;
                let mut cm = claim(&format!("NT{k}"), ins, &format!("N{ins}{j}"), mdtrt, 2 + j % 2, "2024-05-10", 300 + 170 * k);
                cm.acct_used_flag = j == 1;
                answers.push(cl.settle_claim(cm).await.unwrap().into_inner());
            }
        }
    }
    // A reversal before close: a negative entry in the same window.
    let rev = cl
        .reverse_claim(pb::ReverseClaimRequest { setl_id: answers[0].setl_id.clone(), msgid: "NT-REV".into(), reason: "refund".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rev.clr_date, today);
    answers.push(rev);
    // Advances: Suizhou's is small (over 100%), Nanchang's large.
    n.set_advance(pb::SetAdvanceRequest { admdvs: "421300".into(), amount: "10.00".into() }).await.unwrap();
    n.set_advance(pb::SetAdvanceRequest { admdvs: "360100".into(), amount: "1000000.00".into() }).await.unwrap();
    let e = n.get_netting_report(pb::GetNettingReportRequest { clr_date: today.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "an open window is not netted");
    let live = n.get_window(pb::GetWindowRequest { clr_date: today.clone() }).await.unwrap().into_inner();
    assert_eq!((live.state.as_str(), live.settlement_count), ("open", 59));

    // Close and net through the operator command, as the nightly job does.
    let out = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) =
        clearing_cli(&["net", "--date", &today, "--out", out.path().to_str().unwrap(), "--addr", &c.addr.to_string()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("complete: true"), "{stdout}");
    // After the close, settlements and reversals land in the next day.
    let late = cl.settle_claim(claim("NT-LATE", "360100", "N3601000", "421300", 2, "2024-05-11", 999)).await.unwrap().into_inner();
    assert_eq!(late.clr_date, tomorrow);
    let late_rev = cl
        .reverse_claim(pb::ReverseClaimRequest { setl_id: answers[5].setl_id.clone(), msgid: "NT-REV2".into(), reason: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((late_rev.clr_date.as_str(), late_rev.refd_setl_flag), (tomorrow.as_str(), true));

    let r = n.get_netting_report(pb::GetNettingReportRequest { clr_date: today.clone() }).await.unwrap().into_inner();
    assert_eq!(
        n.get_netting_report(pb::GetNettingReportRequest { clr_date: today.clone() }).await.unwrap().into_inner(),
        r,
        "netting again returns the same report"
    );
    // Every position equals what the settlements say, Σ net = 0, each region at most one instruction.
    let expected = expected_positions(&answers);
    assert_eq!(r.positions.len(), expected.len());
    for p in &r.positions {
        let (pay, rec) = expected[&p.admdvs];
        assert_eq!((fen(&p.payable), fen(&p.receivable), fen(&p.net)), (pay, rec, rec - pay), "{}", p.admdvs);
    }
    assert_eq!(r.positions.iter().map(|p| fen(&p.net)).sum::<i64>(), 0);
    let moved: i64 = r.positions.iter().map(|p| fen(&p.net).max(0)).sum();
    assert_eq!(fen(&r.multilateral_net_total), moved);
    assert_eq!(r.instructions.iter().filter(|i| i.to_admdvs == "000000").map(|i| fen(&i.amount)).sum::<i64>(), moved);
    assert!(fen(&r.multilateral_net_total) <= fen(&r.bilateral_net_total) && fen(&r.bilateral_net_total) <= fen(&r.gross_total));
    assert_eq!(fen(&r.saving), fen(&r.gross_total) - moved);
    assert_eq!(r.settlement_count, 59); // 60 settlements − 1 reversal
    assert_eq!((r.journal_entries, r.complete), (61, true));
    assert_eq!(fen(&r.fund_total), answers.iter().map(|s| fen(&s.fund_pay_sumamt)).sum::<i64>());
    let sz = r.advances.iter().find(|a| a.admdvs == "421300").unwrap();
    let nc = r.advances.iter().find(|a| a.admdvs == "360100").unwrap();
    assert_eq!(sz.flag, if expected["421300"].1 - expected["421300"].0 < -1000 { "above_100" } else { "ok" });
    assert_eq!(nc.flag, "ok");
    // The files of `clearing net`.
    let json: pb::NettingReport =
        serde_json::from_str(&std::fs::read_to_string(out.path().join(format!("netting-{today}.json"))).unwrap()).unwrap();
    assert_eq!(json.digest, r.digest);
    let csv = std::fs::read_to_string(out.path().join(format!("netting-{today}.csv"))).unwrap();
    assert_eq!(csv.lines().filter(|l| l.starts_with("position,")).count(), r.positions.len());
    assert_eq!(csv.lines().filter(|l| l.starts_with("instruction,")).count(), r.instructions.len());
    let svg = std::fs::read_to_string(out.path().join(format!("netting-{today}.svg"))).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("中央清算账户") && svg.contains("随州市"));

    // Acknowledgements: netted → settled when every region with an instruction confirmed.
    for i in &r.instructions {
        let adm = if i.from_admdvs == "000000" { &i.to_admdvs } else { &i.from_admdvs };
        let w = n
            .acknowledge_settlement(pb::AcknowledgeSettlementRequest {
                clr_date: today.clone(),
                admdvs: adm.clone(),
                bank_ref: format!("BANK-{adm}"),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(w.state == "netted" || w.state == "settled");
    }
    let w = n.get_window(pb::GetWindowRequest { clr_date: today.clone() }).await.unwrap().into_inner();
    assert_eq!(w.state, "settled");
    let adm = &r.instructions[0].from_admdvs.replace("000000", &r.instructions[0].to_admdvs);
    let e = n
        .acknowledge_settlement(pb::AcknowledgeSettlementRequest { clr_date: today.clone(), admdvs: adm.clone(), bank_ref: "OTHER".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Reconciliation of Nanchang's side: totals, then detail with three planted differences.
    let mine: Vec<&pb::Settlement> = answers.iter().filter(|s| s.mdtrt_admdvs == "360100").collect();
    let sum = |f: fn(&pb::Settlement) -> &str| region_adapter::money::fmt_yuan(mine.iter().map(|s| fen(f(s))).sum());
    let count: i64 = mine.iter().map(|s| if s.refd_setl_flag { -1 } else { 1 }).sum();
    let totals = pb::ReconcileTotalsRequest {
        clr_date: today.clone(),
        mdtrt_admdvs: "360100".into(),
        count,
        medfee_sumamt: sum(|s| &s.medfee_sumamt),
        fund_pay_sumamt: sum(|s| &s.fund_pay_sumamt),
        acct_pay: sum(|s| &s.acct_pay),
        ..Default::default()
    };
    assert!(n.reconcile_totals(totals.clone()).await.unwrap().into_inner().matched);
    // One institution's part of the window: its settlements alone (3201 as a hospital sends it).
    let inst = mine[0].fixmedins_code.clone();
    let theirs: Vec<&&pb::Settlement> = mine.iter().filter(|s| s.fixmedins_code == inst).collect();
    let part = |f: fn(&pb::Settlement) -> &str| region_adapter::money::fmt_yuan(theirs.iter().map(|s| fen(f(s))).sum());
    let one = pb::ReconcileTotalsRequest {
        fixmedins_code: inst.clone(),
        count: theirs.iter().map(|s| if s.refd_setl_flag { -1 } else { 1 }).sum(),
        medfee_sumamt: part(|s| &s.medfee_sumamt),
        fund_pay_sumamt: part(|s| &s.fund_pay_sumamt),
        acct_pay: part(|s| &s.acct_pay),
        ..totals.clone()
    };
    let r = n.reconcile_totals(one).await.unwrap().into_inner();
    assert!(r.matched, "{inst}: {:?}", r.differences);
    let foreign = pb::ReconcileTotalsRequest { fixmedins_code: "H42130000001".into(), ..totals.clone() };
    assert_eq!(n.reconcile_totals(foreign).await.unwrap_err().code(), tonic::Code::InvalidArgument, "another region's institution");
    let mut off = totals.clone();
    off.count += 1;
    let res = n.reconcile_totals(off).await.unwrap().into_inner();
    assert_eq!((res.matched, res.differences.len(), res.differences[0].field.as_str()), (false, 1, "count"));
    let mut items: Vec<pb::ReconcileItem> = mine
        .iter()
        .map(|s| pb::ReconcileItem {
            setl_id: s.setl_id.clone(),
            medfee_sumamt: s.medfee_sumamt.clone(),
            fund_pay_sumamt: s.fund_pay_sumamt.clone(),
            acct_pay: s.acct_pay.clone(),
        })
        .collect();
    let dropped = items.remove(0).setl_id;
    items[0].fund_pay_sumamt = "0.01".into();
    let altered = items[0].setl_id.clone();
    items.push(pb::ReconcileItem {
        setl_id: "ffffffffffffffffffffffff".into(),
        medfee_sumamt: "1.00".into(),
        fund_pay_sumamt: "0.00".into(),
        acct_pay: "0.00".into(),
    });
    let batches = vec![
        pb::ReconcileDetailRequest {
            clr_date: today.clone(),
            mdtrt_admdvs: "360100".into(),
            items: items[..3].to_vec(),
            ..Default::default()
        },
        pb::ReconcileDetailRequest {
            clr_date: String::new(),
            mdtrt_admdvs: String::new(),
            items: items[3..].to_vec(),
            ..Default::default()
        },
    ];
    let res = n.reconcile_detail(tokio_stream::iter(batches)).await.unwrap().into_inner();
    let got: Vec<(String, String, String)> = res.differences.iter().map(|d| (d.kind.clone(), d.setl_id.clone(), d.field.clone())).collect();
    assert_eq!(res.differences_total, 3, "{got:?}");
    assert!(got.contains(&("missing_there".into(), dropped, String::new())));
    assert!(got.contains(&("amount_differs".into(), altered, "fund_pay_sumamt".into())));
    assert!(got.contains(&("missing_here".into(), "ffffffffffffffffffffffff".into(), String::new())));

    // The month's statement includes the netted day; tomorrow's window is open with the late entries.
    let month = today.replace('-', "")[..6].to_string();
    let st = n.get_monthly_statement(pb::GetMonthlyStatementRequest { setlym: month }).await.unwrap().into_inner();
    assert!(st.clr_dates.contains(&today));
    assert_eq!(st.settlement_count, 59);
    let tw = n.get_window(pb::GetWindowRequest { clr_date: tomorrow.clone() }).await.unwrap().into_inner();
    assert_eq!((tw.state.as_str(), tw.settlement_count), ("open", 0)); // one late settlement, one late reversal
    let list = n.list_windows(pb::ListWindowsRequest {}).await.unwrap().into_inner();
    assert!(list.windows.iter().any(|w| w.clr_date == today && w.state == "settled"));
    assert!(list.windows.iter().any(|w| w.clr_date == tomorrow && w.state == "open"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netting_across_seed_regions_on_the_embedded_store() {
    netting_across_seed_regions("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netting_across_seed_regions_on_redis() {
    netting_across_seed_regions("redis").await;
}

/// Settlements race the close: every answer lands in exactly one of today / tomorrow, today's report
/// holds exactly the answers dated today, and tomorrow's window exactly the rest.
async fn settlement_racing_close(store: &str) {
    let (c, _redis) = start(store);
    members(&c).await;
    let today = clearing_service::calendar::today().to_string();
    let tomorrow = clearing_service::calendar::today().succ_opt().unwrap().to_string();
    let answers: Arc<Mutex<Vec<pb::Settlement>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..32usize {
        let ch = c.channel().await;
        let answers = answers.clone();
        tasks.push(tokio::spawn(async move {
            let cl = ClearingClient::new(ch);
            for k in 0..40usize {
                let ins = REGIONS[(t + k) % 5];
                let mdtrt = REGIONS[(t + k + 1 + k % 3) % 5];
                let cm = claim(&format!("RC{t}-{k}"), ins, &format!("N{ins}{}", k % 3), mdtrt, 2, "2024-06-01", 100 + (t * 7 + k) as u32);
                // ABORTED (a member contended too long) is retried with the same msgid, as the API says.
                // Bounded by the harness's patience: a member contended for good fails the test.
                let s = eventually(&format!("{} settled past ABORTED", cm.msgid), PATIENCE, || {
                    let (mut cl, cm) = (cl.clone(), cm.clone());
                    async move {
                        match cl.settle_claim(cm).await {
                            Ok(s) => Some(s.into_inner()),
                            Err(e) if e.code() == Code::Aborted => None,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
                .await;
                answers.lock().unwrap().push(s);
            }
        }));
    }
    // Close while the clients are busy: once a tenth of the claims are answered, whatever this machine's speed.
    eventually("the first answers", PATIENCE, || std::future::ready((answers.lock().unwrap().len() >= 128).then_some(()))).await;
    let mut n = NettingClient::new(c.channel().await);
    n.close_window(pb::CloseWindowRequest { clr_date: today.clone() }).await.unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 32 * 40, "nothing lost");
    let (before, after): (Vec<_>, Vec<_>) = answers.iter().partition(|s| s.clr_date == today);
    assert!(after.iter().all(|s| s.clr_date == tomorrow));
    assert!(!before.is_empty() && !after.is_empty(), "the close happened under load ({} before, {} after)", before.len(), after.len());
    let r = n.get_netting_report(pb::GetNettingReportRequest { clr_date: today.clone() }).await.unwrap().into_inner();
    assert_eq!(r.settlement_count, before.len() as i64);
    assert_eq!((r.journal_entries, r.complete), (before.len() as i64, true));
    assert_eq!(fen(&r.fund_total), before.iter().map(|s| fen(&s.fund_pay_sumamt)).sum::<i64>());
    assert_eq!(fen(&r.medfee_total), before.iter().map(|s| fen(&s.medfee_sumamt)).sum::<i64>());
    let tw = n.get_window(pb::GetWindowRequest { clr_date: tomorrow }).await.unwrap().into_inner();
    assert_eq!(tw.settlement_count, after.len() as i64, "the rest is in the next window, none counted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_racing_close_on_the_embedded_store() {
    settlement_racing_close("embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_racing_close_on_redis() {
    settlement_racing_close("redis").await;
}
