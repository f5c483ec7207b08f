//! 9001 (sign in) and 9002 (sign out).

use super::*;

pub(crate) async fn sign_in(_: &Clients, call: &Call<'_>) -> Answer {
    Answer::done(json!({ "signinoutb": { "sign_time": national_time(), "sign_no": sign_no(call) } }))
}

pub(crate) async fn sign_out(_: &Clients, _: &Call<'_>) -> Answer {
    Answer::done(json!({ "signoutoutb": { "sign_time": national_time() } }))
}

/// A sign-in number: the national gateway hands one out; nothing here depends on it (the x-tif
/// signature authenticates every call), so it is random-looking and unstored.
pub(crate) fn sign_no(call: &Call<'_>) -> String {
    use sha2::Digest;
    let seed = format!("{}|{}|{}", call.paas.paasid, call.env.msgid, chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
    hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..16])
}
