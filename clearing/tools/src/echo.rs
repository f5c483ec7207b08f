//! `clearing bench-echo`: the gRPC ceiling of this machine for our messages. A minimal tonic server
//! (no store, no rules, no layers) speaking the same `Clearing` and `Registry` services, answering each
//! claim with a settlement of the size a real one has (same lines, same fields, an explanation of
//! typical length). `clearing bench` runs against it unchanged; its throughput is what gRPC alone
//! allows with the same client on the same cores.

use proto::v1 as pb;
use proto::v1::catalogue_server::{Catalogue, CatalogueServer};
use proto::v1::clearing_server::{Clearing, ClearingServer};
use proto::v1::registry_server::{Registry, RegistryServer};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

#[derive(Clone, Copy)]
pub struct Echo;

/// A settlement shaped like the real answer to `c`.
pub fn settlement_for(c: &pb::Claim) -> pb::Settlement {
    let total: i64 = c.lines.iter().map(|l| clearing_edge::fields::signed_fen(&l.det_item_fee_sumamt).unwrap_or(0)).sum();
    let part = |n: i64| total * n / 100;
    let amounts = region_adapter::Amounts {
        medfee_sumamt: total,
        fulamt_ownpay_amt: part(5),
        overlmt_selfpay: part(3),
        preselfpay_amt: part(7),
        inscp_scp_amt: part(85),
        act_pay_dedc: part(20),
        hifp_pay: part(45),
        pool_prop_selfpay: part(20),
        fund_pay_sumamt: part(45),
        psn_part_amt: part(55),
        acct_pay: part(30),
        acct_mulaid_pay: 0,
        psn_cash_pay: part(25),
        balc: 17_000,
    };
    let mut s = pb::Settlement {
        setl_id: "0a3f5c9e1b7d2468ace0bdf1".into(),
        msgid: c.msgid.clone(),
        psn_no: c.psn_no.clone(),
        insuplc_admdvs: c.insuplc_admdvs.clone(),
        mdtrt_admdvs: c.mdtrt_admdvs.clone(),
        setl_time: c.setl_time.clone(),
        clr_date: "2026-11-22".into(),
        lines: c
            .lines
            .iter()
            .map(|l| pb::SettlementLine {
                hilist_code: l.hilist_code.clone(),
                chrgitm_lv: "02".into(),
                selfpay_prop: "0.1".into(),
                det_item_fee_sumamt: l.det_item_fee_sumamt.clone(),
                fulamt_ownpay_amt: "0.00".into(),
                overlmt_selfpay: "0.00".into(),
                preselfpay_amt: "1.20".into(),
                inscp_scp_amt: l.det_item_fee_sumamt.clone(),
                hilist_name: "苯磺酸氨氯地平片".into(),
                acct_excluded: false,
            })
            .collect(),
        explanation: vec![
            "priced with 南昌市's catalogue (sample): total 1127.60 = full self-pay 200.00 + over price cap 30.36 + self-pay first 118.36 + in scope 778.88".into(),
            "member class on 2026-11-22: in service (随州市 art. 12 [003_a9d74b92acd07a75.txt])".into(),
            "deductible 500.00 left 500.00 → applied 500.00 (随州市 art. 8 [003_a9d74b92acd07a75.txt], in service)".into(),
            "278.88 × 80% at level 1 = 223.10 (随州市 art. 8 [003_a9d74b92acd07a75.txt], in service)".into(),
            "cap 1300.00 left 1300.00: fund pays 223.10 (随州市 art. 8 [003_a9d74b92acd07a75.txt])".into(),
            "personal account pays 300.00 of the patient's 904.50 (balance 300.00 → 0.00)".into(),
        ],
        fixmedins_code: c.fixmedins_code.clone(),
        med_type: c.med_type.clone(),
        hosp_lv: c.hosp_lv,
        ratio_hosp_lv: c.hosp_lv,
        hifp_ratio: "0.8".into(),
        benefit: "general".into(),
        year: 2026,
        psn_type: "11".into(),
        recorded: true,
        ..Default::default()
    };
    region_adapter_server::national::set_settlement_amounts(&mut s, &amounts);
    s
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Clearing for Echo {
    async fn settle_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        Ok(Response::new(settlement_for(req.get_ref())))
    }
    async fn preview_claim(&self, req: Request<pb::Claim>) -> Reply<pb::Settlement> {
        Ok(Response::new(settlement_for(req.get_ref())))
    }
    async fn reverse_claim(&self, req: Request<pb::ReverseClaimRequest>) -> Reply<pb::Settlement> {
        let mut s = settlement_for(&pb::Claim::default());
        s.msgid = req.get_ref().msgid.clone();
        s.refd_setl_flag = true;
        Ok(Response::new(s))
    }
    async fn get_settlement(&self, _req: Request<pb::GetSettlementRequest>) -> Reply<pb::Settlement> {
        Ok(Response::new(settlement_for(&pb::Claim::default())))
    }
    // The visit flow is not part of the unary ceiling.
    async fn register_visit(&self, _req: Request<pb::RegisterVisitRequest>) -> Reply<pb::Visit> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn upload_fee_details(&self, _req: Request<pb::UploadFeeDetailsRequest>) -> Reply<pb::UploadFeeDetailsResponse> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn cancel_fee_details(&self, _req: Request<pb::CancelFeeDetailsRequest>) -> Reply<pb::Visit> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn cancel_visit(&self, _req: Request<pb::CancelVisitRequest>) -> Reply<pb::Visit> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn settle_visit(&self, _req: Request<pb::SettleVisitRequest>) -> Reply<pb::Settlement> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn preview_visit(&self, _req: Request<pb::SettleVisitRequest>) -> Reply<pb::Settlement> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn get_visit(&self, _req: Request<pb::GetVisitRequest>) -> Reply<pb::Visit> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn find_settlement_by_msgid(&self, _req: Request<pb::FindSettlementByMsgidRequest>) -> Reply<pb::Settlement> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn update_visit_info(&self, _req: Request<pb::UpdateVisitInfoRequest>) -> Reply<pb::Visit> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }

    type SettleClaimStreamStream = clearing_service::grpc::ResultStream;

    async fn settle_claim_stream(&self, req: Request<tonic::Streaming<pb::Claim>>) -> Reply<Self::SettleClaimStreamStream> {
        let mut input = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(128);
        tokio::spawn(async move {
            while let Ok(Some(c)) = input.message().await {
                let r = pb::SettleResult { msgid: c.msgid.clone(), settlement: Some(settlement_for(&c)), code: 0, message: String::new() };
                if tx.send(Ok(r)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

#[tonic::async_trait]
impl Registry for Echo {
    async fn credit_accounts(&self, _req: Request<pb::CreditAccountsRequest>) -> Reply<pb::CreditAccountsResponse> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn upsert_member(&self, req: Request<pb::Member>) -> Reply<pb::Member> {
        Ok(Response::new(req.into_inner()))
    }
    async fn get_member(&self, _req: Request<pb::GetMemberRequest>) -> Reply<pb::Member> {
        Err(Status::not_found("echo server keeps no members"))
    }
    async fn find_member(&self, _req: Request<pb::FindMemberRequest>) -> Reply<pb::FindMemberResponse> {
        Err(Status::not_found("echo server keeps no members"))
    }
    async fn close_account(&self, _req: Request<pb::CloseAccountRequest>) -> Reply<pb::Settlement> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
}

/// The catalogue as far as a load generator registers its institutions (answered as sent); the rest
/// unimplemented.
#[tonic::async_trait]
impl Catalogue for Echo {
    async fn upsert_institution(&self, req: Request<pb::Institution>) -> Reply<pb::Institution> {
        Ok(Response::new(req.into_inner()))
    }
    async fn get_institution(&self, _req: Request<pb::GetInstitutionRequest>) -> Reply<pb::Institution> {
        Err(Status::not_found("echo server keeps no institutions"))
    }
    async fn list_regions(&self, _req: Request<pb::ListRegionsRequest>) -> Reply<pb::ListRegionsResponse> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn get_policy(&self, _req: Request<pb::GetPolicyRequest>) -> Reply<pb::Policy> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
    async fn list_catalogue_items(&self, _req: Request<pb::ListCatalogueItemsRequest>) -> Reply<pb::ListCatalogueItemsResponse> {
        Err(tonic::Status::unimplemented("the echo server measures SettleClaim only"))
    }
}

/// Serves the echo services until Ctrl-C / SIGTERM. Plain text, loopback only (a benchmark tool).
pub async fn serve(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    anyhow::ensure!(listen.ip().is_loopback(), "bench-echo listens on loopback only");
    let listener = TcpListener::bind(listen).await?;
    println!("bench-echo listening on {}", listener.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    tonic::transport::Server::builder()
        .add_service(ClearingServer::new(Echo))
        .add_service(RegistryServer::new(Echo))
        .add_service(CatalogueServer::new(Echo))
        .serve_with_incoming_shutdown(clearing_edge::server::incoming(listener), clearing_edge::server::shutdown_signal())
        .await?;
    Ok(())
}
