//! Who may do what: the caller's identity from its client certificate, and the authorization matrix,
//! in this one place.
//!
//! A client certificate, issued by the clearinghouse's client CA, carries exactly one URI SAN
//! `urn:clearinghouse:<role>:<admdvs>`, e.g. `urn:clearinghouse:platform:420000` (Hubei's provincial
//! platform), `urn:clearinghouse:insured:360100`, `urn:clearinghouse:national:000000`. A province code
//! covers every region of the province.
//!
//! The matrix is the README's (Security, "Authorization matrix"); `allowed` below is its one
//! implementation. In short: `institution` acts like `mdtrt` within its region but only as the
//! institutions its credential names (settle, preview, reverse, read, visits, reconcile) and never
//! writes the institution list or reads supervision; `platform` is both `mdtrt` and `insured`.
//!
//! Roles: `institution` one or more designated institutions (a HIS: `urn:clearinghouse:institution:
//! <admdvs>:<code>[,<code>…]`), `mdtrt` a service-location platform (就医地), `insured` an insured-side platform (参保地),
//! `platform` a provincial platform that is both, `national` the national netting role, `operator`
//! the clearinghouse's operators (read-only, no personal data), `clearing` the clearing service
//! calling region adapters, `gateway` the national gateway (below). A refusal is `PERMISSION_DENIED`, nothing is written, and one audit line
//! (target `audit`) names the RPC, the certificate's subject and role, never a person.
//!
//! Without TLS (only on loopback, only with `--plaintext`) there is no identity: every caller may do
//! everything. That mode is for a developer's machine and the tests of other features.
//!
//! **Forwarded identity (the national gateway).** The gateway authenticates HIS and platform callers
//! by their x-tif signature and calls us with its own certificate, role `gateway`, adding the metadata
//! `x-clearing-forwarded: <role>:<admdvs>:<paasid>` for the caller it authenticated. The request is then
//! authorized as that caller — exactly the row of its role, never the gateway's own (which may only read
//! the catalogue) — and audit lines name both (`subject` = `<paasid> via <gateway's subject>`). The
//! metadata from any other certificate is refused (`PERMISSION_DENIED`, audited); a `gateway`
//! certificate cannot forward `gateway` or `clearing`. On a plain-text listener (no identities at all)
//! the metadata is honoured, since it can only narrow what the caller may do.

use crate::error::ServiceError;
use region_adapter::Admdvs;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Request;

/// Requests one client may have in flight at once; more are refused with `RESOURCE_EXHAUSTED`.
pub const MAX_IN_FLIGHT_PER_CLIENT: usize = 256;

const SAN_PREFIX: &str = "urn:clearinghouse:";

/// The metadata by which the national gateway names the caller it authenticated:
/// `<role>:<admdvs>:<paasid>`.
pub const FORWARDED_HEADER: &str = "x-clearing-forwarded";

/// A paasid as the gateway's table may hold it (and as the forwarded metadata may carry it).
pub fn valid_paasid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A forwarded caller: role, region, paasid and (role `institution`) its institutions.
type Forwarded<'a> = (Role, Admdvs, &'a str, Vec<String>);

