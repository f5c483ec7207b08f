//! Issue 19: supervision's flags and monthly indicators, end to end over gRPC, on the embedded store and
//! on Redis; the report command's HTML page rendered by headless Chromium.
//!
//! Planted outliers (Nanchang members treated in other provinces, thresholds of the bundled packs'
//! `[supervision]`): a member in three provinces on one day, an institution with a high examination share,
//! an institution whose cost per visit jumps on the month before, a pharmacy claim the account pays whole,
//! a claim over the cost threshold, a line far above its price cap, an implausible quantity, a member
//! visiting eight times in a week. Clean claims carry no flag. Indicators equal a recomputation from the
//! settlements; a reversal subtracts.

use proto::v1 as pb;
use std::collections::BTreeMap;
use tests::*;

const INSURED: &str = "360100";
/// Service locations, one per province.
const SUIZHOU: &str = "421300";
const TONGLIAO: &str = "150500";
const NANJING: &str = "320100";
/// Examinations (检查) of the sample catalogues: MR, CT.
const MR: &str = "002103040010000";
const CT: &str = "002103030010000";
/// A drug without a price cap (甲类) and one with a cap of 1.20 in Suizhou's catalogue.
const AMOXICILLIN: &str = "XJ01CAA040B0";
const AMLODIPINE: &str = "XC08CAA017A0";

/// Institutions of Suizhou.
const CLEAN: &str = "H42130000011";
const EXAMS: &str = "H42130000012";
const JUMP: &str = "H42130000013";
const ODD: &str = "H42130000014";
const PHARMACY: &str = "P42130000015";

/// A line of a whole quantity at a price of two decimals.
fn line(code: &str, cnt: &str, pric: &str) -> pb::ClaimLine {
    let total = cnt.parse::<i64>().unwrap() * fen(pric);
    pb::ClaimLine {
        hilist_code: code.into(),
        cnt: cnt.into(),
        pric: pric.into(),
        det_item_fee_sumamt: format!("{}.{:02}", total / 100, total % 100),
    }
}

fn at(mut c: pb::Claim, fixmedins: &str, lines: Vec<pb::ClaimLine>) -> pb::Claim {
    c.fixmedins_code = fixmedins.into();
    c.lines = lines;
    c
}

/// One settled (or reversed) answer per claim, in order.
struct Scenario {
    settled: Vec<pb::Settlement>,
}

/// The planted month: February 2023 for the growth base, March 2023 for the outliers.
async fn plant(c: &Clearing, tag: &str) -> Scenario {
    let p = |i: usize| format!("{tag}{i:04}");
    let mut members = Vec::new();
    for i in 0..40 {
        members.push(funded(member(INSURED, &p(i), "11", &[]), "3000.00"));
    }
    registered(c, &members).await;
    // The planted institutions are the region's own (upserted by its platform): the list decides levels.
    let mut cat = c.catalogue().await;
    for (code, kind, lv, pooling) in
        [(CLEAN, "1", 2, false), (EXAMS, "1", 2, false), (JUMP, "1", 2, false), (ODD, "1", 2, false), (PHARMACY, "2", 0, true)]
    {
        let inst = pb::Institution {
            fixmedins_code: code.into(),
            fixmedins_name: format!("planted {code}"),
            fixmedins_type: kind.into(),
            hosp_lv: lv,
            outpatient_pooling: pooling,
            ..Default::default()
        };
        cat.upsert_institution(inst).await.unwrap();
    }
    let mut claims = Vec::new();
    let mut n = 0;
    let mut next = |ins_member: usize, mdtrt: &str, date: &str| {
        n += 1;
        claim(&format!("{tag}-{n}"), INSURED, &p(ins_member), mdtrt, 2, date, 100)
    };
    // Clean: 5 claims a month of 100 yuan at one institution, each member once.
    for (k, date) in [(0, "2023-02-06"), (5, "2023-03-06")] {
        for i in 0..5 {
            claims.push(at(next(k + i, SUIZHOU, date), CLEAN, vec![line(CLASS_A_NO_CAP, "1", "100.00")]));
        }
    }
    // High share of examinations: 5 claims of an MR (400) and a consultation item (50).
    for i in 0..5 {
        claims.push(at(next(10 + i, SUIZHOU, "2023-03-07"), EXAMS, vec![line(MR, "1", "400.00"), line(CLASS_A_NO_CAP, "1", "50.00")]));
    }
    // A jump: 100 yuan per visit in February, 300 in March.
    for i in 0..5 {
        claims.push(at(next(15 + i, SUIZHOU, "2023-02-08"), JUMP, vec![line(CLASS_A_NO_CAP, "1", "100.00")]));
    }
    for i in 0..5 {
        claims.push(at(next(20 + i, SUIZHOU, "2023-03-08"), JUMP, vec![line(CLASS_A_NO_CAP, "1", "300.00")]));
    }
    // One member in three provinces on one day.
    for mdtrt in [SUIZHOU, TONGLIAO, NANJING] {
        let c = next(25, mdtrt, "2023-03-10");
        let code = c.fixmedins_code.clone();
        claims.push(at(c, &code, vec![line(CT, "1", "150.00")]));
    }
    // A pharmacy bill of 1,200 yuan the account pays whole.
    let mut rx = at(next(26, SUIZHOU, "2023-03-11"), PHARMACY, vec![line(AMOXICILLIN, "200", "6.00")]);
    rx.med_type = "41".into();
    rx.hosp_lv = 0;
    rx.prescribing_hosp_lv = 2;
    rx.prescribing_fixmedins_code = listed_institution(SUIZHOU, 2);
    rx.acct_used_flag = true;
    claims.push(rx);
    // Over the cost threshold; far above a price cap; an implausible quantity (one institution, 3 claims).
    claims.push(at(next(27, SUIZHOU, "2023-03-12"), ODD, vec![line(CLASS_A_NO_CAP, "1", "2500.00")]));
    claims.push(at(next(28, SUIZHOU, "2023-03-12"), ODD, vec![line(AMLODIPINE, "10", "10.00")]));
    claims.push(at(next(29, SUIZHOU, "2023-03-12"), ODD, vec![line(AMOXICILLIN, "400", "0.50")]));
    // Eight visits in a week (two on its last day).
    for day in [14, 15, 16, 17, 18, 19, 20, 20] {
        claims.push(at(next(30, SUIZHOU, &format!("2023-03-{day}")), CLEAN, vec![line(CLASS_A_NO_CAP, "1", "20.00")]));
    }
    let mut cl = c.clearing().await;
    let mut settled = Vec::new();
    for claim in claims {
        let s = cl.settle_claim(claim.clone()).await.unwrap_or_else(|e| panic!("{}: {e}", claim.msgid)).into_inner();
        settled.push(s);
    }
    Scenario { settled }
}

