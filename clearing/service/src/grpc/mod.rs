//! The gRPC services of `clearinghouse.v1`: thin adapters from messages to the clearing core. Every
//! error leaves through `ServiceError → Status` (error.rs). Each feature has its wire here in a file of
//! its own: `settlement` (claims, reversals, msgid lookups, closures, institutions), `visits`,
//! `members`, `registry` (credit runs), `supervision`, `windows`. Below `grpc/`, only `record.rs` (the
//! stored formats) and `routing/` (the adapter hop) name protobuf types.

mod members;
mod registry;
pub mod settlement;
mod supervision;
pub mod visits;
pub mod windows;

use crate::core::{Clearinghouse, settlement_not_found};
use crate::registry::identity;
use crate::routing::remote::CallCtx;
use crate::settlement::settle::Mode;
use crate::store::{MemberIdentityIndex, MemberKey, MemberRecord, Store};
use clearing_edge::authz::{self, Action, Caller, Gate};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::{self as fields, Violations};
use proto::v1 as pb;
use proto::v1::catalogue_server::Catalogue;
use proto::v1::clearing_server::Clearing;
use proto::v1::registry_server::Registry;
use region_adapter::Admdvs;
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// One handle implementing every service over the shared core. Every handler first passes the gate:
/// who the caller is, whether it has room for another request, and whether the matrix of authz.rs
/// allows the call.
pub struct Api<S: Store> {
    pub core: Arc<Clearinghouse<S>>,
    pub gate: Arc<Gate>,
}

impl<S: Store> Clone for Api<S> {
    fn clone(&self) -> Self {
        Api { core: self.core.clone(), gate: self.gate.clone() }
    }
}

impl<S: Store> Api<S> {
    fn enter<T>(&self, req: &Request<T>, rpc: &str, action: Action<'_>) -> Result<(Caller, OwnedSemaphorePermit), Status> {
        self.gate.enter(req, rpc, action).map_err(Status::from)
    }

    /// Whether `caller` may read the member (1101's rule): the insured side, or a service location where
    /// the member has a filing in force today or an open visit.
    async fn may_read_member(&self, caller: &Caller, insured: &str, psn_no: &str) -> Result<bool, ServiceError> {
        if authz::permits(caller, &Action::ReadMember { insured }) {
            return Ok(true);
        }
        let rec = self.core.store.load_member(&MemberKey::new(insured, psn_no)).await?;
        self.may_read_as_service_location(caller, rec.as_ref()).await
    }

    /// The service-location half of 1101's rule, for a member already read (none: may not).
    async fn may_read_as_service_location(&self, caller: &Caller, rec: Option<&MemberRecord>) -> Result<bool, ServiceError> {
        let Some(rec) = rec else { return Ok(false) };
        let today = crate::calendar::today();
        let mut filed: Vec<Admdvs> = rec
            .filings
            .iter()
            .filter(|f| f.begndate <= today && f.enddate.is_none_or(|e| today <= e))
            .filter_map(|f| Admdvs::parse(&f.mdtrt_admdvs))
            .collect();
        // An open visit at the service location counts like a filing for it.
        filed.extend(self.core.visits().open_visit_regions(&rec.key.insuplc_admdvs, &rec.key.psn_no).await?);
        Ok(authz::permits(caller, &Action::ReadFiledMember { filed: &filed }))
    }