/// Parses the forwarded metadata, `<role>:<admdvs>:<paasid>` or, for role `institution`,
/// `institution:<admdvs>:<paasid>:<code>[,<code>…]`. A gateway forwards only `institution` and
/// `platform`: every other role acts only with its own certificate.
fn parse_forwarded(v: &str) -> Result<Forwarded<'_>, String> {
    let mut parts = v.splitn(4, ':');
    let (Some(role), Some(region), Some(paasid)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{FORWARDED_HEADER} must be <role>:<admdvs>:<paasid>[:<institutions>]"));
    };
    let codes = parts.next();
    let role = Role::parse(role).ok_or_else(|| format!("{FORWARDED_HEADER}: unknown role {role:?}"))?;
    if !matches!(role, Role::Institution | Role::Platform) {
        return Err(format!("{FORWARDED_HEADER}: role {} cannot be forwarded", role.name()));
    }
    let region = Admdvs::parse(region).ok_or_else(|| format!("{FORWARDED_HEADER}: {region:?} is not a division code"))?;
    if !valid_paasid(paasid) {
        return Err(format!("{FORWARDED_HEADER}: malformed paasid"));
    }
    let institutions = match (role, codes) {
        (Role::Institution, Some(list)) => parse_institutions(region, list).map_err(|e| format!("{FORWARDED_HEADER}: {e}"))?,
        (Role::Institution, None) => return Err(format!("{FORWARDED_HEADER}: role institution must name its institutions")),
        (_, Some(_)) => return Err(format!("{FORWARDED_HEADER}: only role institution names institutions")),
        (_, None) => Vec::new(),
    };
    Ok((role, region, paasid, institutions))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One or more designated institutions (a hospital's HIS, a pharmacy's system): acts only as them.
    Institution,
    Mdtrt,
    Insured,
    Platform,
    National,
    Operator,
    Clearing,
    Gateway,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "institution" => Role::Institution,
            "mdtrt" => Role::Mdtrt,
            "insured" => Role::Insured,
            "platform" => Role::Platform,
            "national" => Role::National,
            "operator" => Role::Operator,
            "clearing" => Role::Clearing,
            "gateway" => Role::Gateway,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Role::Institution => "institution",
            Role::Mdtrt => "mdtrt",
            Role::Insured => "insured",
            Role::Platform => "platform",
            Role::National => "national",
            Role::Operator => "operator",
            Role::Clearing => "clearing",
            Role::Gateway => "gateway",
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate's subject common name (an institution, never a person).
    pub subject: String,
    pub role: Role,
    pub region: Admdvs,
    /// Role `institution`: the institutions (fixmedins_code) it may act as, each inside `region`;
    /// empty for every other role.
    pub institutions: Vec<String>,
}

impl Identity {
    /// Whether this caller may act as institution `code` (any institution for a role not bound to
    /// institutions; the region is checked by the matrix).
    pub fn acts_as(&self, code: &str) -> bool {
        self.role != Role::Institution || self.institutions.iter().any(|c| c == code)
    }
}

/// At most this many institutions are bound to one credential.
pub const MAX_BOUND_INSTITUTIONS: usize = 64;

/// Parses a bound institution list, `H…,P…`: each a valid code inside `region`, at most
/// `MAX_BOUND_INSTITUTIONS`, no repeats.
pub fn parse_institutions(region: Admdvs, list: &str) -> Result<Vec<String>, String> {
    let codes: Vec<String> = list.split(',').map(|c| c.trim().to_string()).collect();
    if codes.is_empty() || codes.len() > MAX_BOUND_INSTITUTIONS {
        return Err(format!("1–{MAX_BOUND_INSTITUTIONS} institution codes"));
    }
    for (i, c) in codes.iter().enumerate() {
        let Some((_, adm)) = region_adapter::codes::parse_fixmedins_code(c) else {
            return Err(format!("{c:?} is not an institution code (H or P + 6-digit division + 5 digits)"));
        };
        // The service location of an institution is the city of the division in its code.
        let city = Admdvs::parse(&format!("{:06}", adm.as_u32() / 100 * 100));
        if !city.is_some_and(|c| region.covers(c)) {
            return Err(format!("institution {c} is not in region {region}"));
        }
        if codes[..i].contains(c) {
            return Err(format!("institution {c} is named twice"));
        }
    }
    Ok(codes)
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Plain text on loopback: no identity, no restriction.
    Unauthenticated,
    Verified(Identity),
}

impl Caller {
    /// Key of the per-client concurrency limit.
    fn key(&self) -> String {
        match self {
            Caller::Unauthenticated => "-".into(),
            Caller::Verified(i) => format!("{}|{}|{}", i.subject, i.role.name(), i.region),
        }
    }
}

