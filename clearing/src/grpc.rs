//! The gRPC services of `clearinghouse.v1`: thin adapters from messages to the clearing core. Every
//! error leaves through `ServiceError → Status` (error.rs).

use crate::error::ServiceError;
use crate::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::settle::Clearinghouse;
use crate::store::{MemberKey, Store};
use crate::wire::{self, Violations};
use proto::v1 as pb;
use proto::v1::catalogue_server::Catalogue;
use proto::v1::clearing_server::Clearing;
use proto::v1::registry_server::Registry;
use region_adapter::model::{Param, Provenance};
use region_adapter::money::{fmt_ratio, fmt_yuan};
use region_adapter::{Admdvs, RegionPack};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// One handle implementing every service over the shared core.
pub struct Api<S: Store>(pub Arc<Clearinghouse<S>>);

impl<S: Store> Clone for Api<S> {
    fn clone(&self) -> Self {
        Api(self.0.clone())
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(r: Result<T, ServiceError>) -> Reply<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl<S: Store> Clearing for Api<S> {
    async fn settle_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        reply(self.0.settle(req.get_ref(), true).await)
    }
    async fn preview_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        reply(self.0.settle(req.get_ref(), false).await)
    }
    async fn reverse_claim(&self, req: Request<pb::ReverseClaimRequest>) -> Reply<pb::Settlement> {
        reply(self.0.reverse(req.get_ref()).await)
    }
    async fn get_settlement(&self, req: Request<pb::GetSettlementRequest>) -> Reply<pb::Settlement> {
        reply(self.0.get_settlement(&req.get_ref().setl_id).await)
    }
}

#[tonic::async_trait]
impl<S: Store> Registry for Api<S> {
    async fn upsert_member(&self, req: Request<pb::Member>) -> Reply<pb::Member> {
        let rules = self.0.router.snapshot();
        let r = async {
            let upsert = wire::validate_member(req.get_ref(), &|a| rules.region(a).is_some())?;
            let rec = self.0.store.upsert_member(upsert).await?;
            Ok(wire::member_to_pb(&rec, 0))
        };
        reply(r.await)
    }

    async fn get_member(&self, req: Request<pb::GetMemberRequest>) -> Reply<pb::Member> {
        let q = req.get_ref();
        let r = async {
            let mut v = Violations::default();
            wire::check_psn_no(&mut v, "psn_no", &q.psn_no);
            if Admdvs::parse(&q.insuplc_admdvs).is_none() {
                v.add("insuplc_admdvs", "must be a 6-digit division code");
            }
            v.into_result(())?;
            let rec = self
                .0
                .store
                .load_member(&MemberKey::new(&q.insuplc_admdvs, &q.psn_no))
                .await?
                .ok_or_else(|| ServiceError::NotFound { what: "member".into(), field: "psn_no".into() })?;
            Ok(wire::member_to_pb(&rec, q.year))
        };
        reply(r.await)
    }
}

fn param<T>(key: impl Into<String>, p: &Param<T>, value: String) -> pb::PolicyParameter {
    let (source, assumption) = provenance(&p.provenance);
    pb::PolicyParameter { key: key.into(), value, source, assumption }
}

fn provenance(p: &Provenance) -> (String, String) {
    match p {
        Provenance::Source { file, place } => (format!("{file} {place}"), String::new()),
        Provenance::Assumption(a) => (String::new(), a.to_string()),
    }
}

fn region_pb(pack: &RegionPack, route: String) -> pb::Region {
    pb::Region {
        admdvs: pack.admdvs.to_string(),
        name: pack.name.to_string(),
        name_en: pack.name_en.clone(),
        province: pack.province.to_string(),
        route,
        policy_versions: pack
            .policies
            .iter()
            .map(|p| pb::PolicyVersionInfo {
                id: p.id.clone(),
                effective_from: p.effective_from.to_string(),
                effective_to: p.effective_to.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
        catalogue_sample: pack.catalogue.sample,
        catalogue_items: pack.catalogue.order.len() as u32,
    }
}

fn known_pack<'r>(rules: &'r region_adapter::RuleSet, field: &str, s: &str) -> Result<&'r RegionPack, ServiceError> {
    let mut v = Violations::default();
    let a = wire::check_region(&mut v, field, s, &|a| rules.region(a).is_some());
    v.into_result(())?;
    Ok(rules.region(a.expect("checked")).expect("known"))
}