fn kinds(s: &pb::Settlement) -> Vec<&str> {
    s.flags.iter().map(|f| f.kind.as_str()).collect()
}

/// The flags each planted outlier must carry, and none on the clean claims.
fn check_flags(sc: &Scenario) {
    let by = |fix: &'static str| sc.settled.iter().filter(move |s| s.fixmedins_code == fix);
    for s in by(CLEAN).take(10).chain(by(EXAMS)).chain(by(JUMP)) {
        assert!(s.flags.is_empty(), "{} ({}) is clean but flagged {:?}", s.msgid, s.fixmedins_code, s.flags);
    }
    let day: Vec<&pb::Settlement> = sc.settled.iter().filter(|s| s.setl_time.starts_with("2023-03-10")).collect();
    assert_eq!(day.len(), 3);
    assert!(day[0].flags.is_empty(), "the day's first visit is not yet a pattern: {:?}", day[0].flags);
    assert_eq!(kinds(day[1]), ["multi_region_day"]);
    assert_eq!(kinds(day[2]), ["multi_region_day"]);
    assert!(day[2].flags[0].detail.starts_with("3 service regions on 2023-03-10"), "{}", day[2].flags[0].detail);
    let rx = by(PHARMACY).next().unwrap();
    assert_eq!(kinds(rx), ["pharmacy_cashout"], "{rx:?}");
    assert_eq!(rx.psn_cash_pay, "0.00");
    let odd: Vec<&pb::Settlement> = by(ODD).collect();
    assert_eq!(kinds(odd[0]), ["high_cost"]);
    assert_eq!(kinds(odd[1]), ["high_selfpay", "price_over_cap"], "{:?}", odd[1].flags);
    assert_eq!(kinds(odd[2]), ["implausible_quantity"]);
    let week: Vec<&pb::Settlement> = sc.settled.iter().filter(|s| s.psn_no.ends_with("0030")).collect();
    assert_eq!(week.len(), 8);
    assert!(week[..7].iter().all(|s| s.flags.is_empty()), "seven visits in a week are below the threshold of 8");
    assert_eq!(kinds(week[7]), ["frequent_visits"]);
}

fn exam_fen(s: &pb::Settlement) -> i64 {
    let sign = if s.refd_setl_flag { -1 } else { 1 };
    s.lines.iter().filter(|l| l.hilist_code == MR || l.hilist_code == CT).map(|l| sign * fen(&l.det_item_fee_sumamt).abs()).sum()
}

