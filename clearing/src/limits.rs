//! Limits of the service, each with why its number (engine limits are in `region_adapter::limits`).

/// Retries of a settlement after a version conflict (another claim of the same member committed
/// first). Eight conflicts in a row means a member is being hammered; the caller retries later.
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;
/// How long a settlement waits for a store that went away in the middle of its commit (a Redis
/// restart, AOF replayed, takes a second or two) before answering UNAVAILABLE: the service resolves the
/// unknown outcome by re-reading the idempotency key and commits again itself. Never past the caller's
/// deadline.
pub const STORE_OUTAGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// msgid length: the national msgid is 30 characters; 64 leaves room for any sender's scheme.
pub const MAX_MSGID_LEN: usize = 64;
/// psn_no length: national person numbers are 30 characters at most.
pub const MAX_PSN_NO_LEN: usize = 32;
/// Free-text fields (reversal reason).
pub const MAX_TEXT_LEN: usize = 256;
/// Disease codes.
pub const MAX_DISE_CODE_LEN: usize = 20;
/// Filings per member: a member files for a few places, not hundreds.
pub const MAX_FILINGS: usize = 50;
/// Family links per member: spouse, parents, children.
pub const MAX_BENEFICIARIES: usize = 20;
/// A settlement time may be at most this far ahead of the server's clock (clock skew, not intent).
pub const MAX_FUTURE_SECS: i64 = 24 * 3600;
/// Account balances and credits, fen: 1,000,000 yuan is far above any personal account.
pub const MAX_BALANCE_FEN: i64 = 100_000_000;
/// Decoded request size; the largest valid claim (100 lines) is well under 64 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Page size bounds of listings.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;
/// Calls that bring no deadline of their own end after this long (a caller's `grpc-timeout` is
/// honoured when shorter). Netting a national window takes about a second; detail reconciliation of a
/// whole window is the longest call.
pub const MAX_CALL_DURATION: std::time::Duration = std::time::Duration::from_secs(120);
/// Concurrent requests (HTTP/2 streams) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: usize = 256;
