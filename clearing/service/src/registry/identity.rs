//! Who a member is (1101 by certificate): the identity facts' rules, and the index that finds members
//! by certificate through a keyed hash (HMAC-SHA256 under a random key made once per store), so that
//! the index's keys never spell a certificate number.

use crate::store::{MemberIdentityIndex, PersonIdentity, Store};
use chrono::{Datelike, NaiveDate};
use clearing_edge::error::ServiceError;
use clearing_edge::fields::Violations;
use ring::hmac;

/// The national certificate type of the resident ID card (居民身份证); 1101's mdtrt_cert_type 02.
pub const RESIDENT_ID: &str = "01";
/// Longest certificate number and name (national str(50)).
pub const MAX_CERTNO: usize = 50;
pub const MAX_NAME: usize = 50;

/// Whether `s` has the form of a national certificate type (`psn_cert_type`): two digits.
pub fn is_cert_type(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A certificate number as compared and hashed: trimmed, ASCII letters upper-cased (an ID's final `x`).
pub fn normalize_certno(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

/// Whether `id` is an 18-character resident ID number with a valid check digit (GB 11643).
pub fn resident_id_ok(id: &str) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17].iter().zip(W).map(|(d, w)| u32::from(d - b'0') * w).sum();
    b[17] == CHECK[(sum % 11) as usize] && resident_id_birth(id).is_some()
}

/// The birth date written in a resident ID number (characters 7–14).
pub fn resident_id_birth(id: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(id.get(6..14)?, "%Y%m%d").ok()
}

/// The sex written in a resident ID number: the 17th digit, odd = 1 (male), even = 2 (female).
fn resident_id_gend(id: &str) -> Option<&'static str> {
    let d = id.as_bytes().get(16)?.checked_sub(b'0')?;
    Some(if d % 2 == 1 { "1" } else { "2" })
}

fn plain_text(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// A member's identity facts as sent (`Member` fields 20–25): nothing checked yet.
#[derive(Clone, Copy, Default)]
pub struct IdentityDraft<'a> {
    pub psn_cert_type: &'a str,
    pub certno: &'a str,
    pub psn_name: &'a str,
    pub gend: &'a str,
    pub brdy: &'a str,
    pub naty: &'a str,
}

/// The identity facts of an upserted member, checked. Messages never repeat the value (personal data).
pub fn validate(v: &mut Violations, m: &IdentityDraft<'_>) -> Option<PersonIdentity> {
    let given = [m.psn_cert_type, m.certno, m.psn_name, m.gend, m.brdy, m.naty].iter().any(|s| !s.is_empty());
    if !given {
        return None;
    }
    let errors = v.0.len();
    let certno = normalize_certno(m.certno);
    if !is_cert_type(m.psn_cert_type) {
        v.add("psn_cert_type", "must be a two-digit national certificate type (01 居民身份证, …) when an identity is given");
    }
    if certno.is_empty() {
        v.add("certno", "required with psn_cert_type, psn_name, gend, brdy or naty");
    } else if certno.chars().count() > MAX_CERTNO || !plain_text(&certno) {
        v.add("certno", format!("at most {MAX_CERTNO} characters, no control characters"));
    } else if m.psn_cert_type == RESIDENT_ID && !resident_id_ok(&certno) {
        v.add("certno", "must be an 18-character resident ID number with a valid check digit (psn_cert_type 01)");
    }
    let name = m.psn_name.trim();
    if name.is_empty() {
        v.add("psn_name", "required with certno");
    } else if name.chars().count() > MAX_NAME || !plain_text(name) {
        v.add("psn_name", format!("at most {MAX_NAME} characters, no control characters"));
    }
    if !matches!(m.gend, "" | "1" | "2" | "9") {
        v.add("gend", "must be 1 (male), 2 (female) or 9 (not stated)");
    }
    let brdy = if m.brdy.is_empty() {
        None
    } else {
        let d = NaiveDate::parse_from_str(m.brdy, "%Y-%m-%d").ok().filter(|d| d.year() >= 1900 && *d <= crate::calendar::today());
        if d.is_none() {
            v.add("brdy", "must be a date YYYY-MM-DD between 1900-01-01 and today");
        }
        d
    };
    if m.naty.len() > 2 || !m.naty.bytes().all(|b| b.is_ascii_digit()) {
        v.add("naty", "must be a two-digit ethnicity code (GB 3304)");
    }
    if m.psn_cert_type == RESIDENT_ID && resident_id_ok(&certno) {
        if brdy.is_some_and(|b| Some(b) != resident_id_birth(&certno)) {
            v.add("brdy", "differs from the birth date in certno");
        }
        if matches!(m.gend, "1" | "2") && Some(m.gend) != resident_id_gend(&certno) {
            v.add("gend", "differs from the sex in certno");
        }
    }
    if v.0.len() > errors {
        return None;
    }
    let brdy = brdy.or_else(|| if m.psn_cert_type == RESIDENT_ID { resident_id_birth(&certno) } else { None });
    Some(PersonIdentity {
        psn_cert_type: m.psn_cert_type.to_string(),
        certno,
        psn_name: name.to_string(),
        gend: m.gend.to_string(),
        brdy,
        naty: m.naty.to_string(),
    })
}