#[tonic::async_trait]
impl<S: Store> Catalogue for Api<S> {
    async fn list_regions(&self, _req: Request<pb::ListRegionsRequest>) -> Reply<pb::ListRegionsResponse> {
        let rules = self.0.router.snapshot();
        let regions = rules.regions.values().map(|p| region_pb(p, self.0.router.route_of(p.admdvs))).collect();
        Ok(Response::new(pb::ListRegionsResponse { regions }))
    }

    async fn get_policy(&self, req: Request<pb::GetPolicyRequest>) -> Reply<pb::Policy> {
        let rules = self.0.router.snapshot();
        let q = req.get_ref();
        let r = (|| {
            let pack = known_pack(&rules, "admdvs", &q.admdvs)?;
            let mut v = Violations::default();
            let date = wire::parse_date(&mut v, "date", &q.date);
            v.into_result(())?;
            let date = date.expect("checked");
            let p = pack
                .policy_on(date)
                .ok_or_else(|| ServiceError::field("date", format!("no policy of {} is in force on {date}", pack.admdvs)))?;
            let mut params = Vec::new();
            for (class, t) in [("in_service", &p.in_service), ("retired", &p.retired)] {
                params.push(param(format!("{class}.deductible"), &t.deductible_fen, fmt_yuan(t.deductible_fen.value)));
                params.push(param(format!("{class}.cap"), &t.cap_fen, fmt_yuan(t.cap_fen.value)));
                for (i, r) in t.ratio_bp.value.iter().enumerate() {
                    params.push(param(format!("{class}.ratio.level{}", i + 1), &t.ratio_bp, fmt_ratio(*r)));
                }
            }
            params.push(param("retiree.from_next_month", &p.retired_from_next_month, p.retired_from_next_month.value.to_string()));
            let cr = &p.cross_region;
            params.push(param("cross_region.filing_required", &cr.filing_required, cr.filing_required.value.to_string()));
            params.push(param("cross_region.networked_only", &cr.networked_only, cr.networked_only.value.to_string()));
            params.push(param("cross_region.min_level", &cr.min_level, cr.min_level.value.get().to_string()));
            params.push(param("cross_region.min_level_scope", &cr.min_level_scope, format!("{:?}", cr.min_level_scope.value)));
            params.push(param("cross_region.unfiled_ratio_cut", &cr.unfiled_ratio_cut_bp, fmt_ratio(cr.unfiled_ratio_cut_bp.value)));
            let a = &p.account;
            params.push(param("account.in_service_share", &a.in_service_share_bp, fmt_ratio(a.in_service_share_bp.value)));
            params.push(param("account.family_mutual_aid", &a.family_mutual_aid, a.family_mutual_aid.value.to_string()));
            params.push(param(
                "account.pooling_only_has_account",
                &a.pooling_only_has_account,
                a.pooling_only_has_account.value.to_string(),
            ));
            for s in &a.retired {
                params.push(param(format!("account.retired.from.{}", s.from), &s.rule, format!("{:?}", s.rule.value)));
            }
            if let Some(w) = &p.average_wage_2021_fen {
                params.push(param("average_wage_2021", w, fmt_yuan(w.value)));
            }
            for d in &p.chronic {
                params.push(param(format!("chronic.{}.deductible", d.code), &d.deductible_fen, fmt_yuan(d.deductible_fen.value)));
                params.push(param(format!("chronic.{}.ratio", d.code), &d.ratio_bp, fmt_ratio(d.ratio_bp.value)));
                params.push(param(format!("chronic.{}.cap", d.code), &d.cap_fen, fmt_yuan(d.cap_fen.value)));
            }
            let (vs, va) = provenance(&p.validity);
            Ok(pb::Policy {
                admdvs: pack.admdvs.to_string(),
                name: pack.name.to_string(),
                version_id: p.id.clone(),
                effective_from: p.effective_from.to_string(),
                effective_to: p.effective_to.map(|d| d.to_string()).unwrap_or_default(),
                validity: Some(pb::PolicyParameter {
                    key: "validity".into(),
                    value: format!("{} – {}", p.effective_from, p.effective_to.map(|d| d.to_string()).unwrap_or_else(|| "open".into())),
                    source: vs,
                    assumption: va,
                }),
                parameters: params,
            })
        })();
        reply(r)
    }

