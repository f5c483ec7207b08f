//! Issue 20: the same answers, byte for byte, before and after the performance work. A fixed set of
//! calls (settlements over several regions and benefits, a cap reached across visits, the account, a
//! family payer, a pharmacy fill, a resend, a resend with other content, a preview, reversals, reads
//! back) is run against `clearing serve` on the embedded store and on Redis; every answer, encoded as
//! protobuf, must equal the one recorded in `tests/fixtures/recorded-answers.txt` by the code before
//! the change. Only what differs between runs by design is normalized: settlement ids (numbered in
//! order of appearance), the clearing date (today's open window) and a reversal's time (now).
//!
//! Re-record (only when an answer is meant to change, and say why in the commit):
//! `RECORD_ANSWERS=1 cargo test -p tests --test recorded_answers`.

use prost::Message;
use proto::v1 as pb;
use std::collections::HashMap;
use tests::*;

const FIXTURE: &str = "tests/fixtures/recorded-answers.txt";

/// Settlement ids numbered in order of appearance, so two runs compare equal.
#[derive(Default)]
struct Ids(HashMap<String, String>);

impl Ids {
    fn name(&mut self, id: &mut String) {
        if id.is_empty() {
            return;
        }
        let n = self.0.len() + 1;
        *id = self.0.entry(id.clone()).or_insert_with(|| format!("S{n}")).clone();
    }

    fn normalize(&mut self, mut s: pb::Settlement) -> pb::Settlement {
        self.name(&mut s.setl_id);
        self.name(&mut s.orig_setl_id);
        self.name(&mut s.reversed_by_setl_id);
        for line in &mut s.explanation {
            for (id, name) in &self.0 {
                *line = line.replace(id.as_str(), name);
            }
            if !s.clr_date.is_empty() {
                *line = line.replace(s.clr_date.as_str(), "CLR");
            }
        }
        if !s.clr_date.is_empty() {
            s.clr_date = "CLR".into();
        }
        // A reversal happens now.
        if s.refd_setl_flag {
            s.setl_time = "NOW".into();
        }
        s
    }
}

/// The answers of one run: (label, the answer encoded, hex), in call order.
struct Answers {
    ids: Ids,
    rows: Vec<(String, String)>,
}

impl Answers {
    fn settlement(&mut self, label: &str, r: Result<tonic::Response<pb::Settlement>, tonic::Status>) -> pb::Settlement {
        match r {
            Ok(s) => {
                let s = s.into_inner();
                let raw = s.clone();
                let s = self.ids.normalize(s);
                self.rows.push((label.to_string(), hex::encode(s.encode_to_vec())));
                raw
            }
            Err(e) => {
                // Settlement ids in the message by their names too.
                let mut msg = e.message().to_string();
                for (id, name) in &self.ids.0 {
                    msg = msg.replace(id.as_str(), name);
                }
                self.rows.push((label.to_string(), format!("error {:?} {msg} {:?}", e.code(), bad_fields(&e))));
                pb::Settlement::default()
            }
        }
    }

    fn member(&mut self, label: &str, m: pb::Member) {
        self.rows.push((label.to_string(), hex::encode(m.encode_to_vec())));
    }
}

fn members() -> Vec<pb::Member> {
    let mut v = vec![
        member("421300", "RA1", "11", &["360000"]),
        member("421300", "RA2", "12", &["360000"]),
        member("421300", "RA3", "11", &[]),
        member("360100", "RA4", "11", &[]),
        member("150500", "RA5", "11", &[]),
    ];
    let mut acct = member("360100", "RA6", "11", &[]);
    acct.acct_balc = "300.00".into();
    v.push(acct);
    let mut payer = member("421300", "RAP", "11", &["360000"]);
    payer.acct_balc = "500.00".into();
    payer.mulaid_beneficiaries = vec![pb::MulaidBeneficiary { psn_no: "RA1".into(), relation: "spouse".into() }];
    v.push(payer);
    v
}