    /// A preview (2206) as `caller` may see it: the member's balance, type and the explanation only to a
    /// caller that may read the member; to any other the amounts of the claim alone (issue 29).
    async fn shown_to(&self, caller: &Caller, insured: &str, psn_no: &str, mut s: pb::Settlement) -> Result<pb::Settlement, ServiceError> {
        if !self.may_read_member(caller, insured, psn_no).await? {
            s.balc.clear();
            s.psn_type.clear();
            s.explanation =
                vec!["the member's balance, type and this explanation are shown only to callers that may read the member (1101)".into()];
        }
        Ok(s)
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The answers of `SettleClaimStream`.
pub type ResultStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SettleResult, Status>> + Send>>;

/// Claims of one `SettleClaimStream` call in progress at once.
pub const MAX_STREAM_IN_PROGRESS: usize = 64;

fn reply<T>(r: Result<T, ServiceError>) -> Reply<T> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl<S: Store> Clearing for Api<S> {
    async fn settle_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        let _slot = self.enter(&req, "SettleClaim", settle_action(req.get_ref()))?;
        let ctx = CallCtx::of(&req);
        reply(self.core.settle(&ctx, &settlement::claim(req.into_inner()), Mode::Settle).await)
    }
    async fn preview_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        let (caller, _slot) = self.enter(&req, "PreviewClaim", settle_action(req.get_ref()))?;
        let ctx = CallCtx::of(&req);
        let q = settlement::claim(req.into_inner());
        let r = self.core.settle(&ctx, &q, Mode::Preview).await;
        reply(match r {
            Ok(s) => self.shown_to(&caller, &q.insuplc_admdvs, &q.psn_no, s).await,
            e => e,
        })
    }
    async fn reverse_claim(&self, req: Request<pb::ReverseClaimRequest>) -> Reply<pb::Settlement> {
        let (caller, _slot) = self.enter(&req, "ReverseClaim", Action::ReadCatalogue)?;
        let authorize = |orig: &pb::Settlement| {
            // A caller that may not even see the original learns nothing about it (see GetSettlement).
            let (insured, mdtrt, inst) = (&*orig.insuplc_admdvs, &*orig.mdtrt_admdvs, &*orig.fixmedins_code);
            let hidden = || settlement_not_found(&req.get_ref().setl_id);
            authz::require_or_hide(&caller, "ReverseClaim", Action::ReadSettlement { insured, mdtrt, inst }, hidden)?;
            authz::require(&caller, "ReverseClaim", Action::ReverseClaim { mdtrt, inst })
        };
        reply(self.core.reverse(&settlement::reversal(req.get_ref()), &authorize).await)
    }
    type SettleClaimStreamStream = ResultStream;

