//! Fuzzing the hostile-input path (proptest-based, so it runs on stable Rust in CI): decoding of the
//! wire messages that outsiders send (`Claim` to the clearing service, `PriceLinesRequest` and
//! `ApplyPolicyRequest` to a region adapter), validation, pricing and policy. Any panic fails; any
//! settlement that comes out must satisfy the money identities (ARCHITECTURE.md, Money).
//!
//! CI runs `FUZZ_CASES` cases per target (default 3,000, about a second in a debug build). A long run:
//! `FUZZ_CASES=1000000 cargo test --release -p clearing-service --test fuzz -- --nocapture`.

use chrono::{FixedOffset, TimeZone};
use clearing_service::claim::validate_claim;
use clearing_service::grpc::settlement::claim as draft;
use proptest::prelude::*;
use prost::Message;
use proto::v1 as pb;
use region_adapter::policy::check_invariants;
use region_adapter::{AccountSource, LineInput, MemberFacts, PsnType, RuleSet, YearState};
use region_adapter_server::local::{PolicyCall, local_apply_policy, local_price};
use region_adapter_server::wire::{parse_policy_request, parse_price_request};
use sha2::Digest;
use std::sync::LazyLock;

static RULES: LazyLock<RuleSet> = LazyLock::new(|| region_adapter::bundled::rules().expect("bundled rules"));

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3_000)
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: cases(), failure_persistence: None, max_shrink_iters: 2_000, ..ProptestConfig::default() }
}

/// Claim → validation → pricing → policy, as the service runs them; outcomes checked.
fn settle_claim(c: &pb::Claim) {
    let now = FixedOffset::east_opt(8 * 3600).unwrap().with_ymd_and_hms(2024, 6, 1, 12, 0, 0).unwrap();
    let d = draft(c.clone());
    // A claim's idempotency content is, as it has always been stored, the hash of the message as sent.
    let sent: [u8; 32] = sha2::Sha256::digest(c.encode_to_vec()).into();
    assert_eq!(clearing_service::record::claim_hash(&d), sent);
    let Ok(vc) = validate_claim(&d, &|a| RULES.region(a).is_some(), now) else { return };
    let lines = vc.line_inputs();
    let Ok(priced) = local_price(&RULES, vc.mdtrt, vc.visit_date, &lines) else { return };
    assert_eq!(priced.priced.lines.len(), lines.len());
    let visit = vc.visit();
    let facts = MemberFacts { psn_type: PsnType::Retired, retire_date: None, pooling_only: false, filings: &[], in_arrears: false };
    let state = YearState { deductible_used_fen: 10_000, fund_paid_fen: 50_000, visits: 3 };
    let call = PolicyCall {
        insured: vc.insured,
        priced: &priced.priced,
        member: facts,
        state,
        account: Some(AccountSource::Own { balance_fen: 12_345 }),
        visit,
    };
    if let Ok(o) = local_apply_policy(&RULES, &call) {
        check_invariants(&o.settled.amounts).expect("identities");
        assert_eq!(o.settled.amounts.medfee_sumamt, priced.priced.totals.medfee_fen);
    }
}

const REGIONS: &[&str] = &["421300", "360100", "150500", "320100", "140100", "420000", "000000", "999999", "42130", "4213000", ""];
const CODES: &[&str] = &["001201000010000", "XC08CAA017A0", "XA10BAE056A0", "T000100001", "XZ99ZZZ999A0", "", "0", "💊", "X"];
const DECIMALS: &[&str] =
    &["1", "0", "-1", "1.00", "0.01", "0.001", "99999999999999", "1e3", "NaN", "", " 1", "1.5", "79228162514264337593543950335"];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![3 => proptest::sample::select(xs).prop_map(str::to_string), 1 => ".{0,40}"]
}

fn line() -> impl Strategy<Value = pb::ClaimLine> {
    (pick(CODES), pick(DECIMALS), pick(DECIMALS), pick(DECIMALS), 1u32..10_000u32).prop_map(|(code, cnt, pric, amt, cents)| {
        // Half the lines are internally consistent (amount = cnt × price) so pricing is reached.
        if cents % 2 == 0 {
            let price = format!("{}.{:02}", cents / 100, cents % 100);
            pb::ClaimLine {
                hilist_code: code,
                cnt: "2".into(),
                det_item_fee_sumamt: format!("{}.{:02}", cents * 2 / 100, cents * 2 % 100),
                pric: price,
            }
        } else {
            pb::ClaimLine { hilist_code: code, cnt, pric, det_item_fee_sumamt: amt }
        }
    })
}

fn claim() -> impl Strategy<Value = pb::Claim> {
    (
        (pick(&["M1", "msg-0001", ""]), pick(&["P1", "PSN000000000001"]), pick(REGIONS), pick(REGIONS)),
        (pick(&["H36010200001", "H42130200746", "P36010200001", "H1"]), 0u32..5, pick(&["11", "13", "14", "41", "99"])),
        (pick(&["2024-05-01T10:00:00+08:00", "2023-01-01T00:00:00Z", "2099-01-01T00:00:00+08:00", "yesterday"]), any::<bool>()),
        (pick(&["", "M03900", "M01600"]), 0u32..5, proptest::collection::vec(line(), 0..110)),
    )
        .prop_map(|((msgid, psn, ins, mdt), (fix, lv, mt), (time, acct), (dise, plv, lines))| pb::Claim {
            msgid,
            psn_no: psn,
            insuplc_admdvs: ins,
            mdtrt_admdvs: mdt,
            fixmedins_code: fix,
            hosp_lv: lv,
            med_type: mt,
            setl_time: time,
            acct_used_flag: acct,
            dise_code: dise,
            prescribing_hosp_lv: plv,
            lines,
            ..Default::default()
        })
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes as a Claim.
    #[test]
    fn claim_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(c) = pb::Claim::decode(bytes.as_slice()) {
            settle_claim(&c);
        }
    }

    /// Structured claims near the valid ones, and their encodings cut short or bit-flipped.
    #[test]
    fn claim_structured(c in claim(), cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>()) {
        settle_claim(&c);
        let mut bytes = c.encode_to_vec();
        if !bytes.is_empty() {
            let i = flip.index(bytes.len());
            bytes[i] ^= 0x5a;
            if let Ok(d) = pb::Claim::decode(&bytes[..cut.index(bytes.len() + 1)]) {
                settle_claim(&d);
            }
        }
    }

    /// Arbitrary bytes to the region adapter: pricing and policy requests.
    #[test]
    fn adapter_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let known = |a| RULES.region(a).is_some();
        if let Ok(q) = pb::PriceLinesRequest::decode(bytes.as_slice())
            && let Ok((mdtrt, date, lines)) = parse_price_request(&q, &known)
        {
            let inputs: Vec<LineInput<'_>> = lines.iter().map(|l| LineInput { code: &l.code, qty: l.qty, unit_price: l.unit_price, amount_fen: l.amount_fen }).collect();
            let _ = local_price(&RULES, mdtrt, date, &inputs);
        }
        if let Ok(q) = pb::ApplyPolicyRequest::decode(bytes.as_slice())
            && let Ok(p) = parse_policy_request(&q, &known)
            && let Ok(o) = local_apply_policy(&RULES, &p.call())
        {
            check_invariants(&o.settled.amounts).expect("identities");
        }
    }
}