async fn run(c: &Clearing) -> Vec<(String, String)> {
    registered(c, &members()).await;
    let mut cl = c.clearing().await;
    let mut a = Answers { ids: Ids::default(), rows: Vec::new() };
    let mut settled = Vec::new();
    let mut claims = vec![
        claim("RA-1", "421300", "RA1", "360100", 3, "2023-03-10", 800),
        claim("RA-2", "421300", "RA2", "360100", 2, "2023-03-10", 800),
        claim("RA-3", "421300", "RA3", "360100", 1, "2023-03-10", 800),
        claim("RA-4", "360100", "RA4", "421300", 2, "2023-04-01", 1000),
        claim("RA-5", "150500", "RA5", "421300", 1, "2023-04-01", 1000),
        claim("RA-6", "150500", "RA5", "421300", 2, "2023-04-02", 1000),
        claim("RA-7", "421300", "RA1", "360100", 1, "2023-05-01", 2000),
        claim("RA-8", "421300", "RA1", "360100", 1, "2023-06-01", 500),
        claim("RA-9", "421300", "RA1", "360100", 1, "2024-01-03", 2000),
    ];
    let mut acct = claim("RA-10", "360100", "RA6", "421300", 2, "2023-07-02", 900);
    acct.acct_used_flag = true;
    claims.push(acct);
    let mut fam = claim("RA-11", "421300", "RA1", "360100", 2, "2024-02-01", 700);
    fam.acct_used_flag = true;
    fam.acct_payer_psn_no = "RAP".into();
    claims.push(fam);
    let mut pharmacy = claim("RA-12", "421300", "RA2", "360100", 1, "2023-03-11", 800);
    pharmacy.med_type = "41".into();
    pharmacy.fixmedins_code = listed_pharmacy("360100", true);
    pharmacy.hosp_lv = 0;
    pharmacy.prescribing_hosp_lv = 2;
    pharmacy.prescribing_fixmedins_code = listed_institution("360100", 2);
    claims.push(pharmacy);
    claims.extend(golden_visits("RA-G", "RA2"));
    claims.push(example_claim("RA-13", "RA3"));
    for k in &claims {
        let s = a.settlement(&format!("settle {}", k.msgid), cl.settle_claim(k.clone()).await);
        settled.push(s.setl_id);
    }
    // A resend is the first answer again; the same msgid with other content is refused.
    a.settlement("resend RA-4", cl.settle_claim(claims[3].clone()).await);
    let mut other = claims[3].clone();
    other.lines[0].pric = "999.00".into();
    other.lines[0].det_item_fee_sumamt = "999.00".into();
    a.settlement("resend RA-4 changed", cl.settle_claim(other).await);
    a.settlement("preview", cl.preview_claim(claim("RA-P", "421300", "RA1", "360100", 2, "2024-02-02", 300)).await);
    // Reversals (the family payer's claim gives the account back), a second reversal refused.
    for (i, msgid) in [(10usize, "RA-R1"), (3, "RA-R2"), (10, "RA-R3")] {
        let req = pb::ReverseClaimRequest { setl_id: settled[i].clone(), msgid: msgid.into(), reason: "refund".into() };
        a.settlement(&format!("reverse {msgid}"), cl.reverse_claim(req).await);
    }
    // Read back: every stored settlement (the stored record's round trip), then the members.
    for (i, id) in settled.iter().enumerate() {
        let r = cl.get_settlement(pb::GetSettlementRequest { setl_id: id.clone() }).await;
        a.settlement(&format!("get {}", claims[i].msgid), r);
    }
    let mut reg = c.registry().await;
    for m in members() {
        for year in [2023, 2024] {
            let req = pb::GetMemberRequest { insuplc_admdvs: m.insuplc_admdvs.clone(), psn_no: m.psn_no.clone(), year };
            let got = reg.get_member(req).await.expect("member").into_inner();
            a.member(&format!("member {} {year}", m.psn_no), got);
        }
    }
    a.rows
}

fn check(store: &str, got: &[(String, String)]) {
    let path = repo_root().join(FIXTURE);
    let text: String = got.iter().map(|(l, v)| format!("{l}\t{v}\n")).collect();
    if store == "embedded" && std::env::var_os("RECORD_ANSWERS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let want: Vec<(&str, &str)> = want.lines().filter_map(|l| l.split_once('\t')).collect();
    assert_eq!(want.len(), got.len(), "{store}: the number of answers");
    for ((wl, wv), (gl, gv)) in want.iter().zip(got) {
        assert_eq!(*wl, gl, "{store}: the calls are in the recorded order");
        if *wv != gv {
            let show = |h: &str| match hex::decode(h) {
                Ok(b) if gl.starts_with("member") => format!("{:#?}", pb::Member::decode(b.as_slice())),
                Ok(b) => format!("{:#?}", pb::Settlement::decode(b.as_slice())),
                Err(_) => h.to_string(),
            };
            panic!("{store}: the answer to `{gl}` changed\nrecorded: {}\nnow:      {}", show(wv), show(gv));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_equal_the_recorded_ones_on_both_stores() {
    // Both stores answer as recorded, so alike.
    check("embedded", &run(&Clearing::start()).await);
    let r = Redis::start();
    check("redis", &run(&Clearing::start_with(&["--store", "redis", "--redis-url", &r.url()])).await);
}
