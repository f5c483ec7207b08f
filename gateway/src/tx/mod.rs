//! The transactions, by `infno`: national input → a `clearinghouse.v1` call → national output. Input and
//! output field names are the national interface's wherever one exists; the few of ours are named in
//! the README's transaction table. Field errors name the national path (`input.feedetail[2].cnt`).
//!
//! One file per family (`member`, `visit`, `settlement`, `query`, `reconcile`, `session`, `files`); `TRANSACTIONS` is the
//! one list of what is served, from which both `dispatch` and `served` come. To add a transaction:
//! write its function in its family's file (read the input with `Fields`, call clearing with
//! `Call::request`, map a refusal with `from_status` and the family's `FieldPaths`), then add its row.

mod files;
mod member;
mod query;
mod reconcile;
mod session;
mod settlement;
mod visit;

use crate::envelope::{Answer, Envelope, FieldPaths, from_status, national_time, text};
use crate::paas::Paas;
use axum::http::HeaderMap;
use clearing_edge::authz::FORWARDED_HEADER;
use clearing_edge::fields::{Violations, parse_money, signed_fen};
use proto::v1 as pb;
use proto::v1::catalogue_client::CatalogueClient;
use proto::v1::clearing_client::ClearingClient;
use proto::v1::netting_client::NettingClient;
use proto::v1::registry_client::RegistryClient;
use region_adapter::limits::MAX_LINES_PER_CLAIM;
use region_adapter::money::{MAX_AMOUNT_FEN, fmt_yuan};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

/// What running a transaction returns.
pub type Running<'c> = Pin<Box<dyn Future<Output = Answer> + Send + 'c>>;

/// One served transaction.
pub struct Transaction {
    pub infno: &'static str,
    /// What it does, for the README's table and the refusal of an unknown `infno`.
    pub what: &'static str,
    pub run: for<'c> fn(&'c Clients, &'c Call<'c>) -> Running<'c>,
}

/// Every transaction served, in the order of the README's table.
pub const TRANSACTIONS: &[Transaction] = &[
    Transaction { infno: "1101", what: "member information", run: |c, k| Box::pin(member::member_info(c, k)) },
    Transaction { infno: "1312", what: "catalogue query", run: |c, k| Box::pin(member::catalogue(c, k)) },
    Transaction { infno: "2201", what: "register an outpatient visit", run: |c, k| Box::pin(visit::register_visit(c, k)) },
    Transaction { infno: "2202", what: "cancel a registered visit", run: |c, k| Box::pin(visit::cancel_visit(c, k)) },
    Transaction { infno: "2203", what: "visit information and diagnoses", run: |c, k| Box::pin(visit::visit_info(c, k)) },
    Transaction { infno: "2204", what: "upload fee details", run: |c, k| Box::pin(visit::upload_fee_details(c, k)) },
    Transaction { infno: "2205", what: "cancel fee details", run: |c, k| Box::pin(visit::cancel_fee_details(c, k)) },
    Transaction { infno: "2206", what: "pre-settle", run: |c, k| Box::pin(settle_either(c, k, false)) },
    Transaction { infno: "2207", what: "settle", run: |c, k| Box::pin(settle_either(c, k, true)) },
    Transaction { infno: "2208", what: "cancel a settlement", run: |c, k| Box::pin(settlement::reverse(c, k)) },
    Transaction { infno: "2601", what: "reverse a transaction by its msgid", run: |c, k| Box::pin(settlement::reversal(c, k)) },
    Transaction { infno: "3201", what: "reconcile totals", run: |c, k| Box::pin(reconcile::reconcile_totals(c, k)) },
    Transaction { infno: "3202", what: "reconcile details", run: |c, k| Box::pin(reconcile::reconcile_detail(c, k)) },
    Transaction { infno: "5201", what: "visit information", run: |c, k| Box::pin(query::visit_info(c, k)) },
    Transaction { infno: "5203", what: "settlement information", run: |c, k| Box::pin(query::settlement_info(c, k)) },
    Transaction { infno: "5204", what: "fee details", run: |c, k| Box::pin(query::fee_details(c, k)) },
    Transaction { infno: "9001", what: "sign in", run: |c, k| Box::pin(session::sign_in(c, k)) },
    Transaction { infno: "9002", what: "sign out", run: |c, k| Box::pin(session::sign_out(c, k)) },
    Transaction { infno: "9101", what: "upload a file", run: |c, k| Box::pin(files::upload(c, k)) },
    Transaction { infno: "9102", what: "download a file", run: |c, k| Box::pin(files::download(c, k)) },
];

/// The `infno`s served, in table order.
pub fn served() -> impl Iterator<Item = &'static str> {
    TRANSACTIONS.iter().map(|t| t.infno)
}

/// Runs the transaction `call.env.infno`.
pub async fn dispatch(clients: &Clients, call: &Call<'_>) -> Answer {
    match TRANSACTIONS.iter().find(|t| t.infno == call.env.infno) {
        Some(t) => (t.run)(clients, call).await,
        None => Answer::invalid(format!(
            "infno: {} is not served here; this gateway serves {}",
            call.env.infno,
            served().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// 2206/2207: of a registered visit when the input names its `mdtrt_id`, else a claim sent whole.
async fn settle_either(clients: &Clients, call: &Call<'_>, record: bool) -> Answer {
    if visit::has_mdtrt_id(call.env) {
        visit::settle_visit(clients, call, record).await
    } else {
        settlement::settle(clients, call, record).await
    }
}

pub use crate::limits::{MAX_FEEDETL_SN_LEN, MAX_FIELD_LEN, MAX_RECONCILE_ITEMS};

/// `insutype` of employee basic medical insurance, the only insurance settled here.
const EMPLOYEE_BASIC: &str = "310";

/// One request's context: who, what, and how long it may take.
pub struct Call<'a> {
    pub paas: &'a Paas,
    pub env: &'a Envelope,
    pub headers: &'a HeaderMap,
    pub deadline: Duration,
}

impl Call<'_> {
    /// A gRPC request carrying the authenticated caller, the trace context and the deadline.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.deadline);
        r.metadata_mut().insert(FORWARDED_HEADER, self.paas.forwarded().parse().expect("paasid and codes are checked at load"));
        if !clearing_edge::telemetry::inject_current(r.metadata_mut()) {
            // Export off: pass the caller's own trace context on, so clearing's logs carry its trace id.
            for h in ["traceparent", "tracestate"] {
                if let Some(v) = self.headers.get(h).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
                    r.metadata_mut().insert(h, v);
                }
            }
        }
        r
    }
}

