//! Where each region's rules are evaluated. Today every region is served in process from the loaded
//! rule packs; the routing table of issue 6 adds remote `region-adapter` endpoints behind the same two
//! calls, which is why they are async and return owned, wire-ready results (rendered explanation text,
//! item names) rather than borrowing the rule set.

use crate::error::ServiceError;
use chrono::NaiveDate;
use region_adapter::{AccountSource, Admdvs, LineInput, MemberFacts, Priced, RuleSet, Settled, Visit, YearState};
use std::sync::{Arc, RwLock};

/// A priced claim with what the response needs from the catalogue.
#[derive(Debug, Clone)]
pub struct PricedClaim {
    pub priced: Priced,
    /// Catalogue names per line ("" when the code is not in the catalogue).
    pub names: Vec<String>,
    /// The explanation step of pricing.
    pub explanation: String,
}

/// A policy outcome with its explanation rendered.
#[derive(Debug, Clone)]
pub struct PolicyOutcome {
    pub settled: Settled,
    pub explanation: Vec<String>,
}

/// The routing table. Swapped whole on reload; each request works on one snapshot.
pub struct Router {
    rules: RwLock<Arc<RuleSet>>,
}

impl Router {
    pub fn new(rules: RuleSet) -> Router {
        Router { rules: RwLock::new(Arc::new(rules)) }
    }

    /// The rule set in force now.
    pub fn snapshot(&self) -> Arc<RuleSet> {
        self.rules.read().expect("rules lock").clone()
    }

    /// Replaces the rule set (a reload); requests in flight keep the snapshot they started with.
    pub fn replace(&self, rules: RuleSet) {
        *self.rules.write().expect("rules lock") = Arc::new(rules);
    }

    /// Where a region is served ("local" until remote routes exist).
    pub fn route_of(&self, _admdvs: Admdvs) -> String {
        "local".into()
    }

    /// Prices lines with the service location's catalogue.
    pub async fn price(
        &self,
        rules: &RuleSet,
        mdtrt: Admdvs,
        date: NaiveDate,
        lines: &[LineInput<'_>],
    ) -> Result<PricedClaim, ServiceError> {
        let pack = rules.region(mdtrt).ok_or_else(|| ServiceError::field("mdtrt_admdvs", format!("unknown region {mdtrt}")))?;
        let priced = pack.catalogue.price(date, lines)?;
        let names = lines.iter().map(|l| pack.catalogue.lookup(l.code, date).map(|i| i.name.to_string()).unwrap_or_default()).collect();
        let explanation = pack.pricing_step(priced.totals).render();
        Ok(PricedClaim { priced, names, explanation })
    }

    /// Applies the insured region's policy.
    pub async fn apply_policy(
        &self,
        rules: &RuleSet,
        insured: Admdvs,
        priced: &Priced,
        member: &MemberFacts<'_>,
        state: YearState,
        account: Option<AccountSource>,
        visit: &Visit<'_>,
    ) -> Result<PolicyOutcome, ServiceError> {
        let pack = rules.region(insured).ok_or_else(|| ServiceError::field("insuplc_admdvs", format!("unknown region {insured}")))?;
        let settled = pack.apply_policy(priced, member, state, account, visit)?;
        let explanation = settled.steps.iter().map(|s| s.render()).collect();
        Ok(PolicyOutcome { settled, explanation })
    }
}
