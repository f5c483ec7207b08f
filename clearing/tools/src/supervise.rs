//! `clearing supervision --month YYYYMM --out DIR`: a month's supervision report for a fund supervisor.
//! Reads `Supervision.GetIndicators` and every page of `ListFlaggedSettlements` and writes JSON, CSV and
//! one self-contained HTML page (inline SVG charts, no script, nothing fetched at view time): the
//! early-warning list, institutions ranked per indicator with the thresholds marked, cost per visit and
//! its month-on-month growth by institution, flag counts and the flagged settlements. No person number
//! is written anywhere: the report may travel further than the caller's rights.

use crate::client::{connect, describe_status};
use proto::v1 as pb;
use proto::v1::supervision_client::SupervisionClient;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", describe_status(&s))
}

/// Everything the report is drawn from.
#[derive(serde::Serialize)]
pub struct Report {
    pub indicators: pb::Indicators,
    /// Without person numbers.
    pub flagged: Vec<pb::FlaggedSettlement>,
}

pub async fn supervision(addr: &str, month: &str, out: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut c = SupervisionClient::new(connect(addr).await?).max_decoding_message_size(256 * 1024 * 1024);
    let indicators =
        c.get_indicators(pb::GetIndicatorsRequest { month: month.into(), ..Default::default() }).await.map_err(status)?.into_inner();
    let mut flagged = Vec::new();
    let mut token = String::new();
    loop {
        let req =
            pb::ListFlaggedSettlementsRequest { month: month.into(), page_size: 500, page_token: token.clone(), ..Default::default() };
        let page = c.list_flagged_settlements(req).await.map_err(status)?.into_inner();
        flagged.extend(page.settlements.into_iter().map(|s| pb::FlaggedSettlement { psn_no: String::new(), ..s }));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let report = Report { indicators, flagged };
    std::fs::create_dir_all(out)?;
    let base = out.join(format!("supervision-{month}"));
    std::fs::write(base.with_extension("json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(out.join(format!("supervision-{month}-institutions.csv")), institutions_csv(&report.indicators))?;
    std::fs::write(out.join(format!("supervision-{month}-pairs.csv")), pairs_csv(&report.indicators))?;
    std::fs::write(out.join(format!("supervision-{month}-flagged.csv")), flagged_csv(&report.flagged))?;
    std::fs::write(base.with_extension("html"), html(&report))?;
    let i = &report.indicators;
    println!(
        "supervision {month}: {} institutions, {} region pairs, {} early warnings, {} flagged settlements ({:.1?})",
        i.institutions.len(),
        i.pairs.len(),
        i.early_warnings.len(),
        report.flagged.len(),
        started.elapsed()
    );
    for w in &i.early_warnings {
        println!("  warning {} ({}): {} {} above {}", w.fixmedins_code, w.mdtrt_admdvs, w.indicator, w.value, w.threshold);
    }
    println!("  wrote {}.json, .html and the -institutions, -pairs, -flagged CSV files", base.display());
    Ok(())
}

fn m(x: &Option<pb::Measures>) -> pb::Measures {
    x.clone().unwrap_or_default()
}

const MEASURE_HEAD: &str =
    "claims,medfee_sumamt,cost_per_visit,selfpay_amt,selfpay_share,exam_amt,exam_share,acct_pay,acct_share,fund_pay_sumamt,flagged_claims";

fn measure_cells(x: &pb::Measures) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        x.claims,
        x.medfee_sumamt,
        x.cost_per_visit,
        x.selfpay_amt,
        x.selfpay_share,
        x.exam_amt,
        x.exam_share,
        x.acct_pay,
        x.acct_share,
        x.fund_pay_sumamt,
        x.flagged_claims
    )
}

pub fn institutions_csv(i: &pb::Indicators) -> String {
    let mut s = format!("month,fixmedins_code,mdtrt_admdvs,{MEASURE_HEAD},previous_cost_per_visit,cost_per_visit_growth,warnings\n");
    for r in &i.institutions {
        let warns: Vec<&str> =
            i.early_warnings.iter().filter(|w| w.fixmedins_code == r.fixmedins_code).map(|w| w.indicator.as_str()).collect();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            i.month,
            r.fixmedins_code,
            r.mdtrt_admdvs,
            measure_cells(&m(&r.month)),
            m(&r.previous_month).cost_per_visit,
            r.cost_per_visit_growth,
            warns.join(" ")
        );
    }
    s
}