/// Sums recomputed from settlements (reversals included, negative), per (month, entity).
fn recompute(settled: &[pb::Settlement], originals: &BTreeMap<String, pb::Settlement>) -> BTreeMap<(String, String), [i64; 8]> {
    let mut out: BTreeMap<(String, String), [i64; 8]> = BTreeMap::new();
    for s in settled {
        // A reversal counts in its original's month, at its original's institution.
        let o = if s.refd_setl_flag { &originals[&s.orig_setl_id] } else { s };
        let month = o.setl_time[..7].replace('-', "");
        let sign = if s.refd_setl_flag { -1 } else { 1 };
        let v = [
            sign,
            fen(&s.medfee_sumamt),
            fen(&s.fulamt_ownpay_amt) + fen(&s.overlmt_selfpay),
            exam_fen(s),
            fen(&s.acct_pay),
            fen(&s.fund_pay_sumamt),
            if o.flags.is_empty() { 0 } else { sign },
            0,
        ];
        for entity in [format!("i|{}", o.fixmedins_code), format!("p|{}|{}", o.insuplc_admdvs, o.mdtrt_admdvs)] {
            let e = out.entry((month.clone(), entity)).or_default();
            for k in 0..8 {
                e[k] += v[k];
            }
        }
    }
    out.retain(|_, v| v[0] != 0 || v[1] != 0);
    out
}

fn measured(m: &Option<pb::Measures>) -> [i64; 8] {
    let m = m.clone().unwrap();
    [m.claims, fen(&m.medfee_sumamt), fen(&m.selfpay_amt), fen(&m.exam_amt), fen(&m.acct_pay), fen(&m.fund_pay_sumamt), m.flagged_claims, 0]
}

async fn read_back(c: &Clearing, month: &str) -> BTreeMap<(String, String), [i64; 8]> {
    // UNAVAILABLE means "retry" (a fold's script may outlast Redis's reply timeout on a loaded
    // machine): a caller retries, bounded, as a client would; any other error fails at once.
    let i = eventually("the month's indicators", PATIENCE, || async {
        match c.supervision().await.get_indicators(pb::GetIndicatorsRequest { month: month.into(), ..Default::default() }).await {
            Ok(r) => Some(r.into_inner()),
            Err(e) if e.code() == tonic::Code::Unavailable => None,
            Err(e) => panic!("get_indicators {month}: {e:?}"),
        }
    })
    .await;
    let mut out = BTreeMap::new();
    for x in &i.institutions {
        out.insert((month.to_string(), format!("i|{}", x.fixmedins_code)), measured(&x.month));
    }
    for x in &i.pairs {
        out.insert((month.to_string(), format!("p|{}|{}", x.insuplc_admdvs, x.mdtrt_admdvs)), measured(&x.month));
    }
    out
}

/// Indicators of both months equal a recomputation from the settlements.
async fn check_indicators(c: &Clearing, settled: &[pb::Settlement]) {
    let originals: BTreeMap<String, pb::Settlement> = settled.iter().map(|s| (s.setl_id.clone(), s.clone())).collect();
    let expected = recompute(settled, &originals);
    let mut got = read_back(c, "202302").await;
    got.extend(read_back(c, "202303").await);
    assert_eq!(got, expected, "indicators differ from a recomputation from the settlements");
}