    async fn settle_claim_stream(&self, req: Request<tonic::Streaming<pb::Claim>>) -> Reply<ResultStream> {
        let caller = self.gate.caller(&req, "SettleClaimStream").map_err(Status::from)?;
        let slot = self.gate.admit(&caller).map_err(Status::from)?;
        let ctx = CallCtx::of(&req);
        let span = tracing::Span::current();
        let mut input = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(2 * MAX_STREAM_IN_PROGRESS);
        let core = self.core.clone();
        tokio::spawn(
            async move {
                let _slot = slot;
                let in_progress = Arc::new(tokio::sync::Semaphore::new(MAX_STREAM_IN_PROGRESS));
                loop {
                    let claim = match input.message().await {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(s) => {
                            let _ = tx.send(Err(s)).await;
                            break;
                        }
                    };
                    let Ok(permit) = in_progress.clone().acquire_owned().await else { break };
                    let (core, tx, caller, ctx) = (core.clone(), tx.clone(), caller.clone(), ctx.clone());
                    tokio::spawn(
                        async move {
                            let _permit = permit;
                            let msgid = claim.msgid.clone();
                            let r = match authz::require(&caller, "SettleClaimStream", settle_action(&claim)) {
                                Ok(()) => core.settle(&ctx, &settlement::claim(claim), Mode::Settle).await,
                                Err(e) => Err(e),
                            };
                            let answer = match r {
                                Ok(s) => pb::SettleResult { msgid, settlement: Some(s), code: 0, message: String::new() },
                                Err(e) => {
                                    let st = Status::from(e);
                                    pb::SettleResult { msgid, settlement: None, code: st.code() as i32, message: st.message().into() }
                                }
                            };
                            let _ = tx.send(Ok(answer)).await;
                        }
                        .instrument(tracing::Span::current()),
                    );
                }
                // The stream ends when every claim in progress has answered.
                let _ = in_progress.acquire_many(MAX_STREAM_IN_PROGRESS as u32).await;
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn register_visit(&self, req: Request<pb::RegisterVisitRequest>) -> Reply<pb::Visit> {
        let _slot =
            self.enter(&req, "RegisterVisit", Action::Visit { mdtrt: &req.get_ref().mdtrt_admdvs, inst: &req.get_ref().fixmedins_code })?;
        reply(self.core.visits().register_visit(&visits::registration(req.get_ref())).await.map(|v| visits::visit_pb(&v)))
    }
    async fn upload_fee_details(&self, req: Request<pb::UploadFeeDetailsRequest>) -> Reply<pb::UploadFeeDetailsResponse> {
        let (caller, _slot) = self.enter(&req, "UploadFeeDetails", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        let authorize = visit_authorizer(&caller, "UploadFeeDetails");
        let q = req.get_ref();
        reply(
            self.core
                .visits()
                .upload_fee_details(&ctx, &q.mdtrt_id, &visits::fee_details(q), &authorize)
                .await
                .map(|u| visits::uploaded_pb(&u)),
        )
    }
    async fn cancel_fee_details(&self, req: Request<pb::CancelFeeDetailsRequest>) -> Reply<pb::Visit> {
        let (caller, _slot) = self.enter(&req, "CancelFeeDetails", Action::ReadCatalogue)?;
        let authorize = visit_authorizer(&caller, "CancelFeeDetails");
        reply(self.core.visits().cancel_fee_details(&visits::details_cancel(req.get_ref()), &authorize).await.map(|v| visits::visit_pb(&v)))
    }
    async fn cancel_visit(&self, req: Request<pb::CancelVisitRequest>) -> Reply<pb::Visit> {
        let (caller, _slot) = self.enter(&req, "CancelVisit", Action::ReadCatalogue)?;
        let authorize = visit_authorizer(&caller, "CancelVisit");
        reply(self.core.visits().cancel_visit(&req.get_ref().mdtrt_id, &authorize).await.map(|v| visits::visit_pb(&v)))
    }
    async fn settle_visit(&self, req: Request<pb::SettleVisitRequest>) -> Reply<pb::Settlement> {
        let (caller, _slot) = self.enter(&req, "SettleVisit", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        let authorize = visit_authorizer(&caller, "SettleVisit");
        reply(self.core.visits().settle_visit(&ctx, &visits::visit_settle(req.get_ref()), Mode::Settle, &authorize).await)
    }
    async fn preview_visit(&self, req: Request<pb::SettleVisitRequest>) -> Reply<pb::Settlement> {
        let (caller, _slot) = self.enter(&req, "PreviewVisit", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        let authorize = visit_authorizer(&caller, "PreviewVisit");
        reply(self.core.visits().settle_visit(&ctx, &visits::visit_settle(req.get_ref()), Mode::Preview, &authorize).await)
    }
    async fn update_visit_info(&self, req: Request<pb::UpdateVisitInfoRequest>) -> Reply<pb::Visit> {
        let (caller, _slot) = self.enter(&req, "UpdateVisitInfo", Action::ReadCatalogue)?;
        let authorize = visit_authorizer(&caller, "UpdateVisitInfo");
        reply(self.core.visits().update_visit_info(&visits::visit_info(req.get_ref()), &authorize).await.map(|v| visits::visit_pb(&v)))
    }
    async fn get_visit(&self, req: Request<pb::GetVisitRequest>) -> Reply<pb::Visit> {
        let (caller, _slot) = self.enter(&req, "GetVisit", Action::ReadCatalogue)?;
        let authorize = visit_authorizer(&caller, "GetVisit");
        reply(self.core.visits().get_visit(&req.get_ref().mdtrt_id, &authorize).await.map(|v| visits::visit_pb(&v)))
    }

    async fn find_settlement_by_msgid(&self, req: Request<pb::FindSettlementByMsgidRequest>) -> Reply<pb::Settlement> {
        let q = req.get_ref();
        // Only the sender looks up its own msgids.
        let (caller, _slot) =
            self.enter(&req, "FindSettlementByMsgid", Action::SettleClaim { mdtrt: &q.mdtrt_admdvs, inst: &q.fixmedins_code })?;
        let r = self.core.find_settlement_by_msgid(&settlement::msgid_query(q)).await.and_then(|s| {
            let hidden = || ServiceError::NotFound { what: format!("settlement of msgid {}", q.msgid), field: "msgid".into() };
            let action = Action::ReadSettlement { insured: &s.insuplc_admdvs, mdtrt: &s.mdtrt_admdvs, inst: &s.fixmedins_code };
            authz::require_or_hide(&caller, "FindSettlementByMsgid", action, hidden)?;
            Ok(s)
        });
        reply(r)
    }
    async fn get_settlement(&self, req: Request<pb::GetSettlementRequest>) -> Reply<pb::Settlement> {
        let (caller, _slot) = self.enter(&req, "GetSettlement", Action::ReadCatalogue)?;
        let setl_id = &req.get_ref().setl_id;
        // A settlement the caller may not see is answered exactly like one that does not exist (no
        // existence oracle); the refusal is audited.
        let hidden = || settlement_not_found(setl_id);
        let r = self.core.get_settlement(setl_id).await.and_then(|s| {
            authz::require_or_hide(
                &caller,
                "GetSettlement",
                Action::ReadSettlement { insured: &s.insuplc_admdvs, mdtrt: &s.mdtrt_admdvs, inst: &s.fixmedins_code },
                hidden,
            )?;
            Ok(s)
        });
        reply(r)
    }
}

/// Only the visit's service location may touch it; a refusal is audited (and answered as not found by
/// the visit code, so that the answer does not tell whether the visit exists).
fn visit_authorizer<'a>(caller: &'a Caller, rpc: &'a str) -> impl Fn(&str, &str) -> Result<(), ServiceError> + Sync + 'a {
    move |mdtrt: &str, inst: &str| authz::require(caller, rpc, Action::Visit { mdtrt, inst })
}

/// A claim is settled (or previewed) as its service location and institution.
fn settle_action(c: &pb::Claim) -> Action<'_> {
    Action::SettleClaim { mdtrt: &c.mdtrt_admdvs, inst: &c.fixmedins_code }
}

#[tonic::async_trait]
impl<S: Store> Registry for Api<S> {
    async fn upsert_member(&self, req: Request<pb::Member>) -> Reply<pb::Member> {
        let _slot = self.enter(&req, "UpsertMember", Action::WriteMember { insured: &req.get_ref().insuplc_admdvs })?;
        let routes = self.core.router.current();
        let r = async {
            let upsert = members::validate_member(req.get_ref(), &|a| routes.knows(a))?;
            // The certificate index first: an entry whose member write then fails finds nothing, since
            // a reader checks the member's own identity (store::MemberIdentityIndex).
            if let Some(id) = &upsert.identity {
                let hash = self.core.identity.hash(&self.core.store, &id.psn_cert_type, &id.certno).await?;
                self.core.store.index_member_identity(&hash, &upsert.key).await?;
            }
            let rec = self.core.store.upsert_member(upsert).await?;
            Ok(members::member_to_pb(&rec, 0))
        };
        reply(r.await)
    }

    async fn credit_accounts(&self, req: Request<pb::CreditAccountsRequest>) -> Reply<pb::CreditAccountsResponse> {
        let _slot = self.enter(&req, "CreditAccounts", Action::CreditAccounts { insured: &req.get_ref().insuplc_admdvs })?;
        let r = async {
            let run = registry::credit_run(req.get_ref(), &self.core.router.snapshot())?;
            Ok(registry::credit_page_pb(self.core.credits().credit_accounts(&run).await?))
        };
        reply(r.await)
    }

    async fn close_account(&self, req: Request<pb::CloseAccountRequest>) -> Reply<pb::Settlement> {
        let _slot = self.enter(&req, "CloseAccount", Action::CloseAccount { insured: &req.get_ref().insuplc_admdvs })?;
        let routing = self.core.router.current();
        reply(self.core.close_account(&settlement::closure(req.get_ref()), &|a| routing.knows(a)).await)
    }

    async fn get_member(&self, req: Request<pb::GetMemberRequest>) -> Reply<pb::Member> {
        let caller = self.gate.caller(&req, "GetMember").map_err(Status::from)?;
        let _slot = self.gate.admit(&caller).map_err(Status::from)?;
        let q = req.get_ref();
        let insured = Action::ReadMember { insured: &q.insuplc_admdvs };
        // The insured region's platform reads its members. A service location (its platform, or the
        // treating institution: 1101) reads only a member who has filed for its region or has an open
        // visit there; any other member is answered exactly like one that does not exist.
        let service_location = matches!(caller, Caller::Verified(ref id)
            if !authz::allowed(id, &insured) && matches!(id.role, authz::Role::Mdtrt | authz::Role::Platform | authz::Role::Institution));
        if !service_location {
            authz::require(&caller, "GetMember", insured)?;
        }
        let r = async {
            let mut v = Violations::default();
            fields::check_psn_no(&mut v, "psn_no", &q.psn_no);
            if Admdvs::parse(&q.insuplc_admdvs).is_none() {
                v.add("insuplc_admdvs", "must be a 6-digit division code");
            }
            v.into_result(())?;
            let not_found = || ServiceError::NotFound { what: "member".into(), field: "psn_no".into() };
            let rec = self.core.store.load_member(&MemberKey::new(&q.insuplc_admdvs, &q.psn_no)).await?;
            if service_location && !self.may_read_as_service_location(&caller, rec.as_ref()).await? {
                // No filing or visit here: refused (audited) and answered like a missing member.
                authz::require_or_hide(&caller, "GetMember", Action::ReadFiledMember { filed: &[] }, not_found)?;
            }
            let rec = rec.ok_or_else(not_found)?;
            Ok(members::member_to_pb(&rec, q.year))
        };
        reply(r.await)
    }

    async fn find_member(&self, req: Request<pb::FindMemberRequest>) -> Reply<pb::FindMemberResponse> {
        let caller = self.gate.caller(&req, "FindMember").map_err(Status::from)?;
        let _slot = self.gate.admit(&caller).map_err(Status::from)?;
        let q = req.get_ref();
        let r = async {
            let mut v = Violations::default();
            if !identity::is_cert_type(&q.psn_cert_type) {
                v.add("psn_cert_type", "must be a two-digit national certificate type (01 居民身份证, …)");
            }
            let certno = identity::normalize_certno(&q.certno);
            if certno.is_empty() || certno.chars().count() > identity::MAX_CERTNO {
                v.add("certno", format!("required, at most {} characters", identity::MAX_CERTNO));
            }
            if q.psn_name.chars().count() > identity::MAX_NAME {
                v.add("psn_name", format!("at most {} characters", identity::MAX_NAME));
            }
            if !q.insuplc_admdvs.is_empty() && Admdvs::parse(&q.insuplc_admdvs).is_none() {
                v.add("insuplc_admdvs", "must be a 6-digit division code");
            }
            v.into_result(())?;
            let not_found = || ServiceError::NotFound { what: "member with this certificate".into(), field: "certno".into() };
            let (members, hidden) = self.members_by_certificate(&caller, q).await?;
            if members.is_empty() {
                if hidden {
                    // Members the caller may not read: refused (audited) and answered like none.
                    authz::require_or_hide(&caller, "FindMember", Action::ReadFiledMember { filed: &[] }, not_found)?;
                }
                return Err(not_found());
            }
            Ok(pb::FindMemberResponse { members })
        };
        reply(r.await)
    }
}

impl<S: Store> Api<S> {
    /// The members holding a certificate that `caller` may read (GetMember's rule), by region; whether
    /// any was hidden from it.
    async fn members_by_certificate(&self, caller: &Caller, q: &pb::FindMemberRequest) -> Result<(Vec<pb::Member>, bool), ServiceError> {
        let certno = identity::normalize_certno(&q.certno);
        let name = q.psn_name.trim();
        let hash = self.core.identity.hash(&self.core.store, &q.psn_cert_type, &certno).await?;
        let (mut members, mut hidden) = (Vec::new(), false);
        let candidates = self.core.store.members_with_identity(&hash).await?;
        let wanted = candidates.iter().filter(|k| q.insuplc_admdvs.is_empty() || k.insuplc_admdvs == q.insuplc_admdvs);
        // Entries left by changed certificates do not count towards the bound; the index is read at most
        // `MAX_INDEX_ENTRIES_READ` deep.
        let mut holders = 0;
        for key in wanted.take(crate::limits::MAX_INDEX_ENTRIES_READ) {
            if holders == crate::limits::MAX_MEMBERS_PER_CERTIFICATE {
                break;
            }
            let Some(rec) = self.core.store.load_member(key).await? else { continue };
            // The index is never trusted alone: an entry left by a changed certificate finds nothing.
            let Some(id) = &rec.identity else { continue };
            if id.psn_cert_type != q.psn_cert_type || id.certno != certno {
                continue;
            }
            holders += 1;
            if !name.is_empty() && id.psn_name != name {
                continue;
            }
            let readable = authz::permits(caller, &Action::ReadMember { insured: &key.insuplc_admdvs })
                || (matches!(caller, Caller::Verified(id)
                    if matches!(id.role, authz::Role::Mdtrt | authz::Role::Platform | authz::Role::Institution))
                    && self.may_read_as_service_location(caller, Some(&rec)).await?);
            if readable {
                members.push(members::member_to_pb(&rec, q.year));
            } else {
                hidden = true;
            }
        }
        Ok((members, hidden))
    }
}

#[tonic::async_trait]
impl<S: Store> Catalogue for Api<S> {
    async fn list_regions(&self, req: Request<pb::ListRegionsRequest>) -> Reply<pb::ListRegionsResponse> {
        let _slot = self.enter(&req, "ListRegions", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        Ok(Response::new(self.core.router.list_regions(&ctx).await))
    }
    async fn get_policy(&self, req: Request<pb::GetPolicyRequest>) -> Reply<pb::Policy> {
        let _slot = self.enter(&req, "GetPolicy", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        reply(self.core.router.get_policy(&ctx, req.get_ref()).await)
    }
    async fn list_catalogue_items(&self, req: Request<pb::ListCatalogueItemsRequest>) -> Reply<pb::ListCatalogueItemsResponse> {
        let _slot = self.enter(&req, "ListCatalogueItems", Action::ReadCatalogue)?;
        let ctx = CallCtx::of(&req);
        reply(self.core.router.list_catalogue_items(&ctx, req.get_ref()).await)
    }
    async fn upsert_institution(&self, req: Request<pb::Institution>) -> Reply<pb::Institution> {
        let mdtrt =
            crate::registry::institutions::service_location(&req.get_ref().fixmedins_code).map(|a| a.to_string()).unwrap_or_default();
        let _slot = self.enter(&req, "UpsertInstitution", Action::WriteInstitution { mdtrt: &mdtrt })?;
        reply(
            crate::registry::institutions::upsert(&self.core.store, settlement::institution(req.get_ref()))
                .await
                .map(|f| settlement::institution_pb(&f)),
        )
    }
    async fn get_institution(&self, req: Request<pb::GetInstitutionRequest>) -> Reply<pb::Institution> {
        let _slot = self.enter(&req, "GetInstitution", Action::ReadCatalogue)?;
        let code = &req.get_ref().fixmedins_code;
        let r = async {
            crate::registry::institutions::find(&self.core.store, &self.core.institutions, code)
                .await?
                .map(|f| settlement::institution_pb(&f))
                .ok_or_else(|| ServiceError::NotFound { what: format!("institution {code}"), field: "fixmedins_code".into() })
        };
        reply(r.await)
    }
}

#[tonic::async_trait]
impl<S: Store> proto::v1::netting_server::Netting for Api<S> {
    async fn close_window(&self, req: Request<pb::CloseWindowRequest>) -> Reply<pb::Window> {
        let _slot = self.enter(&req, "CloseWindow", Action::NettingWrite)?;
        let r = async { Ok(windows::window_pb(self.core.windows().close(windows::date("clr_date", &req.get_ref().clr_date)?).await?)) };
        reply(r.await)
    }
    async fn get_window(&self, req: Request<pb::GetWindowRequest>) -> Reply<pb::Window> {
        let _slot = self.enter(&req, "GetWindow", Action::NettingRead)?;
        let r = async { Ok(windows::window_pb(self.core.windows().window(windows::date("clr_date", &req.get_ref().clr_date)?).await?)) };
        reply(r.await)
    }
    async fn list_windows(&self, req: Request<pb::ListWindowsRequest>) -> Reply<pb::ListWindowsResponse> {
        let _slot = self.enter(&req, "ListWindows", Action::NettingRead)?;
        let r = async {
            Ok(pb::ListWindowsResponse { windows: self.core.windows().list().await?.into_iter().map(windows::window_pb).collect() })
        };
        reply(r.await)
    }
    async fn get_netting_report(&self, req: Request<pb::GetNettingReportRequest>) -> Reply<pb::NettingReport> {
        let _slot = self.enter(&req, "GetNettingReport", Action::NettingRead)?;
        let r = async {
            Ok(windows::report_pb(&self.core.windows().netting_report(windows::date("clr_date", &req.get_ref().clr_date)?).await?))
        };
        reply(r.await)
    }
    async fn acknowledge_settlement(&self, req: Request<pb::AcknowledgeSettlementRequest>) -> Reply<pb::Window> {
        let _slot = self.enter(&req, "AcknowledgeSettlement", Action::NettingWrite)?;
        let q = req.get_ref();
        let r = async {
            let (d, adm) = (windows::date("clr_date", &q.clr_date)?, windows::region("admdvs", &q.admdvs)?);
            Ok(windows::window_pb(self.core.windows().acknowledge(d, &adm, &q.bank_ref).await?))
        };
        reply(r.await)
    }
    async fn reconcile_totals(&self, req: Request<pb::ReconcileTotalsRequest>) -> Reply<pb::ReconcileResult> {
        let _slot = self.enter(
            &req,
            "ReconcileTotals",
            Action::Reconcile { mdtrt: &req.get_ref().mdtrt_admdvs, inst: &req.get_ref().fixmedins_code },
        )?;
        let r =
            async { Ok(windows::reconciliation_pb(self.core.windows().reconcile_totals(&windows::totals_query(req.get_ref())?).await?)) };
        reply(r.await)
    }
    async fn reconcile_detail(&self, req: Request<tonic::Streaming<pb::ReconcileDetailRequest>>) -> Reply<pb::ReconcileResult> {
        let caller = self.gate.caller(&req, "ReconcileDetail").map_err(Status::from)?;
        let _slot = self.gate.admit(&caller).map_err(Status::from)?;
        let mut stream = req.into_inner();
        let (mut clr_date, mut mdtrt, mut inst, mut items) = (String::new(), String::new(), String::new(), Vec::new());
        let mut first = true;
        while let Some(msg) = stream.message().await? {
            if first {
                first = false;
                clr_date = msg.clr_date;
                mdtrt = msg.mdtrt_admdvs;
                inst = msg.fixmedins_code;
                // The first message names the service location (and institution): a region's platform
                // reconciles its own, an institution only itself.
                authz::require(&caller, "ReconcileDetail", Action::Reconcile { mdtrt: &mdtrt, inst: &inst })?;
            }
            if items.len() + msg.items.len() > crate::windows::MAX_RECONCILE_ITEMS {
                return Err(ServiceError::field("items", format!("more than {} items", crate::windows::MAX_RECONCILE_ITEMS)).into());
            }
            items.extend(msg.items);
        }
        let r = async {
            let (d, mdtrt, inst) = windows::detail_scope(&clr_date, &mdtrt, &inst)?;
            let items = windows::detail_items(&items)?;
            Ok(windows::reconciliation_pb(self.core.windows().reconcile_detail(d, mdtrt.as_deref(), inst.as_deref(), &items).await?))
        };
        reply(r.await)
    }
    async fn set_advance(&self, req: Request<pb::SetAdvanceRequest>) -> Reply<pb::AdvancePosition> {
        let _slot = self.enter(&req, "SetAdvance", Action::NettingWrite)?;
        let q = req.get_ref();
        let r = async {
            let adm = windows::region("admdvs", &q.admdvs)?;
            let mut v = Violations::default();
            let fen = fields::parse_money(&mut v, "amount", &q.amount, region_adapter::money::MAX_AMOUNT_FEN);
            v.into_result(())?;
            Ok(windows::advance_pb(&self.core.windows().set_advance(&adm, fen.expect("checked")).await?))
        };
        reply(r.await)
    }
    async fn get_advance_positions(&self, req: Request<pb::GetAdvancePositionsRequest>) -> Reply<pb::AdvancePositions> {
        let _slot = self.enter(&req, "GetAdvancePositions", Action::NettingRead)?;
        let r = async {
            let d = windows::date("clr_date", &req.get_ref().clr_date)?;
            let rows = self.core.windows().advance_positions(d).await?;
            Ok(pb::AdvancePositions { clr_date: d.to_string(), positions: rows.iter().map(windows::advance_pb).collect() })
        };
        reply(r.await)
    }
    async fn get_monthly_statement(&self, req: Request<pb::GetMonthlyStatementRequest>) -> Reply<pb::MonthlyStatement> {
        let _slot = self.enter(&req, "GetMonthlyStatement", Action::NettingRead)?;
        let r = async {
            Ok(windows::statement_pb(self.core.windows().monthly_statement(windows::month("setlym", &req.get_ref().setlym)?).await?))
        };
        reply(r.await)
    }
}

#[tonic::async_trait]
impl<S: Store> proto::v1::supervision_server::Supervision for Api<S> {
    async fn list_flagged_settlements(&self, req: Request<pb::ListFlaggedSettlementsRequest>) -> Reply<pb::ListFlaggedSettlementsResponse> {
        let (caller, _slot) = self.enter(&req, "ListFlaggedSettlements", Action::Supervise)?;
        let view = authz::SupervisionView::of(&caller);
        let r = async {
            let q = supervision::flagged_query(req.get_ref())?;
            Ok::<_, ServiceError>(supervision::flagged_pb(self.core.supervision().flagged(&q, &view).await?))
        };
        reply(r.await)
    }

    async fn get_indicators(&self, req: Request<pb::GetIndicatorsRequest>) -> Reply<pb::Indicators> {
        let (caller, _slot) = self.enter(&req, "GetIndicators", Action::Supervise)?;
        let view = authz::SupervisionView::of(&caller);
        let r = async {
            let q = supervision::indicators_query(req.get_ref())?;
            Ok::<_, ServiceError>(supervision::indicators_pb(self.core.supervision().indicators(&q, &view).await?))
        };
        reply(r.await)
    }
}