/// A certificate's subject common name and serial (for audit lines), or `?` when unreadable.
pub fn subject_of_cert(der: &[u8]) -> String {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            let cn = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("");
            format!("{cn} (serial {})", cert.raw_serial_as_string())
        }
        Err(_) => "?".into(),
    }
}

/// Reads the role and region from a DER client certificate (already verified against the client CA
/// by the TLS layer).
pub fn identity_of_cert(der: &[u8]) -> Result<Identity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let subject = cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or("").to_string();
    let mut found = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(u) = name
                && let Some(rest) = u.strip_prefix(SAN_PREFIX)
            {
                found.push(rest.to_string());
            }
        }
    }
    let [one] = found.as_slice() else {
        return Err(format!("the certificate must carry exactly one URI SAN {SAN_PREFIX}<role>:<admdvs>; it has {}", found.len()));
    };
    let mut parts = one.splitn(3, ':');
    let (Some(role), Some(region)) = (parts.next(), parts.next()) else {
        return Err(format!("{SAN_PREFIX}{one}: expected <role>:<admdvs>"));
    };
    let role = Role::parse(role).ok_or_else(|| format!("{SAN_PREFIX}{one}: unknown role {role:?}"))?;
    let region = Admdvs::parse(region).ok_or_else(|| format!("{SAN_PREFIX}{one}: {region:?} is not a division code"))?;
    let institutions = match (role, parts.next()) {
        (Role::Institution, Some(list)) => parse_institutions(region, list).map_err(|e| format!("{SAN_PREFIX}{one}: {e}"))?,
        (Role::Institution, None) => return Err(format!("{SAN_PREFIX}{one}: role institution must name its institutions")),
        (_, Some(_)) => return Err(format!("{SAN_PREFIX}{one}: only role institution names institutions")),
        (_, None) => Vec::new(),
    };
    Ok(Identity { subject, role, region, institutions })
}

/// What a request wants to do, with the regions it touches.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// `inst`: the institution the claim is settled as (its `fixmedins_code`).
    SettleClaim {
        mdtrt: &'a str,
        inst: &'a str,
    },
    /// `inst`: the original settlement's institution.
    ReverseClaim {
        mdtrt: &'a str,
        inst: &'a str,
    },
    ReadSettlement {
        insured: &'a str,
        mdtrt: &'a str,
        inst: &'a str,
    },
    WriteMember {
        insured: &'a str,
    },
    ReadMember {
        insured: &'a str,
    },
    /// A service location reading a member who has filed for it: the regions of the member's filings in
    /// force today and of its open visits.
    ReadFiledMember {
        filed: &'a [Admdvs],
    },
    WriteInstitution {
        mdtrt: &'a str,
    },
    /// Register, change, settle or read a visit of a service location at institution `inst`.
    Visit {
        mdtrt: &'a str,
        inst: &'a str,
    },
    /// Run the monthly account credits of an insured region.
    CreditAccounts {
        insured: &'a str,
    },
    /// Close a member's personal account (emigration or death) and pay its balance out.
    CloseAccount {
        insured: &'a str,
    },
    /// `inst`: one institution's settlements, or empty for the whole service location.
    Reconcile {
        mdtrt: &'a str,
        inst: &'a str,
    },
    ReadCatalogue,
    /// Read supervision's flags and indicators (what is seen is narrowed by `supervision_view`).
    Supervise,
    NettingWrite,
    NettingRead,
    AdapterCompute,
}

fn covers(region: Admdvs, code: &str) -> bool {
    Admdvs::parse(code).is_some_and(|c| region.covers(c))
}

/// Two regions share ground: one covers the other (a city and its province, or the same region).
fn overlaps(a: Admdvs, b: Admdvs) -> bool {
    a.covers(b) || b.covers(a)
}

