//! 3201/3202: reconciliation of the caller's service location for one clearing day.

use super::*;

/// 3201/3202's fields by their national path.
pub(crate) const RECONCILE: FieldPaths = FieldPaths {
    named: &[
        ("mdtrt_admdvs", "mdtrtarea_admvs"),
        ("fixmedins_code", "fixmedins_code"),
        ("clr_date", "input.data.stmt_begndate"),
        ("clr_date_end", "input.data.stmt_enddate"),
        ("count", "input.data.fixmedins_setl_cnt"),
    ],
    list: Some(("items", "input.detail", &[])),
    rest: "input.data",
};

/// The clearing day of a reconciliation: `stmt_begndate` = `stmt_enddate` (one window per call).
pub(crate) fn stmt_day(f: &mut Fields<'_>, d: &Map<String, Value>) -> String {
    let p = "input.data";
    let b = f.text(d, p, "stmt_begndate", true, 10);
    let e = f.text(d, p, "stmt_enddate", false, 10);
    if !e.is_empty() && e != b {
        f.v.add("input.data.stmt_enddate", "one clearing day per call: must equal stmt_begndate");
    }
    b
}

pub(crate) fn stmt_output(env: &Envelope, r: &pb::ReconcileResult) -> Value {
    let diffs: Vec<Value> = r
        .differences
        .iter()
        .map(|d| json!({ "kind": d.kind, "setl_id": d.setl_id, "field": d.field, "ours": d.ours, "theirs": d.theirs }))
        .collect();
    json!({
        "stmtinfo": {
            "setl_optins": env.mdtrtarea_admvs,
            "stmt_rslt": if r.matched { "0" } else { "1" },
            "stmt_rslt_dscr": if r.matched { "matched".to_string() } else { format!("{} differences", r.differences_total) },
        },
        "compared": r.compared,
        "differences_total": r.differences_total,
        "differences": diffs,
    })
}