pub fn pairs_csv(i: &pb::Indicators) -> String {
    let mut s = format!("month,insuplc_admdvs,mdtrt_admdvs,{MEASURE_HEAD},previous_cost_per_visit,cost_per_visit_growth\n");
    for r in &i.pairs {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            i.month,
            r.insuplc_admdvs,
            r.mdtrt_admdvs,
            measure_cells(&m(&r.month)),
            m(&r.previous_month).cost_per_visit,
            r.cost_per_visit_growth
        );
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

pub fn flagged_csv(f: &[pb::FlaggedSettlement]) -> String {
    let mut s = String::from(
        "setl_id,setl_time,insuplc_admdvs,mdtrt_admdvs,fixmedins_code,med_type,medfee_sumamt,fund_pay_sumamt,acct_pay,kinds,details\n",
    );
    for x in f {
        let kinds: Vec<&str> = x.flags.iter().map(|f| f.kind.as_str()).collect();
        let details: Vec<&str> = x.flags.iter().map(|f| f.detail.as_str()).collect();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            x.setl_id,
            x.setl_time,
            x.insuplc_admdvs,
            x.mdtrt_admdvs,
            x.fixmedins_code,
            x.med_type,
            x.medfee_sumamt,
            x.fund_pay_sumamt,
            x.acct_pay,
            kinds.join(" "),
            csv_field(&details.join("; "))
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A decimal string as a number for drawing only (never for money arithmetic).
fn num(s: &str) -> f64 {
    s.parse().unwrap_or(0.0)
}

/// One institution's value of an indicator and its region's threshold.
struct Bar<'a> {
    code: &'a str,
    mdtrt: &'a str,
    value: String,
    threshold: String,
    /// On the early-warning list for this indicator (drawn red); `few`: too few claims to be judged (grey).
    warned: bool,
    few: bool,
}

/// A horizontal bar chart: one row per institution, the threshold of its region marked on the row,
/// bars past their threshold drawn as warnings. Negative values (a fall in cost) extend left of zero.
fn bar_chart(id: &str, title: &str, bars: &[Bar<'_>]) -> String {
    let (row, label_w, chart_w) = (22.0, 260.0, 520.0);
    let lo = bars.iter().map(|b| num(&b.value)).fold(0.0_f64, f64::min);
    let hi = bars.iter().flat_map(|b| [num(&b.value), num(&b.threshold)]).fold(0.0_f64, f64::max).max(1e-9);
    let span = (hi - lo) * 1.1;
    let x = |v: f64| label_w + (v - lo) / span * chart_w;
    let h = 30.0 + row * bars.len() as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" width="{}" height="{h}" role="img" aria-label="{}">"#,
        esc(title),
        label_w + chart_w + 90.0,
        esc(title)
    );
    let _ = write!(s, r#"<line x1="{0}" y1="20" x2="{0}" y2="{h}" class="axis"/>"#, x(0.0));
    for (i, b) in bars.iter().enumerate() {
        let y = 24.0 + row * i as f64;
        let (v, t) = (num(&b.value), num(&b.threshold));
        let (x0, x1) = if v >= 0.0 { (x(0.0), x(v)) } else { (x(v), x(0.0)) };
        let _ = write!(
            s,
            r#"<g class="row" data-code="{code}"><text x="{lx}" y="{ty}" class="label">{code} ({mdtrt})</text><rect class="bar {cls}" data-code="{code}" data-value="{val}" x="{x0:.1}" y="{y}" width="{w:.1}" height="{bh}"><title>{code}: {val} (threshold {thr})</title></rect><line class="threshold" x1="{tx:.1}" x2="{tx:.1}" y1="{ty0}" y2="{ty1}"/><text x="{vx:.1}" y="{ty}" class="value">{val}</text></g>"#,
            code = esc(b.code),
            mdtrt = esc(b.mdtrt),
            lx = label_w - 6.0,
            ty = y + 13.0,
            cls = if b.warned {
                "over"
            } else if b.few {
                "few"
            } else {
                "ok"
            },
            val = esc(&b.value),
            thr = esc(&b.threshold),
            w = (x1 - x0).max(1.0),
            bh = row - 6.0,
            tx = x(t),
            ty0 = y - 2.0,
            ty1 = y + row - 4.0,
            vx = x1.max(x(t)) + 4.0,
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn table(id: &str, head: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut s = format!(r#"<table id="{id}"><thead><tr>"#);
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>");
    for (attrs, cells) in rows {
        let _ = write!(s, "<tr {attrs}>");
        for c in cells {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

const STYLE: &str = "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}h1{font-size:1.5em}h2{margin-top:2em;font-size:1.2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}th{background:#f3f3f3}\
td:first-child,td:nth-child(2){text-align:left}tr.warn td{background:#fde8e8}.over{fill:#c62828}.ok{fill:#4a78b5}.few{fill:#bbb}\
.threshold{stroke:#111;stroke-width:2;stroke-dasharray:3 2}.axis{stroke:#999}.label{font-size:12px;text-anchor:end}.value{font-size:11px}\
figure{margin:1em 0}figcaption{font-weight:600;margin-bottom:.3em}.note{color:#555;font-size:.9em}";

/// The page: one file, inline SVG, no script.
pub fn html(r: &Report) -> String {
    let i = &r.indicators;
    let thresholds: BTreeMap<&str, &pb::WarningThresholds> = i.thresholds.iter().map(|t| (t.mdtrt_admdvs.as_str(), t)).collect();
    let th = |mdtrt: &str| thresholds.get(mdtrt).copied().cloned().unwrap_or_default();
    let warned: BTreeMap<(&str, &str), &pb::EarlyWarning> =
        i.early_warnings.iter().map(|w| ((w.fixmedins_code.as_str(), w.indicator.as_str()), w)).collect();
    let claims: i64 = i.institutions.iter().map(|x| m(&x.month).claims).sum();
    let flagged: i64 = i.institutions.iter().map(|x| m(&x.month).flagged_claims).sum();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>Supervision {month}</title><style>{STYLE}</style></head><body>
<h1>Outpatient supervision (门诊费用监控预警) — {month}</h1>
<p id="summary">{n_inst} institutions, {claims} claims, <span id="warning-count">{n_warn}</span> early warnings, {flagged} flagged claims; growth against {prev}.</p>
<p class="note">Indicators of Nanchang 002 §4(五): cost per visit, its growth, the self-paid share and the share of examinations. Thresholds are each service location's rule pack ([supervision]); no seed gives their numbers, so each is an assumption stated there. A warning or a flag is a reason to look, not a finding. No person numbers appear in this report.</p>"#,
        month = esc(&i.month),
        prev = esc(&i.previous_month),
        n_inst = i.institutions.len(),
        n_warn = i.early_warnings.len(),
    );
    // The early-warning list.
    s.push_str("<h2>Early-warning list</h2>");
    let rows: Vec<(String, Vec<String>)> = i
        .early_warnings
        .iter()
        .map(|w| {
            (
                format!(r#"class="warn" data-code="{}" data-indicator="{}""#, esc(&w.fixmedins_code), esc(&w.indicator)),
                vec![
                    w.fixmedins_code.clone(),
                    w.mdtrt_admdvs.clone(),
                    w.indicator.clone(),
                    w.value.clone(),
                    w.threshold.clone(),
                    w.provenance.clone(),
                ],
            )
        })
        .collect();
    s.push_str(&table(
        "early-warnings",
        &["institution", "service location", "indicator", "value", "threshold", "threshold's provenance"],
        &rows,
    ));
    // Charts.
    let mut by_cost: Vec<&pb::InstitutionIndicators> = i.institutions.iter().filter(|x| !m(&x.month).cost_per_visit.is_empty()).collect();
    by_cost.sort_by(|a, b| num(&m(&b.month).cost_per_visit).total_cmp(&num(&m(&a.month).cost_per_visit)));
    let bars: Vec<Bar<'_>> = by_cost
        .iter()
        .take(30)
        .map(|x| Bar {
            code: &x.fixmedins_code,
            mdtrt: &x.mdtrt_admdvs,
            value: m(&x.month).cost_per_visit,
            threshold: th(&x.mdtrt_admdvs).cost_per_visit,
            warned: warned.contains_key(&(x.fixmedins_code.as_str(), "cost_per_visit")),
            few: m(&x.month).claims < th(&x.mdtrt_admdvs).min_claims,
        })
        .collect();
    s.push_str("<h2>Cost per visit by institution</h2>");
    s.push_str(&bar_chart(
        "chart-cost-per-visit",
        "Cost per visit (yuan), highest 30; dashed: the region's threshold; red: on the early-warning list; grey: too few claims to judge",
        &bars,
    ));
    let mut by_growth: Vec<&pb::InstitutionIndicators> = i.institutions.iter().filter(|x| !x.cost_per_visit_growth.is_empty()).collect();
    by_growth.sort_by(|a, b| num(&b.cost_per_visit_growth).total_cmp(&num(&a.cost_per_visit_growth)));
    let bars: Vec<Bar<'_>> = by_growth
        .iter()
        .take(30)
        .map(|x| Bar {
            code: &x.fixmedins_code,
            mdtrt: &x.mdtrt_admdvs,
            value: x.cost_per_visit_growth.clone(),
            threshold: th(&x.mdtrt_admdvs).cost_per_visit_growth,
            warned: warned.contains_key(&(x.fixmedins_code.as_str(), "cost_per_visit_growth")),
            few: m(&x.month).claims < th(&x.mdtrt_admdvs).min_claims,
        })
        .collect();
    s.push_str("<h2>Month-on-month growth of cost per visit</h2>");
    s.push_str(&bar_chart("chart-growth", &format!("Growth on {} (0.30 = 30% more), highest 30", i.previous_month), &bars));
    // Rankings per indicator.
    type Get = fn(&pb::InstitutionIndicators) -> String;
    type Thr = fn(&pb::WarningThresholds) -> String;
    let indicators: [(&str, &str, Get, Thr); 4] = [
        ("cost_per_visit", "Cost per visit", |x| m(&x.month).cost_per_visit, |t| t.cost_per_visit.clone()),
        ("cost_per_visit_growth", "Growth of cost per visit", |x| x.cost_per_visit_growth.clone(), |t| t.cost_per_visit_growth.clone()),
        ("selfpay_share", "Self-paid share (全自费 + 超限价自费)", |x| m(&x.month).selfpay_share, |t| t.selfpay_share.clone()),
        ("exam_share", "Share of examinations (检查)", |x| m(&x.month).exam_share, |t| t.exam_share.clone()),
    ];
    s.push_str("<h2>Institutions ranked per indicator</h2>");
    for (key, title, get, thr) in indicators {
        let mut rows: Vec<&pb::InstitutionIndicators> = i.institutions.iter().filter(|x| !get(x).is_empty()).collect();
        rows.sort_by(|a, b| num(&get(b)).total_cmp(&num(&get(a))));
        let rows: Vec<(String, Vec<String>)> = rows
            .iter()
            .take(20)
            .enumerate()
            .map(|(n, x)| {
                let warn = warned.contains_key(&(x.fixmedins_code.as_str(), key));
                (
                    format!(r#"{}data-code="{}""#, if warn { r#"class="warn" "# } else { "" }, esc(&x.fixmedins_code)),
                    vec![
                        (n + 1).to_string(),
                        x.fixmedins_code.clone(),
                        x.mdtrt_admdvs.clone(),
                        m(&x.month).claims.to_string(),
                        get(x),
                        thr(&th(&x.mdtrt_admdvs)),
                        if warn { "above".into() } else { String::new() },
                    ],
                )
            })
            .collect();
        let _ = write!(s, "<h3>{}</h3>", esc(title));
        s.push_str(&table(&format!("rank-{key}"), &["#", "institution", "service location", "claims", "value", "threshold", ""], &rows));
    }
    // Flags.
    let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
    for x in i.institutions.iter().filter_map(|x| x.month.as_ref()) {
        for (k, n) in &x.flags_by_kind {
            *by_kind.entry(k.as_str()).or_default() += n;
        }
    }
    s.push_str("<h2>Flags on settlements</h2>");
    let rows: Vec<(String, Vec<String>)> =
        by_kind.iter().map(|(k, n)| (format!(r#"data-kind="{}""#, esc(k)), vec![k.to_string(), n.to_string()])).collect();
    s.push_str(&table("flag-counts", &["kind", "claims"], &rows));
    let rows: Vec<(String, Vec<String>)> = r
        .flagged
        .iter()
        .map(|f| {
            let kinds: Vec<&str> = f.flags.iter().map(|f| f.kind.as_str()).collect();
            let details: Vec<&str> = f.flags.iter().map(|f| f.detail.as_str()).collect();
            (
                format!(r#"data-setl-id="{}" data-kinds="{}""#, esc(&f.setl_id), esc(&kinds.join(" "))),
                vec![
                    f.setl_id.clone(),
                    f.fixmedins_code.clone(),
                    f.insuplc_admdvs.clone(),
                    f.medfee_sumamt.clone(),
                    f.acct_pay.clone(),
                    kinds.join(" "),
                    details.join("; "),
                ],
            )
        })
        .collect();
    s.push_str("<h3>Flagged settlements</h3>");
    s.push_str(&table(
        "flagged",
        &["settlement", "institution", "insured region", "medical cost", "account", "flags", "what was seen"],
        &rows,
    ));
    s.push_str("</body></html>\n");
    s
}

/// `clearing bench-indicators`: loads the supervision aggregates that `settlements` settlements of a month
/// (and of the month before, for growth) leave over `institutions` institutions and `pairs` region pairs
/// of 400 synthetic regions, straight into a store, as commits spread over the shards would; or, with
/// `--time-read`, times `GetIndicators` of the whole month on a running service.
#[derive(clap::Args, Debug)]
pub struct IndicatorBenchArgs {
    /// YYYYMM (use a month no real settlement has, e.g. 209912).
    #[arg(long)]
    pub month: String,
    #[arg(long, default_value_t = 20_000)]
    pub institutions: usize,
    #[arg(long, default_value_t = 24_000)]
    pub pairs: usize,
    #[arg(long, default_value_t = 10_000_000)]
    pub settlements: i64,
    /// Time a read of the month through `addr` instead of loading.
    #[arg(long)]
    pub time_read: bool,
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub addr: String,
    /// Load into Redis (the URL of `clearing serve --store redis`) …
    #[arg(long, default_value = "embedded")]
    pub store: String,
    #[arg(long)]
    pub redis_url: Vec<String>,
    /// … or into the embedded store's directory (while no `clearing serve` has it open).
    #[arg(long, default_value = "data")]
    pub data_dir: std::path::PathBuf,
}

pub async fn bench_indicators(a: IndicatorBenchArgs) -> anyhow::Result<()> {
    if a.time_read {
        let mut c = SupervisionClient::new(connect(&a.addr).await?).max_decoding_message_size(512 * 1024 * 1024);
        let t = std::time::Instant::now();
        let r = c.get_indicators(pb::GetIndicatorsRequest { month: a.month.clone(), ..Default::default() }).await.map_err(status)?;
        let elapsed = t.elapsed();
        let i = r.into_inner();
        println!(
            "  GetIndicators {}: {} institutions, {} region pairs, {} early warnings, in {:.3} s",
            a.month,
            i.institutions.len(),
            i.pairs.len(),
            i.early_warnings.len(),
            elapsed.as_secs_f64()
        );
        return Ok(());
    }
    let prev = clearing_service::supervision::previous_month(&a.month).ok_or_else(|| anyhow::anyhow!("--month must be YYYYMM"))?;
    let t = std::time::Instant::now();
    let fields = match a.store.as_str() {
        "redis" => {
            let s = clearing_service::store::redis::RedisStore::connect(&clearing_service::store::redis::RedisOptions {
                urls: a.redis_url.clone(),
                allow_volatile: true,
            })
            .await?;
            let n = load(&s, &a, &prev).await?;
            // Fold what the load left pending, as the service's folder does every 2 s.
            s.fold_indicators(&a.month).await?;
            s.fold_indicators(&prev).await?;
            n
        }
        _ => load(&clearing_service::store::embedded::EmbeddedStore::open(&a.data_dir)?, &a, &prev).await?,
    };
    println!(
        "  loaded {fields} indicator fields ({} institutions, {} pairs, {} settlements a month, months {prev} and {}) in {:.1} s",
        a.institutions,
        a.pairs,
        a.settlements,
        a.month,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes both months' aggregates; returns how many fields were written.
async fn load<S: clearing_service::store::Store>(s: &S, a: &IndicatorBenchArgs, prev: &str) -> anyhow::Result<usize> {
    let regions: Vec<String> = crate::bench::synthetic_rule_files(400)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".toml") && !n.ends_with(".catalogue.toml") && n.as_bytes()[..6].iter().all(u8::is_ascii_digit))
        .map(|(n, _)| n[..6].to_string())
        .filter(|c| !c.ends_with("0000"))
        .collect();
    let mut rng = crate::bench::Rng::new(19);
    let mut written = 0;
    for (month, scale) in [(prev, 95), (a.month.as_str(), 100)] {
        let mut by_shard: BTreeMap<u16, Vec<(String, i64)>> = BTreeMap::new();
        let mut entity = |rng: &mut crate::bench::Rng, name: String, n: i64| {
            let per_visit = 10_000 + rng.below(40_000) as i64; // 100–500 yuan
            let m = n * per_visit * scale / 100;
            let pct = |rng: &mut crate::bench::Rng, max: u64| m * rng.below(max) as i64 / 100;
            let flagged = n / 50;
            let f = [
                ("n", n),
                ("m", m),
                ("s", pct(rng, 30)),
                ("e", pct(rng, 45)),
                ("a", pct(rng, 20)),
                ("f", pct(rng, 60)),
                ("x", flagged),
                ("k:high_cost", flagged / 2),
                ("k:multi_region_day", flagged - flagged / 2),
            ];
            let shard = rng.below(clearing_service::ids::SHARDS as u64) as u16;
            by_shard.entry(shard).or_default().extend(f.into_iter().filter(|(_, v)| *v != 0).map(|(k, v)| (format!("{name}|{k}"), v)));
        };
        let per = |count: usize| (a.settlements / count.max(1) as i64).max(1);
        for i in 0..a.institutions {
            let mdtrt = &regions[i % regions.len()];
            let n = per(a.institutions) / 2 + rng.below(per(a.institutions) as u64) as i64;
            entity(&mut rng, format!("i|{mdtrt}|H{mdtrt}{:05}", i / regions.len()), n);
        }
        for i in 0..a.pairs {
            let insured = &regions[i % regions.len()];
            let mdtrt = &regions[(i / regions.len() + 1 + i) % regions.len()];
            let n = per(a.pairs) / 2 + rng.below(per(a.pairs) as u64) as i64;
            entity(&mut rng, format!("p|{insured}|{mdtrt}"), n);
        }
        for (shard, fields) in by_shard {
            for chunk in fields.chunks(5_000) {
                s.add_indicators(shard, month, chunk).await?;
                written += chunk.len();
            }
        }
    }
    Ok(written)
}
