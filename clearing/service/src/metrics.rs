//! The service's metrics, as OpenTelemetry instruments (exported over OTLP when configured; the API's
//! no-ops otherwise). Labels are provinces, regions, RPC names and outcomes: never a person.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `clearing.settlements` | counter | `insured_province`, `mdtrt_province`, `outcome` (settled, previewed, replayed, reversed, refused) |
//! | `clearing.fund_pay` | up-down counter, fen | `insured_province`, `mdtrt_province` (reversals subtract) |
//! | `clearing.account_pay` | up-down counter, fen | `insured_province`, `mdtrt_province` |
//! | `rpc.server.duration` | histogram, s | `rpc.method`, `rpc.grpc.status_code` (every server: `clearing_edge::rpc_metrics`) |
//! | `clearing.commit.conflicts` | counter | `reason` (a member changed, window moved, …) |
//! | `clearing.commit.retries` | counter | – |
//! | `clearing.store.errors` | counter | `op` |
//! | `clearing.adapter.calls` | counter | `region`, `outcome` |
//! | `clearing.netting.duration` | histogram, s | – |
//! | `clearing.window.settlements`, `clearing.window.pairs` | gauge | `clr_date` |
//! | `clearing.advance.usage` | gauge, basis points of the advance | `admdvs` |

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};
use std::sync::LazyLock;

pub struct Metrics {
    pub settlements: Counter<u64>,
    pub fund_pay: UpDownCounter<i64>,
    pub account_pay: UpDownCounter<i64>,
    pub commit_conflicts: Counter<u64>,
    pub commit_retries: Counter<u64>,
    pub store_errors: Counter<u64>,
    pub adapter_calls: Counter<u64>,
    pub netting_duration: Histogram<f64>,
    pub window_settlements: Gauge<u64>,
    pub window_pairs: Gauge<u64>,
    pub advance_usage: Gauge<u64>,
}

/// Created on first use, after `telemetry::init` installed the meter provider.
pub static M: LazyLock<Metrics> = LazyLock::new(|| {
    let m = opentelemetry::global::meter("clearinghouse");
    Metrics {
        settlements: m.u64_counter("clearing.settlements").with_description("Claims by outcome").build(),
        fund_pay: m.i64_up_down_counter("clearing.fund_pay").with_unit("fen").with_description("Fund pay settled").build(),
        account_pay: m
            .i64_up_down_counter("clearing.account_pay")
            .with_unit("fen")
            .with_description("Personal-account pay settled")
            .build(),
        commit_conflicts: m.u64_counter("clearing.commit.conflicts").with_description("Commit attempts that found state changed").build(),
        commit_retries: m.u64_counter("clearing.commit.retries").with_description("Settlements recomputed after a conflict").build(),
        store_errors: m.u64_counter("clearing.store.errors").with_description("Store operations that failed").build(),
        adapter_calls: m.u64_counter("clearing.adapter.calls").with_description("Calls to remote region adapters").build(),
        netting_duration: m
            .f64_histogram("clearing.netting.duration")
            .with_unit("s")
            .with_description("Close → report of a window")
            .build(),
        window_settlements: m.u64_gauge("clearing.window.settlements").with_description("Settlements in a netted window").build(),
        window_pairs: m.u64_gauge("clearing.window.pairs").with_description("Region pairs in a netted window").build(),
        advance_usage: m
            .u64_gauge("clearing.advance.usage")
            .with_unit("bp")
            .with_description("Net payable as a share of the advance")
            .build(),
    }
});

/// `42` for `421300`.
pub fn province(admdvs: &str) -> String {
    admdvs.get(..2).unwrap_or("").to_string()
}

pub fn pair(insured: &str, mdtrt: &str) -> [KeyValue; 2] {
    [KeyValue::new("insured_province", province(insured)), KeyValue::new("mdtrt_province", province(mdtrt))]
}