/// The matrix (the README's Security section, "Authorization matrix").
pub fn allowed(id: &Identity, action: &Action<'_>) -> bool {
    use Role::*;
    let r = id.region;
    match *action {
        Action::SettleClaim { mdtrt, inst } | Action::ReverseClaim { mdtrt, inst } | Action::Visit { mdtrt, inst } => match id.role {
            Institution => covers(r, mdtrt) && id.acts_as(inst),
            Mdtrt | Platform => covers(r, mdtrt),
            _ => false,
        },
        Action::ReadSettlement { insured, mdtrt, inst } => match id.role {
            National => true,
            Institution => covers(r, mdtrt) && id.acts_as(inst),
            Mdtrt | Insured | Platform => covers(r, insured) || covers(r, mdtrt),
            Operator | Clearing | Gateway => false,
        },
        Action::WriteMember { insured } | Action::ReadMember { insured } => matches!(id.role, Insured | Platform) && covers(r, insured),
        Action::ReadFiledMember { filed } => matches!(id.role, Institution | Mdtrt | Platform) && filed.iter().any(|f| overlaps(r, *f)),
        // The list is the platform's: an institution cannot change its own level or designation.
        Action::WriteInstitution { mdtrt } => matches!(id.role, Mdtrt | Platform) && covers(r, mdtrt),
        Action::CreditAccounts { insured } | Action::CloseAccount { insured } => {
            id.role == National || (matches!(id.role, Insured | Platform) && covers(r, insured))
        }
        Action::Reconcile { mdtrt, inst } => match id.role {
            National => true,
            Institution => covers(r, mdtrt) && !inst.is_empty() && id.acts_as(inst),
            Mdtrt | Platform => covers(r, mdtrt),
            _ => false,
        },
        Action::ReadCatalogue => true,
        // A hospital reads supervision through its platform (what an institution-bound view should
        // show is not settled yet).
        Action::Supervise => matches!(id.role, National | Operator | Mdtrt | Insured | Platform),
        Action::NettingWrite => id.role == National,
        Action::NettingRead => matches!(id.role, National | Operator),
        Action::AdapterCompute => id.role == Clearing,
    }
}

/// Authorizes `action` for `caller`, or refuses with `PERMISSION_DENIED` and one audit line.
pub fn require(caller: &Caller, rpc: &str, action: Action<'_>) -> Result<(), ServiceError> {
    if permits(caller, &action) {
        return Ok(());
    }
    let Caller::Verified(id) = caller else {
        return Ok(());
    };
    tracing::warn!(
        target: "audit",
        rpc,
        subject = %id.subject,
        role = id.role.name(),
        region = %id.region,
        action = action_name(&action),
        "permission denied"
    );
    let field = field_of(id, &action);
    let as_institution = match (field, action) {
        (
            "fixmedins_code",
            Action::SettleClaim { inst, .. }
            | Action::ReverseClaim { inst, .. }
            | Action::ReadSettlement { inst, .. }
            | Action::Visit { inst, .. }
            | Action::Reconcile { inst, .. },
        ) => format!(" as institution {inst:?}"),
        _ => String::new(),
    };
    Err(ServiceError::PermissionDenied(
        format!("{} {} of {} may not call {rpc}{as_institution} here", id.role.name(), id.subject, id.region),
        field.into(),
    ))
}

/// Whether `caller` may do `action`, without a refusal or an audit line (for a handler that tries a
/// second rule before refusing).
pub fn permits(caller: &Caller, action: &Action<'_>) -> bool {
    match caller {
        Caller::Unauthenticated => true,
        Caller::Verified(id) => allowed(id, action),
    }
}

/// `require` for reads of one stored object: a refusal is answered with `hidden()` (the caller's
/// NOT_FOUND for an object that does not exist), so that the answer does not tell whether it exists.
/// The refusal is audited like any other.
pub fn require_or_hide(caller: &Caller, rpc: &str, action: Action<'_>, hidden: impl FnOnce() -> ServiceError) -> Result<(), ServiceError> {
    require(caller, rpc, action).map_err(|_| hidden())
}

