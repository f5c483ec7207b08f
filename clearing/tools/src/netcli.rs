//! `clearing net --date D`: the nightly job an operator runs. Closes the window, nets it, and writes the
//! report as JSON and CSV and a picture of the net flows (SVG) that a person can look at.

use crate::client::{connect, describe_status};
use proto::v1 as pb;
use proto::v1::catalogue_client::CatalogueClient;
use proto::v1::netting_client::NettingClient;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", describe_status(&s))
}

pub async fn net(addr: &str, date: &str, out: &Path) -> anyhow::Result<()> {
    // `yesterday` (Asia/Shanghai) for a nightly CronJob that cannot compute dates itself.
    let yesterday;
    let date = if date == "yesterday" {
        yesterday = (clearing_service::calendar::today() - chrono::Duration::days(1)).to_string();
        yesterday.as_str()
    } else {
        date
    };
    let ch = connect(addr).await?;
    let mut n = NettingClient::new(ch.clone()).max_decoding_message_size(clearing_edge::limits::MAX_NETTING_ANSWER_BYTES);
    let w = n.close_window(pb::CloseWindowRequest { clr_date: date.into() }).await.map_err(status)?.into_inner();
    let started = std::time::Instant::now();
    let r = n.get_netting_report(pb::GetNettingReportRequest { clr_date: date.into() }).await.map_err(status)?.into_inner();
    let elapsed = started.elapsed();
    let names: BTreeMap<String, String> = CatalogueClient::new(ch)
        .list_regions(pb::ListRegionsRequest {})
        .await
        .map(|r| r.into_inner().regions.into_iter().map(|g| (g.admdvs, format!("{} {}", g.name, g.name_en))).collect())
        .unwrap_or_default();
    std::fs::create_dir_all(out)?;
    let base = out.join(format!("netting-{date}"));
    std::fs::write(base.with_extension("json"), serde_json::to_string_pretty(&r)?)?;
    std::fs::write(base.with_extension("csv"), csv(&r, &names))?;
    std::fs::write(base.with_extension("svg"), svg(&r, &names))?;
    println!("window {date}: {} → netted in {:.0?}; {} settlements, {} regions", w.state, elapsed, r.settlement_count, r.positions.len());
    println!(
        "  gross {}  bilateral net {}  multilateral net {}  saving {}",
        r.gross_total, r.bilateral_net_total, r.multilateral_net_total, r.saving
    );
    println!("  complete: {} ({} journal entries)  digest {}", r.complete, r.journal_entries, r.digest);
    for a in r.advances.iter().filter(|a| a.flag != "ok") {
        println!("  advance {}: net debit {} of {} ({})", a.admdvs, a.net_debit, a.advance, a.flag);
    }
    println!("  wrote {}.json, .csv, .svg", base.display());
    Ok(())
}

pub async fn statement(addr: &str, setlym: &str) -> anyhow::Result<()> {
    let mut n = NettingClient::new(connect(addr).await?).max_decoding_message_size(clearing_edge::limits::MAX_NETTING_ANSWER_BYTES);
    let s = n.get_monthly_statement(pb::GetMonthlyStatementRequest { setlym: setlym.into() }).await.map_err(status)?.into_inner();
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}

