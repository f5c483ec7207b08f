//! The national envelope in and out, and the one table of how every refusal is answered.
//!
//! In: `{infno, msgid, mdtrtarea_admvs, insuplc_admdvs, recer_sys_code, infver, opter_type, opter,
//! opter_name, inf_time, fixmedins_code, fixmedins_name, sign_no, input}`.
//! Out: `{infcode, inf_refmsgid, refmsg_time, respond_time, err_msg, output}`; `infcode` 0 = done,
//! -1 = refused with the reason in `err_msg`, which names the offending field by its national path
//! (`input.feedetail[2].cnt`).
//!
//! | what happened | HTTP | infcode | err_msg |
//! |---|---|---|---|
//! | done | 200 | 0 | empty |
//! | a field is wrong (gRPC INVALID_ARGUMENT; a missing envelope field; an unknown infno) | 200 | -1 | `<national path>: <why>`, every field, `; `-separated |
//! | member, settlement or institution not found (NOT_FOUND) | 200 | -1 | `<path>: <what> not found` |
//! | msgid reused with other content (ALREADY_EXISTS) | 200 | -1 | `msgid: already used with other content` |
//! | settlement already reversed, … (FAILED_PRECONDITION) | 200 | -1 | clearing's reason |
//! | the caller may not do this (PERMISSION_DENIED), or an institution-bound caller names another `fixmedins_code` | 403 | -1 | `<path>: not permitted to this caller` (clearing's words stay in the log) / `fixmedins_code: this caller may not act as institution …` |
//! | x-tif authentication failed (unknown paasid, bad signature, stale timestamp, replayed nonce, missing header) | 401 | -1 | one message for every reason (the reason is audited) |
//! | the paasid's nonces in use are at their bound | 429 | -1 | the bound; retry later |
//! | the nonce store (Redis) is away | 503 | -1 | retry |
//! | the body did not arrive within the body timeout | 408 | -1 | `body: not received in time` |
//! | another path than the national one | 404 | -1 | `path: the national interface is POST …` |
//! | body not JSON / not an object | 400 | -1 | `body: …` |
//! | content type not JSON | 415 | -1 | `content-type: …` |
//! | body over the limit | 413 | -1 | `body: larger than … bytes` |
//! | too many requests in flight for this paasid, or clearing busy (RESOURCE_EXHAUSTED) | 429 | -1 | retry later |
//! | clearing unavailable, conflicts (UNAVAILABLE, ABORTED) | 503 | -1 | retry with the same msgid |
//! | no answer in time (DEADLINE_EXCEEDED, the gateway's deadline) | 504 | -1 | retry with the same msgid |
//! | clearing refused the gateway's own certificate (UNAUTHENTICATED) | 502 | -1 | a deployment error |
//! | anything else (INTERNAL) | 500 | -1 | `internal error` (details only in the logs) |

use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::Code;
use tonic_types::StatusExt;

/// One answer: the HTTP status and the national body's `infcode`, `err_msg`, `output`.
#[derive(Debug)]
pub struct Answer {
    pub http: StatusCode,
    pub infcode: i32,
    pub err_msg: String,
    pub output: Value,
    /// A file answered as it is instead of the envelope (9102): its file name and bytes.
    pub file: Option<(String, Vec<u8>)>,
}

impl Answer {
    pub fn done(output: Value) -> Answer {
        Answer { http: StatusCode::OK, infcode: 0, err_msg: String::new(), output, file: None }
    }
    pub fn refused(http: StatusCode, err_msg: impl Into<String>) -> Answer {
        Answer { http, infcode: -1, err_msg: err_msg.into(), output: Value::Object(Map::new()), file: None }
    }
    /// A download (9102): the body is the file's bytes, not the national envelope.
    pub fn file(name: String, bytes: Vec<u8>) -> Answer {
        Answer { file: Some((name, bytes)), ..Answer::done(Value::Null) }
    }
    /// A refusal of the request's content (HTTP 200, infcode -1), the national convention.
    pub fn invalid(err_msg: impl Into<String>) -> Answer {
        Answer::refused(StatusCode::OK, err_msg)
    }
    /// Field violations `(path, why)` as one err_msg.
    pub fn fields(v: &[(String, String)]) -> Answer {
        Answer::invalid(v.iter().map(|(f, why)| format!("{f}: {why}")).collect::<Vec<_>>().join("; "))
    }
}

/// The national answer body.
#[derive(Serialize)]
pub struct Body<'a> {
    pub infcode: i32,
    pub inf_refmsgid: String,
    pub refmsg_time: &'a str,
    pub respond_time: String,
    pub err_msg: &'a str,
    pub output: &'a Value,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// National time format, Asia/Shanghai, with milliseconds.