fn action_name(a: &Action<'_>) -> &'static str {
    match a {
        Action::SettleClaim { .. } => "settle",
        Action::ReverseClaim { .. } => "reverse",
        Action::ReadSettlement { .. } => "read_settlement",
        Action::WriteMember { .. } => "write_member",
        Action::ReadMember { .. } => "read_member",
        Action::ReadFiledMember { .. } => "read_filed_member",
        Action::WriteInstitution { .. } => "write_institution",
        Action::Visit { .. } => "visit",
        Action::CreditAccounts { .. } => "credit_accounts",
        Action::CloseAccount { .. } => "close_account",
        Action::Reconcile { .. } => "reconcile",
        Action::ReadCatalogue => "read_catalogue",
        Action::Supervise => "supervise",
        Action::NettingWrite => "netting_write",
        Action::NettingRead => "netting_read",
        Action::AdapterCompute => "adapter_compute",
    }
}

/// The field a refusal names: `fixmedins_code` when an institution-bound caller is inside the region
/// but not that institution.
fn field_of(id: &Identity, a: &Action<'_>) -> &'static str {
    let other_institution = |mdtrt: &str| id.role == Role::Institution && covers(id.region, mdtrt);
    match a {
        Action::SettleClaim { mdtrt, .. }
        | Action::ReverseClaim { mdtrt, .. }
        | Action::Visit { mdtrt, .. }
        | Action::Reconcile { mdtrt, .. }
        | Action::ReadSettlement { mdtrt, .. }
            if other_institution(mdtrt) =>
        {
            "fixmedins_code"
        }
        Action::SettleClaim { .. } => "mdtrt_admdvs",
        Action::ReverseClaim { .. } | Action::ReadSettlement { .. } => "setl_id",
        Action::WriteMember { .. } | Action::ReadMember { .. } => "insuplc_admdvs",
        Action::ReadFiledMember { .. } => "psn_no",
        Action::WriteInstitution { .. } => "fixmedins_code",
        Action::Visit { .. } => "mdtrt_admdvs",
        Action::CreditAccounts { .. } | Action::CloseAccount { .. } => "insuplc_admdvs",
        Action::Reconcile { .. } => "mdtrt_admdvs",
        _ => "",
    }
}

/// What of supervision a caller sees (the Supervision row of the matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupervisionView {
    /// Everything (national, operator, no identity on loopback).
    pub all: bool,
    /// Person numbers are shown at all (not to operators).
    pub persons: bool,
    /// Claims of members insured here (their person numbers shown).
    pub insured: Option<Admdvs>,
    /// Institutions here and claims treated here (person numbers only of members insured in `insured`).
    pub mdtrt: Option<Admdvs>,
}

impl SupervisionView {
    pub fn of(caller: &Caller) -> SupervisionView {
        let none = SupervisionView { all: false, persons: true, insured: None, mdtrt: None };
        match caller {
            Caller::Unauthenticated => SupervisionView { all: true, ..none },
            Caller::Verified(id) => match id.role {
                Role::National => SupervisionView { all: true, ..none },
                Role::Operator => SupervisionView { all: true, persons: false, ..none },
                Role::Insured => SupervisionView { insured: Some(id.region), ..none },
                Role::Mdtrt => SupervisionView { mdtrt: Some(id.region), ..none },
                Role::Platform => SupervisionView { insured: Some(id.region), mdtrt: Some(id.region), ..none },
                Role::Institution | Role::Clearing | Role::Gateway => none,
            },
        }
    }

    fn covers(r: Option<Admdvs>, code: &str) -> bool {
        r.is_some_and(|r| covers(r, code))
    }

    /// A claim (or a region pair's sums) of a member insured in `insured`, treated in `mdtrt`.
    pub fn sees_claim(&self, insured: &str, mdtrt: &str) -> bool {
        self.all || Self::covers(self.insured, insured) || Self::covers(self.mdtrt, mdtrt)
    }

    /// An institution of service location `mdtrt`.
    pub fn sees_institution(&self, mdtrt: &str) -> bool {
        self.all || Self::covers(self.mdtrt, mdtrt)
    }

    /// The person number of a member insured in `insured`.
    pub fn sees_person(&self, insured: &str) -> bool {
        self.persons && (self.all || Self::covers(self.insured, insured))
    }
}

/// How a listener authenticates callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// TLS with a required client certificate from the client CA.
    MutualTls,
    /// Plain text on loopback (explicitly configured): no identities.
    PlaintextLoopback,
}