pub(crate) async fn reconcile_totals(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    // The institution of the envelope: 3201 reconciles one institution's settlements.
    let mut q = pb::ReconcileTotalsRequest {
        mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(),
        fixmedins_code: call.env.fixmedins_code.clone(),
        ..Default::default()
    };
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        let p = "input.data";
        // A range of days (stmt_begndate to stmt_enddate, at most a month).
        q.clr_date = f.text(d, p, "stmt_begndate", true, 10);
        q.clr_date_end = f.text(d, p, "stmt_enddate", false, 10);
        // One group per call, as HIS code groups its settlements: employee insurance (310) only; the
        // clearing category is the institution's (11 outpatient at a hospital, 41 at a pharmacy); the
        // agency is the clr_optins our 2207 answered (the service location).
        let insutype = f.text(d, p, "insutype", false, 8);
        if !insutype.is_empty() && insutype != EMPLOYEE_BASIC {
            f.v.add("input.data.insutype", "only 310 (employee basic medical insurance) is settled here");
        }
        let clr_type = f.text(d, p, "clr_type", false, 8);
        let ours = if call.env.fixmedins_code.starts_with('P') { "41" } else { "11" };
        if !clr_type.is_empty() && clr_type != ours {
            f.v.add("input.data.clr_type", format!("{} settles clr_type {ours} here", call.env.fixmedins_code));
        }
        let optins = f.text(d, p, "setl_optins", false, 8);
        if !optins.is_empty() && optins != call.env.mdtrtarea_admvs {
            f.v.add(
                "input.data.setl_optins",
                format!("the clearing agency of these settlements is {} (clr_optins of 2207)", call.env.mdtrtarea_admvs),
            );
        }
        // refd_setl_flag (either case) is accepted and ignored: reversals are always in the totals,
        // as negative settlements.
        f.text(d, p, "refd_setl_flag", false, 3);
        q.medfee_sumamt = f.text(d, p, "medfee_sumamt", true, 32);
        q.fund_pay_sumamt = f.text(d, p, "fund_pay_sumamt", true, 32);
        q.acct_pay = f.text(d, p, "acct_pay", true, 32);
        let cnt = f.text(d, p, "fixmedins_setl_cnt", true, 12);
        match cnt.parse::<i64>() {
            Ok(n) => q.count = n,
            Err(_) if cnt.is_empty() => {}
            Err(_) => f.v.add("input.data.fixmedins_setl_cnt", "must be a whole number"),
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    match NettingClient::new(clients.channel.clone()).reconcile_totals(call.request(q)).await {
        Ok(r) => Answer::done(stmt_output(call.env, &r.into_inner())),
        Err(st) => from_status(&st, &RECONCILE),
    }
}

/// One row of a 3202 detail file: `setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay,
/// refd_setl_flag`, tab-separated (spaces read too; then no column may be empty); `mdtrt_id` and
/// `psn_no` may be empty (a claim sent whole has no visit); a first line naming the columns is skipped.
#[derive(Debug)]
struct FileRow {
    item: pb::ReconcileItem,
    mdtrt_id: String,
    psn_no: String,
    refd_setl_flag: String,
}

const DETAIL_COLUMNS: &str = "setl_id, mdtrt_id, psn_no, medfee_sumamt, fund_pay_sumamt, acct_pay[, refd_setl_flag]";

/// The rows of an uploaded detail file (unzipped), or what is wrong with it.
fn detail_rows(bytes: &[u8]) -> Result<Vec<FileRow>, String> {
    let text = crate::files::unzipped(bytes)?;
    let text = String::from_utf8_lossy(&text);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (mut rows, mut seen) = (Vec::new(), HashMap::new());
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> =
            if line.contains('\t') { line.split('\t').map(str::trim).collect() } else { line.split_whitespace().collect() };
        if cols.iter().all(|c| c.is_empty()) || (n == 0 && cols[0] == "setl_id") {
            continue;
        }
        let bad = |i: usize| cols[i].len() > MAX_FIELD_LEN || (cols[i].is_empty() && ![1, 2].contains(&i));
        if !(6..=7).contains(&cols.len()) || (0..cols.len()).any(bad) {
            return Err(format!("line {}: expected {DETAIL_COLUMNS}, separated by tabs", n + 1));
        }
        if rows.len() == MAX_RECONCILE_ITEMS {
            return Err(format!("at most {MAX_RECONCILE_ITEMS} rows per file"));
        }
        // Amounts in yuan, negative for a reversal (退费 refd_setl_flag 1).
        for (i, name) in [(3, "medfee_sumamt"), (4, "fund_pay_sumamt"), (5, "acct_pay")] {
            if signed_fen(cols[i]).is_none_or(|f| f.abs() > MAX_AMOUNT_FEN) {
                return Err(format!("line {}: {name} is not an amount in yuan with at most two decimals", n + 1));
            }
        }
        if let Some(first) = seen.insert(cols[0].to_string(), n + 1) {
            return Err(format!("line {}: setl_id repeats line {first}", n + 1));
        }
        let s = |i: usize| cols.get(i).map_or(String::new(), |c| c.to_string());
        rows.push(FileRow {
            item: pb::ReconcileItem { setl_id: s(0), medfee_sumamt: s(3), fund_pay_sumamt: s(4), acct_pay: s(5) },
            mdtrt_id: s(1),
            psn_no: s(2),
            refd_setl_flag: s(6),
        });
    }
    Ok(rows)
}

