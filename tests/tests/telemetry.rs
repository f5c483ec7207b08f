//! OpenTelemetry across processes: `clearing` and a remote `region-adapter` export to the test's own
//! OTLP receiver (tests/src/otlp.rs). One settlement makes one connected trace across both processes,
//! continuing the caller's W3C trace context; the named metrics arrive with the right values; JSON
//! logs carry the trace id; no person number appears in any span.

use proto::v1 as pb;
use proto::v1::netting_client::NettingClient;
use tests::otlp::{Otlp, attr, gauge_value, histogram_count, sum_value};
use tests::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_processes_and_the_named_metrics() {
    let otlp = Otlp::start().await;
    let endpoint = otlp.endpoint();
    let otel = |name: &'static str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_SERVICE_NAME", name.to_string()),
            ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_string()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300".to_string()),
        ]
    };
    let (env_a, env_c) = (otel("adapter-hubei"), otel("clearing-test"));
    let adapter = Adapter::start_with_env(&["421300"], &[], &env_a.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let route = format!("420000={}", adapter.url());
    let c = Clearing::start_with_env(
        &["--route", &route, "--log-format", "json"],
        &env_c.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
    );
    c.registry().await.upsert_member(member("360100", "OTELNC1", "11", &[])).await.unwrap();

    // Three settlements of a Nanchang member in Suizhou: pricing on Hubei's adapter, policy in process.
    let mut cl = c.clearing().await;
    let mut fund = 0;
    let mut clr_date = String::new();
    for i in 0..3 {
        let mut req = tonic::Request::new(claim(&format!("OT{i}"), "360100", "OTELNC1", "421300", 2, "2024-03-01", 1000));
        if i == 0 {
            req.metadata_mut().insert("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01").parse().unwrap());
        }
        let s = cl.settle_claim(req).await.unwrap().into_inner();
        fund += fen(&s.fund_pay_sumamt);
        clr_date = s.clr_date;
    }
    assert!(fund > 0);
    // A refused claim (unknown code), and a netted window for the netting metrics.
    let mut bad = claim("OTBAD", "360100", "OTELNC1", "421300", 2, "2024-03-01", 10);
    bad.lines[0].hilist_code = "NOPE".into();
    assert!(cl.settle_claim(bad).await.is_err());
    let mut net = NettingClient::new(c.channel().await);
    net.close_window(pb::CloseWindowRequest { clr_date: clr_date.clone() }).await.unwrap();
    let report = net.get_netting_report(pb::GetNettingReportRequest { clr_date: clr_date.clone() }).await.unwrap().into_inner();

    // The trace: the caller's trace id in both processes, the adapter's server span a child of
    // clearing's adapter.call span, which descends from clearing's server span, child of the caller.
    let spans = eventually("spans of both services", PATIENCE, || {
        std::future::ready({
            let s: Vec<_> = otlp.spans().into_iter().filter(|(_, s)| hex(&s.trace_id) == TRACE).collect();
            let names: Vec<&str> = s.iter().map(|(_, s)| s.name.as_str()).collect();
            (names.contains(&"clearinghouse.v1.RegionAdapter/PriceLines") && names.contains(&"store.commit")).then_some(s)
        })
    })
    .await;
    let find =
        |service: &str, name: &str| {
            spans.iter().find(|(svc, s)| svc == service && s.name == name).map(|(_, s)| s.clone()).unwrap_or_else(|| {
                panic!("no {name} span from {service}: {:?}", spans.iter().map(|(a, s)| (a, &s.name)).collect::<Vec<_>>())
            })
        };
    let server = find("clearing-test", "clearinghouse.v1.Clearing/SettleClaim");
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    let call = find("clearing-test", "adapter.call");
    let remote = find("adapter-hubei", "clearinghouse.v1.RegionAdapter/PriceLines");
    assert_eq!(remote.parent_span_id, call.span_id, "the adapter's span is a child of clearing's call");
    let by_id = |id: &[u8]| spans.iter().find(|(_, s)| s.span_id == id).map(|(_, s)| s.clone());
    let mut up = call.clone();
    while up.span_id != server.span_id {
        up = by_id(&up.parent_span_id).unwrap_or_else(|| panic!("{} has no parent in the trace", up.name));
    }
    for name in ["pricing", "policy", "store.commit", "store.load_member"] {
        let s = find("clearing-test", name);
        assert!(!s.parent_span_id.is_empty(), "{name}");
    }
    assert_eq!(attr(&find("clearing-test", "pricing").attributes, "region"), "421300");
    // No person number in any span of either service.
    assert!(person_numbers_in(&format!("{:?}", otlp.spans())).is_empty());

    // JSON logs carry the trace id.
    let log = c.log();
    assert!(log.lines().any(|l| l.starts_with('{') && l.contains(&format!("\"trace_id\":\"{TRACE}\""))), "{log}");

    // Metrics, as the receiver last got them (cumulative).
    let labels = [("insured_province", "36"), ("mdtrt_province", "42")];
    let settled = eventually("clearing.settlements", PATIENCE, || {
        let m = otlp.latest_metric("clearing-test", "clearing.settlements");
        let v = m.as_ref().and_then(|m| sum_value(m, &[labels[0], labels[1], ("outcome", "settled")]));
        std::future::ready(m.filter(|_| v == Some(3)))
    })
    .await;
    assert_eq!(sum_value(&settled, &[labels[0], labels[1], ("outcome", "refused")]), Some(1));
    let fund_metric = otlp.latest_metric("clearing-test", "clearing.fund_pay").unwrap();
    assert_eq!(sum_value(&fund_metric, &labels), Some(fund));
    let rpc = otlp.latest_metric("clearing-test", "rpc.server.duration").unwrap();
    assert!(histogram_count(&rpc, &[("rpc.method", "clearinghouse.v1.Clearing/SettleClaim"), ("rpc.grpc.status_code", "0")]).unwrap() >= 3);
    assert_eq!(histogram_count(&rpc, &[("rpc.method", "clearinghouse.v1.Clearing/SettleClaim"), ("rpc.grpc.status_code", "3")]), Some(1));
    let calls = otlp.latest_metric("clearing-test", "clearing.adapter.calls").unwrap();
    assert!(sum_value(&calls, &[("region", "421300"), ("outcome", "ok")]).unwrap() >= 3);
    let netting = eventually("clearing.netting.duration", PATIENCE, || {
        std::future::ready(otlp.latest_metric("clearing-test", "clearing.netting.duration"))
    })
    .await;
    assert_eq!(histogram_count(&netting, &[]), Some(1));
    let size = eventually("clearing.window.settlements", PATIENCE, || {
        std::future::ready(otlp.latest_metric("clearing-test", "clearing.window.settlements"))
    })
    .await;
    assert_eq!(gauge_value(&size, &[("clr_date", &clr_date)]), Some(report.settlement_count));
    // The adapter exports its own RPC latencies.
    let arpc = eventually("adapter rpc.server.duration", PATIENCE, || {
        std::future::ready(otlp.latest_metric("adapter-hubei", "rpc.server.duration"))
    })
    .await;
    assert!(histogram_count(&arpc, &[("rpc.method", "clearinghouse.v1.RegionAdapter/PriceLines")]).unwrap() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_off_unless_configured() {
    // An endpoint is set but the SDK is disabled, and a second service has no endpoint at all: neither
    // exports anything, and neither says it does. The positive control runs beside them with the same
    // endpoint and the same short export intervals: once its metrics and spans have arrived, the other
    // two have had every chance to export theirs.
    let otlp = Otlp::start().await;
    let endpoint = otlp.endpoint();
    let fast = [("OTEL_METRIC_EXPORT_INTERVAL", "200"), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let disabled = Clearing::start_with_env(
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_SDK_DISABLED", "true"), ("OTEL_SERVICE_NAME", "disabled"), fast[0], fast[1]],
    );
    let plain = Clearing::start_with_env(&[], &[("OTEL_SERVICE_NAME", "plain"), fast[0], fast[1]]);
    // The control: the service name defaults to "clearing".
    let on = Clearing::start_with_env(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), fast[0], fast[1]]);
    for c in [&disabled, &plain, &on] {
        c.registry().await.upsert_member(member("360100", "OFFNC1", "11", &[])).await.unwrap();
        c.clearing().await.settle_claim(claim("OFF1", "360100", "OFFNC1", "421300", 2, "2024-03-01", 100)).await.unwrap();
    }
    eventually("metrics from the enabled service", PATIENCE, || std::future::ready(otlp.latest_metric("clearing", "clearing.settlements")))
        .await;
    eventually("spans from the enabled service", PATIENCE, || std::future::ready((!otlp.spans().is_empty()).then_some(()))).await;
    assert!(on.log().contains("OpenTelemetry export on"), "{}", on.log());
    for (c, name) in [(&disabled, "disabled"), (&plain, "plain")] {
        assert!(!c.log().contains("OpenTelemetry export on"), "{}", c.log());
        assert!(otlp.latest_metric(name, "clearing.settlements").is_none(), "{name} exported metrics");
        assert!(otlp.latest_metric(name, "rpc.server.duration").is_none(), "{name} exported metrics");
    }
    assert!(otlp.spans().iter().all(|(service, _)| service == "clearing"), "only the enabled service exported spans");
}