/// Identifies callers and bounds what each may have in flight.
pub struct Gate {
    mode: AuthMode,
    in_flight: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Gate {
    pub fn new(mode: AuthMode) -> Gate {
        Gate { mode, in_flight: Mutex::new(HashMap::new()) }
    }

    /// The caller of `req`. Under mTLS a connection without a verified certificate never gets this
    /// far (the handshake fails); a certificate without a valid role SAN is refused here.
    pub fn caller<T>(&self, req: &Request<T>, rpc: &str) -> Result<Caller, ServiceError> {
        let direct = match self.mode {
            AuthMode::PlaintextLoopback => Caller::Unauthenticated,
            AuthMode::MutualTls => {
                let certs = req.peer_certs().ok_or_else(|| ServiceError::Unauthenticated("no client certificate".into()))?;
                let leaf = certs.first().ok_or_else(|| ServiceError::Unauthenticated("no client certificate".into()))?;
                identity_of_cert(leaf.as_ref()).map(Caller::Verified).map_err(|why| {
                    tracing::warn!(target: "audit", rpc, reason = %why, "certificate without a usable identity");
                    ServiceError::PermissionDenied(why, String::new())
                })?
            }
        };
        let Some(fwd) = req.metadata().get(FORWARDED_HEADER) else {
            return Ok(direct);
        };
        let refuse = |subject: &str, role: &str, why: String| {
            tracing::warn!(target: "audit", rpc, subject, role, reason = %why, "forwarded identity refused");
            ServiceError::PermissionDenied(why, String::new())
        };
        let (gateway_subject, gateway_role) = match &direct {
            Caller::Unauthenticated => ("plaintext".to_string(), "-"),
            Caller::Verified(id) if id.role == Role::Gateway => (id.subject.clone(), "gateway"),
            Caller::Verified(id) => {
                return Err(refuse(&id.subject, id.role.name(), format!("only a gateway certificate may send {FORWARDED_HEADER}")));
            }
        };
        let value = fwd.to_str().map_err(|_| refuse(&gateway_subject, gateway_role, format!("{FORWARDED_HEADER} is not text")))?;
        let (role, region, paasid, institutions) = parse_forwarded(value).map_err(|why| refuse(&gateway_subject, gateway_role, why))?;
        Ok(Caller::Verified(Identity { subject: format!("{paasid} via {gateway_subject}"), role, region, institutions }))
    }

    /// A slot for one request of `caller`, or `RESOURCE_EXHAUSTED` when it has too many in flight.
    pub fn admit(&self, caller: &Caller) -> Result<OwnedSemaphorePermit, ServiceError> {
        let sem = {
            let mut m = self.in_flight.lock().expect("in-flight lock");
            m.entry(caller.key()).or_insert_with(|| Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CLIENT))).clone()
        };
        sem.try_acquire_owned().map_err(|_| {
            ServiceError::ResourceExhausted(format!("more than {MAX_IN_FLIGHT_PER_CLIENT} requests in flight from this client"))
        })
    }

    /// `caller` + `admit` + `require` in one step for handlers.
    pub fn enter<T>(&self, req: &Request<T>, rpc: &str, action: Action<'_>) -> Result<(Caller, OwnedSemaphorePermit), ServiceError> {
        let caller = self.caller(req, rpc)?;
        let permit = self.admit(&caller)?;
        require(&caller, rpc, action)?;
        Ok((caller, permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(role: Role, region: &str) -> Identity {
        Identity { subject: "t".into(), role, region: Admdvs::parse(region).unwrap(), institutions: Vec::new() }
    }

    #[test]
    fn a_client_has_a_bounded_number_of_requests_in_flight() {
        let gate = Gate::new(AuthMode::MutualTls);
        let busy = Caller::Verified(id(Role::Mdtrt, "421300"));
        let slots: Vec<_> = (0..MAX_IN_FLIGHT_PER_CLIENT).map(|_| gate.admit(&busy).unwrap()).collect();
        assert!(matches!(gate.admit(&busy), Err(ServiceError::ResourceExhausted(_))));
        // Another client is not affected; a finished request frees its slot.
        assert!(gate.admit(&Caller::Verified(id(Role::Mdtrt, "360100"))).is_ok());
        drop(slots);
        assert!(gate.admit(&busy).is_ok());
    }

    #[test]
    fn the_matrix() {
        let hubei = id(Role::Platform, "420000");
        assert!(allowed(&hubei, &Action::SettleClaim { mdtrt: "421300", inst: "" }));
        assert!(!allowed(&hubei, &Action::SettleClaim { mdtrt: "360100", inst: "" }));
        assert!(allowed(&hubei, &Action::ReadSettlement { insured: "360100", mdtrt: "421300", inst: "" }));
        assert!(allowed(&hubei, &Action::ReadSettlement { insured: "421300", mdtrt: "360100", inst: "" }));
        assert!(!allowed(&hubei, &Action::ReadSettlement { insured: "360100", mdtrt: "320100", inst: "" }));
        assert!(allowed(&hubei, &Action::WriteMember { insured: "421300" }));
        assert!(!allowed(&hubei, &Action::NettingRead));
        let nc_insured = id(Role::Insured, "360100");
        assert!(allowed(&nc_insured, &Action::ReadMember { insured: "360100" }));
        assert!(!allowed(&nc_insured, &Action::ReadMember { insured: "360200" }));
        assert!(!allowed(&nc_insured, &Action::SettleClaim { mdtrt: "360100", inst: "" }));
        let sz_mdtrt = id(Role::Mdtrt, "421300");
        assert!(!allowed(&sz_mdtrt, &Action::WriteMember { insured: "421300" }));
        assert!(!allowed(&sz_mdtrt, &Action::SettleClaim { mdtrt: "420100", inst: "" }));
        let national = id(Role::National, "000000");
        assert!(
            allowed(&national, &Action::NettingWrite) && allowed(&national, &Action::ReadSettlement { insured: "1", mdtrt: "2", inst: "" })
        );
        assert!(
            !allowed(&national, &Action::SettleClaim { mdtrt: "421300", inst: "" })
                && !allowed(&national, &Action::ReadMember { insured: "421300" })
        );
        let op = id(Role::Operator, "000000");
        assert!(allowed(&op, &Action::NettingRead) && !allowed(&op, &Action::NettingWrite));
        assert!(!allowed(&op, &Action::ReadSettlement { insured: "421300", mdtrt: "360100", inst: "" }));
        assert!(allowed(&id(Role::Clearing, "000000"), &Action::AdapterCompute) && !allowed(&hubei, &Action::AdapterCompute));
        // The gateway's own certificate reads the catalogue and nothing else.
        let gw = id(Role::Gateway, "000000");
        assert!(allowed(&gw, &Action::ReadCatalogue));
        assert!(
            !allowed(&gw, &Action::SettleClaim { mdtrt: "421300", inst: "" }) && !allowed(&gw, &Action::ReadMember { insured: "421300" })
        );
        assert!(
            !allowed(&gw, &Action::ReadSettlement { insured: "421300", mdtrt: "360100", inst: "" }) && !allowed(&gw, &Action::NettingRead)
        );
        // A service location reads a member filed for it (a city inside a filed province too), no other.
        let sz = [Admdvs::parse("421300").unwrap()];
        let hubei_filing = [Admdvs::parse("420000").unwrap()];
        assert!(allowed(&sz_mdtrt, &Action::ReadFiledMember { filed: &sz }));
        assert!(allowed(&sz_mdtrt, &Action::ReadFiledMember { filed: &hubei_filing }));
        assert!(allowed(&hubei, &Action::ReadFiledMember { filed: &sz }));
        assert!(!allowed(&sz_mdtrt, &Action::ReadFiledMember { filed: &[Admdvs::parse("360100").unwrap()] }));
        assert!(!allowed(&nc_insured, &Action::ReadFiledMember { filed: &[Admdvs::parse("360100").unwrap()] }));
        assert!(
            allowed(&sz_mdtrt, &Action::Reconcile { mdtrt: "421300", inst: "" })
                && !allowed(&sz_mdtrt, &Action::Reconcile { mdtrt: "360100", inst: "" })
        );
        assert!(
            allowed(&national, &Action::Reconcile { mdtrt: "", inst: "" })
                && !allowed(&sz_mdtrt, &Action::Reconcile { mdtrt: "", inst: "" })
        );
    }

    #[test]
    fn an_institution_acts_only_as_itself() {
        let his = Identity { institutions: vec!["H42130200746".into()], ..id(Role::Institution, "421300") };
        let (own, other) = ("H42130200746", "H42130200747");
        for (a, b) in [
            (Action::SettleClaim { mdtrt: "421300", inst: own }, Action::SettleClaim { mdtrt: "421300", inst: other }),
            (Action::ReverseClaim { mdtrt: "421300", inst: own }, Action::ReverseClaim { mdtrt: "421300", inst: other }),
            (Action::Visit { mdtrt: "421300", inst: own }, Action::Visit { mdtrt: "421300", inst: other }),
            (Action::Reconcile { mdtrt: "421300", inst: own }, Action::Reconcile { mdtrt: "421300", inst: "" }),
            (
                Action::ReadSettlement { insured: "360100", mdtrt: "421300", inst: own },
                Action::ReadSettlement { insured: "360100", mdtrt: "421300", inst: other },
            ),
        ] {
            assert!(allowed(&his, &a), "{a:?}");
            assert!(!allowed(&his, &b), "{b:?}");
        }
        // Its own code in another region is not its own; it never writes the list, members, credits,
        // netting, nor reads supervision (through its platform).
        assert!(!allowed(&his, &Action::SettleClaim { mdtrt: "360100", inst: own }));
        for a in [
            Action::WriteInstitution { mdtrt: "421300" },
            Action::WriteMember { insured: "421300" },
            Action::CreditAccounts { insured: "421300" },
            Action::Supervise,
            Action::NettingRead,
        ] {
            assert!(!allowed(&his, &a), "{a:?}");
        }
        assert!(allowed(&his, &Action::ReadFiledMember { filed: &[Admdvs::parse("421300").unwrap()] }));
        // A refusal for another institution of its own region names fixmedins_code.
        let e = require(&Caller::Verified(his), "SettleClaim", Action::SettleClaim { mdtrt: "421300", inst: other }).unwrap_err();
        assert!(matches!(&e, ServiceError::PermissionDenied(m, f) if f == "fixmedins_code" && m.contains(other)), "{e:?}");
    }

    #[test]
    fn forwarded_identities_are_parsed_strictly() {
        assert_eq!(
            parse_forwarded("platform:420000:HIS_1").map(|(r, a, p, i)| (r, a.to_string(), p.to_string(), i)),
            Ok((Role::Platform, "420000".into(), "HIS_1".into(), vec![]))
        );
        assert_eq!(
            parse_forwarded("institution:421300:his_1:H42130200746,P42130200001").map(|(r, _, _, i)| (r, i)),
            Ok((Role::Institution, vec!["H42130200746".to_string(), "P42130200001".to_string()]))
        );
        for bad in [
            "gateway:000000:x",
            "clearing:000000:x",
            "national:000000:x",
            "operator:000000:x",
            "mdtrt:421300:x",
            "insured:421300:x",
            "platform:42130:x",
            "platform:421300:",
            "platform:421300:a b",
            "platform:420000",
            "platform:420000:x:H42130200746",
            "institution:421300:x",
            "institution:421300:x:H36010000001",
            "institution:421300:x:H4213",
            "root:000000:x",
        ] {
            assert!(parse_forwarded(bad).is_err(), "{bad}");
        }
    }
}