    async fn list_catalogue_items(&self, req: Request<pb::ListCatalogueItemsRequest>) -> Reply<pb::ListCatalogueItemsResponse> {
        let rules = self.0.router.snapshot();
        let q = req.get_ref();
        let r = (|| {
            let pack = known_pack(&rules, "admdvs", &q.admdvs)?;
            let mut v = Violations::default();
            let date = wire::parse_date(&mut v, "date", &q.date);
            let size = match q.page_size {
                0 => DEFAULT_PAGE_SIZE,
                n if n > MAX_PAGE_SIZE => {
                    v.add("page_size", format!("at most {MAX_PAGE_SIZE}"));
                    0
                }
                n => n,
            } as usize;
            let start = if q.page_token.is_empty() {
                0
            } else {
                match q.page_token.parse::<usize>() {
                    Ok(n) if n <= pack.catalogue.order.len() => n,
                    _ => {
                        v.add("page_token", "not a token from a previous page");
                        0
                    }
                }
            };
            v.into_result(())?;
            let date = date.expect("checked");
            let cat = &pack.catalogue;
            let mut items = Vec::with_capacity(size);
            let mut pos = start;
            while pos < cat.order.len() && items.len() < size {
                if let Some(it) = cat.lookup(&cat.order[pos], date) {
                    items.push(pb::CatalogueItem {
                        hilist_code: it.code.to_string(),
                        hilist_name: it.name.to_string(),
                        chrgitm_lv: it.class.code().into(),
                        selfpay_prop: it.selfpay_prop_bp.map(fmt_ratio).unwrap_or_default(),
                        pric_uplmt_amt: it.price_cap.map(|c| c.to_string()).unwrap_or_default(),
                        list_type: it.list_type.to_string(),
                        begndate: it.begin.to_string(),
                        enddate: it.end.map(|d| d.to_string()).unwrap_or_default(),
                    });
                }
                pos += 1;
            }
            let next_page_token = if pos < cat.order.len() { pos.to_string() } else { String::new() };
            Ok(pb::ListCatalogueItemsResponse { items, next_page_token, sample: cat.sample })
        })();
        reply(r)
    }
}

#[tonic::async_trait]
impl<S: Store> proto::v1::netting_server::Netting for Api<S> {
    async fn close_window(&self, req: Request<pb::CloseWindowRequest>) -> Reply<pb::Window> {
        reply(self.0.close_window(&req.get_ref().clr_date).await)
    }
    async fn get_window(&self, req: Request<pb::GetWindowRequest>) -> Reply<pb::Window> {
        reply(self.0.get_window(&req.get_ref().clr_date).await)
    }
    async fn list_windows(&self, _req: Request<pb::ListWindowsRequest>) -> Reply<pb::ListWindowsResponse> {
        reply(self.0.list_windows().await)
    }
    async fn get_netting_report(&self, req: Request<pb::GetNettingReportRequest>) -> Reply<pb::NettingReport> {
        reply(self.0.netting_report(&req.get_ref().clr_date).await.map(|r| crate::windows::report_pb(&r)))
    }
    async fn acknowledge_settlement(&self, req: Request<pb::AcknowledgeSettlementRequest>) -> Reply<pb::Window> {
        reply(self.0.acknowledge(req.get_ref()).await)
    }
    async fn reconcile_totals(&self, req: Request<pb::ReconcileTotalsRequest>) -> Reply<pb::ReconcileResult> {
        reply(self.0.reconcile_totals(req.get_ref()).await)
    }
    async fn reconcile_detail(&self, req: Request<tonic::Streaming<pb::ReconcileDetailRequest>>) -> Reply<pb::ReconcileResult> {
        let mut stream = req.into_inner();
        let (mut clr_date, mut mdtrt, mut items) = (String::new(), String::new(), Vec::new());
        while let Some(msg) = stream.message().await? {
            if clr_date.is_empty() {
                clr_date = msg.clr_date;
                mdtrt = msg.mdtrt_admdvs;
            }
            if items.len() + msg.items.len() > crate::windows::MAX_RECONCILE_ITEMS {
                return Err(ServiceError::field("items", format!("more than {} items", crate::windows::MAX_RECONCILE_ITEMS)).into());
            }
            items.extend(msg.items);
        }
        reply(self.0.reconcile_detail(&clr_date, &mdtrt, items).await)
    }
    async fn set_advance(&self, req: Request<pb::SetAdvanceRequest>) -> Reply<pb::AdvancePosition> {
        reply(self.0.set_advance(req.get_ref()).await)
    }
    async fn get_advance_positions(&self, req: Request<pb::GetAdvancePositionsRequest>) -> Reply<pb::AdvancePositions> {
        reply(self.0.advance_positions(&req.get_ref().clr_date).await)
    }
    async fn get_monthly_statement(&self, req: Request<pb::GetMonthlyStatementRequest>) -> Reply<pb::MonthlyStatement> {
        reply(self.0.monthly_statement(&req.get_ref().setlym).await)
    }
}