/// 3202's result file (tab-separated, one row per uploaded settlement and per settlement of ours the
/// file lacks): `psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo, medfee_sumamt,
/// fund_pay_sumamt, acct_pay`; `stmt_rslt` 0 matched, 1 differs (the memo says how).
fn result_file(rows: &[FileRow], r: &pb::ReconcileResult) -> String {
    // Clearing lists at most 10,000 differences, the file's rows in order before ours it lacks: beyond,
    // a row without one listed is not known to match — unless the list reached ours it lacks, when
    // every row of the file was compared and listed.
    let all_listed = r.differences_total <= r.differences.len() as i64 || r.differences.iter().any(|d| d.kind == "missing_there");
    let mut memo: HashMap<&str, Vec<String>> = HashMap::new();
    for d in &r.differences {
        let m = match d.kind.as_str() {
            "missing_here" => "not settled here".to_string(),
            "missing_there" => "settled here, not in the file".to_string(),
            _ => format!("{}: ours {}, yours {}", d.field, d.ours, d.theirs),
        };
        memo.entry(d.setl_id.as_str()).or_default().push(m);
    }
    let mut out =
        String::from("psn_no\tmdtrt_id\tsetl_id\tmsgid\tstmt_rslt\trefd_setl_flag\tmemo\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\n");
    for row in rows {
        let m = memo.remove(row.item.setl_id.as_str()).unwrap_or_default();
        let i = &row.item;
        let (rslt, memo) = match (m.is_empty(), all_listed) {
            (false, _) => ("1", m.join("; ")),
            (true, true) => ("0", String::new()),
            (true, false) => ("", format!("not known: more than {} differences; reconcile in smaller files", r.differences.len())),
        };
        out += &format!(
            "{}\t{}\t{}\t\t{rslt}\t{}\t{memo}\t{}\t{}\t{}\n",
            row.psn_no, row.mdtrt_id, i.setl_id, row.refd_setl_flag, i.medfee_sumamt, i.fund_pay_sumamt, i.acct_pay
        );
    }
    let mut rest: Vec<_> = memo.into_iter().filter(|(id, _)| !id.is_empty()).collect();
    rest.sort();
    for (setl_id, m) in rest {
        out += &format!("\t\t{setl_id}\t\t1\t\t{}\t\t\t\n", m.join("; "));
    }
    out
}

