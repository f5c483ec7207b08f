//! Settling a claim: `plan` (pure: what a settlement writes, from the priced claim, the policy's
//! outcome and the member as read), `settle` (the orchestration: validate, price, load, apply the
//! insured region's policy, plan, commit through `core`), `reversal` (2208: a negative settlement),
//! `closure` (an account closed on emigration or death: its balance paid out through the same commit).

pub mod closure;
pub mod plan;
pub mod reversal;
pub mod settle;
