//! 9101 (upload a file) and 9102 (download one): how a HIS sends 3202 its detail list and reads the
//! result. Files belong to the caller (paasid) that made them; see `crate::files`.

use super::*;
use crate::files::FileError;
use axum::http::StatusCode;
use base64::Engine;

/// What keeping or reading a file failed with, as an answer.
pub(crate) fn file_refusal(e: FileError, field: &str) -> Answer {
    match e {
        FileError::Full => Answer::invalid(format!("{field}: {e}")),
        FileError::Unavailable(_) => {
            tracing::warn!(error = %e, "file store unavailable");
            Answer::refused(StatusCode::SERVICE_UNAVAILABLE, "the file store is unavailable; retry shortly")
        }
    }
}

/// `fsUploadIn.in`: a Base64 string (most HIS code) or an array of bytes (Java's `byte[]`, signed).
fn file_bytes(f: &mut Fields<'_>, up: &Map<String, Value>, p: &str) -> Vec<u8> {
    let field = format!("{p}.in");
    let bytes = match up.get("in") {
        Some(Value::String(s)) => {
            let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_else(|_| {
                f.v.add(&field, "must be Base64 or an array of bytes");
                Vec::new()
            })
        }
        Some(Value::Array(a)) => {
            let bytes: Option<Vec<u8>> = a.iter().map(|b| b.as_i64().filter(|n| (-128..=255).contains(n)).map(|n| n as u8)).collect();
            bytes.unwrap_or_else(|| {
                f.v.add(&field, "an array of bytes holds whole numbers from -128 to 255");
                Vec::new()
            })
        }
        None | Some(Value::Null) => {
            f.v.add(&field, "required: the file (Base64, or an array of bytes)");
            Vec::new()
        }
        Some(_) => {
            f.v.add(&field, "must be Base64 or an array of bytes");
            Vec::new()
        }
    };
    if bytes.is_empty() && f.v.0.iter().all(|x| x.field != field) {
        f.v.add(&field, "is empty");
    }
    if bytes.len() > crate::limits::MAX_FILE_BYTES {
        f.v.add(&field, format!("at most {} bytes", crate::limits::MAX_FILE_BYTES));
    }
    // A zip is read now, so that a file 3202 could not read is refused at its upload.
    if let Err(why) = crate::files::unzipped(&bytes) {
        f.v.add(&field, why);
    }
    bytes
}

/// 9101: keeps the file for this caller; answers its `file_qury_no` (for 3202) and download deadline.
pub(crate) async fn upload(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let p = "input.fsUploadIn";
    let empty = Map::new();
    let up = f.obj(&call.env.input, "input", "fsUploadIn").unwrap_or(&empty);
    let filename = f.text(up, p, "filename", true, 200);
    if filename.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '"')) {
        f.v.add(format!("{p}.filename"), "a file name, without control characters, slashes or quotes");
    }
    let code = f.text(up, p, "fixmedins_code", true, 32);
    if !code.is_empty() && code != call.env.fixmedins_code {
        f.v.add(format!("{p}.fixmedins_code"), "must be the envelope's fixmedins_code");
    }
    let bytes = if f.v.0.is_empty() || up.contains_key("in") { file_bytes(&mut f, up, p) } else { Vec::new() };
    if !v.0.is_empty() {
        return invalid(v);
    }
    match clients.files.put(&call.paas.paasid, &filename, bytes).await {
        Ok(s) => Answer::done(json!({
            "file_qury_no": s.file_qury_no, "filename": s.filename, "fixmedins_code": code, "dld_endtime": s.dld_endtime,
        })),
        Err(e) => file_refusal(e, p),
    }
}

/// 9102: the file itself (not the envelope), as HIS programs write the body to disk. `filename` and
/// `fixmedins_code` are not read (some HIS send `plc` there).
pub(crate) async fn download(clients: &Clients, call: &Call<'_>) -> Answer {
    let mut v = Violations::default();
    let mut f = Fields { v: &mut v };
    let p = "input.fsDownloadIn";
    let empty = Map::new();
    let down = f.obj(&call.env.input, "input", "fsDownloadIn").unwrap_or(&empty);
    let no = f.text(down, p, "file_qury_no", true, 64);
    if !v.0.is_empty() {
        return invalid(v);
    }
    match clients.files.get(&call.paas.paasid, &no).await {
        Ok(Some((name, bytes))) => Answer::file(name, bytes),
        Ok(None) => Answer::invalid(format!(
            "{p}.file_qury_no: no file {no} (files are kept {} hours, for the caller that made them)",
            crate::limits::FILE_TTL.as_secs() / 3600
        )),
        Err(e) => file_refusal(e, p),
    }
}