pub(crate) async fn reconcile_detail(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let mut msg = pb::ReconcileDetailRequest {
        mdtrt_admdvs: call.env.mdtrtarea_admvs.clone(),
        fixmedins_code: call.env.fixmedins_code.clone(),
        ..Default::default()
    };
    let mut file_no = String::new();
    if let Some(d) = f.obj(&call.env.input, "input", "data") {
        msg.clr_date = stmt_day(&mut f, d);
        file_no = f.text(d, "input.data", "file_qury_no", false, 64);
    }
    let inline = matches!(call.env.input.get("detail"), Some(Value::Array(a)) if !a.is_empty());
    if !file_no.is_empty() && inline {
        f.v.add("input.detail", "send the details in a file (file_qury_no) or inline, not both");
    }
    if file_no.is_empty()
        && let Some(items) = f.list(&call.env.input, "input", "detail")
    {
        if items.len() > MAX_RECONCILE_ITEMS {
            f.v.add("input.detail", format!("at most {MAX_RECONCILE_ITEMS} items per call"));
        }
        for (i, it) in items.iter().take(MAX_RECONCILE_ITEMS).enumerate() {
            let p = format!("input.detail[{i}]");
            let Value::Object(it) = it else {
                f.v.add(p, "must be an object");
                continue;
            };
            msg.items.push(pb::ReconcileItem {
                setl_id: f.text(it, &p, "setl_id", true, MAX_FIELD_LEN),
                medfee_sumamt: f.text(it, &p, "medfee_sumamt", true, 32),
                fund_pay_sumamt: f.text(it, &p, "fund_pay_sumamt", true, 32),
                acct_pay: f.text(it, &p, "acct_pay", true, 32),
            });
        }
    }
    if !v.0.is_empty() {
        return invalid(v);
    }
    // The national way: the details uploaded with 9101, the result answered as a file for 9102.
    let mut rows = Vec::new();
    if !file_no.is_empty() {
        let bytes = match clients.files.get(&call.paas.paasid, &file_no).await {
            Ok(Some((_, b))) => b,
            Ok(None) => return Answer::invalid(format!("input.data.file_qury_no: no file {file_no} uploaded by this caller (9101)")),
            Err(e) => return files::file_refusal(e, "input.data.file_qury_no"),
        };
        rows = match detail_rows(&bytes) {
            Ok(r) => r,
            Err(why) => return Answer::invalid(format!("input.data.file_qury_no: {why}")),
        };
        msg.items = rows.iter().map(|r| r.item.clone()).collect();
    }
    let stream = tokio_stream::iter([msg]);
    let r = match NettingClient::new(clients.channel.clone()).reconcile_detail(call.request(stream)).await {
        Ok(r) => r.into_inner(),
        Err(st) => return from_status(&st, &RECONCILE),
    };
    let mut out = stmt_output(call.env, &r);
    if !file_no.is_empty() {
        let day = call.env.input["data"]["stmt_begndate"].as_str().unwrap_or_default().replace('-', "");
        let name = format!("3202-{}-{day}.zip", call.env.fixmedins_code);
        let zip = crate::files::zipped("result.txt", result_file(&rows, &r).as_bytes());
        match clients.files.put(&call.paas.paasid, &name, zip).await {
            Ok(s) => out["fileinfo"] = json!({ "file_qury_no": s.file_qury_no, "filename": s.filename, "dld_endtime": s.dld_endtime }),
            Err(e) => return files::file_refusal(e, "input.data.file_qury_no"),
        }
    }
    Answer::done(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_file_is_read_row_by_row_and_its_faults_named_by_line() {
        let ok = "setl_id\tmdtrt_id\tpsn_no\tmedfee_sumamt\tfund_pay_sumamt\tacct_pay\trefd_setl_flag\n\
                  S1\tV1\tP1\t880.00\t228.00\t500.00\t0\n\
                  S2\t\t\t-880.00\t-228.00\t-500.00\t1\n";
        let rows = detail_rows(&crate::files::zipped("d.txt", ok.as_bytes())).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[1].item.setl_id.as_str(), rows[1].item.medfee_sumamt.as_str(), rows[1].refd_setl_flag.as_str()),
            ("S2", "-880.00", "1")
        );
        // Spaces instead of tabs (no empty column then), and each fault with its line.
        assert_eq!(detail_rows(b"S1 V1 P1 1.00 0.50 0.50").unwrap().len(), 1);
        assert!(detail_rows(b"S1\tV1\tP1\t1.005\t0\t0\n").unwrap_err().starts_with("line 1: medfee_sumamt"));
        assert!(detail_rows(b"S1\tV1\tP1\t1\t0\t0\nS1\tV2\tP1\t1\t0\t0\n").unwrap_err().starts_with("line 2: setl_id repeats line 1"));
        assert!(detail_rows(b"S1\tV1\tP1\t1\t0\n").unwrap_err().starts_with("line 1: expected"));
        assert!(detail_rows(b"\tV1\tP1\t1\t0\t0\n").unwrap_err().starts_with("line 1: expected"));
    }

    #[test]
    fn the_result_file_marks_each_row_and_says_when_differences_were_cut() {
        let rows = detail_rows(b"S1\tV1\tP1\t1.00\t0.50\t0.50\nS2\tV2\tP1\t2.00\t1.00\t1.00\n").unwrap();
        let diff = |kind: &str, id: &str| pb::Difference { kind: kind.into(), setl_id: id.into(), ..Default::default() };
        let all = pb::ReconcileResult {
            differences: vec![diff("missing_here", "S2"), diff("missing_there", "S9")],
            differences_total: 2,
            ..Default::default()
        };
        let text = result_file(&rows, &all);
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!((lines[1][2], lines[1][4]), ("S1", "0"));
        assert_eq!((lines[2][2], lines[2][4], lines[2][6]), ("S2", "1", "not settled here"));
        assert_eq!((lines[3][2], lines[3][4], lines[3][6]), ("S9", "1", "settled here, not in the file"));
        // More differences than listed: a row with none listed is not known to match.
        let cut = pb::ReconcileResult { differences: vec![diff("missing_here", "S2")], differences_total: 20_000, ..Default::default() };
        let text = result_file(&rows, &cut);
        let first: Vec<&str> = text.lines().nth(1).unwrap().split('\t').collect();
        assert_eq!(first[4], "");
        assert!(first[6].starts_with("not known"), "{text}");
    }
}
