//! Limits of the clearing service, each with why its number (limits every server of ours shares are in
//! `clearing_edge::limits`, engine limits in `region_adapter::limits`).

/// Retries of a settlement after a version conflict (another claim of the same member committed
/// first). Eight conflicts in a row means a member is being hammered; the caller retries later.
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;
/// How long a settlement waits for a store that went away in the middle of its commit (a Redis
/// restart, AOF replayed, takes a second or two) before answering UNAVAILABLE: the service resolves the
/// unknown outcome by re-reading the idempotency key and commits again itself. Never past the caller's
/// deadline.
pub const STORE_OUTAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// Free-text fields (reversal reason).
pub const MAX_TEXT_LEN: usize = 256;
/// Family links per member: spouse, parents, children.
pub const MAX_BENEFICIARIES: usize = 20;
/// A settlement time may be at most this far ahead of the server's clock (clock skew, not intent).
pub const MAX_FUTURE_SECS: i64 = 24 * 3600;
/// Institutions in the list `clearing` starts with: every designated institution of 400 regions.
pub const MAX_INSTITUTIONS: usize = 1_000_000;
/// Institution names.
pub const MAX_INSTITUTION_NAME_LEN: usize = 200;
/// Fee details of one visit: what one settlement may carry.
pub const MAX_LINES_PER_VISIT: usize = region_adapter::limits::MAX_LINES_PER_CLAIM;
/// Visits of one member open at once (registered, not settled or cancelled): a patient sees a few
/// doctors a day, not dozens; more means a HIS registering in a loop.
pub const MAX_OPEN_VISITS_PER_MEMBER: usize = 10;
/// Of those, open at one institution: one caller cannot fill a member's list and lock the member out
/// of every other institution (issue 29).
pub const MAX_OPEN_VISITS_PER_INSTITUTION: usize = 3;
/// An outpatient visit settles the same day; one left open this long is swept (configurable).
pub const DEFAULT_VISIT_TTL: std::time::Duration = std::time::Duration::from_secs(72 * 3600);
/// `feedetl_sn`, `chrg_bchno`, `ipt_otp_no` lengths (national: 30).
pub const MAX_VISIT_ID_LEN: usize = 30;
/// How often `clearing serve` checks every Redis node's durability settings again after start: a node
/// restarted or added with an unsafe configuration takes writes for at most this long.
pub const DURABILITY_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// A visit left `settling` this long (a crash between the commit and the visit's update, and the HIS
/// never resent) is resolved by the sweep: settled from the stored answer when its msgid committed,
/// reopened when it did not. Far beyond any settlement call: a call without a deadline ends after 120 s,
/// a store outage is waited out for `STORE_OUTAGE_PATIENCE`.
pub const STALE_SETTLING: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Differences listed in one reconciliation answer (all are counted).
pub const MAX_DIFFERENCES: usize = 10_000;
/// Items in one detail reconciliation, streamed (a service location's day is far below this; the
/// gateway's bound on one 3202 call, `national_gateway::limits::MAX_RECONCILE_ITEMS`, is smaller).
pub const MAX_RECONCILE_ITEMS: usize = 20_000_000;
/// Members one certificate may find (FindMember, 1101): a person insured in several regions over a
/// career has a few memberships, not dozens; the index is read no further.
pub const MAX_MEMBERS_PER_CERTIFICATE: usize = 16;
/// Entries of the certificate index read at most for one lookup: the holders above plus entries left
/// by certificates changed since (never removed; each checked against the member and skipped).
pub const MAX_INDEX_ENTRIES_READ: usize = 4 * MAX_MEMBERS_PER_CERTIFICATE;