/// The certificate index: the store's HMAC key, fetched (or made) once.
#[derive(Default)]
pub struct IdentityIndex {
    key: tokio::sync::OnceCell<hmac::Key>,
}

impl IdentityIndex {
    async fn key<S: Store>(&self, store: &S) -> Result<&hmac::Key, ServiceError> {
        self.key
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut fresh)
                    .map_err(|_| ServiceError::Internal("no system randomness for the member index key".into()))?;
                let hex_key = store.member_identity_key(&hex::encode(fresh)).await?;
                let bytes = hex::decode(&hex_key).map_err(|_| ServiceError::Internal("the stored member index key is not hex".into()))?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
            })
            .await
    }

    /// The index entry of a certificate: hex of HMAC(key, type ‖ 0 ‖ number).
    pub async fn hash<S: Store>(&self, store: &S, psn_cert_type: &str, certno: &str) -> Result<String, ServiceError> {
        let key = self.key(store).await?;
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(psn_cert_type.as_bytes());
        ctx.update(&[0]);
        ctx.update(normalize_certno(certno).as_bytes());
        Ok(hex::encode(ctx.sign().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resident ID number with its check digit computed (synthetic: region, birth date, sequence).
    pub fn make_id(first17: &str) -> String {
        let (w, check) = ([7u32, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], b"10X98765432");
        let sum: u32 = first17.bytes().zip(w).map(|(d, w)| u32::from(d - b'0') * w).sum();
        format!("{first17}{}", check[(sum % 11) as usize] as char)
    }

    #[test]
    fn resident_ids_are_checked_by_their_check_digit_and_birth_date() {
        let id = make_id("36010219800101001");
        assert!(resident_id_ok(&id));
        assert_eq!(resident_id_birth(&id), NaiveDate::from_ymd_opt(1980, 1, 1));
        assert_eq!(resident_id_gend(&id), Some("1"));
        let mut wrong = id.clone().into_bytes();
        wrong[17] = if wrong[17] == b'0' { b'1' } else { b'0' };
        assert!(!resident_id_ok(std::str::from_utf8(&wrong).unwrap()));
        // A check digit that is right for an impossible date is still refused.
        assert!(!resident_id_ok(&make_id("36010219801301001")));
        assert!(!resident_id_ok("36010219800101001"));
    }

    #[test]
    fn an_identity_is_validated_without_repeating_its_values() {
        let id = make_id("36010219800101002");
        let lower = id.to_lowercase();
        let m = IdentityDraft { psn_cert_type: "01", certno: &lower, psn_name: " 张三 ", gend: "1", brdy: "1980-01-02", naty: "" };
        let mut v = Violations::default();
        assert!(validate(&mut v, &m).is_none());
        let text = format!("{:?}", v.0);
        assert!(text.contains("brdy") && text.contains("gend"), "{text}");
        assert!(!text.contains(&id) && !text.contains("张三"), "{text}");

        let mut v = Violations::default();
        let ok = validate(&mut v, &IdentityDraft { brdy: "", gend: "2", ..m }).unwrap();
        assert!(v.0.is_empty());
        assert_eq!((ok.certno.as_str(), ok.psn_name.as_str()), (id.as_str(), "张三"));
        assert_eq!(ok.brdy, NaiveDate::from_ymd_opt(1980, 1, 1), "taken from the ID number");
        assert!(!format!("{ok:?}").contains(&id), "Debug shows no number");
    }
}