pub fn national_time() -> String {
    Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A time as the national datetime, `yyyy-MM-dd HH:mm:ss`, Asia/Shanghai.
pub fn national_datetime(t: chrono::DateTime<Utc>) -> String {
    t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Our message id for an answer: `gw` + time + a process sequence (unique per replica and answer).
pub fn ref_msgid() -> String {
    let t = Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8")).format("%Y%m%d%H%M%S");
    format!("gw{t}{:010}", SEQ.fetch_add(1, Ordering::Relaxed) % 10_000_000_000)
}

/// Pairs of (clearing name, national name).
pub type Renames = &'static [(&'static str, &'static str)];

/// Where the fields of a clearing request (as a refusal names them) are in a transaction's national
/// input: the one mapping every transaction declares as data.
pub struct FieldPaths {
    /// Fields whose national path is not `rest.<field>`: (clearing field, national path).
    pub named: Renames,
    /// A repeated clearing field and the national list it comes from, with the item fields renamed
    /// there: `("lines", "input.feedetail", &[("hilist_code", "med_list_codg")])` maps
    /// `lines[2].hilist_code` to `input.feedetail[2].med_list_codg`.
    pub list: Option<(&'static str, &'static str, Renames)>,
    /// Where any other field is (`input.data`).
    pub rest: &'static str,
}

impl FieldPaths {
    /// The national path of a clearing field.
    pub fn path(&self, field: &str) -> String {
        if let Some((ours, theirs, renamed)) = self.list
            && let Some(item) = field.strip_prefix(ours)
        {
            // `[i].name`: keep the index, rename the item field.
            let (index, name) = match item.find('.') {
                Some(dot) => (&item[..dot], &item[dot + 1..]),
                None => (item, ""),
            };
            let name = renamed.iter().find(|(a, _)| *a == name).map_or(name, |(_, b)| *b);
            return if name.is_empty() { format!("{theirs}{index}") } else { format!("{theirs}{index}.{name}") };
        }
        match self.named.iter().find(|(a, _)| *a == field) {
            Some((_, national)) => national.to_string(),
            None => format!("{}.{field}", self.rest),
        }
    }
}

/// The table above, for a gRPC status from `clearing`.
pub fn from_status(st: &tonic::Status, map: &FieldPaths) -> Answer {
    let violations: Vec<(String, String)> = st
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| (map.path(&v.field), v.description.clone())).collect())
        .unwrap_or_default();
    let named = |fallback: &str| {
        if violations.is_empty() {
            fallback.to_string()
        } else {
            violations.iter().map(|(f, w)| format!("{f}: {w}")).collect::<Vec<_>>().join("; ")
        }
    };
    match st.code() {
        Code::InvalidArgument => Answer::invalid(named(st.message())),
        Code::NotFound => {
            let path = violations.first().map(|(f, _)| f.clone()).unwrap_or_else(|| "input".into());
            Answer::invalid(format!("{path}: {}", st.message()))
        }
        Code::AlreadyExists => Answer::invalid("msgid: already used with other content"),
        Code::FailedPrecondition => Answer::invalid(st.message().to_string()),
        // Clearing's refusal names the gateway's certificate: the caller gets the field alone.
        Code::PermissionDenied => {
            tracing::warn!(message = st.message(), "clearing refused the caller");
            let msg = match violations.first() {
                Some((f, _)) => format!("{f}: not permitted to this caller"),
                None => "not permitted to this caller".to_string(),
            };
            Answer::refused(StatusCode::FORBIDDEN, msg)
        }
        // Clearing's own words for these may name hosts, endpoints or stores: logged here, never answered.
        Code::ResourceExhausted => {
            tracing::warn!(message = st.message(), "clearing is busy");
            Answer::refused(StatusCode::TOO_MANY_REQUESTS, "busy, retry later with the same msgid")
        }
        Code::Unavailable | Code::Aborted => {
            tracing::warn!(code = ?st.code(), message = st.message(), "clearing unavailable");
            Answer::refused(StatusCode::SERVICE_UNAVAILABLE, "clearing is unavailable, retry with the same msgid")
        }
        Code::DeadlineExceeded | Code::Cancelled => {
            Answer::refused(StatusCode::GATEWAY_TIMEOUT, "no answer in time, retry with the same msgid")
        }
        Code::Unauthenticated => {
            tracing::error!(message = st.message(), "clearing refused the gateway's certificate");
            Answer::refused(StatusCode::BAD_GATEWAY, "the gateway is misconfigured (clearing refused its certificate)")
        }
        _ => {
            tracing::error!(code = ?st.code(), message = st.message(), "clearing failed");
            Answer::refused(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The envelope fields every transaction must carry, with their length bounds.
pub const REQUIRED: &[(&str, usize)] = &[
    ("infno", 8),
    ("msgid", 64),
    ("mdtrtarea_admvs", 6),
    ("recer_sys_code", 64),
    ("infver", 16),
    ("opter_type", 8),
    ("opter", 64),
    ("opter_name", 64),
    ("inf_time", 32),
    ("fixmedins_code", 32),
];
/// Optional envelope fields and their bounds.
/// (`insuplc_admdvs` first: it is the one kept.)
pub const OPTIONAL: &[(&str, usize)] = &[("insuplc_admdvs", 6), ("fixmedins_name", 200), ("sign_no", 64)];

/// A parsed envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub infno: String,
    pub msgid: String,
    pub mdtrtarea_admvs: String,
    pub insuplc_admdvs: String,
    pub fixmedins_code: String,
    pub input: Map<String, Value>,
}

/// A string field: a JSON string, or a number taken as written (HIS code sends either).
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Envelope {
    /// Reads the envelope (taking `input` out of the body); every missing, mistyped or overlong field
    /// is named.
    pub fn parse(body: &mut Map<String, Value>) -> Result<Envelope, Answer> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut get = |name: &str, max: usize, required: bool| -> String {
            match body.get(name) {
                None | Some(Value::Null) if required => {
                    v.push((name.into(), "required".into()));
                    String::new()
                }
                None | Some(Value::Null) => String::new(),
                Some(x) => match text(Some(x)) {
                    None => {
                        v.push((name.into(), "must be a string".into()));
                        String::new()
                    }
                    Some(s) if required && s.is_empty() => {
                        v.push((name.into(), "required".into()));
                        s
                    }
                    Some(s) if s.chars().count() > max => {
                        v.push((name.into(), format!("at most {max} characters")));
                        String::new()
                    }
                    Some(s) => s,
                },
            }
        };
        let mut req = |n: &str| {
            let max = REQUIRED.iter().find(|(k, _)| *k == n).map(|(_, m)| *m).expect("listed");
            get(n, max, true)
        };
        let (infno, msgid, mdtrtarea_admvs, fixmedins_code) = (req("infno"), req("msgid"), req("mdtrtarea_admvs"), req("fixmedins_code"));
        for (n, _) in REQUIRED.iter().filter(|(n, _)| !matches!(*n, "infno" | "msgid" | "mdtrtarea_admvs" | "fixmedins_code")) {
            req(n);
        }
        let mut optional: Vec<String> = OPTIONAL.iter().map(|(n, max)| get(n, *max, false)).collect();
        let insuplc_admdvs = std::mem::take(&mut optional[0]);
        let input = match body.remove("input") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => {
                v.push(("input".into(), "required".into()));
                Map::new()
            }
            Some(_) => {
                v.push(("input".into(), "must be an object".into()));
                Map::new()
            }
        };
        if !v.is_empty() {
            return Err(Answer::fields(&v));
        }
        Ok(Envelope { infno, msgid, mdtrtarea_admvs, insuplc_admdvs, fixmedins_code, input })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_envelope_field_is_named() {
        let mut body: Map<String, Value> = serde_json::from_str(r#"{"infno":"2207","msgid":"m1","input":[]}"#).unwrap();
        let e = Envelope::parse(&mut body).unwrap_err();
        assert_eq!(e.infcode, -1);
        for f in ["mdtrtarea_admvs: required", "opter_name: required", "inf_time: required", "input: must be an object"] {
            assert!(e.err_msg.contains(f), "{f} in {}", e.err_msg);
        }
        assert!(!e.err_msg.contains("msgid"), "{}", e.err_msg);
    }

    #[test]
    fn statuses_map_to_the_table() {
        let st = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "bad",
            tonic_types::ErrorDetails::with_bad_request_violation("lines[2].cnt", "must be > 0"),
        );
        let a = from_status(&st, &FieldPaths { named: &[], list: None, rest: "input" });
        assert_eq!((a.http, a.infcode, a.err_msg.as_str()), (StatusCode::OK, -1, "input.lines[2].cnt: must be > 0"));
        assert_eq!(
            from_status(&tonic::Status::unavailable("x"), &FieldPaths { named: &[], list: None, rest: "" }).http,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            from_status(&tonic::Status::permission_denied("x"), &FieldPaths { named: &[], list: None, rest: "" }).http,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            from_status(&tonic::Status::internal("secret detail"), &FieldPaths { named: &[], list: None, rest: "" }).err_msg,
            "internal error"
        );
    }
}
