//! The national amounts (`medfee_sumamt` … `balc`, ARCHITECTURE.md, Money) between the engine and each wire type,
//! mapped here and nowhere else: one conversion pair for the adapter protocol (integer fen) and one for
//! a settlement (yuan with two decimals, the national field names).

use proto::v1 as pb;
use region_adapter::Amounts;
use region_adapter::money::fmt_yuan;
use std::str::FromStr;

/// Engine → adapter protocol.
pub fn to_policy_amounts(a: &Amounts) -> pb::PolicyAmounts {
    pb::PolicyAmounts {
        medfee_sumamt: a.medfee_sumamt,
        fulamt_ownpay_amt: a.fulamt_ownpay_amt,
        overlmt_selfpay: a.overlmt_selfpay,
        preselfpay_amt: a.preselfpay_amt,
        inscp_scp_amt: a.inscp_scp_amt,
        act_pay_dedc: a.act_pay_dedc,
        hifp_pay: a.hifp_pay,
        pool_prop_selfpay: a.pool_prop_selfpay,
        fund_pay_sumamt: a.fund_pay_sumamt,
        psn_part_amt: a.psn_part_amt,
        acct_pay: a.acct_pay,
        acct_mulaid_pay: a.acct_mulaid_pay,
        psn_cash_pay: a.psn_cash_pay,
        balc: a.balc,
    }
}

/// Adapter protocol → engine (the caller checks the identities afterwards).
pub fn from_policy_amounts(a: &pb::PolicyAmounts) -> Amounts {
    Amounts {
        medfee_sumamt: a.medfee_sumamt,
        fulamt_ownpay_amt: a.fulamt_ownpay_amt,
        overlmt_selfpay: a.overlmt_selfpay,
        preselfpay_amt: a.preselfpay_amt,
        inscp_scp_amt: a.inscp_scp_amt,
        act_pay_dedc: a.act_pay_dedc,
        hifp_pay: a.hifp_pay,
        pool_prop_selfpay: a.pool_prop_selfpay,
        fund_pay_sumamt: a.fund_pay_sumamt,
        psn_part_amt: a.psn_part_amt,
        acct_pay: a.acct_pay,
        acct_mulaid_pay: a.acct_mulaid_pay,
        psn_cash_pay: a.psn_cash_pay,
        balc: a.balc,
    }
}

/// Engine → a settlement's amount fields (yuan strings; every other field untouched).
pub fn set_settlement_amounts(s: &mut pb::Settlement, a: &Amounts) {
    s.medfee_sumamt = fmt_yuan(a.medfee_sumamt);
    s.fulamt_ownpay_amt = fmt_yuan(a.fulamt_ownpay_amt);
    s.overlmt_selfpay = fmt_yuan(a.overlmt_selfpay);
    s.preselfpay_amt = fmt_yuan(a.preselfpay_amt);
    s.inscp_scp_amt = fmt_yuan(a.inscp_scp_amt);
    s.act_pay_dedc = fmt_yuan(a.act_pay_dedc);
    s.hifp_pay = fmt_yuan(a.hifp_pay);
    s.pool_prop_selfpay = fmt_yuan(a.pool_prop_selfpay);
    s.fund_pay_sumamt = fmt_yuan(a.fund_pay_sumamt);
    s.psn_part_amt = fmt_yuan(a.psn_part_amt);
    s.acct_pay = fmt_yuan(a.acct_pay);
    s.acct_mulaid_pay = fmt_yuan(a.acct_mulaid_pay);
    s.psn_cash_pay = fmt_yuan(a.psn_cash_pay);
    s.balc = fmt_yuan(a.balc);
}

/// A settlement's amount fields → engine; `Err` names the first field that is not an exact yuan
/// amount (a stored settlement read back, e.g. for its reversal).
pub fn settlement_amounts(s: &pb::Settlement) -> Result<Amounts, &'static str> {
    fn fen(field: &'static str, v: &str) -> Result<i64, &'static str> {
        rust_decimal::Decimal::from_str(v).ok().filter(|d| d.scale() <= 2).and_then(region_adapter::money::yuan_to_fen_exact).ok_or(field)
    }
    Ok(Amounts {
        medfee_sumamt: fen("medfee_sumamt", &s.medfee_sumamt)?,
        fulamt_ownpay_amt: fen("fulamt_ownpay_amt", &s.fulamt_ownpay_amt)?,
        overlmt_selfpay: fen("overlmt_selfpay", &s.overlmt_selfpay)?,
        preselfpay_amt: fen("preselfpay_amt", &s.preselfpay_amt)?,
        inscp_scp_amt: fen("inscp_scp_amt", &s.inscp_scp_amt)?,
        act_pay_dedc: fen("act_pay_dedc", &s.act_pay_dedc)?,
        hifp_pay: fen("hifp_pay", &s.hifp_pay)?,
        pool_prop_selfpay: fen("pool_prop_selfpay", &s.pool_prop_selfpay)?,
        fund_pay_sumamt: fen("fund_pay_sumamt", &s.fund_pay_sumamt)?,
        psn_part_amt: fen("psn_part_amt", &s.psn_part_amt)?,
        acct_pay: fen("acct_pay", &s.acct_pay)?,
        acct_mulaid_pay: fen("acct_mulaid_pay", &s.acct_mulaid_pay)?,
        psn_cash_pay: fen("psn_cash_pay", &s.psn_cash_pay)?,
        balc: fen("balc", &s.balc)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Amounts {
        Amounts {
            medfee_sumamt: 112_760,
            fulamt_ownpay_amt: 20_000,
            overlmt_selfpay: 3_036,
            preselfpay_amt: 11_836,
            inscp_scp_amt: 77_888,
            act_pay_dedc: 50_000,
            hifp_pay: 22_310,
            pool_prop_selfpay: 5_578,
            fund_pay_sumamt: 22_310,
            psn_part_amt: 90_450,
            acct_pay: 30_000,
            acct_mulaid_pay: 0,
            psn_cash_pay: 60_450,
            balc: -1,
        }
    }

    #[test]
    fn both_pairs_round_trip_every_amount() {
        let a = sample();
        assert_eq!(from_policy_amounts(&to_policy_amounts(&a)), a);
        let mut s = pb::Settlement::default();
        set_settlement_amounts(&mut s, &a);
        assert_eq!((s.medfee_sumamt.as_str(), s.hifp_pay.as_str(), s.balc.as_str()), ("1127.60", "223.10", "-0.01"));
        assert_eq!(settlement_amounts(&s), Ok(a));
        s.acct_pay = "1.005".into();
        assert_eq!(settlement_amounts(&s), Err("acct_pay"));
    }
}