/// One CSV: a `record` column says whether a row is a position, an instruction or an obligation.
pub fn csv(r: &pb::NettingReport, names: &BTreeMap<String, String>) -> String {
    let mut s = String::from("record,clr_date,admdvs,name,payable,receivable,net,from_admdvs,to_admdvs,amount\n");
    for p in &r.positions {
        let _ = writeln!(
            s,
            "position,{},{},{},{},{},{},,,",
            r.clr_date,
            p.admdvs,
            names.get(&p.admdvs).map_or("", |n| n),
            p.payable,
            p.receivable,
            p.net
        );
    }
    for i in &r.instructions {
        let _ = writeln!(s, "instruction,{},,,,,,{},{},{}", r.clr_date, i.from_admdvs, i.to_admdvs, i.amount);
    }
    for o in &r.obligations {
        let _ = writeln!(s, "obligation,{},,,,,,{},{},{}", r.clr_date, o.from_admdvs, o.to_admdvs, o.amount);
    }
    let _ = writeln!(
        s,
        "total,{},,,,,,,,gross {} / bilateral {} / multilateral {} / saving {}",
        r.clr_date, r.gross_total, r.bilateral_net_total, r.multilateral_net_total, r.saving
    );
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Fen of a wire amount (a report we produced ourselves).
fn fen(s: &str) -> i64 {
    clearing_edge::fields::signed_fen(s).unwrap_or(0)
}

/// The net flows: payers in the left column send into the central clearing account, which pays the
/// receivers in the right column; an arrow's width grows with its amount. Integer geometry only.
pub fn svg(r: &pb::NettingReport, names: &BTreeMap<String, String>) -> String {
    const ROW: i64 = 64;
    const TOP: i64 = 130;
    let payers: Vec<&pb::Position> = r.positions.iter().filter(|p| fen(&p.net) < 0).collect();
    let receivers: Vec<&pb::Position> = r.positions.iter().filter(|p| fen(&p.net) > 0).collect();
    let even: Vec<&pb::Position> = r.positions.iter().filter(|p| fen(&p.net) == 0).collect();
    let rows = payers.len().max(receivers.len()).max(1) as i64;
    let (w, h) = (1040i64, TOP + rows * ROW + if even.is_empty() { 10 } else { 50 });
    let (cx, cy) = (520i64, TOP + (rows * ROW) / 2 - ROW / 2 + 20);
    let max = r.instructions.iter().map(|i| fen(&i.amount)).max().unwrap_or(1).max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">
<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="14" markerHeight="14" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="34" font-size="22" font-weight="bold">Net flows, clearing day {date}</text>
<text x="20" y="60" font-size="14">gross {gross} · bilateral net {bi} · multilateral net {multi} (moved) · saving {saving} · {count} settlements</text>
<text x="20" y="82" font-size="12" fill="#666">left: funds that pay in (red) · right: funds that receive (green) · width grows with the amount · digest {digest}</text>
"##,
        date = esc(&r.clr_date),
        gross = r.gross_total,
        bi = r.bilateral_net_total,
        multi = r.multilateral_net_total,
        saving = r.saving,
        count = r.settlement_count,
        digest = &r.digest[..r.digest.len().min(16)]
    );
    let node = |out: &mut String, x: i64, y: i64, p: &pb::Position, colour: &str, pays: bool| {
        let name = names.get(&p.admdvs).map_or(String::new(), |s| esc(s));
        let _ = writeln!(
            out,
            r##"<rect x="{}" y="{}" width="200" height="48" rx="8" fill="#fff" stroke="{colour}" stroke-width="2"/>"##,
            x - 90,
            y - 24
        );
        let _ = writeln!(out, r##"<text x="{x}" y="{}" font-size="14" text-anchor="middle">{name} {}</text>"##, y - 4, p.admdvs);
        let _ = writeln!(
            out,
            r##"<text x="{x}" y="{}" font-size="12" text-anchor="middle" fill="{colour}">{} {}</text>"##,
            y + 14,
            if pays { "pays" } else { "receives" },
            p.net.trim_start_matches('-')
        );
        let width_tenths = 15 + 110 * fen(&p.net).abs() / max;
        let (x1, y1, x2, y2) = if pays { (x + 100, y, cx - 72, cy) } else { (cx + 72, cy, x - 102, y) };
        let _ = writeln!(
            out,
            r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="{}.{}" marker-end="url(#a)" opacity="0.8"/>"##,
            width_tenths / 10,
            width_tenths % 10
        );
    };
    for (k, p) in payers.iter().enumerate() {
        node(&mut out, 130, TOP + k as i64 * ROW, p, "#c0392b", true);
    }
    for (k, p) in receivers.iter().enumerate() {
        node(&mut out, 920, TOP + k as i64 * ROW, p, "#1e8449", false);
    }
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{}" width="140" height="64" rx="10" fill="#f4f6f7" stroke="#34495e" stroke-width="2"/>"##,
        cx - 70,
        cy - 32
    );
    let _ = writeln!(
        out,
        r##"<text x="{cx}" y="{}" font-size="13" text-anchor="middle" font-weight="bold">中央清算账户 central</text>"##,
        cy - 6
    );
    let _ = writeln!(
        out,
        r##"<text x="{cx}" y="{}" font-size="12" text-anchor="middle">000000 · {}</text>"##,
        cy + 14,
        r.multilateral_net_total
    );
    if !even.is_empty() {
        let list: Vec<String> = even.iter().map(|p| format!("{} {}", names.get(&p.admdvs).map_or("", |s| s), p.admdvs)).collect();
        let _ = writeln!(
            out,
            r##"<text x="20" y="{}" font-size="12" fill="#888">even (no transfer): {}</text>"##,
            h - 20,
            esc(&list.join(", "))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// `clearing credit`: one month's account credits for a region, page by page, a progress line per page
/// on stderr and the summary (members, credited, total, skipped with reasons, the rules applied) on
/// stdout. Safe to run again: every member-month is credited at most once.
pub async fn credit(addr: &str, region: &str, month: &str) -> anyhow::Result<()> {
    let mut r = proto::v1::registry_client::RegistryClient::new(connect(addr).await?);
    let (mut members, mut credited, mut already, mut total_fen) = (0i64, 0i64, 0i64, 0i64);
    let mut skipped: BTreeMap<String, i64> = BTreeMap::new();
    let mut rules: std::collections::BTreeSet<String> = Default::default();
    let mut token = String::new();
    let started = std::time::Instant::now();
    loop {
        let req = pb::CreditAccountsRequest { insuplc_admdvs: region.into(), month: month.into(), page_token: token.clone(), page_size: 0 };
        let page = r.credit_accounts(req).await.map_err(status)?.into_inner();
        members += page.members;
        credited += page.credited;
        already += page.already_credited;
        total_fen += clearing_edge::fields::signed_fen(&page.total).unwrap_or(0);
        for s in page.skipped {
            *skipped.entry(s.reason).or_default() += s.count;
        }
        rules.extend(page.explanation);
        eprintln!(
            "credit {region} {month}: {members} members, {credited} credited ({}), {already} credited before, {} skipped, {:.1?}",
            region_adapter::money::fmt_yuan(total_fen),
            skipped.values().sum::<i64>(),
            started.elapsed()
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    println!("region {region}, month {month}");
    println!("members: {members}");
    println!("credited: {credited}, total {}", region_adapter::money::fmt_yuan(total_fen));
    println!("credited before (left as they were): {already}");
    for (reason, n) in &skipped {
        println!("skipped {n}: {reason}");
    }
    for rule in &rules {
        println!("rule: {rule}");
    }
    Ok(())
}