async fn flagged_ids(c: &Clearing, month: &str, page_size: u32) -> Vec<String> {
    let mut s = c.supervision().await;
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListFlaggedSettlementsRequest { month: month.into(), page_size, page_token: token.clone(), ..Default::default() };
        let page = s.list_flagged_settlements(req).await.unwrap().into_inner();
        assert!(page.settlements.len() <= page_size as usize);
        ids.extend(page.settlements.into_iter().map(|f| f.setl_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    ids.sort();
    ids
}

/// The whole scenario on one service: flags, indicators, the flagged list, a reversal subtracting.
async fn flags_indicators_and_reversal(c: &Clearing, tag: &str) -> Scenario {
    let mut sc = plant(c, tag).await;
    check_flags(&sc);
    check_indicators(c, &sc.settled).await;
    // The flagged list holds exactly the flagged settlements (paged 3 at a time).
    let mut expected: Vec<String> = sc.settled.iter().filter(|s| !s.flags.is_empty()).map(|s| s.setl_id.clone()).collect();
    expected.sort();
    assert_eq!(flagged_ids(c, "202303", 3).await, expected);
    // Early warnings: the examination share and the jump, nothing else.
    let i = c
        .supervision()
        .await
        .get_indicators(pb::GetIndicatorsRequest { month: "202303".into(), admdvs: SUIZHOU.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let warnings: Vec<(&str, &str, &str)> =
        i.early_warnings.iter().map(|w| (w.fixmedins_code.as_str(), w.indicator.as_str(), w.value.as_str())).collect();
    assert_eq!(warnings, [(EXAMS, "exam_share", "0.8889"), (JUMP, "cost_per_visit_growth", "2.0000")]);
    assert!(i.early_warnings.iter().all(|w| w.provenance.starts_with("assumption: ")));
    // Reversals subtract: a flagged one (leaves the flagged list) and a clean one.
    let mut cl = c.clearing().await;
    for (k, fix) in [(0, ODD), (1, CLEAN)] {
        let orig = sc.settled.iter().filter(|s| s.fixmedins_code == fix && s.setl_time.starts_with("2023-03")).nth(k).unwrap().clone();
        let r = cl
            .reverse_claim(pb::ReverseClaimRequest {
                setl_id: orig.setl_id.clone(),
                msgid: format!("{tag}-rev-{k}"),
                reason: "test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.flags.is_empty(), "a reversal carries no flags of its own");
        sc.settled.push(r);
    }
    check_indicators(c, &sc.settled).await;
    expected.retain(|id| *id != sc.settled.iter().find(|s| s.fixmedins_code == ODD).unwrap().setl_id);
    assert_eq!(flagged_ids(c, "202303", 100).await, expected, "a reversed settlement leaves the flagged list");
    sc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_outliers_are_found_on_redis_and_reversals_subtract() {
    let r = Redis::start();
    let c = Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()]);
    flags_indicators_and_reversal(&c, "SR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_outliers_are_found_and_the_report_shows_them_in_a_browser() {
    let c = Clearing::start();
    flags_indicators_and_reversal(&c, "SE").await;
    // Bad input names the field.
    let e =
        c.supervision().await.get_indicators(pb::GetIndicatorsRequest { month: "2023-3".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!((e.code(), bad_fields(&e)), (tonic::Code::InvalidArgument, vec!["month".to_string()]));
    let e = c
        .supervision()
        .await
        .list_flagged_settlements(pb::ListFlaggedSettlementsRequest {
            month: "202303".into(),
            page_token: "zz".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&e), vec!["page_token".to_string()]);

    // The report, as an operator runs it.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (ok, stdout, stderr) = clearing_cli(&["supervision", "--month", "202303", "--out", dir, "--addr", &c.url()]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("2 early warnings"), "{stdout}");
    let html = out.path().join("supervision-202303.html");
    for f in
        ["supervision-202303.json", "supervision-202303-institutions.csv", "supervision-202303-pairs.csv", "supervision-202303-flagged.csv"]
    {
        let text = std::fs::read_to_string(out.path().join(f)).unwrap();
        assert!(person_numbers_in(&text).is_empty(), "{f} holds person numbers");
    }
    let csv = std::fs::read_to_string(out.path().join("supervision-202303-institutions.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with(&format!("202303,{EXAMS},{SUIZHOU},5,")) && l.ends_with(",exam_share")), "{csv}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(person_numbers_in(&page).is_empty(), "the page holds person numbers");
    assert!(
        !page.contains("<script") && !page.contains("http://") && !page.contains("https://"),
        "the page must need nothing at view time"
    );

    // Rendered by a real browser: the DOM it builds shows the planted outliers.
    let dom = chromium(&["--dump-dom", &format!("file://{}", html.display())]);
    for needle in [
        format!(r#"<tr class="warn" data-code="{EXAMS}" data-indicator="exam_share">"#),
        format!(r#"<tr class="warn" data-code="{JUMP}" data-indicator="cost_per_visit_growth">"#),
        format!(r#"<rect class="bar over" data-code="{JUMP}" data-value="2.0000""#),
        r#"<tr data-kind="multi_region_day"><td>multi_region_day</td><td>2</td></tr>"#.to_string(),
        r#"<tr data-kind="pharmacy_cashout"><td>pharmacy_cashout</td><td>1</td></tr>"#.to_string(),
        r#"<span id="warning-count">2</span>"#.to_string(),
    ] {
        assert!(dom.contains(&needle), "the rendered page lacks {needle}");
    }
    // And it paints: a screenshot of the page is a real PNG.
    let shot = out.path().join("page.png");
    chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1200,2400", &format!("file://{}", html.display())]);
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a blank or missing screenshot ({} bytes)", png.len());
}

/// Runs headless Chromium (Debian's `chromium`, installed by the test command) and returns its stdout.
fn chromium(args: &[&str]) -> String {
    let exe = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("no chromium: run ./scripts/test.sh, which installs it (Debian: apt-get install chromium)");
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--allow-file-access-from-files"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