/// The gRPC clients of one `clearing` endpoint (one channel, shared).
#[derive(Clone)]
pub struct Clients {
    /// To clearing; a call whose connection closed before any answer is sent again (`resend.rs`).
    pub channel: crate::resend::Resending,
    /// 9101 uploads and 3202 results (9102).
    pub files: std::sync::Arc<crate::files::FileStore>,
}

/// Reads the fields of one input object, collecting every problem with its national path.
pub(crate) struct Fields<'a> {
    v: &'a mut Violations,
}

impl Fields<'_> {
    pub(crate) fn obj<'m>(&mut self, parent: &'m Map<String, Value>, path: &str, name: &str) -> Option<&'m Map<String, Value>> {
        match parent.get(name) {
            Some(Value::Object(m)) => Some(m),
            None | Some(Value::Null) => {
                self.v.add(format!("{path}.{name}"), "required");
                None
            }
            Some(_) => {
                self.v.add(format!("{path}.{name}"), "must be an object");
                None
            }
        }
    }
    pub(crate) fn list<'m>(&mut self, parent: &'m Map<String, Value>, path: &str, name: &str) -> Option<&'m Vec<Value>> {
        match parent.get(name) {
            Some(Value::Array(a)) => Some(a),
            None | Some(Value::Null) => {
                self.v.add(format!("{path}.{name}"), "required");
                None
            }
            Some(_) => {
                self.v.add(format!("{path}.{name}"), "must be a list");
                None
            }
        }
    }
    /// A text (or number) field; `""` when absent and optional.
    pub(crate) fn text(&mut self, m: &Map<String, Value>, path: &str, name: &str, required: bool, max: usize) -> String {
        let at = || format!("{path}.{name}");
        match m.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.v.add(at(), "required");
                }
                String::new()
            }
            Some(x) => match text(Some(x)) {
                None => {
                    self.v.add(at(), "must be a string or a number");
                    String::new()
                }
                Some(s) if s.is_empty() && required => {
                    self.v.add(at(), "required");
                    s
                }
                Some(s) if s.chars().count() > max => {
                    self.v.add(at(), format!("at most {max} characters"));
                    String::new()
                }
                Some(s) => s,
            },
        }
    }
    /// A flag "1"/"0" (also 1/0, true/false); absent = false.
    pub(crate) fn flag(&mut self, m: &Map<String, Value>, path: &str, name: &str) -> bool {
        match m.get(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(x) => match text(Some(x)).as_deref() {
                Some("1") => true,
                Some("0") | Some("") => false,
                _ => {
                    self.v.add(format!("{path}.{name}"), "must be \"1\" or \"0\"");
                    false
                }
            },
        }
    }
    /// A level 1–3; absent = 0.
    pub(crate) fn level(&mut self, m: &Map<String, Value>, path: &str, name: &str) -> u32 {
        let s = self.text(m, path, name, false, 2);
        if s.is_empty() {
            return 0;
        }
        match s.parse::<u32>() {
            Ok(n @ 1..=3) => n,
            _ => {
                self.v.add(format!("{path}.{name}"), "must be 1, 2 or 3");
                0
            }
        }
    }
}

pub(crate) fn invalid(v: Violations) -> Answer {
    Answer::fields(&v.0.into_iter().map(|f| (f.field, f.description)).collect::<Vec<_>>())
}

/// A national time "yyyy-MM-dd HH:mm:ss" (Beijing time) or RFC 3339, as RFC 3339.
pub(crate) fn rfc3339_of(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    naive.and_local_timezone(chrono::FixedOffset::east_opt(8 * 3600)?).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each family's refusals name the national path, whichever clearing field they come from.
    #[test]
    fn field_paths_name_the_national_input() {
        for (paths, ours, theirs) in [
            (&settlement::CLAIM, "lines[2].hilist_code", "input.feedetail[2].med_list_codg"),
            (&settlement::CLAIM, "", "input"),
            (&settlement::CLAIM, "psn_no", "input.data.psn_no"),
            (&settlement::REVERSE, "reason", "input.data.memo"),
            (&visit::UPLOAD, "details[0].cnt", "input.feedetail[0].cnt"),
            (&visit::UPLOAD, "mdtrt_id", "input.feedetail[].mdtrt_id"),
            (&visit::REGISTER, "mdtrt_admdvs", "mdtrtarea_admvs"),
            (&visit::VISIT, "mdtrt_id", "input.data.mdtrt_id"),
            (&member::MEMBER, "insuplc_admdvs", "insuplc_admdvs"),
            (&member::CATALOGUE, "date", "input.data.query_date"),
            (&reconcile::RECONCILE, "items[7].setl_id", "input.detail[7].setl_id"),
            (&reconcile::RECONCILE, "count", "input.data.fixmedins_setl_cnt"),
        ] {
            assert_eq!(paths.path(ours), theirs, "{ours}");
        }
        assert_eq!(served().count(), TRANSACTIONS.len());
    }
}
