//! `Supervision.GetIndicators` and `ListFlaggedSettlements` over the store.

use super::*;

impl<S: crate::store::Store> crate::core::Clearinghouse<S> {
    /// `Supervision.GetIndicators` for a caller who sees `view`.
    pub async fn get_indicators(
        &self,
        q: &pb::GetIndicatorsRequest,
        view: &clearing_edge::authz::SupervisionView,
    ) -> Result<pb::Indicators, clearing_edge::error::ServiceError> {
        let mut v = clearing_edge::fields::Violations::default();
        if Month::parse(&q.month).is_none() {
            v.add("month", "must be YYYYMM");
        }
        let region = match q.admdvs.as_str() {
            "" => None,
            a => {
                let r = region_adapter::Admdvs::parse(a);
                if r.is_none() {
                    v.add("admdvs", "must be a 6-digit division code");
                }
                r
            }
        };
        if !q.fixmedins_code.is_empty() && region_adapter::codes::parse_fixmedins_code(&q.fixmedins_code).is_none() {
            v.add("fixmedins_code", "must be H or P, 6 digits of the service location, 5 digits");
        }
        v.into_result(())?;
        let prev_month = previous_month(&q.month).unwrap_or_default();
        // Both months at once.
        let (now, prev) = tokio::join!(self.store.indicators(&q.month), self.store.indicators(&prev_month));
        let now = MonthIndicators::parse(&now?).map_err(clearing_edge::error::ServiceError::Internal)?;
        let prev = MonthIndicators::parse(&prev?).map_err(clearing_edge::error::ServiceError::Internal)?;
        let in_region = |code: &str| region.is_none_or(|r| region_adapter::Admdvs::parse(code).is_some_and(|c| r.covers(c)));
        let rules = self.router.snapshot();
        let mut out = pb::Indicators { month: q.month.clone(), previous_month: prev_month, ..Default::default() };
        let mut seen_regions = BTreeSet::new();
        for ((mdtrt, code), sums) in &now.institutions {
            if !view.sees_institution(mdtrt) || !in_region(mdtrt) || (!q.fixmedins_code.is_empty() && *code != q.fixmedins_code) {
                continue;
            }
            let before = prev.institutions.get(&(mdtrt.clone(), code.clone()));
            let terms = match region_adapter::Admdvs::parse(mdtrt) {
                Some(a) => terms_of(&rules, a),
                None => default_terms(),
            };
            out.early_warnings.extend(warnings(code, mdtrt, sums, before, terms));
            if seen_regions.insert(mdtrt.clone()) {
                out.thresholds.push(thresholds_pb(mdtrt, terms));
            }
            out.institutions.push(pb::InstitutionIndicators {
                fixmedins_code: code.clone(),
                mdtrt_admdvs: mdtrt.clone(),
                month: Some(sums.to_pb()),
                previous_month: before.map(Sums::to_pb),
                cost_per_visit_growth: growth(sums, before).map(fmt_share).unwrap_or_default(),
            });
        }
        if q.fixmedins_code.is_empty() {
            for ((insured, mdtrt), sums) in &now.pairs {
                if !view.sees_claim(insured, mdtrt) || !(in_region(insured) || in_region(mdtrt)) {
                    continue;
                }
                let before = prev.pairs.get(&(insured.clone(), mdtrt.clone()));
                out.pairs.push(pb::PairIndicators {
                    insuplc_admdvs: insured.clone(),
                    mdtrt_admdvs: mdtrt.clone(),
                    month: Some(sums.to_pb()),
                    previous_month: before.map(Sums::to_pb),
                    cost_per_visit_growth: growth(sums, before).map(fmt_share).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// `Supervision.ListFlaggedSettlements` for a caller who sees `view`.
    pub async fn list_flagged(
        &self,
        q: &pb::ListFlaggedSettlementsRequest,
        view: &clearing_edge::authz::SupervisionView,
    ) -> Result<pb::ListFlaggedSettlementsResponse, clearing_edge::error::ServiceError> {
        let mut v = clearing_edge::fields::Violations::default();
        if Month::parse(&q.month).is_none() {
            v.add("month", "must be YYYYMM");
        }
        for (field, code) in [("insuplc_admdvs", &q.insuplc_admdvs), ("mdtrt_admdvs", &q.mdtrt_admdvs)] {
            if !code.is_empty() && region_adapter::Admdvs::parse(code).is_none() {
                v.add(field, "must be a 6-digit division code");
            }
        }
        if !q.kind.is_empty() && FlagKind::parse(&q.kind).is_none() {
            v.add("kind", format!("must be one of {}", FlagKind::ALL.map(FlagKind::code).join(", ")));
        }
        if q.page_size > 500 {
            v.add("page_size", "at most 500");
        }
        // The cursor: the shard of the last settlement (2 hex digits), '/', its id.
        let token_ok = q.page_token.is_empty()
            || (q.page_token.len() <= 80
                && q.page_token.as_bytes().get(2) == Some(&b'/')
                && q.page_token[..2].bytes().all(|b| b.is_ascii_hexdigit())
                && crate::ids::shard_of_setl_id(&q.page_token[3..]).is_some());
        if !token_ok {
            v.add("page_token", "not a token this service gave");
        }
        v.into_result(())?;
        let size = if q.page_size == 0 { 100 } else { q.page_size as usize };
        let covers = |filter: &str, code: &str| {
            filter.is_empty()
                || region_adapter::Admdvs::parse(filter).zip(region_adapter::Admdvs::parse(code)).is_some_and(|(f, c)| f.covers(c))
        };
        let mut out = pb::ListFlaggedSettlementsResponse::default();
        let mut cursor = q.page_token.clone();
        for _ in 0..MAX_SCAN_PAGES {
            let page = self.store.flagged(&q.month, &cursor, size).await?;
            let exhausted = page.len() < size;
            for (c, _, raw) in page {
                cursor = c;
                let e: FlaggedEntry =
                    serde_json::from_str(&raw).map_err(|e| clearing_edge::error::ServiceError::Internal(format!("flagged entry: {e}")))?;
                let wanted = view.sees_claim(&e.insuplc_admdvs, &e.mdtrt_admdvs)
                    && covers(&q.insuplc_admdvs, &e.insuplc_admdvs)
                    && covers(&q.mdtrt_admdvs, &e.mdtrt_admdvs)
                    && (q.fixmedins_code.is_empty() || q.fixmedins_code == e.fixmedins_code)
                    && (q.kind.is_empty() || e.flags.iter().any(|(k, _)| *k == q.kind));
                if wanted {
                    out.settlements.push(pb::FlaggedSettlement {
                        psn_no: if view.sees_person(&e.insuplc_admdvs) { e.psn_no } else { String::new() },
                        setl_id: e.setl_id,
                        setl_time: e.setl_time,
                        insuplc_admdvs: e.insuplc_admdvs,
                        mdtrt_admdvs: e.mdtrt_admdvs,
                        fixmedins_code: e.fixmedins_code,
                        med_type: e.med_type,
                        medfee_sumamt: fmt_yuan(e.medfee_fen),
                        fund_pay_sumamt: fmt_yuan(e.fund_fen),
                        acct_pay: fmt_yuan(e.acct_fen),
                        flags: e.flags.into_iter().map(|(kind, detail)| pb::SupervisionFlag { kind, detail }).collect(),
                    });
                    if out.settlements.len() == size {
                        break;
                    }
                }
            }
            if exhausted && out.settlements.len() < size {
                cursor.clear();
                break;
            }
            if out.settlements.len() == size {
                break;
            }
        }
        out.next_page_token = cursor;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    pub(crate) fn recent_visits_stay_bounded_and_sorted() {
        let mut r = Vec::new();
        for day in 1..=28 {
            r = remember(&r, d(&format!("2023-03-{day:02}")), "360100");
        }
        r = remember(&r, d("2023-05-01"), "421300");
        // Everything more than 31 days before the latest visit is gone.
        assert_eq!(r, vec![RecentVisit { date: d("2023-05-01"), mdtrt_admdvs: "421300".into() }]);
        assert_eq!(remember(&r, d("2023-04-10"), "360100").len(), 2, "an earlier visit within 31 days is kept");
        let mut many = Vec::new();
        for i in 0..100 {
            many = remember(&many, d("2023-06-01"), &format!("{}", 360100 + i));
        }
        assert_eq!(many.len(), MAX_RECENT);
        let text = RecentVisit::encode_all(&many);
        assert_eq!(RecentVisit::decode_all(&text).unwrap(), many);
    }

    #[test]
    pub(crate) fn months_and_shares() {
        assert_eq!(previous_month("202301").as_deref(), Some("202212"));
        assert!(Month::parse("202313").is_none() && Month::parse("2023-1").is_none() && Month::parse("202402").is_some());
        assert_eq!(fmt_share(Decimal::from(1) / Decimal::from(3)), "0.3333");
        assert_eq!(fmt_share(Decimal::from(2)), "2.0000");
        assert_eq!(fmt_share(Decimal::new(5, 5)), "0.0001", "0.00005 rounds half away from zero");
        let s = Sums { n: 3, medfee: 100, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(33));
        let s = Sums { n: 2, medfee: 101, ..Default::default() };
        assert_eq!(s.cost_per_visit_fen(), Some(51), "50.5 fen rounds half away from zero");
    }
}
