//! Settling a claim: `plan` (pure: what a settlement writes, from the priced claim, the policy's
//! outcome and the member as read), `settle` (the orchestration: validate, price, load, apply the
//! insured region's policy, plan, commit through `core`), `reversal` (2208: a negative settlement).

pub mod plan;
pub mod reversal;
pub mod settle;
